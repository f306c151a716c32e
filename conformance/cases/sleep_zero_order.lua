-- sleep(0) lets the others run, and is ordered with timers of 0 ms by when
-- it was called, ahead of socket events that came meanwhile (ngx 0.10.23
-- makes a 0 ms timer of it)
local log = {}
local t = ngx.thread.spawn(function()
  ngx.sleep(0)
  log[#log + 1] = "after sleep(0)"
end)
assert(ngx.timer.at(0, function() log[#log + 1] = "timer.at(0)" end))
ngx.thread.wait(t)
ngx.sleep(0.005)
out(table.concat(log, ", "))
log = {}
local sock = scripted("l")
local function busy(s) -- no yield: what comes meanwhile waits for the poll
  ngx.update_time()
  local t0 = ngx.now()
  repeat ngx.update_time() until ngx.now() - t0 >= s
end
local c = ngx.thread.spawn(function()
  local line = sock:receive()
  log[#log + 1] = "C got " .. tostring(line)
end)
local a = ngx.thread.spawn(function()
  ngx.sleep(0.01)
  log[#log + 1] = "A woke"
  sock:send("x\n")
  busy(0.05) -- C's line comes back meanwhile
  ngx.sleep(0)
  log[#log + 1] = "A after sleep(0)"
end)
ngx.thread.wait(a)
ngx.thread.wait(c)
out(table.concat(log, ", "))
