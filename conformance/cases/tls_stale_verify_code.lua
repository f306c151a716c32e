--! needs: sslhandshake
-- the "closed" of an sslhandshake after a failed verification (SPEC 3.2: the
-- reference keeps the verify code in a module-level buffer that only a
-- handshake failing after a wait writes, and prefixes it to errors found
-- without waiting; cosocket computes the error text per call)
local sock = ngx.socket.tcp()
sock:settimeout(2000)
out(sock:connect(fx.host, fx.tls.selfsigned))
out(sock:sslhandshake(nil, "localhost", true))
out(sock:sslhandshake(false))
-- a successful handshake in between does not reset it
out(sock:connect(fx.host, fx.tls.good))
out(sock:sslhandshake(false, "localhost", true))
out(sock:close())
out(sock:sslhandshake(false))
