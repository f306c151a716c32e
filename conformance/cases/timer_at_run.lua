-- a timer's callback gets premature = false and the extra arguments (SPEC 10.7)
local semaphore = require "ngx.semaphore"
local sema = semaphore.new()
out(ngx.timer.at(0.02, function(premature, a, b, c)
  out("timer", premature, a, b, c)
  sema:post(1)
end, "A", nil, "C"))
out("created")
out(sema:wait(2))
