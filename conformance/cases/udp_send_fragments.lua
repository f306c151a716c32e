--! needs: udp
-- a table of many fragments is still one datagram (SPEC 12, 4)
local u = ngx.socket.udp()
u:settimeout(2000)
out(u:setpeername(fx.host, fx.udpecho))
for _, n in ipairs({ 1024, 1025, 3000 }) do
  local t, want = {}, {}
  for i = 1, n do
    t[i] = (i % 2 == 0) and { tostring(i) } or "."
    want[i] = (i % 2 == 0) and tostring(i) or "."
  end
  want = table.concat(want)
  local ok, err = u:send(t)
  out(n, ok, err)
  if ok then
    local r = u:receive()
    out(r == want, #r)
  end
end
out(u:close())
