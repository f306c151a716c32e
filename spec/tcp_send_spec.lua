-- sock:send (SPEC.md 4, 7.4): what is accepted and how it is serialised,
-- argument errors, full duplex with a reader thread, the send timeout that
-- closes the write half only, errors after a reset, and SIGPIPE.
local cs = require "cosocket"
local helpers = require "helpers"

local pack = helpers.pack

local clock = helpers.clock

-- a socket connected to a new fixture of `mode`
local function connected(mode)
  return helpers.with_timeout(2000, helpers.connected(finally, mode))
end

describe("sock:send", function()
  it("raises unless given exactly one argument", function()
    local sock = connected("echo")
    assert.has_error(function() sock:send() end,
      "expecting 2 arguments (including the object), but got 1")
    assert.has_error(function() sock:send("a", "b") end,
      "expecting 2 arguments (including the object), but got 3")
  end)

  it("returns nil, 'closed' on a socket that is not connected", function()
    local sock = cs.tcp()
    assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
    assert.same({ n = 2, nil, "closed" }, pack(sock:send({})))
  end)

  it("serialises strings, numbers, booleans and nil like ngx_lua", function()
    local sock = connected("echo")
    local cases = {
      { "abc", "abc" },
      { "a\0b", "a\0b" },
      { 12, "12" },
      { -3, "-3" },
      { 0, "0" },
      { 1.5, "1.5" },
      { 0.1, "0.1" },
      { 2 ^ 40, "1099511627776" },
      { 2 ^ 31, "2147483648" },
      { -2 ^ 31, "-2147483648" },
      { 1e15, "1e+15" },
      { 1 / 3, "0.33333333333333" },
      { true, "true" },
      { false, "false" },
      { nil, "nil" },
    }
    for _, c in ipairs(cases) do
      local value, want = c[1], c[2]
      assert.same({ n = 1, #want }, pack(sock:send(value)), "sending " .. tostring(value))
      assert.equal(want, sock:receive(#want), "sending " .. tostring(value))
    end
  end)

  it("concatenates nested array tables and returns the total length", function()
    local sock = connected("echo")
    local cases = {
      { { "a", { "b", { "c", 1 } }, 2.5 }, "abc12.5" },
      { { 1, 2, 3 }, "123" },
      { { "x", {}, "y", { {} } }, "xy" },
      { { "", "z", "" }, "z" },
      { { -1, 2 ^ 40, "!" }, "-11099511627776!" },
    }
    for _, c in ipairs(cases) do
      assert.same({ n = 1, #c[2] }, pack(sock:send(c[1])))
      assert.equal(c[2], sock:receive(#c[2]))
    end
    local parts = {}
    for i = 1, 5000 do parts[i] = { tostring(i), "," } end
    local want = {}
    for i = 1, 5000 do want[i] = tostring(i) .. "," end
    want = table.concat(want)
    assert.same({ n = 1, #want }, pack(sock:send(parts)))
    assert.equal(want, sock:receive(#want))
  end)

  it("returns 0 for {} and '' without sending anything", function()
    local sock = connected("echo")
    assert.same({ n = 1, 0 }, pack(sock:send("")))
    assert.same({ n = 1, 0 }, pack(sock:send({})))
    assert.same({ n = 1, 0 }, pack(sock:send({ {}, "", { "" } })))
    sock:settimeout(30)
    assert.same({ n = 3, nil, "timeout", "" }, pack(sock:receiveany(10)))
  end)

  it("raises for values it cannot send", function()
    local sock = connected("echo")
    local prefix = "bad argument #1 to 'send' ("
    local expected = "string, number, boolean, nil, or array table expected, got "
    local cases = {
      { print, expected .. "function" },
      { cs.null, expected .. "userdata" },
      { coroutine.create(function() end), expected .. "thread" },
      { { a = 1 }, "non-array table found" },
      { { 1, 2, x = 3 }, "non-array table found" },
      { { [0] = "x" }, "non-array table found" },
      { { [1.5] = "x" }, "non-array table found" },
      { { "a", { b = 1 } }, "non-array table found" },
      { { 1, nil, 3 }, "bad data type nil found" },
      { { [1] = "a", [3] = "c" }, "bad data type nil found" },
      { { true }, "bad data type boolean found" },
      { { "a", { false } }, "bad data type boolean found" },
      { { cs.null }, "bad data type userdata found" },
      { { print }, "bad data type function found" },
    }
    for _, c in ipairs(cases) do
      assert.has_error(function() sock:send(c[1]) end, prefix .. c[2] .. ")")
    end
    -- nothing was sent and the socket still works
    assert.equal(2, sock:send("ok"))
    assert.equal("ok", sock:receive(2))
  end)

  it("sends 16 MiB while another light thread reads the echo (full duplex)", function()
    local srv = helpers.start_fixture("echo")
    finally(function() srv:stop() end)
    local size = helpers.scale(16, 1) * 1024 * 1024
    local block = {}
    for i = 1, 1024 do block[i] = string.format("%07d\n", i) end
    block = table.concat(block)                       -- 8 KiB
    local data = block:rep(size / #block)
    local sent, got
    cs.run(function()
      local sock = cs.tcp()
      sock:settimeout(10000)
      assert.equal(1, sock:connect(srv.host, srv.port))
      local reader = cs.spawn(function() return sock:receive(size) end)
      sent = pack(sock:send(data))
      local ok, r = cs.wait(reader)
      assert.is_true(ok, r)
      got = r
      sock:close()
    end)
    assert.same({ n = 1, size }, sent)
    assert.equal(size, #got)
    assert.is_true(got == data, "the echo differs")
  end)

  -- Strings of up to 64 KiB take LuaJIT's FFI path (src/tcp_ffi.c): when
  -- the kernel takes only part of one, the C method sends the rest.
  it("sends many 60 KiB strings in order while the echo is read (partial sends)", function()
    local srv = helpers.start_fixture("echo")
    finally(function() srv:stop() end)
    local count, len = helpers.scale(200, 20), 60 * 1024
    local results, got = {}, {}
    cs.run(function()
      local sock = cs.tcp()
      sock:settimeout(10000)
      assert.equal(1, sock:connect(srv.host, srv.port))
      local reader = cs.spawn(function()
        for i = 1, count do got[i] = sock:receive(len) end
      end)
      for i = 1, count do
        results[i] = sock:send(string.format("%06d", i):rep(len / 6))
      end
      assert.is_true((cs.wait(reader)))
      sock:close()
    end)
    for i = 1, count do
      assert.equal(len, results[i])
      assert.is_true(got[i] == string.format("%06d", i):rep(len / 6), "string " .. i .. " differs")
    end
  end)

  describe("timeout", function()
    it("returns nil, 'timeout' against a peer that never reads, closing the write half", function()
      local sock = connected("script")
      assert(sock:send(helpers.script("n")))
      sock:settimeouts(1000, 100, 1000)
      local big = ("x"):rep(8 * 1024 * 1024)
      local t0 = clock()
      assert.same({ n = 2, nil, "timeout" }, pack(sock:send(big)))
      local elapsed = clock() - t0
      assert.is_true(elapsed >= 0.09 and elapsed < 2, "elapsed " .. elapsed)
      assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
      assert.same({ n = 2, nil, "closed" }, pack(sock:send({})))
      sock:settimeout(50)
      assert.same({ n = 3, nil, "timeout", "" }, pack(sock:receive()))  -- reads still work
      assert.same({ n = 1, 1 }, pack(sock:close()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:close()))
    end)

    it("after it, reads still get what the peer sends", function()
      local sock = connected("script")
      assert(sock:send(helpers.script("n", { "p", 250 }, { "w", "still here\n" })))
      sock:settimeouts(1000, 100, 1000)
      assert.same({ n = 2, nil, "timeout" }, pack(sock:send(("y"):rep(8 * 1024 * 1024))))
      assert.same({ n = 1, "still here" }, pack(sock:receive()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
      assert.equal(1, sock:close())
    end)
  end)

  describe("after the peer reset the connection", function()
    it("returns the errno text, then closed", function()
      local sock = connected("script")
      assert(sock:send(helpers.script("r")))
      cs.sleep(0.05)
      local r
      for _ = 1, 3 do                  -- the reset may take a moment to arrive
        r = pack(sock:send("data"))
        if r[1] == nil then break end
        cs.sleep(0.02)
      end
      assert.equal(2, r.n)
      assert.is_nil(r[1])
      assert.is_truthy(r[2] == "broken pipe" or r[2] == "connection reset by peer",
        "got " .. tostring(r[2]))
      assert.same({ n = 2, nil, "closed" }, pack(sock:send("data")))
      assert.equal(1, sock:close())
    end)
  end)

  it("never lets SIGPIPE kill the process", function()
    local srv = helpers.start_fixture("script")
    finally(function() srv:stop() end)
    local out, err, status = helpers.run_lua(string.format([[
local cs = require "cosocket"
for _, script in ipairs { "c\n", "r\n" } do
  local sock = cs.tcp()
  assert(sock:connect("127.0.0.1", %d))
  assert(sock:send(script))
  cs.sleep(0.05)
  local failed
  for i = 1, 50 do
    local n, e = sock:send(("z"):rep(65536))
    if not n then failed = e break end
    cs.sleep(0.002)
  end
  io.write(tostring(failed), "\n")
  sock:close()
end
io.write("alive\n")
]], srv.port), 10)
    assert.equal(0, status, err)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal(3, #lines, out)
    for i = 1, 2 do
      assert.is_truthy(lines[i] == "broken pipe" or lines[i] == "connection reset by peer",
        "got " .. lines[i])
    end
    assert.equal("alive", lines[3])
  end)
end)
