-- sleeping and waiting threads inside a timer handler (SPEC 10.7)
local semaphore = require "ngx.semaphore"
local done = semaphore.new()
ngx.timer.at(0, function(premature)
  local t = ngx.thread.spawn(function()
    ngx.sleep(0.02)
    return "child"
  end)
  ngx.sleep(0.01)
  out("timer", premature, ngx.thread.wait(t))
  done:post(1)
end)
out(done:wait(2))
