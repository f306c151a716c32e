--! needs: setkeepalive
-- pool_size 1, backlog 1: the second connect waits, the third is refused;
-- a parked connection goes to the waiting connect (SPEC 8.6)
local opts = { pool = "cf_pool_backlog_too_many", pool_size = 1, backlog = 1 }
local s1, s2, s3 = ngx.socket.tcp(), ngx.socket.tcp(), ngx.socket.tcp()
for _, s in ipairs({ s1, s2, s3 }) do s:settimeout(2000) end
out(s1:connect(fx.host, fx.echo, opts))
local t = ngx.thread.spawn(function()
  out("queued", s2:connect(fx.host, fx.echo, opts))
  out("queued reused", s2:getreusedtimes())
end)
out(s3:connect(fx.host, fx.echo, opts))
out(s3:send("x"))
out(s1:send("one"))
out(s1:receive(3))
out(s1:setkeepalive())
out(ngx.thread.wait(t))
out(s2:send("two"))
out(s2:receive(3))
out(s2:close())
-- nothing counted now: a fresh connect
out(s3:connect(fx.host, fx.echo, opts))
out(s3:getreusedtimes())
out(s3:close())
