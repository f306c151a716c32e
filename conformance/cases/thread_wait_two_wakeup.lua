-- wait(t1, t2) returns when t1 ends; t2 ending later must not wake the parent out of
-- something else (upstream bug #1439, open in 0.10.23; DECISIONS 1: cosocket's wait
-- returns the results of the thread it reaped, and nothing else wakes it)
local function f()
  ngx.sleep(0.05)
  return "thread result"
end
local t1 = ngx.thread.spawn(f)
local t2 = ngx.thread.spawn(f)
out(ngx.thread.wait(t1, t2))
ngx.update_time()
local t0 = ngx.now()
out(ngx.sleep(0.3))
ngx.update_time()
out(ngx.now() - t0 >= 0.25)
