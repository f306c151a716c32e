-- full duplex with more data than the socket buffers hold (SPEC 9.1)
local sock = ngx.socket.tcp()
sock:settimeout(5000)
out(sock:connect(fx.host, fx.echo))
local size = 2 * 1024 * 1024
local reader = ngx.thread.spawn(function()
  local data, err = sock:receive(size)
  return data and #data, err
end)
out(sock:send(string.rep("q", size)))
out(ngx.thread.wait(reader))
out(sock:close())
