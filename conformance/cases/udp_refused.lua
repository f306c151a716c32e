--! needs: udp
-- an ICMP port unreachable: "connection refused" on the next call, once; the
-- socket stays (SPEC 12)
local u = ngx.socket.udp()
u:settimeout(100)
out(u:setpeername(fx.host, fx.refused))
out(u:send("anyone?"))
out(u:receive())
out(u:receive())
out(u:send("a"))
out(u:send("b"))
out(u:send("c"))
out(u:receive())
out(u:close())
