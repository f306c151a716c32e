--! needs: setkeepalive
-- a pool hands its idle connection to any connect with its key, whatever
-- the address: a unix connection goes to a host/port connect (SPEC 2.3)
local sock = ngx.socket.tcp()
sock:settimeout(2000)
out(sock:connect("unix:" .. fx.echo_unix, { pool = "cf_pool_mixed" }))
out(sock:setkeepalive())
out(sock:connect(fx.host, fx.refused, { pool = "cf_pool_mixed" }))
out(sock:getreusedtimes())
out(sock:send("unix"))
out(sock:receive(4))
out(sock:close())
out(sock:connect(fx.host, fx.refused, { pool = "cf_pool_mixed" }))
