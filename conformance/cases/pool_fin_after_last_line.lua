--! needs: setkeepalive
-- the peer sent its last line and closed, both in our kernel before the line
-- was read: setkeepalive after reading exactly the line says "closed" and
-- leaves the connection to close() (ngx: epoll reported the FIN with the
-- bytes, EPOLLRDHUP, so the peer's EOF is pending: SPEC 8.2 step 5)
local sock = scripted({ "w", "last\n" }, "c")
ngx.sleep(0.2)
out(sock:receive())
out(sock:setkeepalive())
out(sock:close())
