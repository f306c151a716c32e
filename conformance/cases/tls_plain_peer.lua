--! needs: sslhandshake
-- a handshake with a peer that does not speak TLS: "handshake failed" and
-- the connection is closed (SPEC 3.2)
local sock = ngx.socket.tcp()
sock:settimeout(2000)
out(sock:connect(fx.host, fx.echo))
out(sock:sslhandshake(false))
out(sock:send("x"))
-- a peer that closes at once
sock = scripted("c")
out(sock:sslhandshake(false))
out(sock:receive())
-- a peer that answers with text
sock = scripted({ "w", "HTTP/1.1 400 Bad Request\r\n\r\n" }, "c")
out(sock:sslhandshake(false))
out(sock:close())
