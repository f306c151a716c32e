-- sock:receive and sock:receiveany (SPEC.md 5, 7.4; ngx_lua 0.10.23 wording
-- for argument errors, DECISIONS.md 1). Peers are `script` fixtures; every
-- path that waits runs twice: once against a peer writing each piece in one
-- write, once against one dribbling it a byte per write (`d:`).
local cs = require "cosocket"
local helpers = require "helpers"

local pack = helpers.pack
local unpack = helpers.unpack

local clock = helpers.clock

-- a socket connected to a new `script` fixture, the script sent
local function scripted(...) return helpers.scripted(finally, ...) end

-- defines the test twice: fn(kind) gets "w" (one write per piece) or "d"
-- (the same bytes dribbled one per write)
local function each_peer(text, fn) helpers.each_peer(it, text, fn) end

describe("sock:receive", function()
  describe("in line mode", function()
    each_peer("returns each line without its LF and without any CR", function(kind)
      local sock = scripted({ kind, "li\r\rne\r\n\r\nplain\n\n" }, { kind, "last-no-newline" }, "c")
      sock:settimeout(2000)
      assert.same({ n = 1, "line" }, pack(sock:receive("*l")))
      assert.same({ n = 1, "" }, pack(sock:receive()))       -- "\r\n": an empty line
      assert.same({ n = 1, "plain" }, pack(sock:receive()))  -- the default is "*l"
      assert.same({ n = 1, "" }, pack(sock:receive("*l")))
      assert.same({ n = 3, nil, "closed", "last-no-newline" }, pack(sock:receive()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:receive()))
    end)

    each_peer("gives an empty partial for a lone CR before EOF", function(kind)
      local sock = scripted({ kind, "\r" }, "c")
      sock:settimeout(2000)
      assert.same({ n = 3, nil, "closed", "" }, pack(sock:receive()))
    end)

    each_peer("drops CRs from the partial line at EOF", function(kind)
      local sock = scripted({ kind, "a\rb\r" }, "c")
      sock:settimeout(2000)
      assert.same({ n = 3, nil, "closed", "ab" }, pack(sock:receive("*l")))
    end)

    it("reads a line much longer than one buffer", function()
      local long = ("0123456789abcdef"):rep(8192)          -- 128 KiB
      local sock = scripted({ "w", long .. "\r\nnext\n" }, "c")
      sock:settimeout(2000)
      assert.equal(long, sock:receive())
      assert.equal("next", sock:receive())
    end)
  end)

  describe("in read-all mode", function()
    each_peer("returns everything up to EOF, CRs included", function(kind)
      local sock = scripted({ kind, "abc\r\ndef" }, { kind, "\r\nend" }, "c")
      sock:settimeout(2000)
      assert.same({ n = 1, "abc\r\ndef\r\nend" }, pack(sock:receive("*a")))
    end)

    it("returns an empty string when nothing came before EOF", function()
      local sock = scripted("c")
      sock:settimeout(2000)
      assert.same({ n = 1, "" }, pack(sock:receive("*a")))
    end)

    each_peer("succeeds again at EOF; another mode then gives closed once with data", function(kind)
      local sock = scripted({ kind, "first\nrest" }, "c")
      sock:settimeout(2000)
      assert.equal("first", sock:receive())
      assert.same({ n = 1, "rest" }, pack(sock:receive("*a")))
      assert.same({ n = 1, "" }, pack(sock:receive("*a")))
      assert.same({ n = 1, "" }, pack(sock:receive("*a")))
      assert.same({ n = 3, nil, "closed", "" }, pack(sock:receive("*l")))
      assert.same({ n = 2, nil, "closed" }, pack(sock:receive("*a")))
      assert.same({ n = 2, nil, "closed" }, pack(sock:receive(1)))
    end)

    it("after EOF success, a size read gives closed with no partial", function()
      local sock = scripted("c")
      sock:settimeout(2000)
      assert.equal("", sock:receive("*a"))
      assert.same({ n = 3, nil, "closed", "" }, pack(sock:receive(3)))
      assert.same({ n = 2, nil, "closed" }, pack(sock:receive()))
    end)
  end)

  describe("in size mode", function()
    each_peer("returns exactly the number of bytes asked", function(kind)
      local sock = scripted({ kind, "12345678" }, "c")
      sock:settimeout(2000)
      assert.same({ n = 1, "12" }, pack(sock:receive("2")))     -- a numeric string
      assert.same({ n = 1, "3" }, pack(sock:receive(1.7)))      -- truncated
      assert.same({ n = 1, "4567" }, pack(sock:receive(4)))
      assert.same({ n = 3, nil, "closed", "8" }, pack(sock:receive(5)))
      assert.same({ n = 2, nil, "closed" }, pack(sock:receive(1)))
    end)

    each_peer("reports EOF before the size with the bytes that came", function(kind)
      local sock = scripted({ kind, "f" }, "c")
      sock:settimeout(2000)
      assert.same({ n = 3, nil, "closed", "f" }, pack(sock:receive(5)))
    end)

    it("returns an empty string for 0 without any I/O", function()
      local sock = scripted({ "p", 2000 }, { "w", "x" })
      sock:settimeout(1000)
      local t0 = clock()
      assert.same({ n = 1, "" }, pack(sock:receive(0)))
      assert.same({ n = 1, "" }, pack(sock:receive("0")))
      assert.same({ n = 1, "" }, pack(sock:receive(0.9)))
      assert.same({ n = 1, "" }, pack(sock:receive(-0.5)))   -- truncated to 0
      assert.is_true(clock() - t0 < 0.5)
    end)

    it("reads 4 MiB written in many chunks", function()
      local chunk, n = 256 * 1024, helpers.scale(16, 2)
      local base = {}
      local x = 12345
      for i = 1, chunk do
        x = (x * 1103515245 + 12345) % 2147483648
        base[i] = string.char(math.floor(x / 65536) % 256)
      end
      base = table.concat(base)
      local hex = (base:gsub(".", function(c) return string.format("%02x", c:byte()) end))
      local parts, line = {}, {}
      for i = 1, n do            -- chunk i is the base rotated by 7 * i bytes
        local r = 7 * i
        parts[i] = base:sub(r + 1) .. base:sub(1, r)
        line[i] = "w:" .. hex:sub(2 * r + 1) .. hex:sub(1, 2 * r)
      end
      line[#line + 1] = "c"
      local srv = helpers.start_fixture("script")
      finally(function() srv:stop() end)
      local sock = cs.tcp()
      sock:settimeout(5000)
      assert.equal(1, sock:connect(srv.host, srv.port))
      assert(sock:send(table.concat(line, " ") .. "\n"))
      local data = sock:receive(n * chunk)
      assert.is_string(data)
      assert.equal(n * chunk, #data)
      assert.is_true(data == table.concat(parts), "the data differs")
      assert.same({ n = 1, "" }, pack(sock:receive("*a")))
    end)
  end)

  describe("argument checks", function()
    it("raises for more than one argument", function()
      local sock = scripted()
      assert.has_error(function() sock:receive(1, 2) end,
        "expecting 1 or 2 arguments (including the object), but got 3")
    end)

    it("raises 0.10.23's 'bad pattern argument' errors", function()
      local sock = scripted()
      local cases = {
        { -1, "bad pattern argument" },
        { "-3", "bad pattern argument" },
        { "*x", "bad pattern argument" },
        { "*L", "bad pattern argument" },
        { "l", "bad pattern argument: l" },
        { "a", "bad pattern argument: a" },
        { "abc", "bad pattern argument: abc" },
        { "*", "bad pattern argument: *" },
        { "", "bad pattern argument: " },
        { true, "bad pattern argument" },
        { {}, "bad pattern argument" },
      }
      for _, c in ipairs(cases) do
        assert.has_error(function() sock:receive(c[1]) end,
          "bad argument #1 to 'receive' (" .. c[2] .. ")")
      end
      assert.has_error(function() sock:receive(nil) end,
        "bad argument #1 to 'receive' (bad pattern argument)")
      -- nothing was consumed or closed
      sock:settimeout(20)
      assert.same({ n = 3, nil, "timeout", "" }, pack(sock:receive()))
    end)

    it("returns closed before looking at the pattern of an unconnected socket", function()
      local sock = cs.tcp()
      assert.same({ n = 2, nil, "closed" }, pack(sock:receive("*x")))
      assert.same({ n = 2, nil, "closed" }, pack(sock:receiveany(0)))
    end)
  end)

  describe("read timeout", function()
    each_peer("is not fatal: the partial data is returned and consumed", function(kind)
      local sock = scripted({ kind, "12345" })
      sock:settimeout(50)
      assert.same({ n = 3, nil, "timeout", "12345" }, pack(sock:receive(10)))
      assert.same({ n = 3, nil, "timeout", "" }, pack(sock:receive(10)))
    end)

    each_peer("lets the next call go on with what comes later", function(kind)
      local sock = scripted({ kind, "ab\rc" }, { "p", 150 }, { kind, "de\nfghij" }, "c")
      sock:settimeout(50)
      assert.same({ n = 3, nil, "timeout", "abc" }, pack(sock:receive()))
      sock:settimeout(2000)
      assert.same({ n = 1, "de" }, pack(sock:receive()))
      assert.same({ n = 1, "fghij" }, pack(sock:receive("*a")))
    end)

    each_peer("in read-all mode returns the partial data", function(kind)
      local sock = scripted({ kind, "xyz" })
      sock:settimeout(50)
      assert.same({ n = 3, nil, "timeout", "xyz" }, pack(sock:receive("*a")))
      assert.same({ n = 3, nil, "timeout", "" }, pack(sock:receive("*a")))
    end)

    it("measures inactivity, not the whole call", function()
      local toks = {}
      for c in ("abcdefgh"):gmatch(".") do
        toks[#toks + 1] = { "w", c }
        toks[#toks + 1] = { "p", 30 }
      end
      toks[#toks + 1] = { "w", "\n" }
      local sock = scripted(unpack(toks))
      sock:settimeout(150)
      local t0 = clock()
      assert.same({ n = 1, "abcdefgh" }, pack(sock:receive(8)))
      assert.is_true(clock() - t0 > 0.15, "the peer was not slower than the timeout")
      assert.equal("", sock:receive())
    end)

    -- a read's watchers outlive its call (the next read on the socket then
    -- starts none): the next call's timeout still counts from that call
    it("counts from the start of each call, not from an earlier one", function()
      local sock = scripted({ "w", "a\n" }, { "p", 500 }, { "w", "b\n" })
      sock:settimeout(400)
      assert.equal("a", sock:receive())
      cs.sleep(0.2)
      assert.same({ n = 1, "b" }, pack(sock:receive()))
    end)

    it("takes a shorter timeout set between two calls at once", function()
      local sock = scripted({ "w", "a\n" }, { "p", 3000 }, { "w", "b\n" })
      sock:settimeout(2000)
      assert.equal("a", sock:receive())
      sock:settimeout(100)
      local t0 = clock()
      assert.same({ n = 3, nil, "timeout", "" }, pack(sock:receive()))
      local took = clock() - t0
      assert.is_true(took >= 0.09 and took < 1, "timed out after " .. took .. " s")
    end)

    -- in a child: a watcher left referenced would make the wait spin
    -- instead of failing, and only the child is killed (after 10 s)
    it("leaves nothing that hides a deadlock after the read", function()
      local srv = helpers.fixture(finally, "script")
      local out, err = helpers.cosocket_child(string.format([[
local sock = cs.tcp()
assert(sock:connect("127.0.0.1", %d))
assert(sock:send(%q))
assert(sock:receive() == "a")
cs.update_time()
local t0 = cs.now()
local ok, e = pcall(function() cs.semaphore(0):wait(math.huge) end)
cs.update_time()
io.write(tostring(ok), "|", tostring(e), "|", tostring(cs.now() - t0 < 1))
]], srv.port, helpers.script({ "w", "a\n" }, { "p", 3000 }, "c")))
      local ok, e, quick = (out or ""):match("^(%a+)|(.*)|(%a+)$")
      assert.equal("false", ok, err)
      assert.matches("deadlock: nothing can complete this wait", e, 1, true)
      assert.equal("true", quick)
    end)

    it("is an inactivity timeout against a dribbling peer too", function()
      local text = ("0123456789"):rep(20)                -- about 200 ms of dribble
      local sock = scripted({ "d", text .. "\n" })
      sock:settimeout(100)
      local t0 = clock()
      assert.same({ n = 1, text }, pack(sock:receive()))
      assert.is_true(clock() - t0 > 0.1, "the dribble was faster than the timeout")
    end)
  end)

  describe("after a reset", function()
    each_peer("reports the errno text with the partial data", function(kind)
      local sock = scripted({ kind, "partial" }, { "p", 100 }, "r")
      sock:settimeout(2000)
      assert.same({ n = 3, nil, "connection reset by peer", "partial" }, pack(sock:receive()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:receive()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:receiveany(10)))
      assert.same({ n = 1, 1 }, pack(sock:close()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:close()))
    end)

    each_peer("reports it in size mode", function(kind)
      local sock = scripted({ kind, "par" }, { "p", 100 }, "r")
      sock:settimeout(2000)
      assert.same({ n = 3, nil, "connection reset by peer", "par" }, pack(sock:receive(100)))
    end)
  end)

  describe("after EOF", function()
    each_peer("closes the read half only: send works, close returns 1", function(kind)
      local sock = scripted({ kind, "abc" }, "h")
      sock:settimeout(2000)
      assert.same({ n = 3, nil, "closed", "abc" }, pack(sock:receive(10)))
      assert.same({ n = 2, nil, "closed" }, pack(sock:receive()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:receive("*a")))
      assert.same({ n = 2, nil, "closed" }, pack(sock:receiveany(3)))
      assert.same({ n = 1, 5 }, pack(sock:send("hello")))
      assert.same({ n = 1, 1 }, pack(sock:close()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:receive()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
    end)
  end)
end)

describe("sock:receiveany", function()
  it("raises for a wrong number of arguments", function()
    local sock = scripted()
    assert.has_error(function() sock:receiveany() end,
      "expecting 2 arguments (including the object), but got 1")
    assert.has_error(function() sock:receiveany(1, 2) end,
      "expecting 2 arguments (including the object), but got 3")
  end)

  it("raises 'bad max argument' for a max that is not a positive number", function()
    local sock = scripted()
    for _, max in ipairs { 0, -1, 0.5, "x", "0", true } do
      assert.has_error(function() sock:receiveany(max) end,
        "bad argument #1 to 'receiveany' (bad max argument)")
    end
    assert.has_error(function() sock:receiveany(nil) end,
      "bad argument #1 to 'receiveany' (bad max argument)")
  end)

  it("returns buffered bytes first, without waiting", function()
    local sock = scripted({ "w", "123456" })
    sock:settimeout(2000)
    cs.sleep(0.03)                        -- all six bytes are in the kernel
    assert.equal("12", sock:receive(2))
    sock:settimeout(1000)
    local t0 = clock()
    assert.same({ n = 1, "3456" }, pack(sock:receiveany(100)))
    assert.is_true(clock() - t0 < 0.5)
  end)

  it("returns at most max bytes and keeps the rest", function()
    local sock = scripted({ "w", "abcdef" })
    sock:settimeout(2000)
    cs.sleep(0.03)
    assert.same({ n = 1, "abcd" }, pack(sock:receiveany(4)))
    assert.same({ n = 1, "ef" }, pack(sock:receiveany("100")))
  end)

  it("returns what one read gives from a dribbling peer, never more than max", function()
    local sock = scripted({ "d", "abcdefghij" }, "c")
    sock:settimeout(2000)
    local got = {}
    while true do
      local data, err, partial = sock:receiveany(3)
      if not data then
        assert.same({ "closed", "" }, { err, partial })
        break
      end
      assert.is_true(#data >= 1 and #data <= 3, "got " .. #data .. " bytes")
      got[#got + 1] = data
    end
    assert.equal("abcdefghij", table.concat(got))
    assert.is_true(#got >= 4)
  end)

  each_peer("times out with three values and may be called again", function(kind)
    local sock = scripted({ "p", 100 }, { kind, "late" })
    sock:settimeout(30)
    assert.same({ n = 3, nil, "timeout", "" }, pack(sock:receiveany(10)))
    sock:settimeout(2000)
    local data = assert(sock:receiveany(10))
    assert.equal(("late"):sub(1, #data), data)
  end)

  each_peer("reports EOF with three values, then closed with two", function(kind)
    local sock = scripted({ kind, "x" }, "c")
    sock:settimeout(2000)
    assert.same({ n = 1, "x" }, pack(sock:receiveany(10)))
    assert.same({ n = 3, nil, "closed", "" }, pack(sock:receiveany(10)))
    assert.same({ n = 2, nil, "closed" }, pack(sock:receiveany(10)))
    assert.equal(1, sock:send("y"))
    assert.equal(1, sock:close())
  end)

  each_peer("reports a reset with the errno text", function(kind)
    local sock = scripted({ kind, "z" }, { "p", 100 }, "r")
    sock:settimeout(2000)
    assert.equal("z", sock:receiveany(10))
    assert.same({ n = 3, nil, "connection reset by peer", "" }, pack(sock:receiveany(10)))
    assert.same({ n = 2, nil, "closed" }, pack(sock:receiveany(10)))
  end)
end)

describe("large reads", function()
  it("read-all returns 7 MiB written in chunks", function()
    -- a script line holds at most 16 MiB of hex: 7 MiB of data
    local chunk, n = 256 * 1024, helpers.scale(28, 2)
    local block = {}
    for i = 0, 255 do block[#block + 1] = string.char(i) end
    block = table.concat(block)                              -- 256 bytes
    local hexblock = (block:gsub(".", function(c) return string.format("%02x", c:byte()) end))
    local line, parts = {}, {}
    for i = 1, n do
      local tag = string.format("<%08d>", i)                   -- 10 bytes
      local hextag = (tag:gsub(".", function(c) return string.format("%02x", c:byte()) end))
      parts[i] = tag .. block:rep(chunk / 256):sub(11)
      line[i] = "w:" .. hextag .. hexblock:rep(chunk / 256):sub(21)
    end
    line[#line + 1] = "c"
    local srv = helpers.start_fixture("script")
    finally(function() srv:stop() end)
    local sock = cs.tcp()
    sock:settimeout(5000)
    assert.equal(1, sock:connect(srv.host, srv.port))
    assert(sock:send(table.concat(line, " ") .. "\n"))
    local data = sock:receive("*a")
    assert.is_string(data)
    assert.equal(n * chunk, #data)
    assert.is_true(data == table.concat(parts), "the data differs")
  end)
end)

-- Under LuaJIT, receive and receiveany are Lua functions taking buffered
-- lines and bytes through the FFI (src/tcp_ffi.c), waiting for more in a C
-- function of their own and tail-calling the C method for everything else:
-- the two must not be told apart.  (send's fast path is in
-- tcp_send_spec.lua.)
describe("the LuaJIT fast paths of sock:receive and sock:receiveany", function()
  local is_jit = rawget(_G, "jit") ~= nil

  it("is there under LuaJIT only", function()
    local sock = cs.tcp()
    assert.equal(is_jit and "Lua" or "C", debug.getinfo(sock.receive, "S").what)
    assert.equal(is_jit and "Lua" or "C", debug.getinfo(sock.receiveany, "S").what)
    assert.equal(is_jit and "Lua" or "C", debug.getinfo(sock.send, "S").what)
  end)

  it("gives the lines of one buffer as the C method does, CRs and all", function()
    -- one write: every line after the first is already buffered
    local sock = scripted({ "w", "a\r\nb\n\r\n\nc\rd\r\ne\r\r\nlast" }, "c")
    sock:settimeout(2000)
    assert.same({ n = 1, "a" }, pack(sock:receive()))
    assert.same({ n = 1, "b" }, pack(sock:receive("*l")))
    assert.same({ n = 1, "" }, pack(sock:receive()))
    assert.same({ n = 1, "" }, pack(sock:receive("*l")))
    assert.same({ n = 1, "cd" }, pack(sock:receive()))    -- a CR inside: the C method
    assert.same({ n = 1, "e" }, pack(sock:receive()))
    assert.same({ n = 1, "la" }, pack(sock:receive(2)))  -- other patterns go on from there
    assert.same({ n = 3, nil, "closed", "st" }, pack(sock:receive()))
    assert.same({ n = 2, nil, "closed" }, pack(sock:receive()))
  end)

  it("lets a receiveuntil iterator's held bytes go, as any read does", function()
    local sock = scripted({ "w", "ab--x\nrest\n" }, "c")
    sock:settimeout(2000)
    local reader = sock:receiveuntil("--y")
    assert.same({ n = 1, "a" }, pack(reader(1)))
    assert.same({ n = 1, "b--x" }, pack(sock:receive()))
    assert.same({ n = 1, "rest" }, pack(sock:receive()))
  end)

  it("keeps the busy and closed rules and the C method's errors", function()
    local sock = scripted({ "p", 200 }, { "w", "x\ny\n" }, "c")
    sock:settimeout(2000)
    local reader = cs.spawn(function() return sock:receive() end)
    assert.same({ n = 2, nil, "socket busy reading" }, pack(sock:receive()))
    assert.same({ n = 2, true, "x" }, pack(cs.wait(reader)))
    assert.same({ n = 1, "y" }, pack(sock:receive()))
    local ok, err = pcall(sock.receive)
    assert.is_false(ok)
    assert.matches("expecting 1 or 2 arguments (including the object), but got 0", err, 1, true)
    ok, err = pcall(function() local line = sock.receive(42) return line end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'receive' (table expected, got number)", err, 1, true)
    assert.same({ n = 2, nil, "closed" }, pack(sock.receive({}))) -- not a socket
    sock:close()
    assert.same({ n = 2, nil, "closed" }, pack(sock:receive()))
  end)

  it("gives buffered and awaited sizes as the C method does", function()
    local sock = helpers.with_timeout(2000,
      scripted({ "w", "0123456789" }, { "p", 50 }, { "w", "abc" }, "c"))
    assert.same({ n = 1, "01" }, pack(sock:receive(2)))
    assert.same({ n = 1, "2" }, pack(sock:receive(1.9)))       -- truncated
    assert.same({ n = 1, "3456789a" }, pack(sock:receive(8)))  -- 7 buffered: waits for 1
    assert.same({ n = 3, nil, "closed", "bc" }, pack(sock:receive(3)))
    assert.same({ n = 2, nil, "closed" }, pack(sock:receive(1)))
  end)

  it("gives what receiveany finds buffered or waits for, as the C method does", function()
    local sock = helpers.with_timeout(2000,
      scripted({ "w", "0123456789" }, { "p", 50 }, { "w", "abc" }, "c"))
    assert.same({ n = 1, "012" }, pack(sock:receiveany(3)))
    assert.same({ n = 1, "3" }, pack(sock:receiveany(1.9)))       -- truncated
    assert.same({ n = 1, "456789" }, pack(sock:receiveany(100)))  -- what is buffered
    assert.same({ n = 1, "abc" }, pack(sock:receiveany(100)))     -- waits for it
    assert.same({ n = 3, nil, "closed", "" }, pack(sock:receiveany(10)))
    assert.same({ n = 2, nil, "closed" }, pack(sock:receiveany(10)))
  end)

  it("waits for a line in a light thread and gives the C method's results", function()
    local sock = helpers.with_timeout(2000,
      scripted({ "p", 50 }, { "w", "one\r\n" }, { "p", 50 }, { "w", "tw" }, "c"))
    local reader = cs.spawn(function()
      local a = pack(sock:receive())
      return a, pack(sock:receive("*l"))
    end)
    local ok, first, second = cs.wait(reader)
    assert.is_true(ok)
    assert.same({ n = 1, "one" }, first)
    assert.same({ n = 3, nil, "closed", "tw" }, second)
  end)

  -- A wait used to end a LuaJIT trace by "stitching": the code after it
  -- became a trace that ran into the next wait and stitched another, one
  -- more trace per few roundtrips, compiling all the while.  Each loop below
  -- is shaped as one that showed it (a hot check function first) and runs
  -- in a fresh child: whether LuaJIT stitches depends on the exact bytecode
  -- and on what the JIT has seen before.  The count of traces LuaJIT
  -- completed in it.
  local function loop_traces(port, reply)
    local out, err = helpers.cosocket_child(string.format([[
-- counted as they are made: a chain that reached the trace limit would be
-- flushed, not left to count at the end
local compiled = 0
jit.attach(function(what) if what == "stop" then compiled = compiled + 1 end end, "trace")
local function check(ok, err)
  if not ok then error(err, 2) end
  return ok
end
%s
local function step(sock)
  check(sock:send("ping\n"))
  reply(sock)
end
cs.run(function()
  local socks, threads = {}, {}
  for i = 1, 4 do
    socks[i] = cs.tcp()
    socks[i]:settimeout(2000)
    check(socks[i]:connect("127.0.0.1", %d))
  end
  jit.flush()
  for _ = 1, 300 do check(true) end
  for i = 1, 4 do
    threads[i] = cs.spawn(function(sock)
      for _ = 1, 1000 do step(sock) end
    end, socks[i])
  end
  for i = 1, 4 do check(cs.wait(threads[i])) end
  for i = 1, 4 do socks[i]:close() end
  io.write(compiled)
end)
]], reply, port))
    return assert(tonumber(out), err)
  end

  if is_jit then
    it("leaves a request loop with receive a bounded number of LuaJIT traces", function()
      local srv = helpers.fixture(finally, "echo")
      local traces = loop_traces(srv.port, [[
local function reply(sock)
  local line, err = sock:receive("*l")
  check(line, err)
end]])
      assert.is_true(traces < 20, traces .. " traces")
    end)

    it("leaves a request loop with receiveany a bounded number of LuaJIT traces", function()
      local srv = helpers.fixture(finally, "echo")
      local traces = loop_traces(srv.port, [[
local function reply(sock)
  local data, err = sock:receiveany(100)
  check(data, err)
end]])
      assert.is_true(traces < 20, traces .. " traces")
    end)

    -- A light thread waiting in receive holds its coroutine's stack: LuaJIT
    -- starts it at 47 slots and doubles it when a call needs more (a C
    -- function wants 20 free); the stack it left stays as holes in the
    -- heap.  The fast path's wait fits the first stack in a thread of bench
    -- W3's shape (no arguments; connects and waits in its own function):
    -- 1,460 to 1,580 bytes a waiting thread with its socket, 1,900 to 2,030
    -- with its stack grown once (a fourth argument to the wait did that).
    -- A thread with a few more slots in use, arguments or a call deeper,
    -- grows it anyway.
    local function per_waiting_thread(read)
      local srv = helpers.fixture(finally, "echo")
      local port, n, socks, threads = srv.port, 100, {}, {}
      local wait = ({
        line = function(sock) return sock:receive("*l") end,
        size = function(sock) return sock:receive(5) end,
        any = function(sock) return sock:receiveany(5) end,
      })[read]
      local function holder()
        local sock = cs.tcp()
        assert(sock:connect("127.0.0.1", port))
        socks[#socks + 1] = sock
        local data = wait(sock) -- a tail call: the read's frame takes its place
        sock:close()
        return data
      end
      local function batch()
        local first = #threads
        for i = first + 1, first + n do threads[i] = cs.spawn(holder) end
        local deadline = helpers.clock() + 5
        while #socks < first + n and helpers.clock() < deadline do cs.sleep(0.001) end
        assert.equal(first + n, #socks)
      end
      local per_thread
      cs.run(function()
        batch() -- the loop's arrays and free lists grow here
        collectgarbage()
        collectgarbage()
        local before = collectgarbage("count")
        collectgarbage("stop")
        batch()
        per_thread = (collectgarbage("count") - before) * 1024 / n
        collectgarbage("restart")
        for i = 1, #socks do assert(socks[i]:send("hello\n")) end -- echoed: the waits end
        for i = 1, #threads do assert.same({ true, "hello" }, { cs.wait(threads[i]) }) end
      end)
      return per_thread
    end

    for _, read in ipairs { "line", "size", "any" } do
      it("keeps a thread waiting in the " .. read .. " fast path within its first stack", function()
        local per_thread = per_waiting_thread(read)
        assert.is_true(per_thread < 1700, string.format("%.0f bytes a thread", per_thread))
      end)
    end
  end
end)

-- On LuaJIT the code after a read that waited runs in the side traces
-- LuaJIT grows from tcp_ffi.c's pass, one per place that reads: they must
-- return what the C method returns, one value or the three of a failure.
describe("a read that waits, at one place read hundreds of times", function()
  it("returns one value when it succeeds and three when it fails", function()
    local srv = helpers.start_fixture("echo")
    finally(function() srv:stop() end)
    local wrong = {}
    local function expect(what, i, got, n, a, b, c)
      if got.n ~= n or got[1] ~= a or got[2] ~= b or got[3] ~= c then
        wrong[#wrong + 1] = string.format("%s %d: n=%s %s %s %s", what, i, tostring(got.n),
          tostring(got[1]), tostring(got[2]), tostring(got[3]))
      end
    end
    cs.run(function()
      local sock = cs.tcp()
      sock:settimeout(2000)
      assert.equal(1, sock:connect(srv.host, srv.port))
      for i = 1, 300 do
        assert(sock:send(i .. "\n"))
        expect("line", i, pack(sock:receive()), 1, tostring(i))
      end
      for i = 1, 300 do
        assert(sock:send("abcd"))
        expect("size", i, pack(sock:receive(4)), 1, "abcd")
      end
      for i = 1, 300 do
        assert(sock:send("xyz"))
        expect("any", i, pack(sock:receiveany(10)), 1, "xyz")
      end
      -- one place both: every third read, given 1 ms, finds nothing
      for i = 1, 150 do
        local fails = i % 3 == 0
        sock:settimeout(fails and 1 or 2000)
        if not fails then assert(sock:send(i .. "\n")) end
        local got = pack(sock:receive())
        if fails then
          expect("mixed", i, got, 3, nil, "timeout", "")
        else
          expect("mixed", i, got, 1, tostring(i))
        end
      end
      sock:close()
    end)
    assert.same({}, wrong)
  end)
end)
