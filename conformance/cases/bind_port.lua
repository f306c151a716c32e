-- bind's port argument is HEAD's (SPEC 7.6); 0.10.23 takes the address only
local sock = ngx.socket.tcp()
out(pcall(function() local ok, err = sock:bind("127.0.0.1", 0) return ok, err end))
out(pcall(function() local ok, err = sock:bind("127.0.0.1", "x") return ok, err end))
