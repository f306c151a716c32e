--! needs: setkeepalive
-- a full pool closes its least recently parked connection: with size 2,
-- parking a, b, c closes a; the next connects get c, b, then a new one
-- (SPEC 8.1).  Names as in pool_lifo: half a script program each.
local opts = { pool = "cf_pool_evict", pool_size = 2 }
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
local a, b, c = open("a"), open("b"), open("c")
out(a:setkeepalive())
out(b:setkeepalive())
out(c:setkeepalive())
local got = {}
for i = 1, 3 do
  got[i] = ngx.socket.tcp()
  got[i]:settimeout(2000)
  out(got[i]:connect(fx.host, fx.script, opts))
  out(who(got[i]), got[i]:getreusedtimes())
end
for i = 1, 3 do out(got[i]:close()) end
