--! needs: udp
-- the constructor: no arguments, a table object (SPEC 12)
out(pcall(function() return (ngx.socket.udp(1)) end))
out(pcall(function() return (ngx.socket.udp(nil, nil)) end))
local u = ngx.socket.udp()
out(type(u))
u.note = "user field"
out(u.note)
for _, m in ipairs({ "setpeername", "send", "receive", "settimeout", "close" }) do
  out(m, type(u[m]))
end
out(u.connect, u.setkeepalive, u.receiveuntil)
