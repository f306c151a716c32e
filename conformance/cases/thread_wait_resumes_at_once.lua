-- a parent waiting for a thread runs as soon as that thread ends, before
-- the threads the same loop pass readied after it (ngx resumes it at once)
local log = {}
local function note(s) log[#log + 1] = s end
local function busy(s) -- no yield: the sleeps below fall due meanwhile
  ngx.update_time()
  local t0 = ngx.now()
  repeat ngx.update_time() until ngx.now() - t0 >= s
end
local S1 = ngx.thread.spawn(function() ngx.sleep(0.01); note("S1 woke") end)
local S2 = ngx.thread.spawn(function() ngx.sleep(0.02); note("S2 woke") end)
local X = ngx.thread.spawn(function() ngx.sleep(0.001); busy(0.05) end)
note("wait S1 " .. tostring(ngx.thread.wait(S1)))
note("kill S2 " .. tostring(ngx.thread.kill(S2)))
ngx.thread.wait(X)
out(table.concat(log, ", "))
-- waiting for any of three that fall due together: the first one's results
log = {}
local ts, d = {}, { 0.03, 0.01, 0.02 }
for i = 1, 3 do
  ts[i] = ngx.thread.spawn(function() ngx.sleep(d[i]); note("T" .. i); return i end)
end
ngx.sleep(0.001)
busy(0.05)
local ok, v = ngx.thread.wait(ts[1], ts[2], ts[3])
note("wait " .. tostring(ok) .. " " .. tostring(v))
for i = 1, 3 do note("kill T" .. i .. " " .. tostring(ngx.thread.kill(ts[i]))) end
out(table.concat(log, ", "))
