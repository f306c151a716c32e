--! needs: setkeepalive
-- an idle pooled connection the peer closes, resets or writes to is dropped:
-- the next connect is fresh and works (SPEC 8.1)
local opts = { pool = "cf_pool_peer_close_idle" }
local sock = ngx.socket.tcp()
sock:settimeout(2000)
for _, last in ipairs({ "c", "r", { "w", "x" } }) do
  out(sock:connect(fx.host, fx.script, opts))
  out(sock:send(script({ "p", 100 }, last)))
  out(sock:setkeepalive())
  ngx.sleep(0.3)
  out(sock:connect(fx.host, fx.echo, opts))
  out(sock:getreusedtimes())
  out(sock:send("ok"))
  out(sock:receive(2))
  out(sock:close())
end
