--! needs: setkeepalive
-- without a pool option the key is host .. ":" .. port, the host as given
-- and the port as Lua prints it (SPEC 2.1 step 6); the pool is taken
-- before any DNS lookup (SPEC 2.3)
local sock = ngx.socket.tcp()
sock:settimeout(2000)
out(sock:connect("127.0.0.1", fx.echo))
out(sock:setkeepalive())
-- another spelling of the host is another pool
out(sock:connect("127.0.0.1:" .. fx.echo, 1))
out(sock:getreusedtimes())
out(sock:close())
-- a numeric string port prints the same
out(sock:connect("127.0.0.1", tostring(fx.echo)))
out(sock:getreusedtimes())
out(sock:setkeepalive())
-- the key as a pool name, with a name nothing resolves: no DNS is asked
out(sock:connect("nx.test", fx.echo, { pool = "127.0.0.1:" .. fx.echo }))
out(sock:getreusedtimes())
out(sock:send("key"))
out(sock:receive(3))
out(sock:close())
out(sock:connect("nx.test", fx.echo, { pool = "127.0.0.1:" .. fx.echo }))
