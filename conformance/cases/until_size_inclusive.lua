-- streaming with inclusive: the last chunk carries the pattern (SPEC 6.4)
local sock = scripted({ "w", "hello world _END_ blah" }, "c")
local it = sock:receiveuntil("_END_", { inclusive = true })
for _ = 1, 5 do
  out(it(5))
end
out(sock:receive("*a"))
