--! needs: sslhandshake
-- the good certificate (localhost, 127.0.0.1) asked for another name
-- (SPEC 3.2).  One failing verification per case (see tls_expired)
local sock = ngx.socket.tcp()
sock:settimeout(2000)
out(sock:connect(fx.host, fx.tls.good))
out(sock:sslhandshake(nil, "other.test", true))
out(sock:close())
