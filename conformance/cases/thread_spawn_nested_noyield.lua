-- nested spawns where nobody waits for I/O (SPEC 10.2)
out("main start")
local t = ngx.thread.spawn(function()
  out("child start")
  local g = ngx.thread.spawn(function()
    out("grandchild runs")
    return "g"
  end)
  out("child after spawn", coroutine.status(g))
  out("child waits", ngx.thread.wait(g))
  return "c"
end)
out("main after spawn", coroutine.status(t))
out("main waits", ngx.thread.wait(t))
