--! needs: sslhandshake
-- a failed handshake closes the connection entirely (SPEC 3.2).  One failing
-- verification per case (see tls_expired)
local sock = ngx.socket.tcp()
sock:settimeout(2000)
out(sock:connect(fx.host, fx.tls.selfsigned))
out(sock:sslhandshake(nil, "localhost", true))
out(sock:send("x"))
out(sock:receive())
out(sock:getreusedtimes())
out(sock:setkeepalive())
out(sock:close())
-- and the object connects again
out(sock:connect(fx.host, fx.tls.good))
out(sock:sslhandshake(false, "localhost", true))
out(sock:close())
