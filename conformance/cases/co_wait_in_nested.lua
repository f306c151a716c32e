-- semaphores and threads used inside a user coroutine (SPEC 11.2)
local semaphore = require "ngx.semaphore"
local s = semaphore.new()
local co = coroutine.create(function()
  local t = ngx.thread.spawn(function()
    ngx.sleep(0.01)
    s:post(1)
    return "poster"
  end)
  out("co waits", s:wait(1))
  out("co joins", ngx.thread.wait(t))
  return "co done"
end)
out(coroutine.resume(co))
out(coroutine.status(co))
