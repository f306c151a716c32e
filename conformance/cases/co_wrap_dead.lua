-- calling a dead wrapped coroutine (SPEC 11.3; DECISIONS 1: standard Lua here)
local f = coroutine.wrap(function() return "once" end)
out(f())
out(pcall(f))
