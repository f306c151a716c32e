-- timers fire in the order of their deadlines (SPEC 10.7)
local semaphore = require "ngx.semaphore"
local sema = semaphore.new()
for _, d in ipairs({ 0.06, 0.02, 0.04 }) do
  ngx.timer.at(d, function()
    out("timer", d)
    sema:post(1)
  end)
end
for _ = 1, 3 do sema:wait(2) end
out("done")
