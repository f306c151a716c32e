-- what send serialises for each type (SPEC 4)
local sock = ngx.socket.tcp()
sock:settimeout(2000)
out(sock:connect(fx.host, fx.echo))
local total = 0
for _, v in ipairs({ 12, -7, 1.5, 2^40, 2^31, -2^31, 0.1, 1e300, -0.0, 1/3, 2^53 + 2, "str" }) do
  local n = sock:send(v)
  out(n)
  total = total + n
end
for _, v in ipairs({ true, false }) do
  local n = sock:send(v)
  out(n)
  total = total + n
end
local n = sock:send(nil)
out(n)
total = total + n
out(sock:receive(total))
out(sock:close())
