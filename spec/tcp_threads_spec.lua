-- TCP cosockets and light threads (SPEC.md 9, 10.4; DECISIONS.md 2): the busy
-- rules, full duplex, killing a thread blocked on a socket, ownership by
-- handlers (closing at handler end, on GC, use from another handler), user
-- coroutines, and many threads with many connections at once.
local cs = require "cosocket"
local helpers = require "helpers"

-- cleanups of the current test, run after it even when it fails (busted
-- keeps only the last function given to finally)
local defer, run_cleanups = helpers.cleanups()
after_each(run_cleanups)

local pack = helpers.pack
local unpack = helpers.unpack

local fd_count = helpers.fd_count

-- a socket connected to a new fixture of `mode` (and the script sent)
local function connected(mode, ...) return helpers.connected(defer, mode, ...) end

-- a LuaSocket listener: its accepted connections show what the peer sees
local function listener() return helpers.listener(defer) end

-- the next accepted connection of l, closed at the end of the test
local function accept(l) return helpers.accept(defer, l) end

-- "eof" when the peer closed the connection, else what the read gave (1 s)
local function peer_state(conn)
  conn:settimeout(1)
  local data, err, partial = conn:receive("*a")
  if data or err == "closed" then return "eof", data or partial end
  return err, partial
end

local fds_at_start

