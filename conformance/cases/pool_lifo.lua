--! needs: setkeepalive
-- the most recently parked connection is taken first (SPEC 8.1).  Each
-- connection can tell who it is, once: it has sent the script fixture half a
-- program, "w:<hex of its name>"; the rest ("0a\n") makes it write its name.
local opts = { pool = "cf_pool_lifo" }
local function open(name)
  local s = ngx.socket.tcp()
  s:settimeout(2000)
  assert(s:connect(fx.host, fx.script, opts))
  assert(s:send(string.format("w:%02x", name:byte())))
  return s
end
local function who(s)
  if s:getreusedtimes() == 0 then return "new" end
  s:send("0a\n")
  return s:receive()
end
local a, b = open("a"), open("b")
out(a:setkeepalive())
out(b:setkeepalive())
local x, y, z = ngx.socket.tcp(), ngx.socket.tcp(), ngx.socket.tcp()
for _, s in ipairs({ x, y, z }) do s:settimeout(2000) end
out(x:connect(fx.host, fx.script, opts))
out(who(x), x:getreusedtimes())
-- parked again, it is the most recent: taken once more (its second reuse)
out(x:setkeepalive())
out(y:connect(fx.host, fx.script, opts))
out(y:getreusedtimes())
out(z:connect(fx.host, fx.script, opts))
out(who(z), z:getreusedtimes())
out(x:connect(fx.host, fx.script, opts))
out(who(x), x:getreusedtimes())
out(x:close())
out(y:close())
out(z:close())
