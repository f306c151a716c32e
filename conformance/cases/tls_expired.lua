--! needs: sslhandshake
-- an expired certificate: "10: certificate has expired", and the connection
-- is closed (SPEC 3.2).  One failing verification per case: 0.10.23 sometimes
-- raises on one (DIFFERENCES: lua-nginx-module#2506)
local sock = ngx.socket.tcp()
sock:settimeout(2000)
out(sock:connect(fx.host, fx.tls.expired))
out(sock:sslhandshake(nil, "localhost", true))
out(sock:send("x"))
