-- a DNS server that never answers: resolver_timeout is 2 s on both sides (SPEC 2.4)
local sock = ngx.socket.tcp()
sock:settimeout(100)   -- the connect timeout does not bound the resolution
out(sock:connect("silent.test", 80))
out(sock:send("x"))
