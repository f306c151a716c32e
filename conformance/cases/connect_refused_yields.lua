-- a refused connect in a light thread yields before it reports: ngx learns
-- of the refusal from the event loop (SPEC 2.5)
local log = {}
local t = ngx.thread.spawn(function()
  local sock = ngx.socket.tcp()
  local ok, err = sock:connect(fx.host, fx.refused)
  log[#log + 1] = "connect " .. tostring(ok) .. " " .. tostring(err)
end)
log[#log + 1] = "after spawn"
out(ngx.thread.wait(t))
out(table.concat(log, ", "))
