-- ngx.get_phase() in the handler and in a timer (DECISIONS 8: always "timer" here)
local semaphore = require "ngx.semaphore"
local sema = semaphore.new()
out(ngx.get_phase())
ngx.timer.at(0, function()
  out("in timer", ngx.get_phase())
  sema:post(1)
end)
sema:wait(2)
