--! needs: setkeepalive
-- killing a thread whose connect waits in the queue frees its place
-- (SPEC 8.6, 10.4)
local opts = { pool = "cf_pool_backlog_kill_queued", pool_size = 1, backlog = 1 }
local s1, s2, s3 = ngx.socket.tcp(), ngx.socket.tcp(), ngx.socket.tcp()
for _, s in ipairs({ s1, s2, s3 }) do s:settimeout(2000) end
out(s1:connect(fx.host, fx.echo, opts))
local t2 = ngx.thread.spawn(function()
  out("never", s2:connect(fx.host, fx.echo, opts))
end)
out(ngx.thread.kill(t2))
out(s2:getreusedtimes())
local t3 = ngx.thread.spawn(function()
  out("third", s3:connect(fx.host, fx.echo, opts))
  out("third reused", s3:getreusedtimes())
end)
out(s1:setkeepalive())
out(ngx.thread.wait(t3))
out(s3:send("k"))
out(s3:receive(1))
out(s3:close())
-- the killed thread's socket connects again
out(s2:connect(fx.host, fx.echo, opts))
out(s2:getreusedtimes())
out(s2:close())
