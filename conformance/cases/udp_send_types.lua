--! needs: udp
-- what send serialises for each type, one datagram each, returning 1 (SPEC 12, 4)
local u = ngx.socket.udp()
u:settimeout(2000)
out(u:setpeername(fx.host, fx.udpecho))
for _, v in ipairs({ 12, -7, 1.5, 2^40, 2^31, -2^31, 0.1, 1e300, -0.0, 1/3, 2^53 + 2,
                     "str", "a\0b", "", true, false }) do
  out(u:send(v), u:receive())
end
out(u:send(nil), u:receive())
for _, t in ipairs({ { "a", { "b", { "c", 1 } }, 2.5 }, { 1, 2, 3 }, { "x", {}, "y", { {} } },
                     {}, { {}, "", { "" } }, { -1, 2^40, "!" } }) do
  out(u:send(t), u:receive())
end
out(u:close())
