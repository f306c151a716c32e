--! needs: sslhandshake
-- sslhandshake while another light thread reads or connects: busy (SPEC 9.1)
-- first an asynchronous handshake failure: it resets the reference's
-- module-level verify code (see tls_stale_verify_code)
do
  local r = ngx.socket.tcp()
  r:settimeout(2000)
  r:connect(fx.host, fx.echo)
  r:sslhandshake(false)
end
local sock = scripted({ "p", 200 }, { "w", "x\n" })
local t = ngx.thread.spawn(function()
  out("reader", sock:receive())
end)
out(sock:sslhandshake(false))
out(ngx.thread.wait(t))
out(sock:close())
local c = ngx.socket.tcp()
c:settimeout(200)
local t2 = ngx.thread.spawn(function()
  out("connector", c:connect(fx.host, fx.full))
end)
out(c:sslhandshake(false))
out(ngx.thread.wait(t2))
