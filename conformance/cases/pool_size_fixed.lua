--! needs: setkeepalive
-- the setkeepalive that creates a pool sizes it; a later size is ignored
-- (SPEC 8.1, 8.2 step 3).  Names as in pool_lifo.
local opts = { pool = "cf_pool_size_fixed" }
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
out(a:setkeepalive(0, 1))
out(b:setkeepalive(0, 5))
local x, y = ngx.socket.tcp(), ngx.socket.tcp()
out(x:connect(fx.host, fx.script, opts))
out(who(x), x:getreusedtimes())
out(y:connect(fx.host, fx.script, opts))
out(who(y), y:getreusedtimes())
out(x:close())
out(y:close())
