--! needs: setkeepalive
-- getreusedtimes counts the reuses of one connection: 0, 1, 2; a pool whose
-- last connection closed is gone and the next connect is fresh (SPEC 8.4, 8.1)
local sock = ngx.socket.tcp()
sock:settimeout(2000)
local opts = { pool = "cf_pool_reusedtimes" }
for _ = 1, 3 do
  out(sock:connect(fx.host, fx.echo, opts))
  out(sock:getreusedtimes())
  out(sock:setkeepalive(0))
end
out(sock:connect(fx.host, fx.echo, opts))
out(sock:getreusedtimes())
out(sock:close())
out(sock:connect(fx.host, fx.echo, opts))
out(sock:getreusedtimes())
out(sock:close())
