-- coroutine.yield in a light thread lets the others run (SPEC 10.1)
local t = ngx.thread.spawn(function()
  for i = 1, 3 do
    out("t" .. i)
    out("yield returns", coroutine.yield("ignored"))
  end
end)
for i = 1, 3 do
  out("m" .. i)
  coroutine.yield()
end
ngx.thread.wait(t)
