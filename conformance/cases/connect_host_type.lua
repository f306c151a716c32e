-- the host must be a string or a number (SPEC 2.1 step 3)
local sock = ngx.socket.tcp()
out(pcall(function() return (sock:connect(nil, 80)) end))
out(pcall(function() return (sock:connect({}, 80)) end))
out(pcall(function() return (sock:connect(true)) end))
out(pcall(function() return (sock.connect("x", "127.0.0.1", 80)) end))
-- called by pcall the function has no name and self counts
out(pcall(sock.connect, sock, nil, 80))
-- a number is a host name to parse
out(pcall(function() return sock:connect(127, fx.refused) end))
