--! needs: setkeepalive
-- 20 light threads x 10 cycles share { pool_size = 2, backlog = 100 }: every
-- reply is right, and the connections made are bounded (SPEC 8.6: a parked
-- connection goes to a queued connect).  fx.counted is a script fixture of
-- this side's own: its `a` answer counts connections.  How many nginx makes
-- varies from run to run (a thread that parks and connects again at once
-- takes its connection back; the woken queued connect then opens another:
-- see pool_backlog_handoff): only comparisons are printed.
-- Here each thread yields (sleep(0)) after parking: nginx too makes 2.
local opts = { pool = "cf_pool_threads_shared_yield", pool_size = 2, backlog = 100 }
local function accepted()
  local s = ngx.socket.tcp()
  s:settimeout(2000)
  assert(s:connect(fx.host, fx.counted))
  assert(s:send(script("a")))
  local n = assert(s:receive())
  s:close()
  return tonumber(n)
end
local before = accepted()
local fresh, good, bad = 0, 0, {}
local threads = {}
for i = 1, 20 do
  threads[i] = ngx.thread.spawn(function()
    local s = ngx.socket.tcp()
    s:settimeout(5000)
    for j = 1, 10 do
      local ok, err = s:connect(fx.host, fx.counted, opts)
      if not ok then bad[#bad + 1] = "connect " .. err; return end
      if s:getreusedtimes() == 0 then
        fresh = fresh + 1
        s:send(script("l"))
      end
      local msg = "t" .. i .. "c" .. j
      s:send(msg .. "\n")
      local line, rerr = s:receive()
      if line == msg then good = good + 1 else bad[#bad + 1] = tostring(rerr) end
      ok, err = s:setkeepalive()
      if not ok then bad[#bad + 1] = "setkeepalive " .. err; return end
      ngx.sleep(0)   -- the woken queued connect goes first
    end
  end)
end
for i = 1, 20 do ngx.thread.wait(threads[i]) end
out("good replies", good)
out("failures", #bad, bad[1])
local made = accepted() - before - 1
out("fresh connections are the accepted ones", fresh == made)
out("at least 2", made >= 2)
out("at most 20 (one per thread)", made <= 20)
out("at most 2 (the pool size)", made <= 2)
-- empty the pool
local s = ngx.socket.tcp()
s:settimeout(2000)
for _ = 1, 2 do
  out(s:connect(fx.host, fx.counted, opts))
  out(s:getreusedtimes() > 0)
  out(s:close())
end
