-- ngx.shared.DICT (cosocket/ngx.lua): dictionaries per name and Lua state,
-- created on first use (DECISIONS.md 8), with lua-resty-core's shdict return
-- values and ngx_lua's LRU and expiry rules.  Checked against nginx by hand
-- (the conformance oracle declares no lua_shared_dict).
local ngx = require "cosocket.ngx"

local pack = require("helpers").pack

local n = 0
local function fresh()
  n = n + 1
  return ngx.shared["spec" .. n]
end

local function sorted_keys(d)
  local keys = d:get_keys()
  table.sort(keys)
  return keys
end

describe("ngx.shared", function()
  it("creates a dictionary on first use and returns the same one after", function()
    local d = ngx.shared.spec_first_use
    assert.equal("table", type(d))
    assert.equal(d, ngx.shared.spec_first_use)
    assert.not_equal(d, ngx.shared.spec_other)
    assert.is_nil(ngx.shared[1])
  end)

  it("keeps each dictionary apart", function()
    local a, b = fresh(), fresh()
    a:set("k", 1)
    assert.equal(1, a:get("k"))
    assert.is_nil(b:get("k"))
  end)

  it("raises 'bad \"zone\" argument' for a method called with a dot", function()
    local d = fresh()
    assert.has_error(function() d.get("k") end, 'bad "zone" argument')
    assert.has_error(function() d.set({}, "k", 1) end, 'bad "zone" argument')
  end)
end)

describe("dict:set and dict:get", function()
  it("store strings, numbers and booleans; set returns true, nil, false", function()
    local d = fresh()
    assert.same({ n = 3, true, nil, false }, pack(d:set("s", "x")))
    assert.same({ n = 3, true, nil, false }, pack(d:set("n", 1.5)))
    assert.same({ n = 3, true, nil, false }, pack(d:set("t", true)))
    assert.same({ n = 3, true, nil, false }, pack(d:set("f", false)))
    assert.same({ n = 1, "x" }, pack(d:get("s")))
    assert.same({ n = 1, 1.5 }, pack(d:get("n")))
    assert.same({ n = 1, true }, pack(d:get("t")))
    assert.same({ n = 1, false }, pack(d:get("f")))
    assert.same({ n = 1, nil }, pack(d:get("missing")))
  end)

  it("returns the flags as a second value when they are not 0", function()
    local d = fresh()
    d:set("a", "v", 0, 7)
    assert.same({ n = 2, "v", 7 }, pack(d:get("a")))
    d:set("a", "v", 0, 1.5)
    assert.same({ n = 2, "v", 1 }, pack(d:get("a")))
    d:set("a", "v", 0, -1)
    assert.same({ n = 2, "v", -1 }, pack(d:get("a")))
    d:set("a", "v")
    assert.same({ n = 1, "v" }, pack(d:get("a")))
  end)

  it("deletes the key when the value is nil", function()
    local d = fresh()
    d:set("k", 1)
    assert.same({ n = 3, true, nil, false }, pack(d:set("k", nil)))
    assert.is_nil(d:get("k"))
    assert.same({ n = 3, true, nil, false }, pack(d:set("never", nil)))
  end)

  it("turns keys into strings and refuses nil, empty and too long keys", function()
    local d = fresh()
    d:set(12, "num")
    assert.equal("num", d:get("12"))
    assert.equal("num", d:get(12))
    d:set(true, 1)
    assert.equal(1, d:get("true"))
    assert.same({ n = 2, nil, "nil key" }, pack(d:set(nil, 1)))
    assert.same({ n = 2, nil, "nil key" }, pack(d:get(nil)))
    assert.same({ n = 2, nil, "empty key" }, pack(d:set("", 1)))
    assert.same({ n = 2, nil, "empty key" }, pack(d:get("")))
    assert.same({ n = 2, nil, "key too long" }, pack(d:set(("x"):rep(65536), 1)))
    assert.same({ n = 3, true, nil, false }, pack(d:set(("x"):rep(65535), 1)))
  end)

  it("refuses other value types and raises for a bad exptime", function()
    local d = fresh()
    assert.same({ n = 2, nil, "bad value type" }, pack(d:set("x", {})))
    assert.same({ n = 2, nil, "bad value type" }, pack(d:set("x", print)))
    assert.has_error(function() d:set("x", 1, -1) end, 'bad "exptime" argument')
  end)
end)