describe("tcp cosockets and light threads", function()
  setup(function()
    collectgarbage()
    collectgarbage()
    fds_at_start = fd_count()
  end)

  describe("busy rules", function()
    it("refuse a second reader, and close and connect while a thread reads", function()
      local sock, srv = connected("script", { "p", 5000 })
      sock:settimeout(200)
      local reader = cs.spawn(function() return sock:receive() end)
      assert.same({ n = 2, nil, "socket busy reading" }, pack(sock:receive()))
      assert.same({ n = 2, nil, "socket busy reading" }, pack(sock:receive(3)))
      assert.same({ n = 2, nil, "socket busy reading" }, pack(sock:receive("*a")))
      assert.same({ n = 2, nil, "socket busy reading" }, pack(sock:receiveany(3)))
      assert.same({ n = 2, nil, "socket busy reading" }, pack(sock:receiveuntil("x")()))
      assert.same({ n = 2, nil, "socket busy reading" }, pack(sock:close()))
      assert.same({ n = 2, nil, "socket busy reading" },
        pack(sock:connect(srv.host, srv.port)))
      -- a writer is welcome while a thread reads (full duplex)
      assert.same({ n = 1, 5 }, pack(sock:send("hello")))
      -- the reader was not disturbed
      assert.same({ true, nil, "timeout", "" }, { cs.wait(reader) })
      assert.equal(1, sock:close())
    end)

    it("refuse a second writer, and close and connect while a thread writes", function()
      local sock, srv = connected("script", "n", { "p", 100 }, { "w", "data\n" })
      sock:settimeouts(1000, 300, 1000)
      local writer = cs.spawn(function() return sock:send(("x"):rep(8 * 1024 * 1024)) end)
      assert.same({ n = 2, nil, "socket busy writing" }, pack(sock:send("x")))
      assert.same({ n = 2, nil, "socket busy writing" }, pack(sock:send({})))
      assert.same({ n = 2, nil, "socket busy writing" }, pack(sock:close()))
      assert.same({ n = 2, nil, "socket busy writing" },
        pack(sock:connect(srv.host, srv.port)))
      -- a reader is welcome while a thread writes (full duplex)
      assert.same({ n = 1, "data" }, pack(sock:receive()))
      assert.same({ true, nil, "timeout" }, { cs.wait(writer) })
      assert.equal(1, sock:close())
    end)

    it("refuse everything else while a thread connects", function()
      local full = helpers.start_fixture("full")
      defer(function() full:stop() end)
      local sock = cs.tcp()
      sock:settimeout(150)
      local connector = cs.spawn(function() return sock:connect(full.host, full.port) end)
      assert.same({ n = 2, nil, "socket busy connecting" }, pack(sock:send("x")))
      assert.same({ n = 2, nil, "socket busy connecting" }, pack(sock:receive()))
      assert.same({ n = 2, nil, "socket busy connecting" }, pack(sock:receiveany(1)))
      assert.same({ n = 2, nil, "socket busy connecting" }, pack(sock:receiveuntil("x")()))
      assert.same({ n = 2, nil, "socket busy connecting" }, pack(sock:close()))
      assert.same({ n = 2, nil, "socket busy connecting" },
        pack(sock:connect(full.host, full.port)))
      assert.same({ true, nil, "timeout" }, { cs.wait(connector) })
      assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
    end)

    it("let one reader and one writer work at once", function()
      local srv = helpers.start_fixture("echo")
      defer(function() srv:stop() end)
      local n = helpers.scale(200, 10)
      local got = {}
      cs.run(function()
        local sock = cs.tcp()
        sock:settimeout(2000)
        assert.equal(1, sock:connect(srv.host, srv.port))
        local reader = cs.spawn(function()
          for i = 1, n do got[i] = sock:receive() end
        end)
        local writer = cs.spawn(function()
          for i = 1, n do
            assert.equal(#tostring(i) + 1, sock:send(i .. "\n"))
            if i % 10 == 0 then cs.sleep(0) end
          end
        end)
        assert.is_true(cs.wait(writer))
        assert.is_true(cs.wait(reader))
        sock:close()
      end)
      for i = 1, n do assert.equal(tostring(i), got[i]) end
    end)
  end)

  describe("killing a thread blocked on a socket", function()
    it("in receive closes the socket entirely", function()
      local l, port = listener()
      local sock = cs.tcp()
      assert.equal(1, sock:connect("127.0.0.1", port))
      local conn = accept(l)
      local reader = cs.spawn(function() return sock:receive() end)
      assert.equal(1, cs.kill(reader))
      assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
      assert.same({ n = 2, nil, "closed" }, pack(sock:receive()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:close()))
      assert.equal("eof", (peer_state(conn)))
    end)

    it("in a receiveuntil iterator closes the socket entirely", function()
      local sock = connected("script", { "w", "abc" })
      local it = sock:receiveuntil("--")
      local reader = cs.spawn(function() return it() end)
      assert.equal(1, cs.kill(reader))
      assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
      assert.same({ n = 2, nil, "closed" }, pack(it()))
    end)

    it("in connect closes it, and the object can connect again", function()
      local full = helpers.start_fixture("full")
      defer(function() full:stop() end)
      local echo = helpers.start_fixture("echo")
      defer(function() echo:stop() end)
      local sock = cs.tcp()
      sock:settimeout(5000)
      local connector = cs.spawn(function() return sock:connect(full.host, full.port) end)
      assert.equal(1, cs.kill(connector))
      assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
      assert.same({ n = 2, nil, "closed" }, pack(sock:close()))
      assert.equal(1, sock:connect(echo.host, echo.port))
      assert.equal(3, sock:send("ok\n"))
      assert.equal("ok", sock:receive())
      assert.equal(1, sock:close())
    end)

    it("in send closes the socket entirely", function()
      local sock = connected("script", "n")
      sock:settimeout(5000)
      local writer = cs.spawn(function() return sock:send(("x"):rep(8 * 1024 * 1024)) end)
      assert.equal("running", cs.coroutine.status(writer))
      assert.equal(1, cs.kill(writer))
      assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
      assert.same({ n = 2, nil, "closed" }, pack(sock:receive()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:close()))
    end)

    it("inside a user coroutine of the thread closes the socket too", function()
      local sock = connected("script", { "p", 5000 })
      local reader = cs.spawn(function()
        local co = cs.coroutine.create(function() return sock:receive() end)
        return cs.coroutine.resume(co)
      end)
      assert.equal(1, cs.kill(reader))
      assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
    end)
  end)

  describe("ownership", function()
    it("a main socket works from a run() handler and from a timer (no 'bad request')", function()
      local sock = connected("echo")
      sock:settimeout(2000)
      local from_run = cs.run(function()
        assert.equal(4, sock:send("run\n"))
        return sock:receive()
      end)
      assert.equal("run", from_run)
      local from_timer
      cs.timer(0.001, function()
        assert.equal(6, sock:send("timer\n"))
        from_timer = sock:receive()
      end)
      cs.run()
      assert.equal("timer", from_timer)
      -- still open: it belongs to main, not to the handlers that used it
      assert.equal(5, sock:send("main\n"))
      assert.equal("main", sock:receive())
      assert.equal(1, sock:close())
    end)

    it("a run() socket works from a timer while the handler lives", function()
      local srv = helpers.start_fixture("echo")
      defer(function() srv:stop() end)
      local got = cs.run(function()
        local sock = cs.tcp()
        sock:settimeout(2000)
        assert.equal(1, sock:connect(srv.host, srv.port))
        local done = cs.semaphore(0)
        local r
        cs.timer(0.001, function()
          sock:send("from timer\n")
          r = sock:receive()
          done:post(1)
        end)
        assert.is_true(done:wait(2))
        return r
      end)
      assert.equal("from timer", got)
    end)

    it("a run() handler's sockets are closed when it ends", function()
      local l, port = listener()
      local a, b
      cs.run(function()
        a = cs.tcp()
        assert.equal(1, a:connect("127.0.0.1", port))
        cs.spawn(function()
          b = cs.tcp()
          assert.equal(1, b:connect("127.0.0.1", port))
          cs.sleep(0.01)
        end)
      end)
      local c1, c2 = accept(l), accept(l)
      assert.equal("eof", (peer_state(c1)))
      assert.equal("eof", (peer_state(c2)))
      assert.same({ n = 2, nil, "closed" }, pack(a:send("x")))
      assert.same({ n = 2, nil, "closed" }, pack(b:send("x")))
      assert.same({ n = 2, nil, "closed" }, pack(a:close()))
    end)

    it("a run() handler's sockets are closed when it fails", function()
      local l, port = listener()
      local a
      assert.has_error(function()
        cs.run(function()
          a = cs.tcp()
          assert.equal(1, a:connect("127.0.0.1", port))
          error("handler failed")
        end)
      end)
      local c = accept(l)
      assert.equal("eof", (peer_state(c)))
      assert.same({ n = 2, nil, "closed" }, pack(a:send("x")))
    end)

    it("a socket belongs to the handler that last connected it", function()
      local l, port = listener()
      local sock = cs.tcp()
      assert.equal(1, sock:connect("127.0.0.1", port))
      local c1 = accept(l)
      cs.run(function() assert.equal(1, sock:connect("127.0.0.1", port)) end)
      local c2 = accept(l)
      assert.equal("eof", (peer_state(c1)))
      assert.equal("eof", (peer_state(c2)))
      assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
      -- and back to main: it stays open after a handler ends
      assert.equal(1, sock:connect("127.0.0.1", port))
      local c3 = accept(l)
      cs.run(function() cs.sleep(0.001) end)
      assert.equal(2, sock:send("ok"))
      c3:settimeout(1)
      assert.equal("ok", c3:receive(2))
      sock:close()
    end)

    it("a main socket is closed when it is garbage-collected", function()
      local l, port = listener()
      local function open()
        local sock = cs.tcp()
        assert.equal(1, sock:connect("127.0.0.1", port))
      end
      open()
      local c = accept(l)
      collectgarbage()
      collectgarbage()
      assert.equal("eof", (peer_state(c)))
    end)

    it("is a plain table that takes user fields", function()
      local srv = helpers.start_fixture("echo")
      defer(function() srv:stop() end)
      local sock = cs.tcp()
      assert.equal("table", type(sock))
      sock.foo = 1
      sock.name = "upstream"
      assert.equal(1, sock.foo)
      assert.equal(1, sock:connect(srv.host, srv.port))
      assert.equal(1, sock.foo)
      assert.equal("upstream", sock.name)
      assert.equal("function", type(sock.send))
      assert.equal(cs.tcp().receive, sock.receive)
      assert.equal(3, sock:send("ok\n"))
      assert.equal("ok", sock:receive())
      sock:close()
      assert.equal(1, sock.foo)
    end)
  end)

  describe("coroutines", function()
    it("a user coroutine inside a light thread does socket calls", function()
      local srv = helpers.start_fixture("echo")
      defer(function() srv:stop() end)
      local results = cs.run(function()
        local sock = cs.tcp()
        sock:settimeout(2000)
        assert.equal(1, sock:connect(srv.host, srv.port))
        local co = cs.coroutine.create(function(text)
          assert.equal(#text, sock:send(text))
          local line = sock:receive()
          text = cs.coroutine.yield(line)
          sock:send(text)
          return sock:receive()
        end)
        local r = {}
        r[1] = { cs.coroutine.resume(co, "one\n") }
        r[2] = { cs.coroutine.resume(co, "two\n") }
        r[3] = cs.coroutine.status(co)
        local gen = cs.coroutine.wrap(function()
          for i = 1, 3 do
            sock:send(i .. "\n")
            cs.coroutine.yield(sock:receive())
          end
        end)
        r[4] = { gen(), gen(), gen() }
        sock:close()
        return r
      end)
      assert.same({ true, "one" }, results[1])
      assert.same({ true, "two" }, results[2])
      assert.equal("dead", results[3])
      assert.same({ "1", "2", "3" }, results[4])
    end)

    it("the main chunk and a coroutine resumed from it do socket calls", function()
      local sock = connected("echo")
      sock:settimeout(2000)
      local co = coroutine.create(function()
        sock:send("in coroutine\n")
        coroutine.yield(sock:receive())
        return "done"
      end)
      assert.same({ true, "in coroutine" }, { coroutine.resume(co) })
      sock:send("main\n")
      assert.equal("main", sock:receive())
      assert.same({ true, "done" }, { coroutine.resume(co) })
      local wrapped = cs.coroutine.wrap(function()
        sock:send("wrapped\n")
        return sock:receive()
      end)
      assert.equal("wrapped", wrapped())
      sock:close()
    end)

    it("main and a light thread use their own sockets at once", function()
      local srv = helpers.start_fixture("script")
      defer(function() srv:stop() end)
      local a, b = cs.tcp(), cs.tcp()
      a:settimeout(2000)
      b:settimeout(2000)
      assert.equal(1, a:connect(srv.host, srv.port))
      assert.equal(1, b:connect(srv.host, srv.port))
      a:send(helpers.script({ "p", 60 }, { "w", "a\n" }))
      b:send(helpers.script({ "p", 20 }, { "w", "b\n" }))
      local order = {}
      local t = cs.spawn(function()
        local line = b:receive()
        order[#order + 1] = line
      end)
      local line = a:receive()
      order[#order + 1] = line
      assert.is_true(cs.wait(t))
      assert.same({ "b", "a" }, order)
      a:close()
      b:close()
    end)
  end)

  it("resumes the threads one poll found readable in the order their data came in",
    function()
    local srv = helpers.fixture(defer, "echo")
    local function busy(s) -- no yield: the echoes arrive while nothing polls
      cs.update_time()
      local t0 = cs.now()
      repeat cs.update_time() until cs.now() - t0 >= s
    end
    local log = {}
    cs.run(function()
      local socks, ts = {}, {}
      for i = 1, 3 do
        socks[i] = cs.tcp()
        assert(socks[i]:connect(srv.host, srv.port))
      end
      for i = 1, 3 do
        ts[i] = cs.spawn(function()
          local line = assert(socks[i]:receive())
          log[#log + 1] = line
        end)
      end
      for i = 1, 3 do
        assert(socks[i]:send(i .. "\n"))
        busy(0.03)
      end
      for i = 1, 3 do assert(cs.wait(ts[i])) end
      for i = 1, 3 do socks[i]:close() end
    end)
    assert.same({ "1", "2", "3" }, log)
  end)

  it("1000 light threads each make 100 round trips on their own connection", function()
    local srv = helpers.start_fixture("echo")
    defer(function() srv:stop() end)
    local nthreads, rounds = helpers.scale(1000, 10), helpers.scale(100, 5)
    local ok, bad = 0, {}
    cs.run(function()
      for i = 1, nthreads do
        cs.spawn(function()
          local sock = cs.tcp()
          sock:settimeout(10000)
          local r, err = sock:connect(srv.host, srv.port)
          if not r then bad[#bad + 1] = "connect: " .. err; return end
          for j = 1, rounds do
            local msg = i .. ":" .. j
            local n, e1 = sock:send(msg .. "\n")
            local line, e2 = sock:receive()
            if n ~= #msg + 1 or line ~= msg then
              bad[#bad + 1] = string.format("%s: sent %s (%s), got %s (%s)", msg,
                tostring(n), tostring(e1), tostring(line), tostring(e2))
              return
            end
          end
          assert.equal(1, sock:close())
          ok = ok + 1
        end)
      end
    end)
    assert.same({}, { unpack(bad, 1, math.min(#bad, 5)) })
    assert.equal(nthreads, ok)
  end)

  it("gives every descriptor back", function()
    collectgarbage()
    collectgarbage()
    assert.equal(fds_at_start, fd_count())
  end)
end)
