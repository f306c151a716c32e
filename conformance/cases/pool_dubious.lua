--! needs: setkeepalive
-- bytes the peer sent that nobody read yet (in the kernel, not the buffer):
-- "connection in dubious state", the object is closed (SPEC 8.2 step 14)
local sock = scripted({ "p", 50 }, { "w", "late\n" })
ngx.sleep(0.3)
out(sock:setkeepalive())
out(sock:send("x"))
out(sock:receive())
out(sock:close())
