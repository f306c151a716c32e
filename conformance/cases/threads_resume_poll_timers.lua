-- timers that fell due while a thread ran go before the events that came
-- meanwhile, in expiry order (ngx: the timer phase of the running cycle,
-- then the next poll's events)
local sock, log = scripted("l"), {}
local function busy(s) -- no yield: what falls due meanwhile waits
  ngx.update_time()
  local t0 = ngx.now()
  repeat ngx.update_time() until ngx.now() - t0 >= s
end
local function note(s) log[#log + 1] = s end
local ts = {
  ngx.thread.spawn(function() ngx.sleep(0.02); note("sleep 0.02") end),
  ngx.thread.spawn(function() ngx.sleep(0.01); note("sleep 0.01") end),
  ngx.thread.spawn(function() note("read " .. tostring(sock:receive())) end),
}
assert(ngx.timer.at(0.015, function() note("timer 0.015") end))
sock:send("x\n")
busy(0.06)
for i = 1, #ts do ngx.thread.wait(ts[i]) end
ngx.sleep(0.01)
out(table.concat(log, ", "))
