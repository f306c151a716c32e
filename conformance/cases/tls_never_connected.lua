--! needs: sslhandshake
-- sslhandshake on an object that never connected raises; after a failed
-- connect it returns nil, "closed" (SPEC 3.1, 3.2)
-- first an asynchronous handshake failure: it resets the reference's
-- module-level verify code (see tls_stale_verify_code)
do
  local r = ngx.socket.tcp()
  r:settimeout(2000)
  r:connect(fx.host, fx.echo)
  r:sslhandshake(false)
end
local sock = ngx.socket.tcp()
out(pcall(function() return (sock:sslhandshake()) end))
out(pcall(function() return (sock:sslhandshake(false, "localhost", true)) end))
-- once connect was tried, the object is merely closed
out(sock:connect(fx.host, fx.refused))
out(sock:sslhandshake())
