-- ngx.re on PCRE2 (ngx_re.c, cosocket/ngx.lua; DECISIONS.md 8): match, find,
-- gmatch, sub, gsub and require "ngx.re".split, as ngx_lua 0.10.23 with
-- lua-resty-core 0.1.25 (conformance/cases/ngx_re_* compare with the oracle).
local cs = require "cosocket"
local ngx = require "cosocket.ngx"

local pack = require("helpers").pack

describe("ngx.re.match", function()
  it("returns [0] and the numbered captures", function()
    assert.same({ [0] = "hello world", "hello", "world" },
                ngx.re.match("hello world", "(\\w+) (\\w+)"))
    assert.same({ [0] = "b" }, ngx.re.match("abc", "b"))
    assert.same({ [0] = "" }, ngx.re.match("", ""))
  end)

  it("gives false for captures that did not take part", function()
    assert.same({ [0] = "he", "h", false, "e" }, ngx.re.match("hello", "(h)(x)?(e)"))
    assert.same({ [0] = "x", false, false }, ngx.re.match("x", "(h)|(e)|x"))
  end)

  it("adds named captures under their names", function()
    assert.same({ [0] = "he", "h", false, "e", first = "h", none = false },
                ngx.re.match("hello", "(?<first>h)(?<none>x)?(e)"))
  end)

  it("collects duplicate names in a table of the groups that matched, with D", function()
    assert.same({ [0] = "h", "h", false, a = { "h" } },
                ngx.re.match("hello", "(?<a>h)|(?<a>e)", "D"))
    assert.same({ [0] = "e", false, "e", a = { "e" } }, ngx.re.match("e", "(?<a>h)|(?<a>e)", "D"))
    assert.same({ [0] = "x", false, false }, ngx.re.match("x", "(?<a>h)|(?<a>e)|x", "D"))
  end)

  it("returns a single nil when nothing matches", function()
    assert.same({ n = 1, nil }, pack(ngx.re.match("hello", "z")))
  end)

  it("takes the options i, m, s, x, u, U, a, j and o", function()
    assert.same({ [0] = "HEL" }, ngx.re.match("HELLO", "hel", "i"))
    assert.is_nil(ngx.re.match("HELLO", "hel"))
    assert.same({ [0] = "b" }, ngx.re.match("a\nb", "^b", "m"))
    assert.is_nil(ngx.re.match("a\nb", "^b"))
    assert.same({ [0] = "a\nb" }, ngx.re.match("a\nb", "a.b", "s"))
    assert.is_nil(ngx.re.match("a\nb", "a.b"))
    assert.same({ [0] = "ab" }, ngx.re.match("ab", "a b # comment", "x"))
    assert.same({ [0] = "hé", "é" }, ngx.re.match("héllo", "h(.)", "u"))
    assert.same({ [0] = "h\195", "\195" }, ngx.re.match("héllo", "h(.)"))
    assert.same({ [0] = "hé" }, ngx.re.match("héllo", "h.", "U"))
    assert.is_nil(ngx.re.match("ab", "b", "a"))
    assert.same({ [0] = "a" }, ngx.re.match("ab", "a", "a"))
    assert.same({ [0] = "b" }, ngx.re.match("abc", "b", "jo"))
    assert.same({ [0] = "b" }, ngx.re.match("abc", "b", false))
  end)

  it("raises for an unknown flag and for d (no DFA mode)", function()
    assert.has_error(function() ngx.re.match("abc", "b", "z") end,
                     'unknown flag "z" (flags "z")')
    assert.has_error(function() ngx.re.match("abc", "b", "ijz") end,
                     'unknown flag "z" (flags "ijz")')
    assert.has_error(function() ngx.re.match("abc", "b", "d") end,
                     'unsupported flag "d" (flags "d"): no DFA mode')
  end)

  it("raises for a regex or options that are not strings", function()
    assert.has_error(function() ngx.re.match("abc", nil) end)
    assert.has_error(function() ngx.re.match("abc", 12) end)
    assert.has_error(function() ngx.re.match("abc", "b", 1) end)
  end)

  it("matches tostring of a subject that is not a string", function()
    assert.same({ [0] = "ni" }, ngx.re.match(nil, "ni"))
    assert.same({ [0] = "2" }, ngx.re.match(123, "2"))
  end)

  it("returns nil and ngx's pcre_compile() message, in PCRE 8's words", function()
    assert.same({ n = 2, nil, 'pcre_compile() failed: missing ) in "(abc"' },
                pack(ngx.re.match("abc", "(abc")))
    assert.same({ n = 2, nil, 'pcre_compile() failed: unmatched parentheses in "abc)" at ")"' },
                pack(ngx.re.match("abc", "abc)")))
    assert.same({ n = 2, nil, 'pcre_compile() failed: nothing to repeat in "*a" at "*a"' },
                pack(ngx.re.match("abc", "*a")))
    assert.same({ n = 2, nil, 'pcre_compile() failed: numbers out of order in {} quantifier '
                  .. 'in "a{2,1}" at "}"' }, pack(ngx.re.match("abc", "a{2,1}")))
    assert.same({ n = 2, nil, 'pcre_compile() failed: invalid UTF-8 string in "(\255" at "\255"' },
                pack(ngx.re.match("abc", "(\255", "u")))
  end)

  it("cuts a compile error message at 127 bytes, as ngx's buffer does", function()
    local m, err = ngx.re.match("abc", ("x"):rep(120) .. "(")
    assert.is_nil(m)
    assert.equal(127, #err)
    assert.equal('pcre_compile() failed: missing ) in "xxx', err:sub(1, 40))
  end)

  it("returns nil and PCRE 8's pcre_exec() codes", function()
    assert.same({ n = 2, nil, "pcre_exec() failed: -10" }, pack(ngx.re.match("\255abc", ".", "u")))
    assert.same({ n = 2, nil, "pcre_exec() failed: -24" },
                pack(ngx.re.match("hello", "l", nil, { pos = 10 })))
  end)

  it("starts at ctx.pos and leaves it after the match", function()
    local ctx = {}
    assert.same({ [0] = "l" }, ngx.re.match("hello", "l", nil, ctx))
    assert.equal(4, ctx.pos)
    assert.same({ [0] = "l" }, ngx.re.match("hello", "l", nil, ctx))
    assert.equal(5, ctx.pos)
    assert.is_nil(ngx.re.match("hello", "l", nil, ctx))
    assert.equal(5, ctx.pos)
    ctx = { pos = 6 }
    assert.same({ [0] = "" }, ngx.re.match("hello", "$", nil, ctx))
    assert.equal(6, ctx.pos)
    ctx = { pos = -3 }
    assert.same({ [0] = "h" }, ngx.re.match("hello", "h", nil, ctx))
    assert.equal(2, ctx.pos)
  end)

  it("fills a res table when given one, leaving its other fields", function()
    local res = { 9, 9, 9, x = 1 }
    assert.equal(res, ngx.re.match("hello", "(e)", nil, nil, res))
    assert.same({ [0] = "e", "e", 9, 9, x = 1 }, res)
  end)
end)

describe("ngx.re.find", function()
  it("returns the 1-based start and end of the match", function()
    assert.same({ n = 2, 3, 4 }, pack(ngx.re.find("hello", "l+")))
    assert.same({ n = 2, 1, 0 }, pack(ngx.re.find("hello", "")))
    assert.same({ n = 2, 5, 5 }, pack(ngx.re.find("hello", "o$")))
    assert.same({ n = 2, 3, 4 }, pack(ngx.re.find("HeLLo", "l+", "i")))
    assert.same({ n = 1, nil }, pack(ngx.re.find("hello", "z")))
  end)

  it("returns the positions of capture nth", function()
    assert.same({ n = 2, 2, 2 }, pack(ngx.re.find("hello", "(h)(x)?(e)", nil, nil, 3)))
    assert.same({ n = 2, 1, 2 }, pack(ngx.re.find("hello", "(h)(x)?(e)", nil, nil, 0)))
    assert.same({ n = 2, 1, 2 }, pack(ngx.re.find("hello", "(h)(x)?(e)", nil, nil, -1)))
    assert.same({ n = 2, 3, 3 }, pack(ngx.re.find("hello", "(l)(l)", nil, nil, 1)))
  end)

  it("returns nil, nil for a capture that did not take part", function()
    assert.same({ n = 2, nil, nil }, pack(ngx.re.find("hello", "(h)(x)?(e)", nil, nil, 2)))
    assert.same({ n = 2, nil, nil }, pack(ngx.re.find("hello", "(l)|(z)", nil, nil, 2)))
  end)

  it("returns nil, nil, err for errors", function()
    assert.same({ n = 3, nil, nil, "nth out of bound" },
                pack(ngx.re.find("hello", "(h)(x)?(e)", nil, nil, 4)))
    assert.same({ n = 3, nil, nil, 'pcre_compile() failed: missing ) in "(abc"' },
                pack(ngx.re.find("abc", "(abc")))
    assert.same({ n = 3, nil, nil, "pcre_exec() failed: -24" },
                pack(ngx.re.find("hello", "l", nil, { pos = 7 })))
  end)

  it("starts at ctx.pos and leaves it after the match", function()
    local ctx = { pos = 3 }
    assert.same({ n = 2, 3, 3 }, pack(ngx.re.find("hello", "l", nil, ctx)))
    assert.equal(4, ctx.pos)
    assert.same({ n = 2, 4, 4 }, pack(ngx.re.find("hello", "l", nil, ctx)))
    assert.equal(5, ctx.pos)
  end)

  it("raises for an nth that is not a number", function()
    assert.has_error(function() ngx.re.find("hello", "l", nil, nil, "2") end)
  end)
end)

describe("ngx.re.gmatch", function()
  local function all(it)
    local out = {}
    for m in it do out[#out + 1] = m end
    return out
  end

  it("iterates over the matches with their captures", function()
    assert.same({ { [0] = "1", "1" }, { [0] = "22", "22" }, { [0] = "333", "333" } },
                all(ngx.re.gmatch("a1b22c333", "(\\d+)")))
    assert.same({ { [0] = "a", "a", false, name = "a" }, { [0] = "b", "b", false, name = "b" } },
                all(ngx.re.gmatch("a1b", "(?<name>[a-z])(x)?")))
  end)

  it("advances one byte after an empty match, the end included", function()
    assert.same({ { [0] = "" }, { [0] = "" }, { [0] = "" } }, all(ngx.re.gmatch("ab", "")))
    local seen = {}
    for m in ngx.re.gmatch("aXbX", "X*") do seen[#seen + 1] = "[" .. m[0] .. "]" end
    assert.equal("[][X][][X][]", table.concat(seen))
    assert.same({ { [0] = "" } }, all(ngx.re.gmatch("", "x*")))
  end)

  it("returns a callable table that keeps returning nil once exhausted", function()
    local it = ngx.re.gmatch("ab", "a")
    assert.equal("table", type(it))
    assert.same({ [0] = "a" }, it())
    assert.same({ n = 1, nil }, pack(it()))
    assert.same({ n = 1, nil }, pack(it()))
  end)

  it("returns nil, err for a bad regex and an exec error from the iterator", function()
    assert.same({ n = 2, nil, 'pcre_compile() failed: missing ) in "("' },
                pack(ngx.re.gmatch("a", "(")))
    local it = ngx.re.gmatch("é", "", "u")
    assert.same({ [0] = "" }, it())
    assert.same({ n = 2, nil, "pcre_exec() failed: -11" }, pack(it()))
    assert.same({ n = 1, nil }, pack(it()))
  end)
end)

describe("ngx.re.sub and ngx.re.gsub", function()
  it("replace the first match or all of them, and return the count", function()
    assert.same({ n = 2, "hell[o] world", 1 }, pack(ngx.re.sub("hello world", "(o)", "[$1]")))
    assert.same({ n = 2, "hell[o] w[o]rld", 2 }, pack(ngx.re.gsub("hello world", "(o)", "[$1]")))
    assert.same({ n = 2, "hello", 0 }, pack(ngx.re.gsub("hello", "z", "-")))
    assert.same({ n = 2, "hello", 0 }, pack(ngx.re.sub("hello", "z", "-")))
    assert.same({ n = 2, "hexxo", 2 }, pack(ngx.re.gsub("hello", "L", "x", "i")))
  end)

  it("expand $0, $n, ${n} and $$ in templates; missing groups give nothing", function()
    assert.equal("hell[o$] w[o$]rld", (ngx.re.gsub("hello world", "o", "[$0$$]")))
    assert.equal("hello1 wo1rld", (ngx.re.gsub("hello world", "(o)", "${1}1")))
    assert.equal("hell wrld", (ngx.re.gsub("hello world", "(o)", "$11")))
    assert.equal("hell<||> w<||>rld", (ngx.re.gsub("hello world", "(o)(x)?", "<$2|$3|$9>")))
    assert.equal("hello", (ngx.re.gsub("hello", "(l)", "$01")))
    assert.equal("hello", (ngx.re.gsub("hello", "(l)", "${01}")))
    assert.equal("a\\b\\c", (ngx.re.gsub("a.b.c", "\\.", "\\")))
  end)

  it("return nil, nil, err for a template ngx refuses (named captures included)", function()
    for _, t in ipairs({ "$", "a$", "${1", "${", "${}", "$a", "${a}", "$-", "${1a}", "$ " }) do
      assert.same({ n = 3, nil, nil, "failed to compile the replacement template" },
                  pack(ngx.re.gsub("hello", "(l)", t)))
    end
    assert.same({ n = 3, nil, nil, "failed to compile the replacement template" },
                pack(ngx.re.sub("hello", "z", "$")))
  end)

  it("handle empty matches as ngx does", function()
    assert.same({ n = 2, "-h-e-l-l-o-", 6 }, pack(ngx.re.gsub("hello", "", "-")))
    assert.same({ n = 2, "-h-e-l-l-o-", 6 }, pack(ngx.re.gsub("hello", "x*", "-")))
    assert.same({ n = 2, "-", 1 }, pack(ngx.re.gsub("", "x*", "-")))
    assert.same({ n = 2, "-a--c-", 4 }, pack(ngx.re.gsub("abc", "b*", "-")))
    assert.same({ n = 2, "-abc", 1 }, pack(ngx.re.sub("abc", "b*", "-")))
  end)

  it("call a function with the captures table and use tostring of its result", function()
    assert.same({ n = 2, "heLLo", 2 },
                pack(ngx.re.gsub("hello", "l", function(m) return m[0]:upper() end)))
    assert.same({ n = 2, "heLlo", 1 },
                pack(ngx.re.sub("hello", "l", function(m) return m[0]:upper() end)))
    assert.same({ n = 2, "henilnilo", 2 },
                pack(ngx.re.gsub("hello", "l", function() return nil end)))
    assert.has_error(function() ngx.re.gsub("hello", "l", function() end) end,
                     "bad argument #1 to 'tostring' (value expected)")
    assert.same({ n = 2, "he55o", 2 }, pack(ngx.re.gsub("hello", "l", function() return 5 end)))
    assert.equal("he<l,l,false,l><l,l,false,l>o", (ngx.re.gsub("hello", "(?<x>l)(z)?", function(m)
      return "<" .. m[0] .. "," .. m[1] .. "," .. tostring(m[2]) .. "," .. m.x .. ">"
    end)))
    assert.same({ n = 2, "<>a<b><>c<>", 4 },
                pack(ngx.re.gsub("abc", "b*", function(m) return "<" .. m[0] .. ">" end)))
    assert.same({ n = 2, "hello", 0 }, pack(ngx.re.gsub("hello", "z", function() return "-" end)))
  end)

  it("let a replacement function wait inside a light thread", function()
    local result = cs.run(function()
      return ngx.re.gsub("a-b-c", "-", function()
        ngx.sleep(0.001)
        return "+"
      end)
    end)
    assert.equal("a+b+c", result)
  end)

  it("use tostring of a replacement that is neither a string nor a function", function()
    assert.same({ n = 2, "he77o", 2 }, pack(ngx.re.gsub("hello", "l", 7)))
    assert.same({ n = 2, "henilnilo", 2 }, pack(ngx.re.gsub("hello", "l", nil)))
    assert.same({ n = 2, "1x3", 1 }, pack(ngx.re.gsub(123, "2", "x")))
    assert.same({ n = 2, "nix", 1 }, pack(ngx.re.gsub(nil, "l", "x")))
  end)

  it("return nil, nil, err for a bad regex or an exec error", function()
    local msg = 'pcre_compile() failed: missing ) in "(abc"'
    assert.same({ n = 3, nil, nil, msg }, pack(ngx.re.gsub("abc", "(abc", "x")))
    assert.same({ n = 3, nil, nil, msg }, pack(ngx.re.sub("abc", "(abc", function() end)))
    assert.same({ n = 3, nil, nil, "pcre_exec() failed: -11" },
                pack(ngx.re.gsub("héllo", "", "-", "u")))
    assert.same({ n = 3, nil, nil, "pcre_exec() failed: -11" },
                pack(ngx.re.gsub("héllo", "", function() return "-" end, "u")))
  end)

  it("raise for an unknown flag", function()
    assert.has_error(function() ngx.re.gsub("a", "a", "x", "q") end, 'unknown flag "q" (flags "q")')
    assert.has_error(function() ngx.re.gsub("a", "a", tostring, "q") end,
                     'unknown flag "q" (flags "q")')
  end)
end)

describe('require "ngx.re"', function()
  local re = require "ngx.re"

  it("comes from package.preload and has split and opt", function()
    assert.is_function(package.preload["ngx.re"])
    assert.is_function(re.split)
    assert.is_nil(re.opt("jit_stack_size", 65536))
    assert.has_error(function() re.opt("foo", 1) end, "unrecognized option name")
  end)

  it("splits on a regex, with the first capture in between", function()
    assert.same({ "a", "b", "c" }, re.split("a,b,c", ","))
    assert.same({ "a", "b", "c" }, re.split("a, b ,c", "\\s*,\\s*"))
    assert.same({ "a", "1", "b", "2", "c" }, re.split("a1b2c", "(\\d)"))
    assert.same({ "a", "1", "b", "2", "c" }, re.split("a1b2c", "(\\d)|x"))
    assert.same({ "abc" }, re.split("abc", "x"))
    assert.same({}, re.split("", ","))
    assert.same({ "1", "3" }, re.split(123, "2"))
    assert.same({ "a", "b" }, re.split("a,b", ",", "jo"))
  end)

  it("drops empty trailing pieces unless max is given", function()
    assert.same({ "a", "b", "", "c" }, re.split("a,b,,c,,", ","))
    assert.same({ "a", "b", "", "c", "", "" }, re.split("a,b,,c,,", ",", nil, nil, 10))
    assert.same({ "", "a" }, re.split(",a", ","))
    assert.same({}, re.split(",,,", ","))
    assert.same({ "", ",," }, re.split(",,,", ",", nil, nil, 2))
  end)

  it("stops at max pieces", function()
    assert.same({ "a", "b,c" }, re.split("a,b,c", ",", nil, nil, 2))
    assert.same({ "a", "bc" }, re.split("abc", "", nil, nil, 2))
  end)

  it("handles empty matches as lua-resty-core does", function()
    assert.same({ "a", "b", "c" }, re.split("abc", ""))
    assert.same({ "a", "aX", "b" }, re.split("aXbX", "X*"))
    assert.same({ "a", "ab", "c" }, re.split("abc", "b*"))
    assert.same({ "abc" }, re.split("abc", "$"))
  end)

  it("gives all the subject for a first capture that did not take part", function()
    assert.same({ "a", "a1b", "b" }, re.split("a1b", "(x)?(\\d)"))
  end)

  it("starts at ctx.pos and fills res, ending it with nil", function()
    assert.same({ "b", "c" }, re.split("a,b,c", ",", nil, { pos = 3 }))
    assert.same({}, re.split("a,b,c", ",", nil, { pos = 10 }))
    local res = { "x", "y", "z", "w", "v" }
    assert.equal(res, re.split("a,b,c", ",", nil, nil, nil, res))
    assert.same({ "a", "b", "c", nil, "v" }, res)
  end)

  it("returns nil, err for a bad regex and raises for a res that is not a table", function()
    assert.same({ n = 2, nil, 'pcre_compile() failed: missing ) in "("' },
                pack(re.split("abc", "(")))
    assert.has_error(function() re.split("a,b", ",", nil, nil, nil, "x") end, "res is not a table")
  end)
end)

describe("the regexes lua-resty-http uses (SPEC.md P2.2)", function()
  local uri = [[^(?:(http[s]?):)?//((?:[^\[\]:/\?]+)|(?:\[.+\]))(?::(\d+))?([^\?]*)\??(.*)]]

  it("parses URIs", function()
    assert.same({ [0] = "http://example.com/path?q=1",
                  "http", "example.com", false, "/path", "q=1" },
                ngx.re.match("http://example.com/path?q=1", uri, "jo"))
    assert.same({ [0] = "https://example.com:8443/a/b",
                  "https", "example.com", "8443", "/a/b", "" },
                ngx.re.match("https://example.com:8443/a/b", uri, "jo"))
    assert.same({ [0] = "//host", false, "host", false, "", "" }, ngx.re.match("//host", uri, "jo"))
    assert.same({ [0] = "http://[::1]:80/x", "http", "[::1]", "80", "/x", "" },
                ngx.re.match("http://[::1]:80/x", uri, "jo"))
    assert.is_nil(ngx.re.match("ftp://x/", uri, "jo"))
  end)

  it("splits header lines and finds blank ones", function()
    assert.same({ [0] = "Content-Type: text/html", "Content-Type", "text/html" },
                ngx.re.match("Content-Type: text/html", "([^:\\s]+):\\s*(.*)", "jo"))
    assert.same({ [0] = "X-Empty:", "X-Empty", "" },
                ngx.re.match("X-Empty:", "([^:\\s]+):\\s*(.*)", "jo"))
    assert.is_nil(ngx.re.match("Bad header", "([^:\\s]+):\\s*(.*)", "jo"))
    assert.same({ n = 2, 1, 3 }, pack(ngx.re.find("   ", "^\\s*$", "jo")))
    assert.is_nil(ngx.re.find(" x ", "^\\s*$", "jo"))
  end)

  it("handles the other patterns", function()
    local parts = {}
    for m in ngx.re.gmatch("gzip, .deflate,br", "\\.?([^,]+)", "jo") do parts[#parts + 1] = m[1] end
    assert.same({ "gzip", " .deflate", "br" }, parts)
    assert.same({ n = 2, "example.com", 1 },
                pack(ngx.re.sub("www.example.com", "^[^.]+\\.", "", "jo")))
    assert.same({ n = 2, "a\\.b\\.c", 2 }, pack(ngx.re.gsub("a.b.c", "\\.", "\\.", "jo")))
    assert.same({ n = 2, 4, 4 }, pack(ngx.re.find("has space", "\\s", "jo")))
    assert.is_nil(ngx.re.find("no-spaces", "\\s", "jo"))
  end)
end)

describe("the compiled regex cache", function()
  it("compiles a pattern once per options string", function()
    local a = cs._re_compile("ca(c)he", "i")
    assert.equal(a, cs._re_compile("ca(c)he", "i"))
    assert.not_equal(a, cs._re_compile("ca(c)he", "m"))
    assert.not_equal(a, cs._re_compile("ca(c)he"))
  end)

  it("starts over when it is full and keeps working", function()
    local first = cs._re_compile("first-of-many")
    for i = 1, 1100 do
      assert.same({ [0] = "x" .. i }, ngx.re.match("x" .. i, "x" .. i .. "$"))
    end
    assert.not_equal(first, cs._re_compile("first-of-many"))
    assert.same({ [0] = "first-of-many" }, ngx.re.match("first-of-many", "first-of-many"))
  end)

  it("exposes an exec primitive giving captures and 0-based offsets", function()
    local re = assert(cs._re_compile("(b)(x)?"))
    local m, from, to, rc = cs._re_exec(re, "abc", 0)
    assert.same({ [0] = "b", "b", false }, m)
    assert.same({ 1, 2, 2 }, { from, to, rc })
    assert.same({ n = 1, nil }, pack(cs._re_exec(re, "abc", 2)))
    assert.same({ n = 2, nil, "pcre_exec() failed: -24" }, pack(cs._re_exec(re, "abc", 9)))
  end)
end)
