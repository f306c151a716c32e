-- Killing a light thread in every state it can wait in (issue #9, items 0 and
-- 3): connect (a peer whose accept queue is full), name resolution (the `dns`
-- fixture's silent.test never answers), send (a peer that never reads),
-- receive, a receiveuntil iterator, the TLS handshake (a peer that accepts and
-- never answers the ClientHello), a pool's backlog queue, sleep, a semaphore,
-- wait on a child, run of a nested handler, and UDP receive.  For each state:
--   * kill (cosocket.kill, which is ngx.thread.kill) returns 1, the thread is
--     dead, and it never runs again: a flag it would set after its wait stays
--     unset after more loop time than its own timeout;
--   * the object it waited on (sockets only) is closed at once (every call says "closed",
--     never "socket busy ..."), its descriptor is gone at once, and the same
--     object connects again;
--   * another thread waiting in the same state at the same time is not
--     disturbed (it gets its own result), and a later operation of the kind
--     works;
--   * no descriptor is left behind (helpers.fd_count before and after).
-- Then: a socket only its killed thread knew is collected (no crash, no
-- descriptor), and a state closed with threads still waiting in every socket
-- state (lua_close runs the __gc of sockets whose watchers are armed).
-- Two of them found bugs, now fixed: a parent killed between its child's end
-- and its own resume (the child stayed anchored), and a kill during run(f)
-- (the nested handler kept a pointer to the collected thread).
--
-- Already covered elsewhere, not repeated here (the assertions below add what
-- those lack): "closed" after a kill in receive / receiveuntil / connect /
-- send / a user coroutine (tcp_threads_spec.lua "killing a thread blocked on
-- a socket"), in a handshake (tls_spec.lua "killing a thread blocked in a
-- handshake closes its socket"), a killed queued connect frees its backlog
-- place (pool_spec.lua "forgets a queued connect whose thread is killed"),
-- UDP receive and setpeername (udp_spec.lua), a sleeping thread's timer and a
-- semaphore waiter leaving its queue (sched_spec.lua "cosocket.kill"), a
-- resource posted to a killed semaphore waiter (semaphore_spec.lua).
local cs = require "cosocket"
local ngx = require "cosocket.ngx"
local helpers = require "helpers"
local socket = require "socket"

local pack = helpers.pack
local unpack = helpers.unpack

local fd_count = helpers.fd_count

-- descriptors once what is unreachable is collected
local function fds()
  collectgarbage()
  collectgarbage()
  return fd_count()
end

local clock = helpers.clock

-- Cleanups of the current test, run by after_each even when the test fails
-- (this busted keeps only the last function given to finally()).
local defer, run_cleanups = helpers.cleanups()

local function fixture(mode, opts) return helpers.fixture(defer, mode, opts) end

-- drives the loop until pred() is true, at most `limit` s (default 2)
local function wait_for(pred, limit) return helpers.wait_for(pred, limit or 2) end

-- After each test (its cleanups run): drives the loop, at most 2 s, until
-- the descriptors are back to `fds_at_start`, so that the next test takes
-- its baseline from a quiet state.  A test that passed left nothing (it
-- checked); one that failed half way may have left a lookup pending, whose
-- c-ares socket stays until the lookup is answered or times out (or until
-- the channel is replaced, at the first lookup after a configure{}), or a
-- thread still waiting on a socket: without this wait, that descriptor would
-- go in the middle of the next test and fail it too.
local function settle(fds_at_start)
  run_cleanups()
  wait_for(function() return fds() <= fds_at_start end, 2)
end

-- A light thread of the main chunk running fn(...): st.result is set to what
-- fn returned, and st.after to true, once fn has returned.
local function victim(fn, ...)
  local st, args = {}, pack(...)
  st.co = cs.spawn(function()
    local r = pack(fn(unpack(args, 1, args.n)))
    st.result = r
    st.after = true
  end)
  return st
end

-- Kills st's thread, which must be waiting: kill returns exactly 1, the
-- thread is dead, and a second kill or a wait says so.
local function kill(st, killer)
  assert.equal("running", cs.coroutine.status(st.co))   -- suspended in a wait
  assert.same({ n = 1, 1 }, pack((killer or cs.kill)(st.co)))
  assert.equal("dead", cs.coroutine.status(st.co))
  assert.same({ n = 2, nil, "already waited or killed" }, pack(cs.kill(st.co)))
  assert.same({ n = 2, nil, "already waited or killed" }, pack(cs.wait(st.co)))
end

-- The killed thread never runs again: `seconds` of loop time (more than the
-- timeout of what it waited for) and its flag is still unset.
local function never_resumes(st, seconds)
  local t0 = clock()
  cs.sleep(seconds)
  assert.is_true(clock() - t0 >= seconds * 0.9, "the loop did not run long enough")
  assert.is_nil(st.after, "the killed thread ran again")
  assert.is_nil(st.result)
end

-- every call on a killed thread's TCP object says "closed": none is busy
local function assert_tcp_closed(sock)
  assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
  assert.same({ n = 2, nil, "closed" }, pack(sock:receive()))
  assert.same({ n = 2, nil, "closed" }, pack(sock:receiveany(1)))
  assert.same({ n = 2, nil, "closed" }, pack(sock:getreusedtimes()))
  assert.same({ n = 2, nil, "closed" }, pack(sock:setkeepalive()))
  assert.same({ n = 2, nil, "closed" }, pack(sock:close()))
end

-- one echo round trip
local roundtrip = helpers.roundtrip

-- the same object connects again, to an echo peer, and works
local function reconnects(sock, echo)
  sock:settimeout(2000)
  assert.same({ n = 1, 1 }, pack(sock:connect(echo.host, echo.port)))
  roundtrip(sock, "again")
  assert.same({ n = 1, 1 }, pack(sock:close()))
end

-- a LuaSocket listener: its accepted connections show what the peer sees
local function listener() return helpers.listener(defer) end

local function accept(l) return helpers.accept(defer, l) end

-- "eof" when the peer's side has ended, "open" when it is still open and
-- silent (within `limit` s, default 1), else the data it got
local peer_state = helpers.peer_state

-- Connections the `script` fixture srv accepted so far, not counting the ones
-- this function made to ask
local accepted = helpers.accepted

-- configure{} for this test only (a string setting that was unset comes back
-- as false: the default)
local function configure(t) return helpers.configure(defer, t) end

local BIG = ("x"):rep(8 * 1024 * 1024)   -- more than loopback buffers take

describe("killing a light thread", function()
  local fds_at_start

  setup(function()
    fds_at_start = fds()
  end)

  after_each(function() settle(fds_at_start) end)

  teardown(function()
    -- the pools' idle connections go when their peers close
    wait_for(function() return fds() <= fds_at_start end, 2)
    assert.equal(fds_at_start, fds())
  end)

  it("is ngx.thread.kill", function()
    assert.equal(cs.kill, ngx.thread.kill)
  end)

  it("in connect: closes the socket at once; another connect to the same peer times out " ..
     "on its own; the object connects again", function()
    local full = fixture("full")
    local echo = fixture("echo")
    local fd0 = fds()
    local sock = cs.tcp()
    sock:settimeout(300)
    local st = victim(function() return sock:connect(full.host, full.port) end)
    local other = cs.tcp()
    other:settimeout(300)
    local ot = cs.spawn(function() return other:connect(full.host, full.port) end)
    assert.same({ n = 2, nil, "socket busy connecting" }, pack(sock:close()))
    assert.equal(fd0 + 2, fd_count())
    kill(st)
    assert.equal(fd0 + 1, fd_count())       -- its descriptor is closed at once
    assert_tcp_closed(sock)
    assert.same({ n = 3, true, nil, "timeout" }, pack(cs.wait(ot)))
    assert.same({ n = 2, nil, "closed" }, pack(other:close()))
    never_resumes(st, 0.5)
    reconnects(sock, echo)
    -- a later connect to the full peer still waits and times out
    sock:settimeout(300)
    assert.same({ n = 2, nil, "timeout" }, pack(sock:connect(full.host, full.port)))
    assert.equal(fd0, fds())
  end)

  describe("while its connect resolves a name", function()
    local dns, echo

    before_each(function()
      dns = fixture("dns")
      echo = fixture("echo")
      configure({ resolver = "127.0.0.1:" .. dns.port, resolver_timeout = 300 })
    end)

    it("closes the object; another lookup of the same silent name ends on its own; " ..
       "later lookups work", function()
      local fd0 = fds()
      local sock = cs.tcp()
      sock:settimeout(5000)
      local st = victim(function() return sock:connect("silent.test", echo.port) end)
      local other = cs.tcp()
      other:settimeout(5000)
      local t0 = clock()
      local ot = cs.spawn(function() return other:connect("silent.test", echo.port) end)
      kill(st)
      assert_tcp_closed(sock)
      -- the other lookup, in the same state, gets its own timeout
      assert.same({ n = 3, true, nil,
        "silent.test could not be resolved (110: Operation timed out)" }, pack(cs.wait(ot)))
      local took = clock() - t0
      assert.is_true(took >= 0.25 and took < 5, "took " .. took)
      never_resumes(st, 0.5)
      -- the killed object resolves and connects again
      assert.same({ n = 1, 1 }, pack(sock:connect("v4.test", echo.port)))
      roundtrip(sock)
      assert.equal(1, sock:close())
      -- so does a fresh one, and the query did reach the server
      local before = helpers.dns_count(dns)
      local c = cs.tcp()
      c:settimeout(2000)
      assert.same({ n = 1, 1 }, pack(c:connect("count.test", echo.port)))
      roundtrip(c)
      assert.equal(1, c:close())
      assert.is_true(helpers.dns_count(dns) > before)
      -- c-ares keeps no socket once no query is pending
      assert.equal(fd0, fds())
    end)

    it("orphans the lookup: its answer, arriving later, connects nothing", function()
      local srv = fixture("script")
      local fd0 = fds()
      local before = helpers.dns_count(dns)
      local sock = cs.tcp()
      sock:settimeout(2000)
      -- count.test answers 127.0.0.1 at once: the answer is on its way when
      -- the thread is killed (the loop has not run since the query was sent)
      local st = victim(function()
        local ok, err = sock:connect("count.test", srv.port)
        return ok, err
      end)
      kill(st)
      assert_tcp_closed(sock)
      never_resumes(st, 0.3)
      assert.is_true(helpers.dns_count(dns) > before, "the query never went out")
      -- the lookup ends, answered (or, should the answer come later than
      -- the resolver's 300 ms, timed out: the loop above ran only 0.3 s):
      -- c-ares closes its socket once no query is pending
      wait_for(function() return fd_count() == fd0 end, 2)
      assert.equal(0, accepted(srv))           -- the answer connected nothing
      assert.equal(fd0, fds())
      -- the state resolves on
      local c = cs.tcp()
      c:settimeout(2000)
      assert.same({ n = 1, 1 }, pack(c:connect("count.test", echo.port)))
      roundtrip(c)
      c:close()
    end)

    it("in a UDP setpeername: the object is closed and sets its peer again", function()
      local udpecho = fixture("udpecho")
      local fd0 = fds()
      local u = cs.udp()
      u:settimeout(2000)
      local st = victim(function() return u:setpeername("silent.test", udpecho.port) end)
      local u2 = cs.udp()
      local ot = cs.spawn(function() return u2:setpeername("silent.test", udpecho.port) end)
      kill(st)
      assert.same({ n = 2, nil, "closed" }, pack(u:send("x")))
      assert.same({ n = 2, nil, "closed" }, pack(u:receive()))
      assert.same({ n = 2, nil, "closed" }, pack(u:close()))
      assert.same({ n = 3, true, nil,
        "silent.test could not be resolved (110: Operation timed out)" }, pack(cs.wait(ot)))
      never_resumes(st, 0.5)
      assert.same({ n = 1, 1 }, pack(u:setpeername("v4.test", udpecho.port)))
      assert.same({ n = 1, 1 }, pack(u:send("dgram")))
      assert.same({ n = 1, "dgram" }, pack(u:receive()))
      assert.equal(1, u:close())
      assert.equal(fd0, fds())
    end)
  end)

  it("in send: closes the socket at once; another blocked writer times out on its own; " ..
     "the object connects again", function()
    local srv = fixture("script")
    local echo = fixture("echo")
    local fd0 = fds()
    local sock = cs.tcp()
    sock:settimeouts(2000, 300, 2000)
    assert.equal(1, sock:connect(srv.host, srv.port))
    assert(sock:send(helpers.script("n")))
    local other = cs.tcp()
    other:settimeouts(2000, 300, 2000)
    assert.equal(1, other:connect(srv.host, srv.port))
    assert(other:send(helpers.script("n")))
    local st = victim(function() return sock:send(BIG) end)
    local ot = cs.spawn(function() return other:send(BIG) end)
    assert.same({ n = 2, nil, "socket busy writing" }, pack(sock:send("x")))
    assert.equal(fd0 + 2, fd_count())
    kill(st)
    assert.equal(fd0 + 1, fd_count())
    assert_tcp_closed(sock)
    assert.same({ n = 3, true, nil, "timeout" }, pack(cs.wait(ot)))
    assert.equal(1, other:close())
    never_resumes(st, 0.6)
    reconnects(sock, echo)
    -- a later send on a fresh connection works
    local c = cs.tcp()
    c:settimeout(2000)
    assert.equal(1, c:connect(echo.host, echo.port))
    roundtrip(c, "later")
    c:close()
    assert.equal(fd0, fds())
  end)

  it("in receive (every pattern): closes the socket, the peer sees EOF; another reader " ..
     "gets its data; the object connects again", function()
    local echo = fixture("echo")
    local l, port = listener()
    local fd0 = fds()
    local reads = {
      ["*l"] = function(s) return s:receive() end,
      ["*a"] = function(s) return s:receive("*a") end,
      ["5"] = function(s) return s:receive(5) end,
      receiveany = function(s) return s:receiveany(5) end,
    }
    for name, read in pairs(reads) do
      local sock = cs.tcp()
      sock:settimeout(300)
      assert.equal(1, sock:connect("127.0.0.1", port))
      local conn = accept(l)
      local other = cs.tcp()
      other:settimeout(2000)
      assert.equal(1, other:connect("127.0.0.1", port))
      local oconn = accept(l)
      local st = victim(read, sock)
      local ot = cs.spawn(read, other)
      assert.same({ n = 2, nil, "socket busy reading" }, pack(sock:receive()), name)
      local before = fd_count()
      kill(st)
      assert.equal(before - 1, fd_count(), name)
      assert_tcp_closed(sock)
      assert.equal("eof", peer_state(conn), name)
      assert(oconn:send("hello\n"))
      assert(oconn:shutdown("send"))        -- *a ends at EOF
      local want = { ["*l"] = "hello", ["*a"] = "hello\n", ["5"] = "hello",
                     receiveany = "hello" }
      assert.same({ n = 2, true, want[name] }, pack(cs.wait(ot)), name)
      other:close()
      conn:close()
      oconn:close()
      never_resumes(st, 0.4)
      reconnects(sock, echo)
    end
    assert.equal(fd0, fds())
  end)

  it("in a receiveuntil iterator: closes the socket; another iterator gets its data; " ..
     "the object connects and iterates again", function()
    local srv = fixture("script")
    local fd0 = fds()
    local sock = cs.tcp()
    sock:settimeout(300)
    assert.equal(1, sock:connect(srv.host, srv.port))
    assert(sock:send(helpers.script({ "w", "abc" })))     -- part of a line, then silence
    local it = sock:receiveuntil("--")
    local other = cs.tcp()
    other:settimeout(2000)
    assert.equal(1, other:connect(srv.host, srv.port))
    assert(other:send(helpers.script({ "p", 100 }, { "w", "data--" })))
    local oit = other:receiveuntil("--")
    local st = victim(function() return it() end)
    local ot = cs.spawn(function() return oit() end)
    assert.same({ n = 2, nil, "socket busy reading" }, pack(it()))
    assert.equal(fd0 + 2, fd_count())
    kill(st)
    assert.equal(fd0 + 1, fd_count())
    assert.same({ n = 2, nil, "closed" }, pack(it()))
    assert_tcp_closed(sock)
    assert.same({ n = 2, true, "data" }, pack(cs.wait(ot)))
    assert.equal(1, other:close())
    never_resumes(st, 0.5)
    sock:settimeout(2000)
    assert.equal(1, sock:connect(srv.host, srv.port))
    assert(sock:send(helpers.script({ "w", "xyz--rest" })))
    assert.same({ n = 1, "xyz" }, pack(sock:receiveuntil("--")()))
    assert.same({ n = 1, "rest" }, pack(sock:receive(4)))
    assert.equal(1, sock:close())
    assert.equal(fd0, fds())
  end)

  it("in a TLS handshake: closes the socket; another handshake with a silent peer times " ..
     "out on its own; the object connects and handshakes again", function()
    local certs = helpers.tls_certs()
    local tls = helpers.start_tls_server({ cert = certs.server.cert, key = certs.server.key })
    defer(function() tls:stop() end)
    local silent = fixture("silent")
    local fd0 = fds()
    local sock = cs.tcp()
    sock:settimeouts(300, 300, 300)
    assert.equal(1, sock:connect(silent.host, silent.port))
    local other = cs.tcp()
    other:settimeouts(300, 300, 300)
    assert.equal(1, other:connect(silent.host, silent.port))
    local st = victim(function() return sock:sslhandshake(nil, "localhost", false) end)
    local ot = cs.spawn(function() return other:sslhandshake(nil, "localhost", false) end)
    assert.same({ n = 2, nil, "socket busy connecting" }, pack(sock:receive()))
    assert.equal(fd0 + 2, fd_count())
    kill(st)
    assert.equal(fd0 + 1, fd_count())
    assert_tcp_closed(sock)
    assert.same({ n = 3, true, nil, "timeout" }, pack(cs.wait(ot)))
    assert.same({ n = 2, nil, "closed" }, pack(other:close()))   -- a failed handshake closes
    never_resumes(st, 0.5)
    sock:settimeouts(2000, 2000, 2000)
    assert.equal(1, sock:connect(tls.host, tls.port))
    assert.equal("userdata", type((sock:sslhandshake(nil, "localhost", false))))
    roundtrip(sock, "tls")
    assert.equal(1, sock:close())
    assert.equal(fd0, fds())
  end)

  describe("queued in a pool's backlog", function()
    local srv, key, opts

    before_each(function()
      srv = fixture("script")
      key = srv.host .. ":" .. srv.port
      opts = { pool_size = 1, backlog = 3 }
    end)

    after_each(function()
      -- the peer goes: its idle connection closes
      run_cleanups()
      wait_for(function() return cs.pool_stats()[key] == nil end, 2)
    end)

    local function stats()
      local s = cs.pool_stats()[key]
      return s and { idle = s.idle, in_use = s.in_use, queued = s.queued }
    end

    -- a connection of the pool that echoes lines
    local function holder()
      local sock = cs.tcp()
      sock:settimeout(2000)
      assert.same({ n = 1, 1 }, pack(sock:connect(srv.host, srv.port, opts)))
      assert(sock:send(helpers.script("l")))
      roundtrip(sock)
      return sock
    end

    -- a queued connect that, once it has its connection, makes a round trip
    -- and parks it: returns ok, err, reused times, the echoed line
    local function queued(name)
      return victim(function()
        local s = cs.tcp()
        s:settimeout(2000)
        local ok, err = s:connect(srv.host, srv.port, opts)
        if not ok then return ok, err end
        local reused = s:getreusedtimes()
        if reused == 0 then assert(s:send(helpers.script("l"))) end
        assert(s:send(name .. "\n"))
        local line = s:receive()
        assert.equal(1, s:setkeepalive())
        return ok, err, reused, line
      end)
    end

    it("leaves its place: the other queued connects get the connection in order", function()
      local fd0 = fds()
      local a = holder()
      local b, c, d = queued("b"), queued("c"), queued("d")
      assert.same({ idle = 0, in_use = 1, queued = 3 }, stats())
      local before = fd_count()
      kill(c)
      assert.equal(before, fd_count())          -- a queued connect has no descriptor
      assert.same({ idle = 0, in_use = 1, queued = 2 }, stats())
      assert.equal(1, a:setkeepalive())
      assert.is_true(wait_for(function() return b.after and d.after end))
      assert.same({ n = 4, 1, nil, 1, "b" }, b.result)
      assert.same({ n = 4, 1, nil, 2, "d" }, d.result)
      never_resumes(c, 0.3)
      assert.same({ idle = 1, in_use = 0, queued = 0 }, stats())
      assert.equal(1, accepted(srv))            -- one connection served everyone
      -- a later connect of the pool takes it
      local e = cs.tcp()
      e:settimeout(2000)
      assert.same({ n = 1, 1 }, pack(e:connect(srv.host, srv.port, opts)))
      assert.equal(3, e:getreusedtimes())
      roundtrip(e, "e")
      e:close()
      assert.equal(fd0, fds())
    end)

    it("after it was handed the connection but before it resumed: the next one gets " ..
       "a connection, the pool still holds at most one", function()
      local fd0 = fds()
      local a = holder()
      local b, c = queued("b"), queued("c")
      assert.same({ idle = 0, in_use = 1, queued = 2 }, stats())
      assert.equal(1, a:setkeepalive())          -- handed to b, b not run yet
      assert.same({ idle = 0, in_use = 1, queued = 1 }, stats())
      kill(b)
      local most = 0
      assert.is_true(wait_for(function()
        local s = stats()
        if s then most = math.max(most, s.idle + s.in_use) end
        return c.after
      end))
      assert.equal(1, c.result[1], tostring(c.result[2]))
      assert.equal("c", c.result[4])
      assert.is_true(most <= 1, "the pool counted " .. most)
      never_resumes(b, 0.3)
      assert.same({ idle = 1, in_use = 0, queued = 0 }, stats())
      assert.is_true(accepted(srv) <= 2)
      assert.equal(fd0 + 1, fds())              -- c's parked connection
    end)
  end)

  it("in sleep: it never wakes; a sibling's sleep ends normally", function()
    local st = victim(cs.sleep, 0.2)
    local other = cs.spawn(function() cs.sleep(0.1); return "slept" end)
    kill(st)
    assert.same({ n = 2, true, "slept" }, pack(cs.wait(other)))
    never_resumes(st, 0.4)
    -- nothing of it keeps the loop busy
    local t0 = clock()
    cs.run()
    assert.is_true(clock() - t0 < 1)
    assert.same({ n = 0 }, pack(cs.sleep(0.01)))
  end)

  it("in a semaphore wait (first in the queue): the next waiter gets the post", function()
    local sema = require("ngx.semaphore").new(0)
    local st = victim(function() return sema:wait(0.3) end)
    local other = cs.spawn(function() return sema:wait(2) end)
    assert.equal(-2, sema:count())
    kill(st, ngx.thread.kill)
    assert.equal(-1, sema:count())
    sema:post(1)
    assert.same({ n = 3, true, true, nil }, pack(cs.wait(other)))
    assert.equal(0, sema:count())
    never_resumes(st, 0.5)
    assert.equal(0, sema:count())
    sema:post(1)
    assert.same({ n = 1, true }, pack(sema:wait(0)))
  end)

  describe("waiting on its child", function()
    it("never resumes; the child runs to its end and is collected", function()
      local weak = setmetatable({}, { __mode = "k" })
      local child_done
      local st = victim(function()
        local g = cs.spawn(function() cs.sleep(0.1); child_done = true; return "g" end)
        weak[g] = true
        return cs.wait(g)
      end)
      kill(st)
      never_resumes(st, 0.4)
      assert.is_true(child_done)
      st = nil                                  -- luacheck: ignore
      collectgarbage()
      collectgarbage()
      assert.is_nil(next(weak), "the orphaned child is still anchored")
      -- a later wait on a child works
      local t = cs.spawn(function() cs.sleep(0.01); return "later" end)
      assert.same({ n = 2, true, "later" }, pack(cs.wait(t)))
    end)

    -- The child ended and woke the parent's wait: the parent runs at once,
    -- before a thread readied with the child (ngx resumes it at once), so
    -- that a kill finds it ended; the child, kept for that wait, is let go.
    it("after its child ended: it ran at once, and the child is collected", function()
      local weak = setmetatable({}, { __mode = "k" })
      local log = {}
      cs.run(function()
        local sema = cs.semaphore(0)
        local t = cs.spawn(function()
          local g = cs.spawn(function() sema:wait(1); log[#log + 1] = "child ends" end)
          weak[g] = true
          cs.wait(g)
          log[#log + 1] = "parent resumed"
        end)
        -- the child, then this handler, get the two resources: the child
        -- ends, and t runs before this handler
        cs.spawn(function() sema:post(2) end)
        sema:wait(1)
        assert.same({ n = 2, nil, "already terminated" }, pack(cs.kill(t)))
      end)
      cs.sleep(0.05)
      assert.same({ "child ends", "parent resumed" }, log)
      collectgarbage()
      collectgarbage()
      assert.is_nil(next(weak), "the zombie child is still anchored")
    end)
  end)

  -- A thread waiting in cosocket.run(f) is killed: the nested handler must
  -- forget its waiter (under valgrind: no read of the collected thread when
  -- the handler ends).
  it("in run of a nested handler: the handler goes on, nothing touches the " ..
     "collected thread", function()
    local inner_done
    local st = victim(cs.run, function() cs.sleep(0.1); inner_done = true end)
    kill(st)
    st.co = nil
    -- the coroutine, then its thread userdata (a weak table's value), then
    -- that userdata's memory after its __gc: a few cycles
    for _ = 1, 4 do collectgarbage() end
    never_resumes(st, 0.3)
    assert.is_true(inner_done)
    local t0 = clock()
    cs.run()
    assert.is_true(clock() - t0 < 1)
  end)

  it("in a UDP receive: closes the socket at once; another receiver gets its datagram; " ..
     "the object sets its peer again", function()
    local udpecho = fixture("udpecho")
    -- the other receiver's peer: a LuaSocket UDP socket (a receiving cosocket
    -- UDP object is busy for its own sends)
    local peer = assert(socket.udp())
    defer(function() peer:close() end)
    assert(peer:setsockname("127.0.0.1", 0))
    peer:settimeout(2)
    local _, peer_port = peer:getsockname()
    local fd0 = fds()
    local u = cs.udp()
    u:settimeout(300)
    assert.equal(1, u:setpeername(udpecho.host, udpecho.port))
    local u2 = cs.udp()
    u2:settimeout(2000)
    assert.equal(1, u2:setpeername("127.0.0.1", tonumber(peer_port)))
    assert.equal(1, u2:send("hi"))
    local _, from_ip, from_port = peer:receivefrom()
    local st = victim(function() return u:receive() end)
    local ot = cs.spawn(function() return u2:receive() end)
    assert.same({ n = 2, nil, "socket busy" }, pack(u:send("x")))
    assert.equal(fd0 + 2, fd_count())
    kill(st)
    assert.equal(fd0 + 1, fd_count())
    assert.same({ n = 2, nil, "closed" }, pack(u:send("x")))
    assert.same({ n = 2, nil, "closed" }, pack(u:receive()))
    assert.same({ n = 2, nil, "closed" }, pack(u:close()))
    assert(peer:sendto("two", from_ip, from_port))
    assert.same({ n = 2, true, "two" }, pack(cs.wait(ot)))
    assert.equal(1, u2:close())
    never_resumes(st, 0.5)
    assert.equal(1, u:setpeername(udpecho.host, udpecho.port))
    assert.equal(1, u:send("again"))
    assert.same({ n = 1, "again" }, pack(u:receive()))
    assert.equal(1, u:close())
    assert.equal(fd0, fds())
  end)
end)

describe("a socket only its killed thread knew", function()
  local fds_at_start

  setup(function()
    fds_at_start = fds()
  end)

  after_each(function() settle(fds_at_start) end)

  it("is collected in every waiting state, without a crash, its descriptor gone", function()
    local full = fixture("full")
    local silent = fixture("silent")
    local script = fixture("script")
    local dns = fixture("dns")
    configure({ resolver = "127.0.0.1:" .. dns.port, resolver_timeout = 200 })
    local pool_opts = { pool_size = 1, backlog = 1 }
    local holder = cs.tcp()
    holder:settimeout(2000)
    local states = {
      connect = function(s) return s:connect(full.host, full.port) end,
      resolve = function(s) return s:connect("silent.test", silent.port) end,
      receive = function(s)
        assert(s:connect(silent.host, silent.port))
        return s:receive()
      end,
      ["receiveuntil"] = function(s)
        assert(s:connect(silent.host, silent.port))
        return s:receiveuntil("\r\n--")()
      end,
      send = function(s)
        assert(s:connect(script.host, script.port))
        assert(s:send(helpers.script("n")))
        return s:send(BIG)
      end,
      handshake = function(s)
        assert(s:connect(silent.host, silent.port))
        return s:sslhandshake()
      end,
      backlog = function(s) return s:connect(script.host, script.port, pool_opts) end,
    }
    local fd0 = fds()
    assert.equal(1, holder:connect(script.host, script.port, pool_opts))
    for name, wait in pairs(states) do
      local weak = setmetatable({}, { __mode = "k" })
      local st = victim(function()
        local s = cs.tcp()
        s:settimeout(5000)
        weak[s] = true
        return wait(s)
      end)
      assert.is_not_nil(next(weak), name)
      kill(st)
      st = nil                                  -- luacheck: ignore
      collectgarbage()
      collectgarbage()
      assert.is_nil(next(weak), name .. ": the socket is still reachable")
      -- the holder only (a lookup's c-ares socket goes at its timeout)
      wait_for(function() return fd_count() == fd0 + 1 end, 1)
      assert.equal(fd0 + 1, fd_count(), name)
    end
    assert.equal(1, holder:close())
    assert.is_nil(cs.pool_stats()[script.host .. ":" .. script.port])
    cs.sleep(0.3)                               -- the orphaned lookup times out
    assert.equal(fd0, fds())
  end)

  -- (sleep, semaphore, wait and run at lua_close: process_spec.lua "that ends
  -- with timers, sleepers, waiters and nested waits pending")
  it("waiting in every socket state when its Lua state closes: no crash, no error", function()
    local full = fixture("full")
    local silent = fixture("silent")
    local script = fixture("script")
    local dns = fixture("dns")
    local code = string.format([[
local cs = require "cosocket"
cs.configure { resolver = "127.0.0.1:%d", resolver_timeout = 5000 }
local FULL, SILENT, SCRIPT, DNS = %d, %d, %d, %d
local BIG = ("x"):rep(8 * 1024 * 1024)
local function sock()
  local s = cs.tcp()
  s:settimeout(10000)
  return s
end
local holder = sock()
assert(holder:connect("127.0.0.1", SCRIPT, { pool_size = 1, backlog = 5 }))
local n = 0
local function bg(f) cs.spawn(f); n = n + 1 end
bg(function() sock():connect("127.0.0.1", FULL) end)
bg(function() sock():connect("silent.test", SILENT) end)
bg(function() local s = sock(); assert(s:connect("127.0.0.1", SILENT)); s:receive() end)
bg(function()
  local s = sock(); assert(s:connect("127.0.0.1", SILENT)); s:receiveuntil("--")()
end)
bg(function()
  local s = sock(); assert(s:connect("127.0.0.1", SCRIPT)); assert(s:send("n\n")); s:send(BIG)
end)
bg(function() local s = sock(); assert(s:connect("127.0.0.1", SILENT)); s:sslhandshake() end)
bg(function() sock():connect("127.0.0.1", SCRIPT, { pool_size = 1, backlog = 5 }) end)
bg(function() local u = cs.udp(); assert(u:setpeername("127.0.0.1", DNS)); u:receive() end)
-- the sockets of the main chunk are dropped too
holder = nil
collectgarbage()
collectgarbage()
io.write("waiting: ", n, "\n")
]], dns.port, full.port, silent.port, script.port, dns.port)
    local script_file = os.tmpname()
    defer(function() os.remove(script_file) end)
    local f = assert(io.open(script_file, "wb"))
    f:write(code)
    f:close()
    -- under `make valgrind` the child runs under valgrind too
    local argv = {}
    for w in (os.getenv("COSOCKET_LUA_WRAPPER") or ""):gmatch("%S+") do argv[#argv + 1] = w end
    argv[#argv + 1] = helpers.interpreter()
    argv[#argv + 1] = script_file
    local out, err, status = helpers.run_program(argv, 120)
    assert.equal("", err)
    assert.equal("waiting: 8\n", out)
    assert.equal(0, status)
  end)
end)
