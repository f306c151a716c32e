--! needs: sslhandshake
-- sslhandshake on a closed connection: nil, "closed" (SPEC 3.2)
-- first an asynchronous handshake failure: it resets the reference's
-- module-level verify code (see tls_stale_verify_code)
do
  local r = ngx.socket.tcp()
  r:settimeout(2000)
  r:connect(fx.host, fx.echo)
  r:sslhandshake(false)
end
local sock = ngx.socket.tcp()
sock:settimeout(2000)
out(sock:connect(fx.host, fx.tls.good))
out(sock:close())
out(sock:sslhandshake())
out(sock:sslhandshake(false, "localhost", true))
-- a TLS connection closed after its handshake
out(sock:connect(fx.host, fx.tls.good))
out(sock:sslhandshake(false))
out(sock:close())
out(sock:sslhandshake(false))
