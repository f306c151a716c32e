-- sema:wait's timeout is required: nil raises an arithmetic error (SPEC 10.8)
local semaphore = require "ngx.semaphore"
local s = semaphore.new(1)
local ok, err = pcall(function() return (s:wait(nil)) end)
out(ok, (err:gsub(" on .*", "")))
ok, err = pcall(function() return (s:wait("x")) end)
out(ok, (err:gsub(" on .*", "")))
out(s:count())
