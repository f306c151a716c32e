--! needs: udp
-- what is left of the object after a unix setpeername failed (SPEC 12: setup
-- errors close the socket). No receive here: in 0.10.23 it crashes the nginx
-- worker (the half-set-up connection has no handler data when its timer fires).
local u = ngx.socket.udp()
u:settimeout(100)
out(u:setpeername("unix:" .. fx.missing_unix))
out(u:send("x"))
out(u:close())
out(u:close())
