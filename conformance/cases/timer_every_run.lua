-- ngx.timer.every fires again and again (SPEC 10.7); it stops doing work after 3
local semaphore = require "ngx.semaphore"
local sema = semaphore.new()
local n = 0
out(ngx.timer.every(0.02, function(premature, tag)
  if n >= 3 then return end
  n = n + 1
  out("every", premature, tag, n)
  sema:post(1)
end, "T"))
for _ = 1, 3 do sema:wait(2) end
out("done", n)
