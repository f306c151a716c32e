-- sema:wait(nil): the exact arithmetic error text
local semaphore = require "ngx.semaphore"
local s = semaphore.new(1)
out(pcall(function() return (s:wait(nil)) end))
out(pcall(function() return (s:wait()) end))
