-- Connection pools (SPEC.md 2.1 options, 2.3, 7.4, 8, 9, 10.4; DECISIONS.md 2
-- and 5): setkeepalive and its errors in 0.10.23's order, getreusedtimes,
-- pool keys and custom pool names, LIFO reuse and eviction, idle watchers and
-- the keepalive timeout, backlog queueing, pool_stats(), the configured
-- defaults, watchers that never keep the loop alive, shutdown, and pools that
-- die with their Lua state.
--
-- Reuse is proven on the server side: a `script` fixture's `a` token answers
-- how many connections the fixture has accepted (asked over a LuaSocket
-- connection, which never touches cosocket's pools).  What the peer of a
-- pooled connection sees (EOF on eviction or timeout) is read on the
-- connections of a LuaSocket listener.
local cs = require "cosocket"
local helpers = require "helpers"
local socket = require "socket"

local pack = helpers.pack
local unpack = helpers.unpack

local fd_count = helpers.fd_count

local clock = helpers.clock

-- Cleanups of the current test, run by after_each even when the test fails
-- (this busted keeps only the last function given to finally()).
local defer, run_cleanups = helpers.cleanups()

-- Pool keys this file creates: after each test they must go (their peers are
-- gone), so that no later test meets a stale pool, and the last test checks
-- that none is left.
local keys = {}
local function track(key)
  keys[key] = true
  return key
end

local function leftover_keys()
  local left, stats = {}, cs.pool_stats()
  for key in pairs(keys) do
    if stats[key] ~= nil then left[#left + 1] = key end
  end
  table.sort(left)
  return left
end

-- drives the loop (cs.sleep in the test body) until pred() is true, at most
-- `limit` seconds; returns pred()'s last value
local function wait_for(pred, limit) return helpers.wait_for(pred, limit, 0.002) end

-- the three counters DECISIONS.md names for a key, or nil: no pool
local function stats(key)
  local s = cs.pool_stats()[key]
  return s and { idle = s.idle, in_use = s.in_use, queued = s.queued }
end

local function fixture(mode, opts)
  local srv = helpers.fixture(defer, mode, opts)
  srv.key = srv.host and track(srv.host .. ":" .. srv.port)
  return srv
end

-- Connections the `script` fixture srv accepted so far, not counting the ones
-- this function made to ask (the `a` token counts the asking connection too).
local accepted = helpers.accepted

-- a LuaSocket listener: its accepted connections show what the peer sees
local function listener()
  local l, port = helpers.listener(defer)
  return l, port, track("127.0.0.1:" .. port)
end

local function accept(l) return helpers.accept(defer, l) end

-- a new socket connected to the listener l (on port), and the listener's
-- side of that connection
local function connected(l, port)
  local sock = cs.tcp()
  assert.equal(1, sock:connect("127.0.0.1", port))
  return sock, accept(l)
end

-- "eof" when the peer's side has ended (clean close, or a reset: a connection
-- closed with unread input resets), "open" when it is still open and silent,
-- else the data it got.  Waits at most `limit` s (default 1) for the end.
local peer_state = helpers.peer_state

-- one round trip on a connection that echoes lines
local roundtrip = helpers.roundtrip

-- a socket connected to srv (opts: connect's options), whose connection
-- echoes lines: a new connection gets the script line first
local function line_echo(srv, opts)
  local sock = cs.tcp()
  sock:settimeout(2000)
  local ok, err
  if opts then ok, err = sock:connect(srv.host, srv.port, opts)
  else ok, err = sock:connect(srv.host, srv.port) end
  assert.same({ 1 }, { ok, err })
  if sock:getreusedtimes() == 0 then assert(sock:send(helpers.script("l"))) end
  return sock
end

local fds_at_start

describe("connection pools", function()
  setup(function()
    collectgarbage()
    collectgarbage()
    fds_at_start = fd_count()
  end)

  after_each(function()
    run_cleanups()
    -- the peers are gone: the idle watchers close what the pools kept
    collectgarbage()
    wait_for(function() return #leftover_keys() == 0 end, 2)
  end)

  describe("setkeepalive", function()
    it("returns 1, and the object behaves as closed afterwards", function()
      local srv = fixture("script")
      local sock = line_echo(srv)
      roundtrip(sock)
      assert.same({ n = 1, 1 }, pack(sock:setkeepalive()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
      assert.same({ n = 2, nil, "closed" }, pack(sock:receive()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:receiveany(1)))
      assert.same({ n = 2, nil, "closed" }, pack(sock:close()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:getreusedtimes()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:setkeepalive()))
      -- its state went with the connection: still "closed", not "never
      -- created"
      assert.same({ n = 2, nil, "closed" }, pack(sock:getoption("keepalive")))
      assert.same({ n = 2, nil, "closed" }, pack(sock:setoption("keepalive", true)))
      assert.same({ n = 2, nil, "closed" }, pack(sock:sslhandshake()))
      assert.same({ idle = 1, in_use = 0, queued = 0 }, stats(srv.key))
    end)

    it("raises for a wrong number of arguments", function()
      local sock = cs.tcp()
      assert.has_error(function() sock:setkeepalive(1, 2, 3) end,
        "expecting 1 to 3 arguments (including the object), but got 4")
      assert.has_error(function() sock.setkeepalive() end,
        "expecting 1 to 3 arguments (including the object), but got 0")
      assert.has_error(function() sock:getreusedtimes(1) end,
        "expecting 1 argument (including the object), but got 2")
    end)

    it("returns nil, 'closed' for a socket never connected", function()
      local sock = cs.tcp()
      assert.same({ n = 2, nil, "closed" }, pack(sock:setkeepalive()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:setkeepalive(0, 10)))
      assert.same({ n = 2, nil, "closed" }, pack(sock:getreusedtimes()))
    end)

    it("returns nil, 'closed' after *a hit EOF", function()
      local srv = fixture("script")
      local sock = cs.tcp()
      sock:settimeout(2000)
      assert.equal(1, sock:connect(srv.host, srv.port))
      assert(sock:send(helpers.script({ "w", "abc" }, "c")))
      assert.equal("abc", sock:receive("*a"))
      assert.same({ n = 2, nil, "closed" }, pack(sock:setkeepalive()))
      assert.is_nil(stats(srv.key))
      assert.equal(1, sock:close())
    end)

    it("returns nil, 'closed' when the peer closed without us reading", function()
      local l, port, key = listener()
      local sock = cs.tcp()
      assert.equal(1, sock:connect("127.0.0.1", port))
      local c = accept(l)
      c:close()
      assert.same({ n = 2, nil, "closed" }, pack(sock:setkeepalive()))
      assert.is_nil(stats(key))
      assert.equal(1, sock:close())     -- nothing changed: still ours to close
    end)

    it("returns nil, 'unread data in buffer' and the connection stays usable", function()
      local srv = fixture("script")
      local sock = cs.tcp()
      sock:settimeout(2000)
      assert.equal(1, sock:connect(srv.host, srv.port))
      assert(sock:send(helpers.script({ "w", "hello world\n" }, "l")))
      assert.equal("he", sock:receive(2))
      assert.same({ n = 2, nil, "unread data in buffer" }, pack(sock:setkeepalive()))
      assert.same({ n = 2, nil, "unread data in buffer" }, pack(sock:setkeepalive(0, 5)))
      assert.is_nil(stats(srv.key))
      assert.equal("llo world", sock:receive())
      roundtrip(sock)
      assert.equal(1, sock:setkeepalive())
      assert.same({ idle = 1, in_use = 0, queued = 0 }, stats(srv.key))
    end)

    it("returns nil, 'socket busy reading' while another thread reads", function()
      local l, port, key = listener()
      local sock = cs.tcp()
      assert.equal(1, sock:connect("127.0.0.1", port))
      local c = accept(l)
      sock:settimeout(100)
      local reader = cs.spawn(function() return sock:receive() end)
      assert.same({ n = 2, nil, "socket busy reading" }, pack(sock:setkeepalive()))
      assert.is_nil(stats(key))
      -- a read timeout is not fatal: the connection can be pooled after it
      assert.same({ true, nil, "timeout", "" }, { cs.wait(reader) })
      assert.equal(1, sock:setkeepalive())
      assert.same({ idle = 1, in_use = 0, queued = 0 }, stats(key))
      assert.equal("open", peer_state(c, 0.02))
    end)

    it("returns nil, 'socket busy connecting' / 'writing' while a thread does so", function()
      local full = fixture("full")
      local sock = cs.tcp()
      sock:settimeout(2000)
      local connector = cs.spawn(function() return sock:connect(full.host, full.port) end)
      assert.same({ n = 2, nil, "socket busy connecting" }, pack(sock:setkeepalive()))
      assert.equal(1, cs.kill(connector))
      local srv = fixture("script")
      assert.equal(1, sock:connect(srv.host, srv.port))
      assert(sock:send(helpers.script("n")))
      local writer = cs.spawn(function() return sock:send(("x"):rep(8 * 1024 * 1024)) end)
      assert.same({ n = 2, nil, "socket busy writing" }, pack(sock:setkeepalive()))
      assert.equal(1, cs.kill(writer))
      assert.is_nil(stats(srv.key))
    end)

    it("returns nil, 'connection in dubious state' for bytes left in the kernel, and closes",
      function()
      local l, port, key = listener()
      local sock = cs.tcp()
      assert.equal(1, sock:connect("127.0.0.1", port))
      local c = accept(l)
      assert(c:send("unexpected\n"))      -- on loopback: in our kernel buffer at once
      assert.same({ n = 2, nil, "connection in dubious state" }, pack(sock:setkeepalive()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
      assert.same({ n = 2, nil, "closed" }, pack(sock:receive()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:close()))
      assert.is_nil(stats(key))
      assert.equal("eof", peer_state(c))
    end)

    it("raises bad \"pool_size\" option value for setkeepalive(0, 0) on a new pool key",
      function()
      local srv = fixture("script")
      local sock = line_echo(srv)
      assert.has_error(function() sock:setkeepalive(0, 0) end,
        'bad argument #2 to \'setkeepalive\' (bad "pool_size" option value: 0)')
      assert.has_error(function() sock:setkeepalive(nil, -1) end,
        'bad argument #2 to \'setkeepalive\' (bad "pool_size" option value: -1)')
      assert.is_nil(stats(srv.key))      -- no pool was made
      -- the size is only for a new pool: with one there, 0 is not looked at
      local other = line_echo(srv)
      assert.equal(1, other:setkeepalive(0, 3))
      roundtrip(sock)
      assert.equal(1, sock:setkeepalive(0, 0))
      assert.same({ idle = 2, in_use = 0, queued = 0 }, stats(srv.key))
    end)

    it("raises number expected for a bad timeout only after parking (0.10.23)", function()
      local srv = fixture("script")
      local sock = line_echo(srv)
      roundtrip(sock)
      assert.has_error(function() sock:setkeepalive("x") end,
        "bad argument #1 to 'setkeepalive' (number expected, got string)")
      assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
      assert.same({ n = 2, nil, "closed" }, pack(sock:close()))
      assert.same({ idle = 1, in_use = 0, queued = 0 }, stats(srv.key))
      local again = line_echo(srv)
      assert.equal(1, again:getreusedtimes())
      roundtrip(again)
      assert.equal(1, accepted(srv))
      again:close()
    end)
  end)

  describe("reuse", function()
    it("counts 0, 1, 2 over three cycles on ONE server connection", function()
      local srv = fixture("script")
      for i = 0, 2 do
        local sock = line_echo(srv)
        assert.same({ n = 1, i }, pack(sock:getreusedtimes()))
        roundtrip(sock, "round " .. i)
        assert.equal(1, sock:setkeepalive())
      end
      assert.equal(1, accepted(srv))
      assert.same({ idle = 1, in_use = 0, queued = 0 }, stats(srv.key))
    end)

    it("gives a reconnected object its own connection back", function()
      local srv = fixture("script")
      local sock = line_echo(srv)
      roundtrip(sock)
      assert.equal(1, sock:setkeepalive())
      assert.equal(1, sock:connect(srv.host, srv.port))
      assert.equal(1, sock:getreusedtimes())
      roundtrip(sock, "again")
      assert.equal(1, accepted(srv))
      sock:close()
      assert.is_nil(stats(srv.key))
    end)

    -- a pooled connection comes with the state that parked it (no state
    -- is made for it): what an object sets is its own all the same
    it("gives a taken connection the taking object's timeouts, not the parking one's",
      function()
        helpers.configure(defer, { read_timeout = 300 })
        local l, port = listener()
        local function timed_receive(sock)
          local t0 = clock()
          assert.same({ n = 3, nil, "timeout", "" }, pack(sock:receive()))
          return clock() - t0
        end
        local a = cs.tcp()
        a:settimeouts(1000, 1000, 20)
        assert.equal(1, a:connect("127.0.0.1", port))
        accept(l)
        assert.equal(1, a:setkeepalive())
        local b = cs.tcp() -- none of its own: the configured 300 ms
        assert.equal(1, b:connect("127.0.0.1", port))
        assert.equal(1, b:getreusedtimes())
        local took = timed_receive(b)
        assert.is_true(took > 0.25, "took " .. took)
        assert.equal(1, b:setkeepalive())
        local c = cs.tcp() -- set before it had a state
        c:settimeouts(1000, 1000, 20)
        assert.equal(1, c:connect("127.0.0.1", port))
        assert.equal(2, c:getreusedtimes())
        took = timed_receive(c)
        assert.is_true(took < 0.2, "took " .. took)
        assert.equal(1, c:setkeepalive())
        -- the parking object keeps its own for its next connect
        a:settimeout(20)
        assert.equal(1, a:connect("127.0.0.1", port))
        assert.equal(3, a:getreusedtimes())
        took = timed_receive(a)
        assert.is_true(took < 0.2, "took " .. took)
        a:close()
      end)

    -- 467b3ca made a 576-byte state per cs.tcp(): some 700 bytes a request
    -- (GC stopped; LuaJIT and Lua 5.1); the table alone is some 110 to 130
    it("takes a parked connection with its state: a pooled request makes no new one",
      function()
        local srv = fixture("script")
        local tcp, host, port = cs.tcp, srv.host, srv.port
        local function check(v, err) -- no luassert: its calls allocate
          if not v then error(tostring(err), 2) end
        end
        local function request()
          local sock = tcp()
          check(sock:connect(host, port))
          check(sock:send("ping\n"))
          check(sock:receive() == "ping", "not echoed")
          check(sock:setkeepalive())
        end
        line_echo(srv):setkeepalive() -- the one connection, echoing lines
        for _ = 1, 50 do request() end -- the pool's records, the traces
        collectgarbage()
        collectgarbage()
        local before = collectgarbage("count")
        collectgarbage("stop")
        for _ = 1, 100 do request() end
        local per = (collectgarbage("count") - before) * 1024 / 100
        collectgarbage("restart")
        assert.is_true(per < 400, string.format("%.0f bytes a request", per))
        assert.equal(1, accepted(srv))
      end)

    -- LuaJIT takes a pooled connection on a fast path that must count the
    -- arguments as the C method does
    it("counts connect's arguments as ever when a parked connection waits", function()
      local srv = fixture("script")
      line_echo(srv):setkeepalive()
      local sock = cs.tcp()
      assert.has_error(function() sock:connect(srv.host, srv.port, nil, nil) end,
        "ngx.socket connect: expecting 2, 3, or 4 arguments (including the object), but seen 5")
      assert.has_error(function() sock.connect() end,
        "ngx.socket connect: expecting 2, 3, or 4 arguments (including the object), but seen 0")
      assert.same({ idle = 1, in_use = 0, queued = 0 }, stats(srv.key))
      assert.equal(1, sock:connect(srv.host, srv.port, nil)) -- a nil 4th: 3
      assert.equal(1, sock:getreusedtimes())
      roundtrip(sock)
      sock:close()
    end)

    it("leaves bind()'s address with the object whose connection it parked", function()
      local l1, port1 = listener()
      local l2, port2 = listener()
      local sock = cs.tcp()
      assert.is_true(sock:bind("127.0.0.2"))
      assert.equal(1, sock:connect("127.0.0.1", port1))
      assert.equal("127.0.0.2", (accept(l1):getpeername()))
      assert.equal(1, sock:setkeepalive())
      assert.equal(1, sock:connect("127.0.0.1", port2)) -- another pool
      assert.equal(0, sock:getreusedtimes())
      assert.equal("127.0.0.2", (accept(l2):getpeername()))
      sock:close()
    end)

    it("keeps one pool per host:port string", function()
      local srv = fixture("script")
      local a = line_echo(srv)
      roundtrip(a)
      assert.equal(1, a:setkeepalive())
      local lkey = track("localhost:" .. srv.port)
      local b = cs.tcp()
      b:settimeout(2000)
      assert.equal(1, b:connect("localhost", srv.port))
      assert.equal(0, b:getreusedtimes())            -- another pool
      assert(b:send(helpers.script("l")))
      roundtrip(b)
      assert.equal(1, b:setkeepalive())
      assert.same({ idle = 1, in_use = 0, queued = 0 }, stats(srv.key))
      assert.same({ idle = 1, in_use = 0, queued = 0 }, stats(lkey))
      -- a numeric string port gives the same key as the number
      local c = cs.tcp()
      assert.equal(1, c:connect("127.0.0.1", tostring(srv.port)))
      assert.equal(1, c:getreusedtimes())
      c:settimeout(2000)
      roundtrip(c)
      assert.equal(1, c:setkeepalive())
      assert.equal(2, accepted(srv))
    end)

    it("uses a custom pool name verbatim, and a number's string form", function()
      local srv = fixture("script")
      local name = track("custom-" .. srv.port)
      local a = line_echo(srv, { pool = name })
      roundtrip(a)
      assert.equal(1, a:setkeepalive())
      assert.same({ idle = 1, in_use = 0, queued = 0 }, stats(name))
      assert.is_nil(stats(srv.key))
      -- host:port is another pool
      local b = line_echo(srv)
      assert.equal(0, b:getreusedtimes())
      roundtrip(b)
      b:close()
      local c = line_echo(srv, { pool = name })
      assert.equal(1, c:getreusedtimes())
      roundtrip(c)
      c:close()
      -- a number: its string form is the key
      local num = srv.port * 10 + 7
      local nkey = track(tostring(num))
      local d = line_echo(srv, { pool = num })
      roundtrip(d)
      assert.equal(1, d:setkeepalive())
      assert.same({ idle = 1, in_use = 0, queued = 0 }, stats(nkey))
      local e = line_echo(srv, { pool = nkey })
      assert.equal(1, e:getreusedtimes())
      roundtrip(e)
      e:close()
      assert.equal(3, accepted(srv))
    end)

    it("hands a unix connection parked under a name to a TCP connect with that name",
      function()
      local usrv = fixture("echo", { unix = true })
      local ukey = track("unix:" .. usrv.path)
      local name = track("mixed-" .. usrv.path)
      local sock = cs.tcp()
      sock:settimeout(2000)
      assert.equal(1, sock:connect("unix:" .. usrv.path))
      roundtrip(sock)
      assert.equal(1, sock:setkeepalive())
      assert.same({ idle = 1, in_use = 0, queued = 0 }, stats(ukey))
      assert.equal(1, sock:connect("unix:" .. usrv.path, { pool = name }))
      assert.equal(0, sock:getreusedtimes())
      roundtrip(sock)
      assert.equal(1, sock:setkeepalive())
      -- nothing listens on port 1: the pool is looked up before any connect
      local tcp = cs.tcp()
      tcp:settimeout(2000)
      assert.same({ n = 1, 1 }, pack(tcp:connect("127.0.0.1", 1, { pool = name })))
      assert.equal(1, tcp:getreusedtimes())
      roundtrip(tcp, "through the unix socket")
      tcp:close()
      assert.is_nil(stats(name))
      assert.same({ idle = 1, in_use = 0, queued = 0 }, stats(ukey))
    end)

    it("reuses LIFO and evicts the least recently parked connection", function()
      local l, port, key = listener()
      local socks, peers = {}, {}
      for i = 1, 3 do
        socks[i] = cs.tcp()
        assert.equal(1, socks[i]:connect("127.0.0.1", port, { pool_size = 2 }))
        peers[i] = accept(l)
      end
      assert.same({ idle = 0, in_use = 3, queued = 0 }, stats(key))
      for i = 1, 3 do assert.equal(1, socks[i]:setkeepalive(0)) end
      assert.same({ idle = 2, in_use = 0, queued = 0 }, stats(key))
      assert.equal("eof", peer_state(peers[1]))        -- a was evicted
      assert.equal("open", peer_state(peers[2], 0.01))
      assert.equal("open", peer_state(peers[3], 0.01))
      local x, y, z = cs.tcp(), cs.tcp(), cs.tcp()
      assert.equal(1, x:connect("127.0.0.1", port))
      assert.equal(1, x:getreusedtimes())
      assert.equal(2, x:send("x\n"))
      peers[3]:settimeout(1)
      assert.equal("x", peers[3]:receive())            -- x got c
      assert.equal(1, y:connect("127.0.0.1", port))
      assert.equal(1, y:getreusedtimes())
      assert.equal(2, y:send("y\n"))
      peers[2]:settimeout(1)
      assert.equal("y", peers[2]:receive())            -- y got b
      assert.equal(1, z:connect("127.0.0.1", port))
      assert.equal(0, z:getreusedtimes())              -- then a new one
      local pz = accept(l)
      assert.equal(2, z:send("z\n"))
      pz:settimeout(1)
      assert.equal("z", pz:receive())
      assert.same({ idle = 0, in_use = 3, queued = 0 }, stats(key))
      x:close(); y:close(); z:close()
      assert.is_nil(stats(key))
    end)
  end)

  describe("idle connections", function()
    -- one keepalive timer per pool, set for the earliest due time: each
    -- connection still ends after its own timeout, whatever the order
    for _, order in ipairs { { 400, 60 }, { 60, 400 } } do
      it(string.format("are closed each after its own timeout (%d ms parked first, then %d ms)",
        order[1], order[2]), function()
        local l, port, key = listener()
        local a, ca = connected(l, port)
        local b, cb = connected(l, port)
        local t0 = clock()
        assert.equal(1, a:setkeepalive(order[1]))
        assert.equal(1, b:setkeepalive(order[2]))
        assert.same({ idle = 2, in_use = 0, queued = 0 }, stats(key))
        local short = order[1] < order[2] and ca or cb
        local long = short == ca and cb or ca
        assert.is_true(wait_for(function() return stats(key).idle == 1 end, 1))
        local first = clock() - t0
        assert.is_true(first >= 0.05 and first < 0.35, "first after " .. first)
        assert.equal("eof", peer_state(short))
        assert.equal("open", peer_state(long, 0.05))
        assert.is_true(wait_for(function() return stats(key) == nil end, 1))
        local second = clock() - t0
        assert.is_true(second >= 0.39, "second after " .. second)
        assert.equal("eof", peer_state(long))
      end)
    end

    -- LuaJIT parks a connection taken from a pool without the C method
    -- when the timeout is a whole number of milliseconds, or none
    for _, timeout in ipairs { 60, 60.5 } do
      it("are closed after setkeepalive(" .. timeout .. ", size) of a reused connection",
        function()
          local l, port, key = listener()
          local sock, c = connected(l, port)
          assert.equal(1, sock:setkeepalive(5000))
          sock = cs.tcp()
          assert.equal(1, sock:connect("127.0.0.1", port))
          assert.equal(1, sock:getreusedtimes())
          local t0 = clock()
          local r = pack(pcall(sock.setkeepalive, sock, timeout, 3))
          local lax = not (timeout % 1 ~= 0 and rawget(math, "type"))
          if lax then
            assert.same({ n = 2, true, 1 }, r)
          else -- Lua 5.3+: 60.5 has no integer, checked after parking (0.10.23)
            assert.is_false(r[1])
            assert.matches("number has no integer representation", r[2], 1, true)
          end
          assert.same({ idle = 1, in_use = 0, queued = 0 }, stats(key))
          if not lax then return end -- parked without a timeout (lua_tointeger: 0)
          assert.is_true(wait_for(function() return stats(key) == nil end, 1))
          local took = clock() - t0
          assert.is_true(took >= 0.05 and took < 1, "closed after " .. took)
          assert.equal("eof", peer_state(c))
        end)
    end

    it("are closed when the keepalive timeout expires", function()
      local l, port, key = listener()
      local sock = cs.tcp()
      assert.equal(1, sock:connect("127.0.0.1", port))
      local c = accept(l)
      local t0 = clock()
      assert.equal(1, sock:setkeepalive(50))
      assert.same({ idle = 1, in_use = 0, queued = 0 }, stats(key))
      assert.is_true(wait_for(function() return stats(key) == nil end, 1))
      assert.is_true(clock() - t0 >= 0.04)
      assert.equal("eof", peer_state(c))
      -- a later connect makes a new connection
      assert.equal(1, sock:connect("127.0.0.1", port))
      assert.equal(0, sock:getreusedtimes())
      local c2 = accept(l)
      assert.equal(3, sock:send("new"))
      c2:settimeout(1)
      assert.equal("new", c2:receive(3))
      sock:close()
    end)

    it("are removed at once when the peer closes; the next connect gets a fresh one",
      function()
      local l, port, key = listener()
      local sock = cs.tcp()
      sock:settimeout(1000)
      assert.equal(1, sock:connect("127.0.0.1", port))
      local c = accept(l)
      assert.equal(1, sock:setkeepalive(0))
      c:close()
      cs.sleep(0)                                       -- one poll of the loop
      assert.is_nil(stats(key))
      assert.equal(1, sock:connect("127.0.0.1", port))
      assert.equal(0, sock:getreusedtimes())
      local c2 = accept(l)
      assert.equal(5, sock:send("ping\n"))
      c2:settimeout(1)
      assert.equal("ping", c2:receive())
      assert(c2:send("pong\n"))
      assert.equal("pong", sock:receive())
      sock:close()
    end)

    it("are closed when the peer sends anything", function()
      local l, port, key = listener()
      local sock = cs.tcp()
      assert.equal(1, sock:connect("127.0.0.1", port))
      local c = accept(l)
      assert.equal(1, sock:setkeepalive(0))
      assert(c:send("unexpected"))
      cs.sleep(0)                                       -- one poll of the loop
      assert.is_nil(stats(key))
      assert.equal("eof", peer_state(c))
      assert.equal(1, sock:connect("127.0.0.1", port))
      assert.equal(0, sock:getreusedtimes())
      accept(l)
      sock:close()
    end)

    it("are kept with timeout 0, whatever the configured keepalive_timeout", function()
      local saved = cs.configure().keepalive_timeout
      defer(function() cs.configure { keepalive_timeout = saved } end)
      cs.configure { keepalive_timeout = 20 }
      local l, port, key = listener()
      local sock = cs.tcp()
      assert.equal(1, sock:connect("127.0.0.1", port))
      local c = accept(l)
      assert.equal(1, sock:setkeepalive(0))
      cs.sleep(0.1)
      assert.same({ idle = 1, in_use = 0, queued = 0 }, stats(key))
      assert.equal("open", peer_state(c, 0.01))
      assert.equal(1, sock:connect("127.0.0.1", port))
      assert.equal(1, sock:getreusedtimes())
      sock:close()
      assert.equal("eof", peer_state(c))
    end)
  end)

  describe("backlog", function()
    it("refuses the third concurrent connect with pool_size 1, backlog 1", function()
      local srv = fixture("script")
      local opts = { pool_size = 1, backlog = 1 }
      local a = line_echo(srv, opts)
      local b = cs.tcp()
      b:settimeout(2000)
      local tb = cs.spawn(function() return b:connect(srv.host, srv.port, opts) end)
      assert.same({ idle = 0, in_use = 1, queued = 1 }, stats(srv.key))
      local c = cs.tcp()
      c:settimeout(200)                                 -- bounded if it queues
      local t0 = clock()
      assert.same({ n = 2, nil, "too many waiting connect operations" },
        pack(c:connect(srv.host, srv.port, opts)))
      assert.is_true(clock() - t0 < 0.1)                -- at once
      assert.same({ n = 2, nil, "closed" }, pack(c:send("x")))
      -- the holder closes: the queued connect opens a new connection
      assert.equal(1, a:close())
      assert.same({ true, 1 }, { cs.wait(tb) })
      assert.equal(0, b:getreusedtimes())
      assert(b:send(helpers.script("l")))
      roundtrip(b)
      b:close()
      assert.equal(2, accepted(srv))
      assert.is_nil(stats(srv.key))
    end)

    it("refuses the second concurrent connect with backlog 0", function()
      local srv = fixture("script")
      local opts = { pool_size = 1, backlog = 0 }
      local a = line_echo(srv, opts)
      local b = cs.tcp()
      b:settimeout(200)                                 -- bounded if it queues
      assert.same({ n = 2, nil, "too many waiting connect operations" },
        pack(b:connect(srv.host, srv.port, opts)))
      -- once a is parked, its idle connection is there to take
      roundtrip(a)
      assert.equal(1, a:setkeepalive())
      assert.equal(1, b:connect(srv.host, srv.port, opts))
      assert.equal(1, b:getreusedtimes())
      b:settimeout(2000)
      roundtrip(b)
      b:close()
      assert.equal(1, accepted(srv))
    end)

    it("hands the connection parked by another thread to a queued connect", function()
      local srv = fixture("script")
      local opts = { pool_size = 1, backlog = 1 }
      local a = line_echo(srv, opts)
      roundtrip(a)
      local b = cs.tcp()
      b:settimeout(2000)
      local tb = cs.spawn(function()
        local ok, err = b:connect(srv.host, srv.port, opts)
        return ok, err, b:getreusedtimes()
      end)
      assert.same({ idle = 0, in_use = 1, queued = 1 }, stats(srv.key))
      local ta = cs.spawn(function() return a:setkeepalive() end)
      assert.same({ true, 1 }, { cs.wait(ta) })
      assert.same({ true, 1, nil, 1 }, { cs.wait(tb) })
      assert.same({ idle = 0, in_use = 1, queued = 0 }, stats(srv.key))
      roundtrip(b, "same connection")
      assert.equal(1, b:setkeepalive())
      assert.same({ idle = 1, in_use = 0, queued = 0 }, stats(srv.key))
      assert.equal(1, accepted(srv))
    end)

    it("times a queued connect out after the connect timeout", function()
      local srv = fixture("script")
      local opts = { pool_size = 1, backlog = 1 }
      local a = line_echo(srv, opts)
      local b = cs.tcp()
      b:settimeout(100)
      local t0 = clock()
      local tb = cs.spawn(function() return b:connect(srv.host, srv.port, opts) end)
      assert.same({ idle = 0, in_use = 1, queued = 1 }, stats(srv.key))
      assert.same({ true, nil, "timeout" }, { cs.wait(tb) })
      local waited = clock() - t0
      assert.is_true(waited >= 0.09, "waited " .. waited)
      assert.is_true(waited < 1, "waited " .. waited)
      assert.same({ idle = 0, in_use = 1, queued = 0 }, stats(srv.key))
      assert.same({ n = 2, nil, "closed" }, pack(b:send("x")))
      -- its place in the queue is free again
      b:settimeout(2000)
      local tc = cs.spawn(function() return b:connect(srv.host, srv.port, opts) end)
      assert.same({ idle = 0, in_use = 1, queued = 1 }, stats(srv.key))
      roundtrip(a)
      assert.equal(1, a:setkeepalive())
      assert.same({ true, 1 }, { cs.wait(tc) })
      assert.equal(1, b:getreusedtimes())
      b:close()
      assert.equal(1, accepted(srv))
    end)

    it("forgets a queued connect whose thread is killed, and frees its place", function()
      local srv = fixture("script")
      local opts = { pool_size = 1, backlog = 1 }
      local a = line_echo(srv, opts)
      roundtrip(a)
      local b = cs.tcp()
      b:settimeout(2000)
      local tb = cs.spawn(function() return b:connect(srv.host, srv.port, opts) end)
      assert.same({ idle = 0, in_use = 1, queued = 1 }, stats(srv.key))
      assert.equal(1, cs.kill(tb))
      assert.same({ idle = 0, in_use = 1, queued = 0 }, stats(srv.key))
      assert.same({ n = 2, nil, "closed" }, pack(b:send("x")))
      -- its place is free: another connect queues (not refused), and gets the
      -- connection parked next (the killed one does not)
      local c = cs.tcp()
      c:settimeout(2000)
      local tc = cs.spawn(function()
        local ok, err = c:connect(srv.host, srv.port, opts)
        return ok, err, c:getreusedtimes()
      end)
      assert.same({ idle = 0, in_use = 1, queued = 1 }, stats(srv.key))
      assert.equal(1, a:setkeepalive())
      assert.same({ true, 1, nil, 1 }, { cs.wait(tc) })
      roundtrip(c)
      c:close()
      assert.equal(1, accepted(srv))
      assert.is_nil(stats(srv.key))
    end)

    it("keeps 200 threads of connect/roundtrip/setkeepalive on at most 10 connections",
      function()
      local srv = fixture("script")
      local nthreads, cycles = helpers.scale(200, 20), 5
      local opts = { pool_size = 10, backlog = 1000 }
      local ok, bad, most, queued = 0, {}, 0, 0
      cs.run(function()
        for i = 1, nthreads do
          cs.spawn(function()
            for j = 1, cycles do
              local sock = cs.tcp()
              sock:settimeout(5000)
              queued = math.max(queued, (stats(srv.key) or { queued = 0 }).queued)
              local r, err = sock:connect(srv.host, srv.port, opts)
              if not r then bad[#bad + 1] = "connect: " .. tostring(err); return end
              if sock:getreusedtimes() == 0 then sock:send(helpers.script("l")) end
              local st = cs.pool_stats()[srv.key]
              most = math.max(most, st.idle + st.in_use)
              local msg = i .. ":" .. j
              local n, e1 = sock:send(msg .. "\n")
              local line, e2 = sock:receive()
              if n ~= #msg + 1 or line ~= msg then
                bad[#bad + 1] = string.format("%s: sent %s (%s), got %s (%s)", msg,
                  tostring(n), tostring(e1), tostring(line), tostring(e2))
                return
              end
              r, err = sock:setkeepalive()
              if r ~= 1 then bad[#bad + 1] = "setkeepalive: " .. tostring(err); return end
            end
            ok = ok + 1
          end)
        end
      end)
      assert.same({}, { unpack(bad, 1, math.min(#bad, 5)) })
      assert.equal(nthreads, ok)
      assert.is_true(most <= 10, "pool counted " .. most)
      assert.is_true(queued > 0, "no connect ever waited in the backlog")
      local n = accepted(srv)
      assert.is_true(n >= 1 and n <= 10, n .. " connections accepted")
      local st = stats(srv.key)
      assert.equal(n, st.idle)
      assert.same({ in_use = 0, queued = 0 }, { in_use = st.in_use, queued = st.queued })
    end)

    it("is not there without a backlog: pool_size bounds only idle connections", function()
      local srv = fixture("script")
      local socks = {}
      for i = 1, 3 do
        socks[i] = line_echo(srv, { pool_size = 1 })
        roundtrip(socks[i])
      end
      assert.same({ idle = 0, in_use = 3, queued = 0 }, stats(srv.key))
      assert.equal(3, accepted(srv))
      for i = 1, 3 do assert.equal(1, socks[i]:setkeepalive()) end
      assert.same({ idle = 1, in_use = 0, queued = 0 }, stats(srv.key))
    end)
  end)

  describe("pool_stats", function()
    it("counts idle, in-use and queued connections per key, and forgets empty pools",
      function()
      local srv = fixture("script")
      local key = srv.key
      -- a connect without options makes no pool
      local a = line_echo(srv)
      assert.is_nil(stats(key))
      roundtrip(a)
      assert.equal(1, a:setkeepalive(0, 1))             -- counted from now on
      assert.same({ idle = 1, in_use = 0, queued = 0 }, stats(key))
      local b = line_echo(srv)
      assert.same({ idle = 0, in_use = 1, queued = 0 }, stats(key))
      -- reconnecting a connected object closes its connection first
      assert.equal(1, b:connect(srv.host, srv.port))
      assert.equal(0, b:getreusedtimes())
      assert.is_nil(stats(key))                         -- counter 0: deleted
      assert(b:send(helpers.script("l")))
      roundtrip(b)
      b:close()
      -- with a backlog: queued connects show
      local opts = { pool_size = 1, backlog = 2 }
      local c = line_echo(srv, opts)
      assert.same({ idle = 0, in_use = 1, queued = 0 }, stats(key))
      local d, e = cs.tcp(), cs.tcp()
      d:settimeout(2000)
      e:settimeout(2000)
      local td = cs.spawn(function() return d:connect(srv.host, srv.port, opts) end)
      local te = cs.spawn(function() return e:connect(srv.host, srv.port, opts) end)
      assert.same({ idle = 0, in_use = 1, queued = 2 }, stats(key))
      roundtrip(c)
      assert.equal(1, c:setkeepalive())                 -- d takes it
      assert.same({ idle = 0, in_use = 1, queued = 1 }, stats(key))
      assert.same({ true, 1 }, { cs.wait(td) })
      assert.equal(1, d:getreusedtimes())
      assert.equal(1, d:close())                        -- e opens a new one
      assert.same({ true, 1 }, { cs.wait(te) })
      assert.same({ idle = 0, in_use = 1, queued = 0 }, stats(key))
      assert.equal(0, e:getreusedtimes())
      assert(e:send(helpers.script("l")))
      roundtrip(e)
      assert.equal(1, e:setkeepalive())
      assert.same({ idle = 1, in_use = 0, queued = 0 }, stats(key))
      local f = line_echo(srv)
      assert.equal(1, f:getreusedtimes())
      assert.same({ idle = 0, in_use = 1, queued = 0 }, stats(key))
      f:close()
      assert.is_nil(stats(key))
      -- a new pool with the same key may get another size: 2 now, not 1
      local g, h = line_echo(srv, { pool_size = 2 }), line_echo(srv, { pool_size = 2 })
      roundtrip(g)
      roundtrip(h)
      assert.same({ idle = 0, in_use = 2, queued = 0 }, stats(key))
      assert.equal(1, g:setkeepalive())
      assert.equal(1, h:setkeepalive())
      assert.same({ idle = 2, in_use = 0, queued = 0 }, stats(key))
      assert.equal(6, accepted(srv))
    end)
  end)

  describe("configure", function()
    local saved
    before_each(function()
      local cfg = cs.configure()
      saved = { pool_size = cfg.pool_size, keepalive_timeout = cfg.keepalive_timeout }
    end)
    after_each(function() cs.configure(saved) end)

    it("pool_size sizes a pool that setkeepalive creates", function()
      cs.configure { pool_size = 2 }
      local srv = fixture("script")
      local socks = {}
      for i = 1, 3 do
        socks[i] = line_echo(srv)
        roundtrip(socks[i])
      end
      for i = 1, 3 do assert.equal(1, socks[i]:setkeepalive()) end
      assert.same({ idle = 2, in_use = 0, queued = 0 }, stats(srv.key))
      -- the default does not change an existing pool
      cs.configure { pool_size = 5 }
      local extra = {}
      for i = 1, 3 do extra[i] = line_echo(srv) end
      for i = 1, 3 do roundtrip(extra[i]) end
      for i = 1, 3 do assert.equal(1, extra[i]:setkeepalive()) end
      assert.same({ idle = 2, in_use = 0, queued = 0 }, stats(srv.key))
    end)

    it("pool_size sizes a pool that connect creates with a backlog alone", function()
      cs.configure { pool_size = 2 }
      local srv = fixture("script")
      local opts = { backlog = 0 }
      local a, b = line_echo(srv, opts), line_echo(srv, opts)
      local c = cs.tcp()
      c:settimeout(200)                                 -- bounded if it queues
      assert.same({ n = 2, nil, "too many waiting connect operations" },
        pack(c:connect(srv.host, srv.port, opts)))
      a:close()
      b:close()
    end)

    it("keepalive_timeout applies when setkeepalive has no timeout", function()
      cs.configure { keepalive_timeout = 50 }
      local l, port, key = listener()
      local a, ca = connected(l, port)
      local b, cb = connected(l, port)
      assert.equal(1, a:setkeepalive())
      assert.equal(1, b:setkeepalive(nil))
      assert.same({ idle = 2, in_use = 0, queued = 0 }, stats(key))
      assert.is_true(wait_for(function() return stats(key) == nil end, 1))
      assert.equal("eof", peer_state(ca))
      assert.equal("eof", peer_state(cb))
    end)
  end)

  describe("watchers", function()
    it("never keep cosocket.run(f) waiting", function()
      local srv = fixture("script")
      local t0 = clock()
      cs.run(function()
        local a, b = line_echo(srv), line_echo(srv)
        roundtrip(a)
        roundtrip(b)
        assert.equal(1, a:setkeepalive(0))
        assert.equal(1, b:setkeepalive(10000))
      end)
      assert.is_true(clock() - t0 < 0.5)
      assert.same({ idle = 2, in_use = 0, queued = 0 }, stats(srv.key))
    end)

    it("never keep a script from ending", function()
      local srv = fixture("script")
      local t0 = socket.gettime()
      local out, err, status = helpers.run_lua(string.format([[
        local cs = require "cosocket"
        local key = "127.0.0.1:%d"
        cs.run(function()
          local sock = cs.tcp()
          assert(sock:connect("127.0.0.1", %d))
          assert(sock:setkeepalive(60000) == 1)
        end)
        local sock = cs.tcp()
        assert(sock:connect("127.0.0.1", %d))
        assert(sock:setkeepalive(0) == 1)
        io.write(cs.pool_stats()[key].idle, "\n")
        cs.run()          -- nothing left but the pools' watchers
        io.write("end\n")
      ]], srv.port, srv.port, srv.port), 10)
      local took = socket.gettime() - t0
      assert.equal("", err)
      assert.equal("1\nend\n", out)
      assert.equal(0, status)
      assert.is_true(took < 3, "the child took " .. took .. " s")
      assert.equal(1, accepted(srv))
    end)
  end)

  it("after cosocket.shutdown(): idle connections were closed, setkeepalive closes",
    function()
    local out, err, status = helpers.run_lua([[
      local cs = require "cosocket"
      local socket = require "socket"
      local l = assert(socket.bind("127.0.0.1", 0))
      l:settimeout(2)
      local _, port = l:getsockname()
      local key = "127.0.0.1:" .. port
      local function peer(c)
        c:settimeout(1)
        local data, e = c:receive("*a")
        if data then return data == "" and "eof" or data end
        return e == "timeout" and "open" or "eof"
      end
      local function idle() local s = cs.pool_stats()[key]; return s and s.idle or "none" end
      local a = cs.tcp()
      assert(a:connect("127.0.0.1", port))
      local ca = assert(l:accept())
      assert(a:setkeepalive(0) == 1)
      io.write("before: ", idle(), "\n")
      cs.shutdown()
      io.write("shutdown: ", idle(), " ", peer(ca), "\n")
      local b = cs.tcp()
      assert(b:connect("127.0.0.1", port))
      local cb = assert(l:accept())
      local r = { b:setkeepalive(0) }
      io.write("setkeepalive: ", tostring(r[1]), " ", tostring(r[2]), "\n")
      io.write("after: ", idle(), " ", peer(cb), "\n")
      local s = { b:send("x") }
      io.write("send: ", tostring(s[1]), " ", tostring(s[2]), "\n")
    ]], 10)
    assert.equal("", err)
    assert.equal("before: 1\nshutdown: none eof\nsetkeepalive: 1 nil\n" ..
                 "after: none eof\nsend: nil closed\n", out)
    assert.equal(0, status)
  end)

  it("do not outlive their Lua state", function()
    local srv = fixture("script")
    local l, port = listener()
    local out, err, status = helpers.run_lua(string.format([[
      local cs = require "cosocket"
      local socks = {}
      for i = 1, 2 do
        socks[i] = cs.tcp()
        assert(socks[i]:connect("127.0.0.1", %d))
      end
      for i = 1, 2 do assert(socks[i]:setkeepalive(0) == 1) end
      local e = cs.tcp()
      e:settimeout(2000)
      assert(e:connect("127.0.0.1", %d))
      assert(e:send("l\nping\n"))
      assert(e:receive() == "ping")
      assert(e:setkeepalive(0) == 1)
      io.write(cs.pool_stats()["127.0.0.1:%d"].idle, "\n")
    ]], port, srv.port, port), 10)
    assert.equal("", err)
    assert.equal("2\n", out)
    assert.equal(0, status)
    assert.equal("eof", peer_state(accept(l)))
    assert.equal("eof", peer_state(accept(l)))
    assert.equal(1, accepted(srv))
    -- nothing of the child's pools here: a connect here makes a new connection
    local sock = line_echo(srv)
    assert.equal(0, sock:getreusedtimes())
    roundtrip(sock)
    sock:close()
    assert.equal(2, accepted(srv))
  end)

  it("gives every descriptor back once the pools are empty", function()
    assert.same({}, leftover_keys())
    collectgarbage()
    collectgarbage()
    assert.equal(fds_at_start, fd_count())
  end)
end)
