-- cosocket.tcp() and sock:connect (SPEC.md 0.3-0.6, 1, 2, 7.2; DECISIONS.md 6):
-- argument handling, IPv4/IPv6/unix peers, ports in the host string,
-- timeouts, reconnects, and name resolution against the `dns` fixture (in
-- child processes: a resolver string cannot be unset in this state).
local cs = require "cosocket"
local helpers = require "helpers"

-- cleanups of the current test, run after it even when it fails (busted
-- keeps only the last function given to finally)
local defer, run_cleanups = helpers.cleanups()
after_each(run_cleanups)

local pack = helpers.pack

local fd_count = helpers.fd_count

local clock = helpers.clock

-- a port where nothing listens (a fixture that has just stopped)
local function dead_port()
  local srv = helpers.start_fixture("echo")
  local port = srv.port
  srv:stop()
  return port
end

-- one echo round trip: the connection really goes to an echo peer
local function roundtrip(sock, text)
  text = text or "ping\n"
  assert.equal(#text, sock:send(text))
  assert.equal(text:sub(1, -2), sock:receive())
end

-- a LuaSocket listener: its accepted connections show what the peer sees
local listener = helpers.listener

-- what the peer reads on an accepted connection within 1 s: "closed" at EOF
local function peer_sees(conn)
  conn:settimeout(1)
  local data, err, partial = conn:receive("*a")
  if data then return "closed", data end   -- LuaSocket: "closed" or *a's data at EOF
  return err, partial
end

describe("cosocket.tcp", function()
  it("takes no arguments and returns a plain table", function()
    assert.has_error(function() cs.tcp(1) end, "expecting zero arguments, but got 1")
    assert.has_error(function() cs.tcp(nil, nil) end, "expecting zero arguments, but got 2")
    local sock = cs.tcp()
    assert.equal("table", type(sock))
    assert.equal(1, select("#", cs.tcp()))
  end)

  it("is the very same function as cosocket.stream", function()
    assert.equal(cs.tcp, cs.stream)
  end)

  it("gives a fresh socket that is closed for every operation", function()
    local sock = cs.tcp()
    assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
    assert.same({ n = 2, nil, "closed" }, pack(sock:receive()))
    assert.same({ n = 2, nil, "closed" }, pack(sock:close()))
    assert.same({ n = 2, nil, "closed" }, pack(sock:getreusedtimes()))
  end)
end)

describe("sock:connect", function()
  it("returns exactly the integer 1 for an IPv4 peer", function()
    local srv = helpers.start_fixture("echo")
    defer(function() srv:stop() end)
    local sock = cs.tcp()
    assert.same({ n = 1, 1 }, pack(sock:connect("127.0.0.1", srv.port)))
    roundtrip(sock)
    assert.equal(1, sock:close())
  end)

  it("returns exactly 1 for an IPv6 literal in brackets", function()
    local srv = helpers.start_fixture("echo", { ipv6 = true })
    defer(function() srv:stop() end)
    local sock = cs.tcp()
    assert.same({ n = 1, 1 }, pack(sock:connect("[::1]", srv.port)))
    roundtrip(sock)
    sock:close()
  end)

  it("returns exactly 1 for a unix socket, whatever the case of the prefix", function()
    local srv = helpers.start_fixture("echo", { unix = true })
    defer(function() srv:stop() end)
    for _, prefix in ipairs { "unix:", "UNIX:", "Unix:" } do
      local sock = cs.tcp()
      assert.same({ n = 1, 1 }, pack(sock:connect(prefix .. srv.path)))
      roundtrip(sock)
      sock:close()
    end
    -- a second argument that is not a number is ignored for unix sockets
    local sock = cs.tcp()
    assert.same({ n = 1, 1 }, pack(sock:connect("unix:" .. srv.path, nil)))
    roundtrip(sock)
    sock:close()
  end)

  it("reports a refused connection and leaves the object closed", function()
    local port = dead_port()
    local sock = cs.tcp()
    assert.same({ n = 2, nil, "connection refused" }, pack(sock:connect("127.0.0.1", port)))
    assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
    assert.same({ n = 2, nil, "closed" }, pack(sock:receive()))
    assert.same({ n = 2, nil, "closed" }, pack(sock:close()))
  end)

  -- A connect to a loopback address is most often complete when connect()
  -- returns: cosocket asks again at once instead of waiting for epoll (the
  -- thread still yields, as ngx's does).  One whose SYN a full accept queue
  -- dropped waits for the kernel's retransmission (1 s) and is seen complete
  -- by epoll together with what the peer did meanwhile: readable too, so the
  -- outcome comes from SO_ERROR.
  for _, handshake in ipairs { "done at once", "waited for" } do
    describe("when the peer acts before the connect returns (handshake " .. handshake .. ")",
      function()
        -- a LuaSocket listener; for a handshake to wait for, with a queue of
        -- one (listen(0)) that a first connection fills
        local function peer_listener()
          if handshake == "done at once" then return listener(defer) end
          local socket = require "socket"
          local l = assert(socket.tcp())
          defer(function() l:close() end)
          assert(l:bind("127.0.0.1", 0))
          assert(l:listen(0))
          l:settimeout(3)
          local port = tonumber((select(2, l:getsockname())))
          local filler = assert(socket.connect("127.0.0.1", port))
          defer(function() filler:close() end)
          return l, port
        end

        -- a light thread connects (and yields); the peer acts in the main
        -- thread, which drives no loop until it waits
        local function connect_then(peer_act)
          local l, port = peer_listener()
          local returned = false
          local th = cs.spawn(function()
            local sock = cs.tcp()
            local ok, err = sock:connect("127.0.0.1", port)
            returned = true
            return ok, err, sock
          end)
          assert.is_false(returned, "the connect did not yield: the peer would act too late")
          if handshake == "waited for" then
            cs.sleep(0.1)
            assert.is_false(returned, "the connect did not wait for its handshake")
            helpers.accept(defer, l)   -- the filler's: room for the retransmitted SYN
          end
          local conn = helpers.accept(defer, l)
          peer_act(conn)
          local _, ok, err, sock = cs.wait(th)
          return ok, err, sock
        end

        it("connects and reads what the peer wrote at once", function()
          local ok, err, sock = connect_then(function(conn) conn:send("banner\n") end)
          assert.same({ 1, nil }, { ok, err })
          assert.equal("banner", sock:receive())
          sock:close()
        end)

        it("connects and then sees the peer's close", function()
          local ok, err, sock = connect_then(function(conn) conn:close() end)
          assert.same({ 1, nil }, { ok, err })
          assert.same({ n = 3, nil, "closed", "" }, pack(sock:receive()))
        end)
      end)
  end

  it("yields in a light thread even when the handshake is done at once", function()
    local l, port = listener(defer)
    local order = {}
    cs.run(function()
      cs.spawn(function()
        local sock = cs.tcp()
        assert.equal(1, sock:connect("127.0.0.1", port))
        order[#order + 1] = "connected"
        sock:close()
      end)
      order[#order + 1] = "parent"
    end)
    assert.same({ "parent", "connected" }, order)
    helpers.accept(defer, l)
  end)

  it("reports a missing unix socket file", function()
    local sock = cs.tcp()
    assert.same({ n = 2, nil, "no such file or directory" },
      pack(sock:connect("unix:/nonexistent/cosocket-spec.sock")))
    assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
  end)

  it("returns 'missing the port number' for a host without a port", function()
    local sock = cs.tcp()
    assert.same({ n = 2, nil, "missing the port number" }, pack(sock:connect("127.0.0.1")))
    assert.same({ n = 2, nil, "missing the port number" }, pack(sock:connect("127.0.0.1", nil)))
    assert.same({ n = 2, nil, "missing the port number" },
      pack(sock:connect("127.0.0.1", "http")))
    assert.same({ n = 2, nil, "missing the port number" },
      pack(sock:connect("127.0.0.1", {})))    -- an options table, not a port
  end)

  it("returns 'bad port number' for a port out of range", function()
    local sock = cs.tcp()
    assert.same({ n = 2, nil, "bad port number: 70000" }, pack(sock:connect("127.0.0.1", 70000)))
    assert.same({ n = 2, nil, "bad port number: -1" }, pack(sock:connect("127.0.0.1", -1)))
    assert.same({ n = 2, nil, "bad port number: 65536" },
      pack(sock:connect("127.0.0.1", "65536")))
  end)

  it("accepts a numeric string port and truncates a fractional one", function()
    local srv = helpers.start_fixture("echo")
    defer(function() srv:stop() end)
    local sock = cs.tcp()
    assert.same({ n = 1, 1 }, pack(sock:connect("127.0.0.1", tostring(srv.port))))
    roundtrip(sock)
    assert.same({ n = 1, 1 }, pack(sock:connect("127.0.0.1", srv.port + 0.7)))
    roundtrip(sock)
    sock:close()
  end)

  it("uses the port in the host string over the port argument", function()
    local srv = helpers.start_fixture("echo")
    defer(function() srv:stop() end)
    local port = dead_port()
    local sock = cs.tcp()
    assert.same({ n = 1, 1 }, pack(sock:connect("127.0.0.1:" .. srv.port, port)))
    roundtrip(sock)
    local srv6 = helpers.start_fixture("echo", { ipv6 = true })
    defer(function() srv6:stop() end)
    assert.same({ n = 1, 1 }, pack(sock:connect("[::1]:" .. srv6.port, port)))
    roundtrip(sock)
    sock:close()
  end)

  it("connects each literal to its own address, one connect after another", function()
    -- a literal's lookup is made from the memory the last one left: what
    -- the last connect held must not show through
    local l4, p4 = listener(defer)
    local l6 = assert(require("socket").bind("::1", 0))
    defer(function() l6:close() end)
    l6:settimeout(2)
    local _, p6 = l6:getsockname()
    p6 = tonumber(p6)
    for _ = 1, 3 do
      for _, peer in ipairs { { "[::1]", p6, l6 }, { "127.0.0.1", p4, l4 },
                              { "localhost", p4, l4 } } do
        local sock = cs.tcp()
        assert.same({ n = 1, 1 }, pack(sock:connect(peer[1], peer[2])))
        local conn = helpers.accept(defer, peer[3])
        assert.equal(2, sock:send(peer[1]:sub(1, 2)))
        conn:settimeout(1)
        assert.equal(peer[1]:sub(1, 2), conn:receive(2))
        sock:close()
      end
    end
  end)

  it("fails to parse an unbracketed IPv6 address or a bracket left open", function()
    local sock = cs.tcp()
    assert.same({ n = 2, nil, 'failed to parse host name "::1": invalid port' },
      pack(sock:connect("::1", 80)))
    assert.same({ n = 2, nil, 'failed to parse host name "[::1": invalid host' },
      pack(sock:connect("[::1", 80)))
    assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
  end)

  it("connects to localhost without asking DNS", function()
    local srv = helpers.start_fixture("echo")
    defer(function() srv:stop() end)
    local sock = cs.tcp()
    assert.same({ n = 1, 1 }, pack(sock:connect("localhost", srv.port)))
    roundtrip(sock)
    assert.same({ n = 1, 1 }, pack(sock:connect("LocalHost", srv.port)))
    roundtrip(sock)
    sock:close()
  end)

  describe("with a connect timeout", function()
    local srv
    before_each(function() srv = helpers.start_fixture("full") end)
    after_each(function() srv:stop() end)

    it("from settimeout, returns nil, 'timeout' after about that time, closed", function()
      local sock = cs.tcp()
      sock:settimeout(100)
      local t0 = clock()
      assert.same({ n = 2, nil, "timeout" }, pack(sock:connect("127.0.0.1", srv.port)))
      local elapsed = clock() - t0
      assert.is_true(elapsed >= 0.09, "too early: " .. elapsed)
      assert.is_true(elapsed < 1, "too late: " .. elapsed)
      assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
      assert.same({ n = 2, nil, "closed" }, pack(sock:receive()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:close()))
    end)

    it("from settimeouts, uses the first (connect) value only", function()
      local sock = cs.tcp()
      sock:settimeouts(80, 5000, 5000)
      local t0 = clock()
      assert.same({ n = 2, nil, "timeout" }, pack(sock:connect("127.0.0.1", srv.port)))
      local elapsed = clock() - t0
      assert.is_true(elapsed >= 0.07 and elapsed < 1, "elapsed " .. elapsed)
      sock:settimeouts(150, 10, 10)   -- send and read timeouts do not bound a connect
      t0 = clock()
      assert.same({ n = 2, nil, "timeout" }, pack(sock:connect("127.0.0.1", srv.port)))
      elapsed = clock() - t0
      assert.is_true(elapsed >= 0.14 and elapsed < 1, "elapsed " .. elapsed)
      assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
    end)

    it("falls back to the configured default when the object has none", function()
      local saved = cs.configure().connect_timeout
      defer(function() cs.configure { connect_timeout = saved } end)
      cs.configure { connect_timeout = 70 }
      local sock = cs.tcp()
      local t0 = clock()
      assert.same({ n = 2, nil, "timeout" }, pack(sock:connect("127.0.0.1", srv.port)))
      local elapsed = clock() - t0
      assert.is_true(elapsed >= 0.06 and elapsed < 1, "elapsed " .. elapsed)
    end)
  end)

  describe("on an object that is already connected", function()
    it("closes the old connection outright and makes a new one", function()
      local srv = helpers.start_fixture("script")
      defer(function() srv:stop() end)
      local sock = cs.tcp()
      assert.equal(1, sock:connect("127.0.0.1", srv.port))
      sock:send(helpers.script("a"))
      assert.equal("1", sock:receive())
      assert.same({ n = 1, 1 }, pack(sock:connect("127.0.0.1", srv.port)))
      sock:send(helpers.script("a"))
      assert.equal("2", sock:receive())
      sock:close()
    end)

    it("the old peer sees EOF", function()
      local l, port = listener()
      defer(function() l:close() end)
      local sock = cs.tcp()
      assert.equal(1, sock:connect("127.0.0.1", port))
      local old = helpers.accept(defer, l)
      assert.equal(1, sock:connect("127.0.0.1", port))
      local new = helpers.accept(defer, l)
      assert.equal("closed", (peer_sees(old)))
      assert.equal(3, sock:send("new"))
      new:settimeout(1)
      assert.equal("new", new:receive(3))
      sock:close()
      assert.equal("closed", (peer_sees(new)))
    end)

    it("can be connected again after a close or a failure", function()
      local srv = helpers.start_fixture("echo")
      defer(function() srv:stop() end)
      local sock = cs.tcp()
      assert.equal(1, sock:connect("127.0.0.1", srv.port))
      assert.equal(1, sock:close())
      assert.same({ n = 1, 1 }, pack(sock:connect("127.0.0.1", srv.port)))
      roundtrip(sock)
      assert.same({ nil, "connection refused" }, { sock:connect("127.0.0.1", dead_port()) })
      assert.same({ n = 1, 1 }, pack(sock:connect("127.0.0.1", srv.port)))
      roundtrip(sock)
      sock:close()
    end)
  end)

  describe("argument errors", function()
    it("raises for a wrong number of arguments", function()
      local sock = cs.tcp()
      assert.has_error(function() sock:connect() end,
        "ngx.socket connect: expecting 2, 3, or 4 arguments (including the object), but seen 1")
      assert.has_error(function() sock:connect("127.0.0.1", 1, {}, 4) end,
        "ngx.socket connect: expecting 2, 3, or 4 arguments (including the object), but seen 5")
      assert.has_error(function() sock.connect() end,
        "ngx.socket connect: expecting 2, 3, or 4 arguments (including the object), but seen 0")
    end)

    it("raises luaL_checklstring's error for a host that is not a string", function()
      local sock = cs.tcp()
      assert.has_error(function() sock:connect(nil, 80) end,
        "bad argument #1 to 'connect' (string expected, got nil)")
      assert.has_error(function() sock:connect({}, 80) end,
        "bad argument #1 to 'connect' (string expected, got table)")
      assert.has_error(function() sock:connect(true) end,
        "bad argument #1 to 'connect' (string expected, got boolean)")
    end)

    it("raises for a bad options table, naming the table's argument", function()
      local sock = cs.tcp()
      assert.has_error(function() sock:connect("127.0.0.1", 80, { pool_size = 0 }) end,
        'bad argument #3 to \'connect\' (bad "pool_size" option value: 0)')
      assert.has_error(function() sock:connect("127.0.0.1", 80, { pool_size = -3 }) end,
        'bad argument #3 to \'connect\' (bad "pool_size" option value: -3)')
      assert.has_error(function() sock:connect("127.0.0.1", 80, { pool_size = "x" }) end,
        'bad argument #3 to \'connect\' (bad "pool_size" option type: string)')
      assert.has_error(function() sock:connect("127.0.0.1", 80, { backlog = -1 }) end,
        'bad argument #3 to \'connect\' (bad "backlog" option value: -1)')
      assert.has_error(function() sock:connect("127.0.0.1", 80, { pool = {} }) end,
        'bad argument #3 to \'connect\' (bad "pool" option type: table)')
      assert.has_error(function() sock:connect("unix:/nowhere", { pool = true }) end,
        'bad argument #2 to \'connect\' (bad "pool" option type: boolean)')
      assert.has_error(function() sock:connect("unix:/nowhere", { pool_size = 0 }) end,
        'bad argument #2 to \'connect\' (bad "pool_size" option value: 0)')
    end)

    it("accepts good options and ignores a non-table fourth argument", function()
      local srv = helpers.start_fixture("echo")
      defer(function() srv:stop() end)
      local sock = cs.tcp()
      assert.same({ n = 1, 1 }, pack(sock:connect("127.0.0.1", srv.port,
        { pool = "p1", pool_size = 2, backlog = 0 })))
      roundtrip(sock)
      assert.same({ n = 1, 1 }, pack(sock:connect("127.0.0.1", srv.port, { pool = 12 })))
      roundtrip(sock)
      assert.same({ n = 1, 1 }, pack(sock:connect("127.0.0.1", srv.port,
        { backlog = "not a number" })))
      roundtrip(sock)
      assert.same({ n = 1, 1 }, pack(sock:connect("127.0.0.1", srv.port, "ignored")))
      roundtrip(sock)
      sock:close()
    end)
  end)
end)

describe("cosocket.connect", function()
  it("returns the connected socket", function()
    local srv = helpers.start_fixture("echo")
    defer(function() srv:stop() end)
    local r = pack(cs.connect("127.0.0.1", srv.port))
    assert.equal(1, r.n)
    local sock = r[1]
    assert.equal("table", type(sock))
    roundtrip(sock)
    assert.equal(1, sock:close())
    local usrv = helpers.start_fixture("echo", { unix = true })
    defer(function() usrv:stop() end)
    sock = assert(cs.connect("unix:" .. usrv.path, { pool = "u" }))
    roundtrip(sock)
    sock:close()
  end)

  it("returns nil and the error of connect", function()
    assert.same({ n = 2, nil, "connection refused" }, pack(cs.connect("127.0.0.1", dead_port())))
    assert.same({ n = 2, nil, "no such file or directory" },
      pack(cs.connect("unix:/nonexistent/cosocket-spec.sock")))
    assert.same({ n = 2, nil, "missing the port number" }, pack(cs.connect("127.0.0.1")))
    assert.same({ n = 2, nil, "bad port number: 70000" }, pack(cs.connect("127.0.0.1", 70000)))
  end)
end)

-- Name resolution: each case runs in a child with the resolver pointed at the
-- `dns` fixture; the child prints one line per connect.
describe("sock:connect with a name", function()
  local dns, echo
  before_each(function()
    dns = helpers.start_fixture("dns")
    echo = helpers.start_fixture("echo")
  end)
  after_each(function()
    dns:stop()
    echo:stop()
  end)

  -- runs `body` in a child: `connect(host, port)` prints one result line
  -- ("ok", or the error and the time taken when `timed`)
  local function child(body, timeout_ms)
    local code = string.format([[
local cs = require "cosocket"
cs.configure { resolver = "127.0.0.1:%d", resolver_timeout = %d }
local function now() cs.update_time(); return cs.now() end
local function connect(host, port, timed)
  local sock = cs.tcp()
  sock:settimeout(2000)
  local t0 = now()
  local ok, err = sock:connect(host, port)
  local took = now() - t0
  if ok then
    assert(sock:send("ping\n") == 5)
    local line = sock:receive()
    io.write(line == "ping" and "ok" or ("bad echo " .. tostring(line)))
    sock:close()
  else
    io.write(tostring(ok), " ", tostring(err))
    local again = { sock:send("x") }
    if again[2] ~= "closed" then io.write(" (not closed)") end
  end
  if timed then io.write(string.format(" %%.3f", took)) end
  io.write("\n")
end
%s
]], dns.port, timeout_ms or 1000, body)
    local out, err, status = helpers.run_lua(code, 10)
    assert.equal(0, status, err)
    return out
  end

  it("connects to the address of an A record", function()
    local out = child(string.format('connect("v4.test", %d)\nconnect("V4.TEST", %d)',
      echo.port, echo.port))
    assert.equal("ok\nok\n", out)
  end)

  it("reports NXDOMAIN, SERVFAIL and REFUSED with nginx's codes", function()
    local out = child([[
connect("nx.test", 80)
connect("servfail.test", 80)
connect("refused.test", 80)
connect("nodata.test", 80)
]])
    assert.equal(table.concat({
      "nil nx.test could not be resolved (3: Host not found)",
      "nil servfail.test could not be resolved (2: Server failure)",
      "nil refused.test could not be resolved (5: Operation refused)",
      "nil nodata.test could not be resolved (3: Host not found)",
    }, "\n") .. "\n", out)
  end)

  it("reports a silent server as 110: Operation timed out within a bounded time", function()
    local out = child('connect("silent.test", 80, true)', 200)
    local msg, took = out:match("^(.-) ([%d.]+)\n$")
    assert.equal("nil silent.test could not be resolved (110: Operation timed out)", msg)
    took = tonumber(took)
    assert.is_true(took >= 0.15 and took < 3, "took " .. tostring(took))
  end)

  -- A lookup in flight through a configure{}: it ends as it would have.
  -- Before, the next lookup remade the resolver after any configure{}, and
  -- the one in flight was dropped: its connect ended at its own timeout with
  -- "16: Unknown error".
  for _, case in ipairs {
    { "that leaves the resolver as it was",
      "cs.configure {}\ncs.configure { connect_timeout = 3000 }" },
    { "that changes the resolver (for later lookups)",
      "cs.configure { resolver_timeout = 2000 }" },
  } do
    it("ends a lookup in flight on its own through a configure{} " .. case[1], function()
      local out = child(string.format([[
local slow = cs.spawn(function() connect("silent.test", 80) end)
cs.sleep(0.05) -- its query is out
%s
connect("v4.test", %d)
assert(cs.wait(slow))
]], case[2], echo.port), 300)
      assert.equal("ok\nnil silent.test could not be resolved (110: Operation timed out)\n", out)
    end)
  end

  it("leaves no descriptor once the lookups of a replaced resolver have ended", function()
    helpers.configure(defer, { resolver = "127.0.0.1:" .. dns.port, resolver_timeout = 300 })
    local fd0 = helpers.fd_count()
    local results
    cs.run(function()
      local slow = cs.spawn(function()
        local sock = cs.tcp()
        sock:settimeout(2000)
        return sock:connect("silent.test", 80)
      end)
      cs.sleep(0.05)                                 -- its query is out
      helpers.configure(defer, { resolver_timeout = 2000 })
      local sock = cs.tcp()
      sock:settimeout(2000)
      assert.equal(1, sock:connect("v4.test", echo.port))
      sock:close()
      results = { cs.wait(slow) }
      -- both resolvers asked; c-ares closes a socket once no lookup of its
      -- is pending (that the replaced one is then freed, no test sees)
      helpers.wait_for(function() return helpers.fd_count() == fd0 end, 2)
    end)
    assert.same({ true, nil, "silent.test could not be resolved (110: Operation timed out)" },
      results)
    assert.equal(fd0, helpers.fd_count())
  end)

  it("falls back to the next address when the first one refuses", function()
    -- two.test: 127.0.0.2 then 127.0.0.1; only 127.0.0.1 listens on the port
    local out = child(string.format('connect("two.test", %d)', echo.port))
    assert.equal("ok\n", out)
  end)

  it("never asks DNS for localhost or a name under .localhost", function()
    local before = helpers.dns_count(dns)
    local out = child(string.format(
      'connect("localhost", %d)\nconnect("x.localhost", %d)\nconnect("a.b.LOCALHOST", %d)',
      echo.port, echo.port, echo.port))
    -- the stub would have answered NXDOMAIN for these names
    assert.equal("ok\nok\nok\n", out)
    assert.equal(before, helpers.dns_count(dns))
    -- and the counter does count a real lookup
    out = child(string.format('connect("count.test", %d)', echo.port))
    assert.equal("ok\n", out)
    assert.is_true(helpers.dns_count(dns) > before)
  end)

  it("never asks DNS for an IP literal", function()
    local out = child(string.format('connect("127.0.0.1", %d)', echo.port))
    assert.equal("ok\n", out)
  end)
end)

describe("descriptors", function()
  it("are all given back after failing and succeeding connects", function()
    local srv = helpers.start_fixture("echo")
    defer(function() srv:stop() end)
    local full = helpers.start_fixture("full")
    defer(function() full:stop() end)
    local usrv = helpers.start_fixture("echo", { unix = true })
    defer(function() usrv:stop() end)
    local port = dead_port()
    collectgarbage()
    collectgarbage()
    local before = fd_count()
    for i = 1, 20 do
      local sock = cs.tcp()
      assert.same({ nil, "connection refused" }, { sock:connect("127.0.0.1", port) })
      assert.same({ nil, "no such file or directory" },
        { sock:connect("unix:/nonexistent/cosocket-spec.sock") })
      assert.same({ nil, "bad port number: 70000" }, { sock:connect("127.0.0.1", 70000) })
      assert.equal(1, sock:connect("127.0.0.1", srv.port))
      assert.equal(1, sock:connect("unix:" .. usrv.path))   -- closes the TCP one
      if i % 2 == 0 then sock:close() end                   -- the others: GC
      if i <= 2 then
        sock:settimeout(20)
        assert.same({ nil, "timeout" }, { sock:connect("127.0.0.1", full.port) })
      end
      local s2 = cs.connect("127.0.0.1", srv.port)
      roundtrip(s2)
    end
    collectgarbage()
    collectgarbage()
    assert.equal(before, fd_count())
  end)
end)

-- A socket's state has a finalizer only while it holds something (a
-- connection, memory, a place in a pool): it gets one back whenever it
-- takes something again.
describe("a socket dropped without close", function()
  it("is closed by the GC after connecting again past a close or a pooling", function()
    local l, port = listener(defer)
    collectgarbage()
    collectgarbage()
    local before = fd_count()
    local sock = cs.tcp()
    assert.equal(1, sock:connect("127.0.0.1", port))
    local first = helpers.accept(defer, l)
    assert.equal(1, sock:close())                    -- holds nothing now
    assert.equal(1, sock:connect("127.0.0.1", port))
    local second = helpers.accept(defer, l)
    sock = nil -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    assert.equal("closed", (peer_sees(second)))

    sock = cs.tcp()
    assert.equal(1, sock:connect("127.0.0.1", port))
    local third = helpers.accept(defer, l)
    assert.equal(1, sock:setkeepalive())             -- holds nothing now
    assert.equal(1, sock:connect("127.0.0.1", port)) -- the pooled one
    assert.equal(1, sock:getreusedtimes())
    sock = nil -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    assert.equal("closed", (peer_sees(third)))
    first:close()
    second:close()
    third:close()
    assert.equal(before, fd_count())
  end)

  it("leaves its pooled connection to the next socket", function()
    local l, port = listener(defer)
    local sock = cs.tcp()
    assert.equal(1, sock:connect("127.0.0.1", port))
    local conn = helpers.accept(defer, l)
    assert.equal(1, sock:setkeepalive())
    sock = nil -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    local again = cs.tcp()
    assert.equal(1, again:connect("127.0.0.1", port))
    assert.equal(1, again:getreusedtimes())
    assert.equal(4, again:send("mine"))
    conn:settimeout(1)
    assert.equal("mine", conn:receive(4))
    again:close()
  end)

  -- the C memory they kept is freed by their finalizers: what one never
  -- gave back is a leak only make asan and make valgrind report; here, the
  -- states must at least be collected
  it("frees what bind and setclientcert kept before any connect (asan, valgrind)", function()
    local bound, certified = cs.tcp(), cs.tcp()
    assert.is_true(bound:bind("127.0.0.1"))
    assert.is_true(certified:setclientcert("not a certificate", "not a key"))
    local states = setmetatable({ rawget(bound, 1), rawget(certified, 1) }, { __mode = "v" })
    bound, certified = nil, nil -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    assert.is_nil(states[1])
    assert.is_nil(states[2])
  end)
end)

-- The small methods of SPEC.md 7.1, 7.2, 7.5, 7.6 (0.10.23's texts).
describe("socket methods", function()
  it("close takes no arguments and returns 1, then closed", function()
    local srv = helpers.start_fixture("echo")
    defer(function() srv:stop() end)
    local sock = cs.tcp()
    assert.equal(1, sock:connect(srv.host, srv.port))
    assert.has_error(function() sock:close(1) end,
      "expecting 1 argument (including the object) but seen 2")
    assert.same({ n = 1, 1 }, pack(sock:close()))
    assert.same({ n = 2, nil, "closed" }, pack(sock:close()))
  end)

  it("settimeout and settimeouts check their arguments and return nothing", function()
    local sock = cs.tcp()
    assert.has_error(function() sock:settimeout() end,
      "ngx.socket settimeout: expecting 2 arguments (including the object) but seen 1")
    assert.has_error(function() sock:settimeout(1, 2) end,
      "ngx.socket settimeout: expecting 2 arguments (including the object) but seen 3")
    -- 0.10.23 names settimeout in the settimeouts message too
    assert.has_error(function() sock:settimeouts(1, 2) end,
      "ngx.socket settimeout: expecting 4 arguments (including the object) but seen 3")
    assert.has_error(function() sock:settimeout(-1) end, "bad timeout value")
    assert.has_error(function() sock:settimeout(2 ^ 31) end, "bad timeout value")
    assert.has_error(function() sock:settimeouts(1, -1, 1) end, "bad timeout value")
    assert.equal(0, select("#", sock:settimeout(100)))
    assert.equal(0, select("#", sock:settimeout(nil)))
    assert.equal(0, select("#", sock:settimeout("x")))
    assert.equal(0, select("#", sock:settimeouts(1, 2, 3)))
    assert.equal(0, select("#", sock:settimeouts(0, nil, "1")))
  end)

  it("a timeout set before connect survives reconnects", function()
    local srv = helpers.start_fixture("script")
    defer(function() srv:stop() end)
    local sock = cs.tcp()
    sock:settimeouts(1000, 1000, 40)
    for _ = 1, 2 do
      assert.equal(1, sock:connect(srv.host, srv.port))
      sock:send(helpers.script({ "p", 2000 }))
      local t0 = clock()
      assert.same({ nil, "timeout", "" }, { sock:receive() })
      assert.is_true(clock() - t0 < 1)
    end
    sock:close()
  end)

  it("getreusedtimes is 0 for a new connection, closed otherwise", function()
    local srv = helpers.start_fixture("echo")
    defer(function() srv:stop() end)
    local sock = cs.tcp()
    assert.same({ n = 2, nil, "closed" }, pack(sock:getreusedtimes()))
    assert.equal(1, sock:connect(srv.host, srv.port))
    assert.same({ n = 1, 0 }, pack(sock:getreusedtimes()))
    sock:close()
    assert.same({ n = 2, nil, "closed" }, pack(sock:getreusedtimes()))
  end)

  it("setoption and getoption work on a connection, with ngx's errors", function()
    local srv = helpers.start_fixture("echo")
    defer(function() srv:stop() end)
    local sock = cs.tcp()
    assert.has_error(function() sock:setoption("keepalive", true) end,
      "socket is never created nor connected")
    assert.has_error(function() sock:getoption("keepalive") end,
      "socket is never created nor connected")
    assert.equal(1, sock:connect(srv.host, srv.port))
    assert.same({ n = 1, true }, pack(sock:setoption("keepalive", true)))
    assert.same({ n = 1, 1 }, pack(sock:getoption("keepalive")))
    assert.same({ n = 1, true }, pack(sock:setoption("keepalive", 0)))
    assert.same({ n = 1, 0 }, pack(sock:getoption("keepalive")))
    assert.same({ n = 1, true }, pack(sock:setoption("tcp-nodelay", 1)))
    assert.same({ n = 1, 1 }, pack(sock:getoption("tcp-nodelay")))
    assert.same({ n = 1, true }, pack(sock:setoption("sndbuf", 65536)))
    assert.is_true(sock:getoption("sndbuf") >= 65536)       -- the kernel doubles it
    assert.same({ n = 1, true }, pack(sock:setoption("rcvbuf", 32768)))
    local rcv = sock:getoption("rcvbuf")
    assert.is_true(rcv >= 32768 and rcv < 4 * 65536, "rcvbuf " .. rcv)  -- not swapped
    assert.same({ n = 2, nil, 'missing the "option" argument' }, pack(sock:getoption()))
    assert.same({ n = 2, nil, 'missing the "value" argument' }, pack(sock:setoption("keepalive")))
    assert.same({ n = 2, nil, "unsupported option foo" }, pack(sock:setoption("foo", 1)))
    assert.same({ n = 2, nil, "unsupported option foo" }, pack(sock:getoption("foo")))
    sock:close()
    assert.same({ n = 2, nil, "closed" }, pack(sock:getoption("keepalive")))
  end)

  -- ngx switches TCP_NODELAY on at the first send; a small first send
  -- leaves it due (Nagle cannot hold it back), but no call sees the difference
  it("TCP_NODELAY is on after the first send, and a value set after it stays", function()
    local srv = helpers.start_fixture("echo")
    defer(function() srv:stop() end)
    for _, first in ipairs { "x", string.rep("x", 600) } do
      local sock = cs.tcp()
      assert.equal(1, sock:connect(srv.host, srv.port))
      assert.same({ n = 1, true }, pack(sock:setoption("tcp-nodelay", 0)))
      assert.same({ n = 1, 0 }, pack(sock:getoption("tcp-nodelay")))
      assert.equal(#first, sock:send(first))
      assert.same({ n = 1, 1 }, pack(sock:getoption("tcp-nodelay")))
      sock:close()
      sock = cs.tcp()
      assert.equal(1, sock:connect(srv.host, srv.port))
      assert.equal(#first, sock:send(first))
      assert.same({ n = 1, true }, pack(sock:setoption("tcp-nodelay", 0)))
      assert.equal(1, sock:send("y"))
      assert.equal(1, sock:send({ "z" }))
      assert.same({ n = 1, 0 }, pack(sock:getoption("tcp-nodelay")))
      sock:close()
    end
  end)

  it("bind checks its arguments and sets the local address of the next connect", function()
    local sock = cs.tcp()
    assert.has_error(function() sock:bind() end, "expecting 2 arguments, but got 1") -- 0.10.23
    assert.same({ n = 2, nil, "bad address" }, pack(sock:bind("localhost")))
    assert.same({ n = 2, nil, "bad port number: 70000" }, pack(sock:bind("127.0.0.1", 70000)))
    assert.same({ n = 2, nil, "expecting port to be anumber but got type: string" },
      pack(sock:bind("127.0.0.1", "x")))
    assert.same({ n = 1, true }, pack(sock:bind("127.0.0.2")))
    local l, port = listener()
    defer(function() l:close() end)
    assert.equal(1, sock:connect("127.0.0.1", port))
    local conn = helpers.accept(defer, l)
    assert.equal("127.0.0.2", (conn:getpeername()))
    sock:close()
  end)
end)
