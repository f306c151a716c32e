-- lua_max_pending_timers (1024 by default on both sides) (SPEC 10.7)
local n, err = 0, nil
for _ = 1, 2000 do
  local ok, e = ngx.timer.at(0.2, function() end)
  if not ok then
    err = e
    break
  end
  n = n + 1
end
out(err, n >= 1000 and n <= 1024)
-- let them fire before the next case needs a timer (nginx does not wait for them)
ngx.sleep(0.4)
out(ngx.timer.at(0, function() end))
