--! needs: setkeepalive
-- 0.10.23 checks a bad timeout only after parking the connection: it raises,
-- and the object is closed with its connection in the pool (SPEC 8.2 step 3;
-- DECISIONS.md 1: setkeepalive checks its arguments in 0.10.23's order)
local sock = ngx.socket.tcp()
sock:settimeout(2000)
out(sock:connect(fx.host, fx.echo, { pool = "cf_pool_bad_timeout" }))
out(pcall(function() return (sock:setkeepalive("soon")) end))
out(sock:send("x"))
out(sock:close())
-- (its reuse count is not printed: 0.10.23 leaves the pool item's count
-- unset when it raises, so nginx shows whatever was in that memory)
out(sock:connect(fx.host, fx.echo, { pool = "cf_pool_bad_timeout" }))
out(sock:send("parked"))
out(sock:receive(6))
out(sock:close())
-- a fresh connection; a numeric string is a number
out(sock:connect(fx.host, fx.echo, { pool = "cf_pool_bad_timeout" }))
out(sock:getreusedtimes())
out(sock:setkeepalive("1000"))
out(sock:connect(fx.host, fx.echo, { pool = "cf_pool_bad_timeout" }))
out(sock:getreusedtimes())
out(sock:close())
