--! needs: sslhandshake
-- the server name "127.0.0.1" against a certificate with SAN IP:127.0.0.1
-- (SPEC 3.1: server_name is the name checked).  One verification per case
-- (see tls_expired)
local sock = ngx.socket.tcp()
sock:settimeout(2000)
out(sock:connect(fx.host, fx.tls.good))
local session, err = sock:sslhandshake(nil, "127.0.0.1", true)
out(session ~= nil, err)
out(sock:close())
