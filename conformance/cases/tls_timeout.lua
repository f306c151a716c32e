--! needs: sslhandshake
-- a silent peer: the handshake gives up after the connect timeout, not the
-- read timeout, and closes the connection (SPEC 3.2)
local sock = ngx.socket.tcp()
sock:settimeouts(150, 3000, 3000)
out(sock:connect(fx.host, fx.silent))
ngx.update_time()
local t0 = ngx.now()
out(sock:sslhandshake(false))
ngx.update_time()
local dt = ngx.now() - t0
out(dt >= 0.1, dt < 1)
out(sock:send("x"))
out(sock:close())
