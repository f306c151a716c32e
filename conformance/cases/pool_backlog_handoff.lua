--! needs: setkeepalive
-- pool_size 1, backlog 1: a connect waits in the queue; the connection in
-- use is parked and its owner connects again at once, without yielding
-- (SPEC 8.6: a queued connect is resumed by the setkeepalive and takes the
-- parked connection)
local opts = { pool = "cf_pool_backlog_handoff", pool_size = 1, backlog = 1 }
local s1, s2 = ngx.socket.tcp(), ngx.socket.tcp()
s1:settimeout(2000)
s2:settimeout(2000)
out(s1:connect(fx.host, fx.echo, opts))
local t = ngx.thread.spawn(function()
  out("queued", s2:connect(fx.host, fx.echo, opts))
  out("queued reused", s2:getreusedtimes())
  out("queued", s2:close())
end)
out(s1:setkeepalive())
out("again", s1:connect(fx.host, fx.echo, opts))
out("again reused", s1:getreusedtimes())
out(ngx.thread.wait(t))
out(s1:close())
