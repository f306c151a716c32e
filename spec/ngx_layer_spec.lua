-- The ngx layer's load-time pieces (cosocket/ngx.lua, DECISIONS.md 8, SPEC
-- P2.2): table.new, table.clear and bit in package.preload where absent,
-- the request stubs lua-resty-http reads at load time, ngx.exit inside a
-- handler, and libcrypto loaded globally for lua-resty-string under LuaJIT.
local ngx = require "cosocket.ngx"
local cs = require "cosocket"

local is_jit = rawget(_G, "jit") ~= nil

describe("the modules the clients require unconditionally", function()
  it("table.new gives a table", function()
    local new = require "table.new"
    local t = new(10, 4)
    assert.same({}, t)
    t[1] = "x"
    assert.equal("x", t[1])
  end)

  it("table.clear empties a table, array and hash parts", function()
    local clear = require "table.clear"
    local t = { 1, 2, 3, a = 1, b = { 2 } }
    clear(t)
    assert.is_nil(next(t))
    assert.equal(0, #t)
  end)

  it("never replaces LuaJIT's built-ins", function()
    if not is_jit then return end
    assert.equal(rawget(_G, "bit"), require "bit")
    -- LuaJIT's own table.new is a C function
    assert.equal("function", type(require "table.new"))
    assert.is_nil(debug.getinfo(require "table.new", "S").source:match("ngx%.lua"))
    assert.is_nil(debug.getinfo(require "table.clear", "S").source:match("ngx%.lua"))
  end)

  it("provides bit on PUC Lua", function()
    if is_jit then return end
    assert.is_function(package.preload.bit)
    assert.is_table(require "bit")
  end)

  -- LuaJIT's BitOp computed these: under LuaJIT they check the vectors,
  -- under PUC Lua the pure-Lua bit
  -- x, tobit, bnot, bswap, tohex, tohex(-4), band(0xff00ff), bor(0x0f0f),
  -- bxor(0xdeadbeef, 3), lshift 4, rshift 4, arshift 4, rol 7, ror 7, lshift 33
  local vectors = {
    { 0, 0, -1, 0, "00000000", "0000", 0, 3855, -559038740, 0, 0, 0, 0, 0, 0 },
    { 1, 1, -2, 16777216, "00000001", "0001", 1, 3855, -559038739, 16, 0, 0, 128, 33554432, 2 },
    { -1, -1, 0, -1, "ffffffff", "FFFF", 16711935, -1, 559038739, -16, 268435455, -1, -1, -1,
      -2 },
    { 2147483648, -2147483648, 2147483647, 128, "80000000", "0000", 0, -2147479793, 1588444908,
      0, 134217728, -134217728, 64, 16777216, 0 },
    { 2147483647, 2147483647, -2147483648, -129, "7fffffff", "FFFF", 16711935, 2147483647,
      -1588444909, -16, 134217727, 134217727, -65, -16777217, -2 },
    { -2147483648, -2147483648, 2147483647, 128, "80000000", "0000", 0, -2147479793, 1588444908,
      0, 134217728, -134217728, 64, 16777216, 0 },
    { 305419896, 305419896, -305419897, 2018915346, "12345678", "5678", 3407992, 305422207,
      -862328684, 591751040, 19088743, 19088743, 439041033, -266049364, 610839792 },
    { 3735928559, -559038737, 559038736, -272716322, "deadbeef", "BEEF", 11337967, -559038481,
      3, -354685200, 233495534, -34939922, 1457485807, -541238403, -1118077474 },
    { 4294967301, 5, -6, 83886080, "00000005", "0005", 5, 3855, -559038743, 80, 0, 0, 640,
      167772160, 10 },
    { -5, -5, 4, -67108865, "fffffffb", "FFFB", 16711931, -1, 559038743, -80, 268435455, -1,
      -513, -134217729, -10 },
    { 2.5, 2, -3, 33554432, "00000002", "0002", 2, 3855, -559038738, 32, 0, 0, 256, 67108864,
      4 },
    { 3.5, 4, -5, 67108864, "00000004", "0004", 4, 3855, -559038744, 64, 0, 0, 512, 134217728,
      8 },
  }

  it("bit computes as LuaBitOp (32 bits, signed results, halves to even)", function()
    local b = require "bit"
    for _, v in ipairs(vectors) do
      local x = v[1]
      assert.same(v, { x, b.tobit(x), b.bnot(x), b.bswap(x), b.tohex(x), b.tohex(x, -4),
                       b.band(x, 0xff00ff), b.bor(x, 0x0f0f), b.bxor(x, 0xdeadbeef, 3),
                       b.lshift(x, 4), b.rshift(x, 4), b.arshift(x, 4), b.rol(x, 7),
                       b.ror(x, 7), b.lshift(x, 33) })
    end
    assert.equal(7, b.bor(1, 2, 4))
    assert.equal("ff", b.tohex(255, 2))
  end)
end)

describe("the request stubs (no request outside nginx)", function()
  it("has what lua-resty-http reads at load time", function()
    for _, f in ipairs({ "socket", "get_headers", "get_method" }) do
      assert.is_function(ngx.req[f])
    end
    assert.is_table(ngx.var)
    assert.is_table(ngx.header)
    assert.is_number(ngx.status)
    assert.is_function(ngx.print)
    assert.is_function(ngx.encode_args)
    assert.equal(10023, ngx.config.ngx_lua_version)
    assert.equal(4, ngx.ERR)
  end)

  it("raises, naming the missing field, when called", function()
    for _, f in ipairs({ "socket", "get_headers", "get_method", "read_body", "get_uri_args" }) do
      local ok, err = pcall(ngx.req[f])
      assert.is_false(ok)
      assert.matches("ngx.req." .. f .. " is not available outside nginx", err, 1, true)
    end
    local ok, err = pcall(ngx.redirect, "/x")
    assert.is_false(ok)
    assert.matches("ngx.redirect is not available", err, 1, true)
  end)

  it("ngx.var reads give nil; writes raise naming the variable", function()
    assert.is_nil(ngx.var.uri)
    assert.is_nil(ngx.var.http_traceparent)
    local ok, err = pcall(function() ngx.var.foo = "1" end)
    assert.is_false(ok)
    assert.matches('variable "foo" not found for writing', err, 1, true)
  end)
end)

describe("ngx.exit inside a handler", function()
  it("ends the handler: run raises the exit value with its code", function()
    local after = false
    local ok, err = pcall(cs.run, function()
      ngx.sleep(0)
      ngx.exit(3)
      after = true
    end)
    assert.is_false(ok)
    assert.is_false(after)
    assert.equal(3, ngx.is_exit(err))
    assert.equal("ngx.exit(3)", tostring(err))
  end)

  it("is told from other errors", function()
    assert.is_nil(ngx.is_exit("boom"))
    assert.is_nil(ngx.is_exit({ code = 3 }))
    local _, err = pcall(cs.run, function() ngx.exit(0) end)
    assert.equal(0, ngx.is_exit(err))
  end)

  it("passes through pcall: nothing after it runs", function()
    local seen = {}
    local ok, err = pcall(cs.run, function()
      seen[#seen + 1] = pcall(ngx.exit, 4)
      seen[#seen + 1] = "after pcall"
    end)
    assert.is_false(ok)
    assert.equal(4, ngx.is_exit(err))
    assert.same({}, seen)
  end)

  it("in a light thread ends the handler with all its threads", function()
    local seen = {}
    local sock_closed
    local ok, err = pcall(cs.run, function()
      local sock = ngx.socket.tcp()
      sock_closed = function() return select(2, sock:send("x")) end
      ngx.thread.spawn(function()
        ngx.sleep(0.05)
        seen[#seen + 1] = "sibling woke"
      end)
      ngx.thread.spawn(function()
        ngx.thread.spawn(function()
          ngx.sleep(0.05)
          seen[#seen + 1] = "grandchild woke"
        end)
        ngx.sleep(0.01)
        seen[#seen + 1] = "exiting"
        ngx.exit(7)
        seen[#seen + 1] = "after exit"
      end)
      ngx.sleep(0.1)
      seen[#seen + 1] = "entry woke"
    end)
    assert.is_false(ok)
    assert.equal(7, ngx.is_exit(err))
    assert.same({ "exiting" }, seen)
    assert.equal("closed", sock_closed()) -- the handler's sockets closed
    cs.sleep(0.08) -- nothing left to wake up later
    assert.same({ "exiting" }, seen)
    assert.equal(0, ngx.timer.running_count())
  end)

  it("in a timer ends that callback and its threads, unreported", function()
    local seen = {}
    cs.run(function()
      ngx.timer.at(0, function()
        ngx.thread.spawn(function()
          ngx.sleep(0.03)
          seen[#seen + 1] = "timer sibling woke"
        end)
        ngx.thread.spawn(function()
          ngx.sleep(0.01)
          seen[#seen + 1] = "timer thread exits"
          ngx.exit(0)
        end)
        ngx.sleep(0.05)
        seen[#seen + 1] = "timer entry woke"
      end)
      ngx.timer.at(0.02, function()
        seen[#seen + 1] = "second timer exits"
        ngx.exit(444)
        seen[#seen + 1] = "second timer went on"
      end)
      ngx.sleep(0.08)
      seen[#seen + 1] = "handler goes on"
    end)
    assert.same({ "timer thread exits", "second timer exits", "handler goes on" }, seen)
    assert.equal(0, ngx.timer.running_count())
  end)
end)

describe("libcrypto for lua-resty-string", function()
  it("is loaded globally under LuaJIT: ffi.C finds OpenSSL", function()
    if not is_jit then return end
    local ffi = require "ffi"
    pcall(ffi.cdef, "unsigned long OpenSSL_version_num(void);")
    local ok, f = pcall(function() return ffi.C.OpenSSL_version_num end)
    assert.is_true(ok, f)
    assert.is_true(tonumber(ffi.C.OpenSSL_version_num()) >= 0x30000000)
  end)
end)
