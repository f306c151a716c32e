-- a plain coroutine.yield() in a light thread lets the others run, as
-- sleep(0) does (DECISIONS.md 2); 0.10.23 resumes it at once when no other
-- thread is posted. Three threads wake from equal sleeps in one pass.
local log, ts = {}, {}
ts[1] = ngx.thread.spawn(function()
  ngx.sleep(0.01)
  log[#log + 1] = "A1"
  coroutine.yield()
  log[#log + 1] = "A2"
end)
ts[2] = ngx.thread.spawn(function()
  ngx.sleep(0.01)
  log[#log + 1] = "B1"
  ngx.sleep(0)
  log[#log + 1] = "B2"
end)
ts[3] = ngx.thread.spawn(function()
  ngx.sleep(0.01)
  log[#log + 1] = "C1"
end)
for i = 1, 3 do ngx.thread.wait(ts[i]) end
out(table.concat(log, " "))