describe("dict:add, dict:replace and dict:delete", function()
  it("add stores only a key that is not there (or has expired)", function()
    local d = fresh()
    assert.same({ n = 3, true, nil, false }, pack(d:add("k", 1)))
    assert.same({ n = 3, false, "exists", false }, pack(d:add("k", 2)))
    assert.equal(1, d:get("k"))
    assert.same({ n = 3, false, "attempt to add or replace nil values", false },
                pack(d:add("k2", nil)))
    d:set("e", "v", 0.001)
    ngx.sleep(0.01)
    assert.same({ n = 3, true, nil, false }, pack(d:add("e", "w")))
    assert.equal("w", d:get("e"))
  end)

  it("replace stores only a key that is there and has not expired", function()
    local d = fresh()
    assert.same({ n = 3, false, "not found", false }, pack(d:replace("k", 2)))
    d:set("k", 1)
    assert.same({ n = 3, true, nil, false }, pack(d:replace("k", 3)))
    assert.equal(3, d:get("k"))
    assert.same({ n = 3, false, "attempt to add or replace nil values", false },
                pack(d:replace("k", nil)))
    d:set("e", "v", 0.001)
    ngx.sleep(0.01)
    assert.same({ n = 3, false, "not found", false }, pack(d:replace("e", "w")))
  end)

  it("delete removes a key and returns true, nil, false even for a missing one", function()
    local d = fresh()
    d:set("k", 1)
    assert.same({ n = 3, true, nil, false }, pack(d:delete("k")))
    assert.is_nil(d:get("k"))
    assert.same({ n = 3, true, nil, false }, pack(d:delete("k")))
  end)

  it("safe_set and safe_add behave as set and add (memory is never short)", function()
    local d = fresh()
    assert.same({ n = 3, true, nil, false }, pack(d:safe_set("k", 1)))
    assert.same({ n = 3, false, "exists", false }, pack(d:safe_add("k", 1)))
  end)
end)

describe("dict:incr", function()
  it("adds to a number and returns the new value", function()
    local d = fresh()
    d:set("a", 3)
    assert.same({ n = 1, 5 }, pack(d:incr("a", 2)))
    assert.same({ n = 1, 7.5 }, pack(d:incr("a", 2.5)))
    assert.same({ n = 1, 10.5 }, pack(d:incr("a", "3")))
    assert.same({ n = 1, 9.5 }, pack(d:incr("a", -1)))
  end)

  it("returns 'not found' without init and 'not a number' for other values", function()
    local d = fresh()
    assert.same({ n = 2, nil, "not found" }, pack(d:incr("none", 1)))
    d:set("s", "x")
    assert.same({ n = 2, nil, "not a number" }, pack(d:incr("s", 1)))
    assert.same({ n = 2, nil, "not a number" }, pack(d:incr("s", 1, 0)))
  end)

  it("starts from init, returning value, nil, false, with init_ttl as its expiry", function()
    local d = fresh()
    assert.same({ n = 3, 11, nil, false }, pack(d:incr("k", 1, 10)))
    assert.same({ n = 3, 12, nil, false }, pack(d:incr("k", 1, 10)))
    assert.equal(0, d:ttl("k"))
    assert.same({ n = 3, 11, nil, false }, pack(d:incr("t", 1, 10, 5)))
    assert.equal(5, d:ttl("t"))
    d:set("f", 1, 0, 9)
    d:set("f", nil)
    d:incr("f", 1, 0)
    assert.same({ n = 1, 1 }, pack(d:get("f")))
  end)

  it("raises lua-resty-core's errors for bad arguments", function()
    local d = fresh()
    assert.has_error(function() d:incr("a", nil) end, "cannot convert 'nil' to 'double'")
    assert.has_error(function() d:incr("a", "x") end, "cannot convert 'nil' to 'double'")
    assert.has_error(function() d:incr("a", 1, "x") end,
                     "bad init arg: number expected, got string")
    assert.has_error(function() d:incr("a", 1, nil, 3) end,
                     'must provide "init" when providing "init_ttl"')
    assert.has_error(function() d:incr("a", 1, 0, -1) end, 'bad "init_ttl" argument')
    assert.has_error(function() d:incr("a", 1, 0, "x") end,
                     "bad init_ttl arg: number expected, got string")
  end)
end)

