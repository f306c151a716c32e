-- ngx.socket.tcp takes no arguments; the object is a plain table (SPEC 1.1, 0.5)
out(pcall(ngx.socket.tcp, 1))
out(pcall(ngx.socket.tcp, nil, nil))
local sock = ngx.socket.tcp()
out(type(sock))
sock.user_field = "kept"
out(sock.user_field)
out(ngx.socket.stream == ngx.socket.tcp)
for _, m in ipairs({ "bind", "connect", "receive", "receiveany", "receiveuntil", "send",
                     "close", "settimeout", "settimeouts", "getreusedtimes",
                     "setoption", "getoption" }) do
  out(m, type(sock[m]))
end
