-- a loopback connect done at once resumes after the socket events already
-- pending when it was made (ngx learns of both from one epoll_wait)
local s, log = scripted("l"), {}
local function busy(t) -- no yield: the echo arrives meanwhile
  ngx.update_time()
  local t0 = ngx.now()
  repeat ngx.update_time() until ngx.now() - t0 >= t
end
local r = ngx.thread.spawn(function()
  assert(s:send("go\n"))
  local line = s:receive()
  log[#log + 1] = "R got " .. tostring(line)
end)
busy(0.05)
local c = ngx.thread.spawn(function()
  local sock = ngx.socket.tcp()
  local ok, err = sock:connect(fx.host, fx.echo)
  log[#log + 1] = "C connect " .. tostring(ok) .. " " .. tostring(err)
  sock:close()
end)
ngx.thread.wait(r)
ngx.thread.wait(c)
out(table.concat(log, ", "))
