-- one reader thread and one writer thread on one socket (SPEC 9.1)
local sock = ngx.socket.tcp()
sock:settimeout(3000)
out(sock:connect(fx.host, fx.echo))
local reader = ngx.thread.spawn(function()
  local got = {}
  for i = 1, 5 do
    got[i] = sock:receive()
  end
  return table.concat(got, ",")
end)
local writer = ngx.thread.spawn(function()
  for i = 1, 5 do
    sock:send("line" .. i .. "\n")
    ngx.sleep(0.01)
  end
  return "sent"
end)
out(ngx.thread.wait(writer))
out(ngx.thread.wait(reader))
out(sock:close())
