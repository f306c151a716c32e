--! needs: sslhandshake
-- a chain the CA signed, for another name: "certificate host mismatch"; the
-- name it has works (SPEC 3.2).  One failing verification per case (see
-- tls_expired)
local sock = ngx.socket.tcp()
sock:settimeout(2000)
out(sock:connect(fx.host, fx.tls.wronghost))
out(sock:sslhandshake(false, "other.test", true))
out(sock:send("other\n"))
out(sock:receive())
out(sock:connect(fx.host, fx.tls.wronghost))
out(sock:sslhandshake(nil, "localhost", true))
out(sock:send("x"))
