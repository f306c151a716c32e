-- a DNS server answering FORMERR (SPEC 2.4 lists code 1, "Format error")
local sock = ngx.socket.tcp()
sock:settimeout(3000)
out(sock:connect("formerr.test", 80))
