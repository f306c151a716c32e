-- sock:receiveuntil (SPEC.md 6; DECISIONS.md 1: the bytes of a partly
-- matched pattern are never lost when another reader follows, HEAD's fix of
-- lua-nginx-module #2131). The generated tests at the end send each input in
-- k-byte writes for every k and compare the iterator's results with a
-- reference computed with string.find (no size) or with the results for one
-- write (a size: chunking must not depend on how the bytes arrive).
local cs = require "cosocket"
local helpers = require "helpers"

local pack = helpers.pack
local unpack = helpers.unpack

-- a socket connected to a new `script` fixture, the script sent
local function scripted(...)
  return helpers.with_timeout(2000, helpers.scripted(finally, ...))
end

local function each_peer(text, fn) helpers.each_peer(it, text, fn) end

-- every result of it(size) up to nil, "closed" (two values) or another error
local function drain(it, size, limit)
  local results = {}
  for _ = 1, limit or 500 do
    local r = size and pack(it(size)) or pack(it())
    results[#results + 1] = r
    if r[1] == nil and r[2] ~= nil and (r[2] ~= "closed" or r.n == 2) then break end
  end
  return results
end

describe("sock:receiveuntil", function()
  describe("argument checks", function()
    it("raises for a wrong number of arguments", function()
      local sock = cs.tcp()
      assert.has_error(function() sock:receiveuntil() end,
        "expecting 2 or 3 arguments (including the object), but got 1")
      assert.has_error(function() sock:receiveuntil("a", {}, 3) end,
        "expecting 2 or 3 arguments (including the object), but got 4")
    end)

    it("checks the options first", function()
      local sock = cs.tcp()
      assert.has_error(function() sock:receiveuntil(nil, { inclusive = 1 }) end,
        'bad "inclusive" option value type: number')
      assert.has_error(function() sock:receiveuntil("x", { inclusive = "yes" }) end,
        'bad "inclusive" option value type: string')
      assert.has_error(function() sock:receiveuntil(nil, 5) end,
        "bad argument #2 to 'receiveuntil' (table expected, got number)")
      assert.has_error(function() sock:receiveuntil("x", nil) end,
        "bad argument #2 to 'receiveuntil' (table expected, got nil)")
    end)

    it("wants a string or number pattern", function()
      local sock = cs.tcp()
      assert.has_error(function() sock:receiveuntil(nil) end,
        "bad argument #1 to 'receiveuntil' (string expected, got nil)")
      assert.has_error(function() sock:receiveuntil({}, { inclusive = true }) end,
        "bad argument #1 to 'receiveuntil' (string expected, got table)")
    end)

    it("returns nil, 'pattern is empty' for an empty pattern", function()
      local sock = cs.tcp()
      assert.same({ n = 2, nil, "pattern is empty" }, pack(sock:receiveuntil("")))
      assert.same({ n = 2, nil, "pattern is empty" },
        pack(sock:receiveuntil("", { inclusive = true })))
    end)

    it("gives an iterator before connect that reports closed with two values", function()
      local sock = cs.tcp()
      local it = sock:receiveuntil("--")
      assert.equal("function", type(it))
      assert.same({ n = 2, nil, "closed" }, pack(it()))
      assert.same({ n = 2, nil, "closed" }, pack(it(3)))
    end)

    it("checks the iterator's arguments", function()
      local sock = scripted()
      local it = sock:receiveuntil("--")
      assert.has_error(function() it(1, 2) end, "expecting 0 or 1 arguments, but seen 2")
      local ok, err = pcall(it, "x")
      assert.is_false(ok)
      assert.matches("bad argument #1 to '.-' %(number expected, got string%)", err)
    end)

    it("converts a number pattern to a string", function()
      local sock = scripted({ "w", "ab12cd" }, "c")
      local it = sock:receiveuntil(12)
      assert.same({ n = 1, "ab" }, pack(it()))
      assert.equal("cd", sock:receive("*a"))
    end)
  end)

  describe("without a size", function()
    each_peer("returns the data before the pattern and leaves the rest", function(kind)
      local sock = scripted({ kind, "hello, world! -someone\r\n--abcedhb blah blah" }, "c")
      local it = sock:receiveuntil("\r\n--abcedhb")
      assert.same({ n = 1, "hello, world! -someone" }, pack(it()))
      assert.equal(" blah blah", sock:receive("*a"))
    end)

    each_peer("returns each part, then closed with the rest, then closed", function(kind)
      local sock = scripted({ kind, "a--b--c--" }, "c")
      local it = sock:receiveuntil("--")
      assert.same({ n = 1, "a" }, pack(it()))
      assert.same({ n = 1, "b" }, pack(it()))
      assert.same({ n = 1, "c" }, pack(it()))
      assert.same({ n = 3, nil, "closed", "" }, pack(it()))
      assert.same({ n = 2, nil, "closed" }, pack(it()))
    end)

    each_peer("includes the pattern when inclusive", function(kind)
      local sock = scripted({ kind, "hello world _END_ blah" }, "c")
      local it = sock:receiveuntil("_END_", { inclusive = true })
      assert.same({ n = 1, "hello world _END_" }, pack(it()))
      assert.equal(" blah", sock:receive("*a"))
    end)

    each_peer("finds patterns whose prefix repeats in the data", function(kind)
      local cases = {
        { "x---abcy", "--abc", "x-", "y" },
        { "aaab", "aab", "a", "" },
        { "abababc", "ababc", "ab", "" },
        { "ab1ab1ab2!", "ab1ab2", "ab1", "!" },
      }
      for _, c in ipairs(cases) do
        local sock = scripted({ kind, c[1] }, "c")
        local it = sock:receiveuntil(c[2])
        assert.same({ n = 1, c[3] }, pack(it()), c[1] .. " / " .. c[2])
        assert.equal(c[4], sock:receive("*a"), c[1] .. " / " .. c[2])
      end
    end)

    each_peer("at EOF leaves a pending pattern prefix out of the partial", function(kind)
      local sock = scripted({ kind, "hello--ab" }, "c")
      local it = sock:receiveuntil("--abc")
      assert.same({ n = 3, nil, "closed", "hello" }, pack(it()))
      assert.same({ n = 2, nil, "closed" }, pack(it()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:receive()))
    end)
  end)

  describe("with a size", function()
    each_peer("returns chunks, then nil, nil, nil, then the next part", function(kind)
      local sock = scripted({ kind, "hello, world! -someone\r\n--abcedhb blah blah" }, "c")
      local it = sock:receiveuntil("\r\n--abcedhb")
      for _, want in ipairs { "hell", "o, w", "orld", "! -s", "omeo", "ne" } do
        assert.same({ n = 1, want }, pack(it(4)))
      end
      assert.same({ n = 3, nil, nil, nil }, pack(it(4)))
      assert.same({ n = 1, " bla" }, pack(it(4)))
      assert.same({ n = 1, "h bl" }, pack(it(4)))
      assert.equal("ah", sock:receive("*a"))
    end)

    each_peer("puts the pattern in the last chunk when inclusive", function(kind)
      local sock = scripted({ kind, "hello world _END_ blah" }, "c")
      local it = sock:receiveuntil("_END_", { inclusive = true })
      assert.same({ n = 1, "hello" }, pack(it(5)))
      assert.same({ n = 1, " worl" }, pack(it(5)))
      assert.same({ n = 1, "d _END_" }, pack(it(5)))
      assert.same({ n = 3, nil, nil, nil }, pack(it(5)))
      assert.equal(" blah", sock:receive("*a"))
    end)

    each_peer("releases a false pattern start with the chunk (ab1ab1 / ab1ab2)", function(kind)
      local sock = scripted({ kind, "ab1ab1" }, "c")
      local it = sock:receiveuntil("ab1ab2")
      assert.same({ n = 1, "ab1" }, pack(it(2)))
    end)

    it("treats a negative size as no size", function()
      local sock = scripted({ "w", "abcdef--x" }, "c")
      local it = sock:receiveuntil("--")
      assert.same({ n = 1, "abcdef" }, pack(it(-3)))
      assert.same({ n = 3, nil, "closed", "x" }, pack(it(0)))
    end)
  end)

  describe("after a read timeout", function()
    each_peer("the iterator goes on without losing the held prefix", function(kind)
      local sock = scripted({ kind, "hello--ab" }, { "p", 150 }, { kind, "d--abc" }, "c")
      local it = sock:receiveuntil("--abc")
      sock:settimeout(50)
      assert.same({ n = 3, nil, "timeout", "hello" }, pack(it()))
      sock:settimeout(2000)
      assert.same({ n = 1, "--abd" }, pack(it()))
      assert.same({ n = 3, nil, "closed", "" }, pack(it()))
    end)

    each_peer("a size iterator goes on too", function(kind)
      local sock = scripted({ kind, "hello--ab" }, { "p", 150 }, { kind, "d--abc!" }, "c")
      local it = sock:receiveuntil("--abc")
      sock:settimeout(50)
      local r = pack(it(100))
      assert.same({ n = 3, nil, "timeout", "hello" }, r)
      sock:settimeout(2000)
      assert.same({ n = 1, "--abd" }, pack(it(100)))
      assert.same({ n = 3, nil, nil, nil }, pack(it(100)))
      assert.equal("!", sock:receive("*a"))
    end)

    each_peer("another reader gets the held prefix bytes (#2131)", function(kind)
      local sock = scripted({ kind, "hello--ab" }, { "p", 150 }, { kind, "X--abc tail" }, "c")
      local it = sock:receiveuntil("--abc")
      sock:settimeout(50)
      assert.same({ n = 3, nil, "timeout", "hello" }, pack(it()))
      sock:settimeout(2000)
      assert.same({ n = 1, "--ab" }, pack(sock:receive(4)))
      -- the iterator starts afresh on what follows
      assert.same({ n = 1, "X" }, pack(it()))
      assert.equal(" tail", sock:receive("*a"))
    end)

    it("receiveany gets the held prefix bytes (#2131)", function()
      local sock = scripted({ "w", "hello--ab" })
      local it = sock:receiveuntil("--abc")
      sock:settimeout(50)
      assert.same({ n = 3, nil, "timeout", "hello" }, pack(it()))
      assert.same({ n = 1, "--ab" }, pack(sock:receiveany(100)))
    end)

    it("another iterator gets the held prefix bytes (#2131)", function()
      local sock = scripted({ "w", "hello--ab" }, { "p", 100 }, { "w", "X\n" }, "c")
      local it = sock:receiveuntil("--abc")
      sock:settimeout(50)
      assert.same({ n = 3, nil, "timeout", "hello" }, pack(it()))
      sock:settimeout(2000)
      local it2 = sock:receiveuntil("\n")
      assert.same({ n = 1, "--abX" }, pack(it2()))
    end)

    it("the held prefix bytes survive the iterator's collection", function()
      local sock = scripted({ "w", "hello--ab" })
      sock:settimeout(50)
      do
        local it = sock:receiveuntil("--abc")
        assert.same({ n = 3, nil, "timeout", "hello" }, pack(it()))
      end
      collectgarbage()
      collectgarbage()
      assert.same({ n = 1, "--ab" }, pack(sock:receive(4)))
    end)
  end)
end)

-- Generated split tests --------------------------------------------------

-- the results of an iterator without size over `input` then EOF, computed
-- with string.find: the parts before each occurrence, then nil, "closed"
-- and the rest minus a pending pattern prefix, then nil, "closed"
local function reference(input, pat, inclusive)
  local res, parts, pos = {}, {}, 1
  while true do
    local s, e = input:find(pat, pos, true)
    if not s then break end
    local part = input:sub(pos, inclusive and e or s - 1)
    parts[#parts + 1] = part
    res[#res + 1] = { n = 1, part }
    pos = e + 1
  end
  local tail = input:sub(pos)
  local held = 0
  for l = math.min(#tail, #pat - 1), 1, -1 do
    if tail:sub(-l) == pat:sub(1, l) then held = l; break end
  end
  local rest = tail:sub(1, #tail - held)
  res[#res + 1] = { n = 3, nil, "closed", rest }
  res[#res + 1] = { n = 2, nil, "closed" }
  return res, parts, rest
end

-- the script sending `input` in k-byte writes, 2 ms apart, then closing
local function split_script(input, k)
  local toks = {}
  for i = 1, #input, k do
    if i > 1 then toks[#toks + 1] = { "p", 2 } end
    toks[#toks + 1] = { "w", input:sub(i, i + k - 1) }
  end
  toks[#toks + 1] = "c"
  return helpers.script(unpack(toks))
end

-- for every k = 1 .. #input at once, in light threads: the results of
-- drain(iterator, size) over `input` sent in k-byte writes
local function run_splits(srv, input, pat, inclusive, size)
  local all = {}
  cs.run(function()
    for k = 1, #input do
      cs.spawn(function()
        local sock = cs.tcp()
        sock:settimeout(3000)
        assert(sock:connect(srv.host, srv.port))
        assert(sock:send(split_script(input, k)))
        local it = sock:receiveuntil(pat, { inclusive = inclusive })
        all[k] = drain(it, size)
        sock:close()
      end)
    end
  end)
  return all
end

local function show(s)
  return (string.format("%q", s):gsub("\\\n", "\\n"))
end

local CASES = {
  { "a--b--c--x", "--" },
  { "a--b--c--", "--", true },
  { "x---abcy---abc--abz", "--abc" },
  { "x---abcy---abc--abz", "--abc", true },
  { "aaabaabaaabaa", "aab" },
  { "abababcababcabab", "ababc" },
  { "ab1ab1ab1ab2ab1ab", "ab1ab2" },
  { "zzzzz", "zz" },
  { "aXbXXcXXXdXX", "XX", true },
  { "hi\r\n--b\r\n--bnd\r\n--bndX", "\r\n--bnd" },
  { "no pattern here at all", "END" },
  { "END", "END" },
  { "aaaa", "aaa" },
  { "l1\nl2\n\nl3", "\n" },
  { "l1\nl2\n\nl3\n", "\n", true },
}

local SIZE_CASES = {
  { "hello, world!--abc tail--ab", "--abc", false, 4 },
  { "x---abcy---abc--abz", "--abc", false, 2 },
  { "x---abcy---abc--abz", "--abc", true, 3 },
  { "aaabaabaaabaa", "aab", false, 1 },
  { "abababcababcabab", "ababc", false, 2 },
  { "abababcababcabab", "ababc", true, 5 },
  { "ab1ab1ab1ab2ab1ab", "ab1ab2", false, 2 },
  { "ab1ab1ab1ab2ab1ab", "ab1ab2", false, 3 },
  { "aXbXXcXXXdXX", "XX", false, 1 },
  { "zzzzzz", "zz", true, 2 },
  { "aaaaaaa", "aaa", false, 2 },
  { "abcdefghij--", "--", false, 3 },
  { "a\nbb\nccc\n\ndddd", "\n", false, 2 },
  { "a\nbb\nccc\n\ndddd", "\n", true, 1 },
}

describe("receiveuntil over every split of the input", function()
  local srv
  before_each(function() srv = helpers.start_fixture("script") end)
  after_each(function() srv:stop() end)

  for _, c in ipairs(CASES) do
    local input, pat, inclusive = c[1], c[2], c[3] or false
    it(string.format("without a size: %s / %s%s", show(input), show(pat),
         inclusive and " inclusive" or ""), function()
      local want = reference(input, pat, inclusive)
      local all = run_splits(srv, input, pat, inclusive, nil)
      for k = 1, #input do
        assert.same(want, all[k], "writes of " .. k .. " bytes")
      end
    end)
  end

  for _, c in ipairs(SIZE_CASES) do
    local input, pat, inclusive, size = c[1], c[2], c[3], c[4]
    it(string.format("with size %d: %s / %s%s", size, show(input), show(pat),
         inclusive and " inclusive" or ""), function()
      local _, parts, rest = reference(input, pat, inclusive)
      local all = run_splits(srv, input, pat, inclusive, size)
      local one = all[#input]                      -- the whole input in one write
      -- the chunks of each part add up to it; the last results are the EOF ones
      local got, cur = {}, {}
      for i, r in ipairs(one) do
        if r.n == 1 then
          assert.is_string(r[1])
          cur[#cur + 1] = r[1]
        elseif r.n == 3 and r[1] == nil and r[2] == nil and r[3] == nil then
          got[#got + 1] = table.concat(cur)
          cur = {}
        else
          assert.equal(#one - 1, i, "an error before the end")
          assert.same({ n = 3, nil, "closed", rest }, { n = r.n, r[1], r[2],
            r[3] ~= nil and table.concat(cur) .. r[3] or nil })
          assert.same({ n = 2, nil, "closed" }, one[#one])
          break
        end
      end
      assert.same(parts, got)
      for k = 1, #input - 1 do
        assert.same(one, all[k], "writes of " .. k .. " bytes")
      end
    end)
  end
end)
