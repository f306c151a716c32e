--! needs: sslhandshake
-- a self-signed certificate: "18: self-signed certificate" (OpenSSL 3's
-- spelling) (SPEC 3.2).  One failing verification per case (see tls_expired)
local sock = ngx.socket.tcp()
sock:settimeout(2000)
out(sock:connect(fx.host, fx.tls.selfsigned))
out(sock:sslhandshake(nil, "localhost", true))
out(sock:send("x"))
