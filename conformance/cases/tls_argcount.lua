--! needs: sslhandshake
-- sslhandshake takes at most 4 arguments after the object (SPEC 3.1)
local sock = ngx.socket.tcp()
out(pcall(function() return (sock:sslhandshake(nil, "localhost", false, false, 5)) end))
sock:settimeout(2000)
out(sock:connect(fx.host, fx.tls.good))
out(pcall(function() return (sock:sslhandshake(nil, "localhost", false, false, 5)) end))
out(pcall(function() return (sock:sslhandshake(nil, nil, nil, nil, nil, nil)) end))
-- the connection is untouched: a handshake still works
local session, err = sock:sslhandshake(nil, "localhost", true)
out(session ~= nil, err)
out(sock:close())
