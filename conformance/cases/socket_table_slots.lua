-- the socket table's numbered slots (type of each of 1 to 6): where the C
-- object and the timeouts live, before and after connect and setkeepalive
local function slots(sock)
  local r = {}
  for i = 1, 6 do r[#r + 1] = type(rawget(sock, i)) end
  return table.concat(r, " ")
end
local sock = ngx.socket.tcp()
out(slots(sock))
sock:settimeouts(1000, 2000, 3000)
out(slots(sock))
out(sock:connect(fx.host, fx.echo))
out(slots(sock))
out(sock:setkeepalive())
out(slots(sock))
out(sock:connect(fx.host, fx.echo))
out(sock:getreusedtimes())
out(slots(sock))
out(sock:close())
