-- ngx.now, ngx.time, ngx.update_time (SPEC 10.6)
out(type(ngx.now()), type(ngx.time()))
out(ngx.time() == math.floor(ngx.time()))
out(ngx.now() >= ngx.time())
out(ngx.update_time())
local t0 = ngx.now()
ngx.sleep(0.05)
out(ngx.now() - t0 >= 0.04)
-- the clock is cached: it does not move inside a busy stretch without update_time
local a = ngx.now()
local x = 0
for i = 1, 2e6 do x = x + i end
out(ngx.now() == a)
