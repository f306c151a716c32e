-- waiters are served in order; a new waiter queues behind them (SPEC 10.8)
local semaphore = require "ngx.semaphore"
local s = semaphore.new()
local ts = {}
for i = 1, 3 do
  ts[i] = ngx.thread.spawn(function()
    out("wait", i, s:wait(2))
  end)
end
out(s:count())
out(s:post(2))
out(s:wait(0))
out(s:count())
ngx.sleep(0.01)
out(s:count())
out(s:post(1))
for i = 1, 3 do ngx.thread.wait(ts[i]) end
out(s:count())
