--! needs: udp
-- setpeername without a port: port 0 (SPEC 12)
local u = ngx.socket.udp()
u:settimeout(100)
out(u:setpeername(fx.host))
out(u:send("zero"))
out(u:receive())
out(u:close())
