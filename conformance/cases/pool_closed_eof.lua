--! needs: setkeepalive
-- after "*a" met the peer's EOF, and after the peer closed without our
-- reading it: setkeepalive says "closed" (SPEC 8.2 step 5)
local sock = scripted({ "w", "data" }, "c")
out(sock:receive("*a"))
out(sock:setkeepalive())
out(sock:close())
sock = scripted("c")
ngx.sleep(0.2)
out(sock:setkeepalive())
out(sock:close())
-- after a receive that saw the EOF with data still ahead of it in the buffer
sock = scripted({ "w", "ab" }, "c")
ngx.sleep(0.2)
out(sock:receive(1))
out(sock:setkeepalive())
out(sock:receive(5))
out(sock:setkeepalive())
out(sock:close())
