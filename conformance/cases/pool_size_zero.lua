--! needs: setkeepalive
-- setkeepalive(t, 0) on a key with no pool yet raises the argerror of the
-- last argument; the connection stays open (SPEC 8.2 step 11)
local sock = ngx.socket.tcp()
sock:settimeout(2000)
out(sock:connect(fx.host, fx.echo, { pool = "cf_pool_size_zero" }))
out(pcall(function() return (sock:setkeepalive(0, 0)) end))
out(sock:send("x"))
out(sock:receive(1))
out(pcall(function() return (sock:setkeepalive(1000, -3)) end))
out(sock:getreusedtimes())
-- a size that is no number
out(pcall(function() return (sock:setkeepalive(0, "two")) end))
out(sock:getreusedtimes())
out(sock:setkeepalive(0, 1))
out(sock:connect(fx.host, fx.echo, { pool = "cf_pool_size_zero" }))
out(sock:getreusedtimes())
-- the pool exists now: a size 0 is not looked at
out(sock:setkeepalive(0, 0))
out(sock:connect(fx.host, fx.echo, { pool = "cf_pool_size_zero" }))
out(sock:getreusedtimes())
out(sock:close())
