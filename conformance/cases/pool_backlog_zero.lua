--! needs: setkeepalive
-- pool_size 1, backlog 0: a second connection is refused at once, and
-- allowed once the first one closed (SPEC 8.6)
local opts = { pool = "cf_pool_backlog_zero", pool_size = 1, backlog = 0 }
local s1, s2 = ngx.socket.tcp(), ngx.socket.tcp()
s1:settimeout(2000)
s2:settimeout(2000)
out(s1:connect(fx.host, fx.echo, opts))
out(s2:connect(fx.host, fx.echo, opts))
out(s2:connect(fx.host, fx.echo, opts))
out(s1:close())
out(s2:connect(fx.host, fx.echo, opts))
out(s2:getreusedtimes())
-- a connection parked in the pool is there to take
out(s2:setkeepalive())
out(s1:connect(fx.host, fx.echo, opts))
out(s1:getreusedtimes())
out(s2:connect(fx.host, fx.echo, opts))
out(s1:close())
