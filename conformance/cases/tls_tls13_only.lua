--! needs: sslhandshake
-- a server that speaks TLS 1.3 only (DECISIONS.md 7: 1.2 and 1.3 offered)
local sock = ngx.socket.tcp()
sock:settimeout(2000)
out(sock:connect(fx.host, fx.tls.tls13))
out(sock:sslhandshake(false, "localhost", true))
out(sock:send("thirteen\n"))
out(sock:receive())
out(sock:close())
