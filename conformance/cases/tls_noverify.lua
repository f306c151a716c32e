--! needs: sslhandshake
-- without ssl_verify nothing is checked: any certificate is accepted; the
-- result is a session object (a cdata in nginx, a userdata in cosocket:
-- only its truthiness is printed), or true when the first argument is false
-- (SPEC 3.1, 3.2)
for _, port in ipairs({ fx.tls.good, fx.tls.wronghost, fx.tls.expired, fx.tls.selfsigned }) do
  local sock = ngx.socket.tcp()
  sock:settimeout(2000)
  out(sock:connect(fx.host, port))
  local session, err = sock:sslhandshake()
  out(session ~= nil and session ~= false and session ~= true, err)
  out(sock:send("hello"))
  out(sock:receive(5))
  out(sock:close())
end
local sock = ngx.socket.tcp()
sock:settimeout(2000)
out(sock:connect(fx.host, fx.tls.selfsigned))
out(sock:sslhandshake(false, "localhost"))
out(sock:send("x"))
out(sock:receive(1))
out(sock:close())
