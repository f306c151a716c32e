--! needs: sslhandshake
-- sslhandshake on an established TLS connection returns at once: the session
-- passed, true for false, else a session (SPEC 3.2)
local sock = ngx.socket.tcp()
sock:settimeout(2000)
out(sock:connect(fx.host, fx.tls.good))
local s1 = sock:sslhandshake(nil, "localhost", true)
out(s1 ~= nil)
out(sock:sslhandshake(false))
local s2 = sock:sslhandshake(s1)
out(rawequal(s1, s2))
local s3 = sock:sslhandshake()
out(s3 ~= nil and s3 ~= true)
-- no new verification: a wrong name now does not matter
out(sock:sslhandshake(false, "other.test", true))
out(sock:send("still\n"))
out(sock:receive())
out(sock:close())
