-- ngx.timer.every's arguments (SPEC 10.7)
local f = function() end
out(pcall(function() return (ngx.timer.every()) end))
out(pcall(function() return (ngx.timer.every(1)) end))
out(pcall(function() return (ngx.timer.every(0, f)) end))
out(pcall(function() return (ngx.timer.every(0.0001, f)) end))
out(pcall(function() return (ngx.timer.every("x", f)) end))
out(pcall(function() return (ngx.timer.every(1, "f")) end))
out(pcall(function() return (ngx.timer.every(1, print)) end))
