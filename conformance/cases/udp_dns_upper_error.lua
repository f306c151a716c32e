--! needs: udp
-- the name in a resolver error, for a name given in capitals (SPEC 12, 2.4)
local u = ngx.socket.udp()
u:settimeout(2000)
out(u:setpeername("NX.TEST", fx.udpecho))
out(u:setpeername("Nx.Test"))
