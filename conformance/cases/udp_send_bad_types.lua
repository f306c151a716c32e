--! needs: udp
-- send's argument errors; before setpeername "closed" comes first (SPEC 12, 4)
local u = ngx.socket.udp()
out(pcall(function() return (u:send()) end))
out(u:send(print))
out(u:send({ a = 1 }))
out(u:send("x"))
u:settimeout(2000)
out(u:setpeername(fx.host, fx.udpecho))
out(pcall(function() return (u:send()) end))
out(pcall(function() return (u:send("a", "b")) end))
for _, v in ipairs({ print, ngx.null, coroutine.create(function() end), { a = 1 },
                     { 1, 2, x = 3 }, { [0] = "x" }, { [1.5] = "x" }, { "a", { b = 1 } },
                     { 1, nil, 3 }, { [1] = "a", [3] = "c" }, { true }, { "a", { false } },
                     { ngx.null }, { print } }) do
  out(pcall(function() return (u:send(v)) end))
end
-- nothing was sent
u:settimeout(100)
out(u:receive())
out(u:send("ok"))
out(u:receive())
out(u:close())
