-- sleep(0) yields to the other runnable threads (SPEC 10.5)
local t = ngx.thread.spawn(function()
  for i = 1, 3 do
    out("thread", i)
    ngx.sleep(0)
  end
end)
for i = 1, 3 do
  out("entry", i)
  ngx.sleep(0)
end
ngx.thread.wait(t)
