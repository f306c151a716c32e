-- an error inside coroutine.wrap (SPEC 11.3; DECISIONS 1: standard Lua here).
-- In a light thread, so that nginx aborting the caller is visible through wait.
local t = ngx.thread.spawn(function()
  local f = coroutine.wrap(function() error("wrapped boom", 0) end)
  local ok, err = pcall(f)
  out("caught", ok, err)
  return "thread went on"
end)
local ok, res = ngx.thread.wait(t)
out(ok, res)
