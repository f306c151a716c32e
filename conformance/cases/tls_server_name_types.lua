--! needs: sslhandshake
-- false and nil server names send none; a number is not a string
-- (SPEC 3.1: "#server_name is taken")
local sock = ngx.socket.tcp()
sock:settimeout(2000)
out(sock:connect(fx.host, fx.tls.good))
out(sock:sslhandshake(false, false))
out(sock:close())
out(sock:connect(fx.host, fx.tls.good))
out(pcall(function() return (sock:sslhandshake(false, {})) end))
out(pcall(function() return (sock:sslhandshake(false, 127)) end))
out(sock:sslhandshake(false, "localhost"))
out(sock:close())
