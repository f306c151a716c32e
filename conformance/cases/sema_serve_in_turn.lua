-- a post for several waiters serves them one at a time, each running before
-- the next is served: a waiter that waits again queues behind the others
-- (SPEC 10.8; ngx resumes each waiter as it serves it)
local semaphore = require "ngx.semaphore"
local sem = semaphore.new()
local log, ts = {}, {}
for _, n in ipairs({ "A", "B" }) do
  ts[#ts + 1] = ngx.thread.spawn(function()
    local ok, err = sem:wait(1)
    log[#log + 1] = n .. "1 " .. tostring(ok) .. " " .. tostring(err) .. " " .. sem:count()
    ok, err = sem:wait(0.05)
    log[#log + 1] = n .. "2 " .. tostring(ok) .. " " .. tostring(err) .. " " .. sem:count()
  end)
end
sem:post(3)
for i = 1, 2 do ngx.thread.wait(ts[i]) end
out(table.concat(log, ", "))
