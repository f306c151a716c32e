-- a zero delay runs after the current handler yields (SPEC 10.7)
local semaphore = require "ngx.semaphore"
local sema = semaphore.new()
out(ngx.timer.at(0, function(premature)
  out("timer", premature)
  sema:post(1)
end))
out("before yield")
out(sema:wait(2))
