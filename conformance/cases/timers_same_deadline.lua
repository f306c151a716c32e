-- sleeps and timers that fall due at the same time run in the order they
-- were started (ngx's timer tree keeps equal deadlines first in, first out)
local log, ts = {}, {}
for i = 1, 6 do
  ts[i] = ngx.thread.spawn(function()
    ngx.sleep(0.02)
    log[#log + 1] = "T" .. i
  end)
  if i == 3 then
    assert(ngx.timer.at(0.02, function() log[#log + 1] = "timer" end))
  end
end
for i = 1, 6 do ngx.thread.wait(ts[i]) end
ngx.sleep(0.01)
out(table.concat(log, " "))
