-- coroutine.wrap as a generator, with I/O inside (SPEC 11)
local sock = scripted({ "w", "a\nb\nc\n" }, "c")
local lines = coroutine.wrap(function()
  while true do
    local l = sock:receive()
    if not l then return nil end
    coroutine.yield(l)
  end
end)
out(lines())
out(lines())
out(lines())
out(lines())