describe("expiry: dict:ttl, dict:expire, dict:get_stale", function()
  it("counts in whole milliseconds of ngx.now()", function()
    local d = fresh()
    d:set("k", "v", 0.5)
    assert.equal(0.5, d:ttl("k"))
    d:set("k", "v", 0.0001) -- under a millisecond: never expires, as in ngx
    assert.equal(0, d:ttl("k"))
    d:set("k", "v")
    assert.equal(0, d:ttl("k"))
    assert.same({ n = 2, nil, "not found" }, pack(d:ttl("missing")))
  end)

  it("lets a key expire and get_stale still see it until it is freed", function()
    local d = fresh()
    d:set("live", 1) -- at the back of the queue: nothing expired is freed
    d:set("e", "v", 0.001, 3)
    ngx.sleep(0.01)
    assert.same({ n = 1, nil }, pack(d:get("e")))
    assert.same({ n = 3, "v", 3, true }, pack(d:get_stale("e")))
    d:set("f", "w")
    assert.same({ n = 3, "w", nil, false }, pack(d:get_stale("f")))
    d:get("live") -- "e" is at the back now: the next get frees it
    assert.same({ n = 1, nil }, pack(d:get("f2")))
    assert.same({ n = 1, nil }, pack(d:get_stale("e")))
  end)

  it("expire sets a new expiry, 0 or less for never, without looking at the old one", function()
    local d = fresh()
    d:set("k", 1)
    assert.same({ n = 1, true }, pack(d:expire("k", 10)))
    assert.equal(10, d:ttl("k"))
    assert.same({ n = 1, true }, pack(d:expire("k", 0)))
    assert.equal(0, d:ttl("k"))
    assert.same({ n = 1, true }, pack(d:expire("k", -1)))
    assert.equal(0, d:ttl("k"))
    assert.same({ n = 2, nil, "not found" }, pack(d:expire("missing", 10)))
    assert.has_error(function() d:expire("k") end, 'bad "exptime" argument')
  end)

  it("ttl of an expired key not yet freed is negative", function()
    local d = fresh()
    d:set("e", 5, 0.001)
    ngx.sleep(0.01)
    assert.is_true(d:ttl("e") < 0)
    assert.same({ n = 1, true }, pack(d:expire("e", 1))) -- it comes back
    assert.equal(5, d:get("e"))
  end)
end)

describe("dict:get_keys, dict:flush_all and dict:flush_expired", function()
  it("get_keys returns the live keys, least recently used first, at most max", function()
    local d = fresh()
    d:set("a", 1)
    d:set("b", 2)
    d:set("c", 3)
    d:get("a")
    assert.same({ "b", "c", "a" }, d:get_keys())
    assert.same({ "b", "c" }, d:get_keys(2))
    assert.same({ "b", "c", "a" }, d:get_keys(0))
    d:set("e", 1, 0.001)
    ngx.sleep(0.01)
    assert.same({ "a", "b", "c" }, sorted_keys(d))
  end)

  it("get_keys defaults to 1024 keys", function()
    local d = fresh()
    for i = 1, 1100 do d:set("k" .. i, i) end
    assert.equal(1024, #d:get_keys())
    assert.equal(1100, #d:get_keys(0))
  end)

  it("flush_all expires every key and frees three of them at once, as ngx", function()
    local d = fresh()
    for i = 1, 5 do d:set("k" .. i, i) end
    assert.same({ n = 0 }, pack(d:flush_all()))
    assert.same({}, d:get_keys())
    assert.equal(2, d:flush_expired())
    assert.equal(0, d:flush_expired())
    for i = 1, 5 do d:set("k" .. i, i) end
    d:flush_all()
    assert.is_nil(d:get("k5")) -- frees the last two first
    assert.equal(0, d:flush_expired())
  end)

  it("flush_expired frees expired keys, at most max, and returns their count", function()
    local d = fresh()
    for i = 1, 4 do d:set("e" .. i, i, 0.001) end
    d:set("live", 1)
    ngx.sleep(0.01)
    assert.equal(1, d:flush_expired(1))
    assert.equal(3, d:flush_expired())
    assert.same({ "live" }, d:get_keys())
  end)

  it("raise ngx_lua's argument errors", function()
    local d = fresh()
    assert.has_error(function() local _ = d:get_keys("x") end,
                     "bad argument #1 to 'get_keys' (number expected, got string)")
    assert.has_error(function() local _ = d.get_keys("x") end,
                     "bad argument #1 to 'get_keys' (table expected, got string)")
    assert.has_error(function() local _ = d:get_keys(1, 2) end,
                     "expecting 1 or 2 argument(s), but saw 3")
    assert.has_error(function() local _ = d:flush_expired({}) end,
                     "bad argument #1 to 'flush_expired' (number expected, got table)")
  end)
end)

describe("the LRU queue", function()
  it("frees up to two expired keys from its back before a store, get or incr", function()
    local d = fresh()
    d:set("old1", 1, 0.001)
    d:set("old2", 2, 0.001)
    d:set("old3", 3, 0.001)
    ngx.sleep(0.01)
    d:get("other") -- frees old1 and old2, not old3
    assert.same({ n = 2, nil, "not found" }, pack(d:ttl("old1")))
    assert.same({ n = 2, nil, "not found" }, pack(d:ttl("old2")))
    assert.is_true(d:ttl("old3") < 0)
  end)
end)
