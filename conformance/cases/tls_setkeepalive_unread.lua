--! needs: sslhandshake setkeepalive
-- decrypted bytes left in the buffer of a TLS connection: "unread data in
-- buffer" (SPEC 8.2 step 8); read, then it parks
local opts = { pool = "cf_tls_setkeepalive_unread" }
local sock = ngx.socket.tcp()
sock:settimeout(2000)
out(sock:connect(fx.host, fx.tls.good, opts))
out(sock:sslhandshake(false, "localhost", true))
out(sock:send("abcdef"))
out(sock:receive(2))
out(sock:setkeepalive())
out(sock:receive(4))
ngx.sleep(0.05)
out(sock:setkeepalive())
out(sock:connect(fx.host, fx.tls.good, opts))
out(sock:getreusedtimes())
out(sock:send("ok"))
out(sock:receive(2))
out(sock:close())
