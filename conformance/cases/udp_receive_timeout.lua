--! needs: udp
-- a receive timeout is not fatal (SPEC 12)
local u = ngx.socket.udp()
out(u:settimeout(100))                              -- before setpeername: kept
out(u:setpeername(fx.host, fx.udpecho))
out(u:receive())
out(u:receive(5))
out(u:send("after timeout"))
out(u:receive())
out(u:settimeout(0))                                -- the default (60 s) again
out(u:send("default"))
out(u:receive())
out(u:close())
out(u:receive())
