--! needs: udp
-- receive's size: default and maximum 65536, truncation, odd values (SPEC 12)
local u = ngx.socket.udp()
u:settimeout(2000)
out(u:setpeername(fx.host, fx.udpecho))
local parts = {}
for i = 1, 1000 do parts[i] = string.format("%09d\n", i) end
local big = table.concat(parts)                      -- 10000 bytes
for _, size in ipairs({ "default", 100000, -1, 10000, 65536 }) do
  out(u:send(big))
  local r, err
  if size == "default" then r, err = u:receive() else r, err = u:receive(size) end
  out(size, r == big, r and #r, err)
end
out(u:send("0123456789"))
out(u:receive(4))
out(u:send("abcdef"))
out(u:receive())
out(u:send("xyz"))
out(u:receive(1.9))
out(u:send("xyz"))
out(u:receive("2"))
out(u:send("eaten"))
out(u:receive(0))
u:settimeout(100)
out(u:receive())
out(pcall(function() return (u:receive("x")) end))
out(pcall(function() return (u:receive({})) end))
out(pcall(function() return (u:receive(1, 2)) end))
out(pcall(function() return (u.receive()) end))
out(u:send("still"))
u:settimeout(2000)
out(u:receive())
out(u:close())
