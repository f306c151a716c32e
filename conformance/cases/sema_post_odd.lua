-- sema:post with values that are not numbers (SPEC 10.8: `n and tonumber(n) or 1`)
local semaphore = require "ngx.semaphore"
local s = semaphore.new()
out(pcall(function() return (s:post("x")) end))
out(s:count())
out(pcall(function() return (s:post(false)) end))
out(s:count())
out(pcall(function() return (s:post(nil)) end))
out(s:count())
