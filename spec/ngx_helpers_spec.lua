-- The ngx layer's helpers (ngx_helpers.c, cosocket/ngx.lua): hashes, crc32,
-- base64, URI escapes, query args, quote_sql_str, as nginx + ngx_lua 0.10.23
-- compute them (conformance/cases/ngx_* compare them with the oracle).
local ngx = require "cosocket.ngx"

local pack = require("helpers").pack

local function hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

local function unhex(s)
  return (s:gsub("..", function(h) return string.char(tonumber(h, 16)) end))
end

local all_bytes = {}
for i = 0, 255 do all_bytes[#all_bytes + 1] = string.char(i) end
all_bytes = table.concat(all_bytes)

describe("ngx.md5 and ngx.md5_bin", function()
  local vectors = { -- RFC 1321
    [""] = "d41d8cd98f00b204e9800998ecf8427e",
    a = "0cc175b9c0f1b6a831c399e269772661",
    abc = "900150983cd24fb0d6963f7d28e17f72",
    ["message digest"] = "f96b697d7cb7938d525a2f31aaf161d0",
    abcdefghijklmnopqrstuvwxyz = "c3fcd3d76192e4007dfb496cca67e13b",
    [("1234567890"):rep(8)] = "57edf4a22be3c955ac49da2e2107b67a",
  }

  it("gives the RFC 1321 digests, md5 in lower-case hex, md5_bin raw", function()
    for s, digest in pairs(vectors) do
      assert.equal(digest, ngx.md5(s))
      assert.equal(unhex(digest), ngx.md5_bin(s))
      assert.equal(16, #ngx.md5_bin(s))
    end
  end)

  it("hashes nil and false as the empty string and other values as tostring", function()
    assert.equal(vectors[""], ngx.md5(nil))
    assert.equal(vectors[""], ngx.md5(false))
    assert.equal(ngx.md5("12"), ngx.md5(12))
    assert.equal(ngx.md5("true"), ngx.md5(true))
    assert.equal(ngx.md5_bin(""), ngx.md5_bin())
  end)

  it("hashes binary data, NUL bytes included", function()
    assert.equal("d07d34efac6328007ad67c7e0a985e00", ngx.md5("\0\255"))
    assert.equal("e2c865db4162bed963bfaa9ef6ac18f0", ngx.md5(all_bytes))
  end)
end)

describe("ngx.sha1_bin", function()
  it("gives the FIPS 180 digests as 20 raw bytes", function()
    assert.equal("da39a3ee5e6b4b0d3255bfef95601890afd80709", hex(ngx.sha1_bin("")))
    assert.equal("a9993e364706816aba3e25717850c26c9cd0d89d", hex(ngx.sha1_bin("abc")))
    assert.equal("84983e441c3bd26ebaae4aa1f95129e5e54670f1",
                 hex(ngx.sha1_bin("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")))
    assert.equal("34aa973cd4c4daa4f61eeb2bdbad27316534016f",
                 hex(ngx.sha1_bin(("a"):rep(1000000))))
    assert.equal(20, #ngx.sha1_bin("x"))
  end)

  it("coerces as md5 does", function()
    assert.equal(ngx.sha1_bin(""), ngx.sha1_bin(nil))
    assert.equal(ngx.sha1_bin("1.5"), ngx.sha1_bin(1.5))
  end)
end)

describe("ngx.hmac_sha1(key, data)", function()
  it("gives the RFC 2202 digests", function()
    assert.equal("b617318655057264e28bc0b6fb378c8ef146be00",
                 hex(ngx.hmac_sha1(("\11"):rep(20), "Hi There")))
    assert.equal("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
                 hex(ngx.hmac_sha1("Jefe", "what do ya want for nothing?")))
    assert.equal("aa4ae5e15272d00e95705637ce8a3b55ed402112",
                 hex(ngx.hmac_sha1(("\170"):rep(80),
                                   "Test Using Larger Than Block-Size Key - Hash Key First")))
    assert.equal("de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9",
                 hex(ngx.hmac_sha1("key", "The quick brown fox jumps over the lazy dog")))
  end)

  it("takes numbers as strings", function()
    assert.equal(ngx.hmac_sha1("1", "2"), ngx.hmac_sha1(1, 2))
  end)

  it("raises ngx_lua's errors for a wrong argument count or type", function()
    assert.has_error(function() ngx.hmac_sha1("k") end, "expecting 2 arguments, but got 1")
    assert.has_error(function() ngx.hmac_sha1("k", "d", "x") end,
                     "expecting 2 arguments, but got 3")
    assert.has_error(function() ngx.hmac_sha1(nil, "d") end,
                     "bad argument #1 to 'hmac_sha1' (string expected, got nil)")
    assert.has_error(function() ngx.hmac_sha1("k", {}) end,
                     "bad argument #2 to 'hmac_sha1' (string expected, got table)")
  end)
end)

describe("ngx.crc32_short and ngx.crc32_long", function()
  it("give the IEEE CRC-32 as a non-negative integer, both the same", function()
    local vectors = {
      [""] = 0,
      a = 0xe8b7be43,
      ["123456789"] = 0xcbf43926,
      hello = 907060870,
      ["The quick brown fox jumps over the lazy dog"] = 1095738169,
      [("a"):rep(100)] = 2943384164,
      [all_bytes] = 0x29058c73,
    }
    for s, crc in pairs(vectors) do
      assert.equal(crc, ngx.crc32_short(s))
      assert.equal(crc, ngx.crc32_long(s))
    end
  end)

  it("coerces nil to the empty string and numbers to strings", function()
    assert.equal(0, ngx.crc32_long(nil))
    assert.equal(ngx.crc32_short("12"), ngx.crc32_short(12))
  end)
end)

describe("ngx.encode_base64", function()
  it("encodes the RFC 4648 vectors with padding", function()
    local vectors = { [""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==",
                      fooba = "Zm9vYmE=", foobar = "Zm9vYmFy" }
    for s, b64 in pairs(vectors) do assert.equal(b64, ngx.encode_base64(s)) end
  end)

  it("leaves the padding out when no_padding is true", function()
    assert.equal("Zg", ngx.encode_base64("f", true))
    assert.equal("Zm8", ngx.encode_base64("fo", true))
    assert.equal("Zm9v", ngx.encode_base64("foo", true))
    assert.equal("", ngx.encode_base64("", true))
    assert.equal("Zg==", ngx.encode_base64("f", false))
    assert.equal("Zg==", ngx.encode_base64("f", nil))
  end)

  it("uses + and / and encodes every byte", function()
    assert.equal("//79AAE=", ngx.encode_base64("\255\254\253\0\1"))
    assert.equal("+/+/", ngx.encode_base64("\251\255\191"))
    assert.equal(all_bytes, ngx.decode_base64(ngx.encode_base64(all_bytes)))
  end)

  it("coerces nil to the empty string and other values with tostring", function()
    assert.equal("", ngx.encode_base64(nil))
    assert.equal("MTIz", ngx.encode_base64(123))
    assert.equal("dHJ1ZQ==", ngx.encode_base64(true))
  end)

  it("raises for a no_padding that is neither a boolean nor nil", function()
    assert.has_error(function() ngx.encode_base64("f", 1) end,
                     "bad no_padding: boolean expected, got number")
    assert.has_error(function() ngx.encode_base64("f", "yes") end,
                     "bad no_padding: boolean expected, got string")
  end)
end)

describe("ngx.decode_base64", function()
  it("decodes padded and unpadded input", function()
    assert.equal("", ngx.decode_base64(""))
    assert.equal("f", ngx.decode_base64("Zg=="))
    assert.equal("f", ngx.decode_base64("Zg"))
    assert.equal("f", ngx.decode_base64("Zg="))
    assert.equal("fo", ngx.decode_base64("Zm8"))
    assert.equal("foobar", ngx.decode_base64("Zm9vYmFy"))
    assert.equal("fooba", ngx.decode_base64("Zm9vYmE"))
    assert.equal("\251\255\191", ngx.decode_base64("+/+/"))
  end)

  it("ignores everything from the first '=' on, as nginx does", function()
    assert.equal("f", ngx.decode_base64("Zg==Zg=="))
    assert.equal("f", ngx.decode_base64("Zg=a"))
    assert.equal("foo", ngx.decode_base64("Zm9v="))
    assert.equal("", ngx.decode_base64("===="))
    assert.equal("", ngx.decode_base64("="))
  end)

  it("does not check the unused bits of the last character", function()
    assert.equal("f", ngx.decode_base64("Zh=="))
    assert.equal("fo", ngx.decode_base64("Zm9="))
  end)

  it("returns nil (one value) for invalid input", function()
    local invalid = { "Z", "Zm9vY", "Z m9v", "Zm9v\n", "Zm-_", "-_-_", "@@@@", "\0", "Zg\255=" }
    for _, s in ipairs(invalid) do
      assert.same({ n = 1, nil }, pack(ngx.decode_base64(s)))
    end
  end)

  it("raises 'string argument only' for anything but a string", function()
    assert.has_error(function() ngx.decode_base64(nil) end, "string argument only")
    assert.has_error(function() ngx.decode_base64(12) end, "string argument only")
  end)
end)

describe("ngx.escape_uri", function()
  local function kept(esc_type)
    local out = {}
    for i = 0, 255 do
      local c = string.char(i)
      if ngx.escape_uri(c, esc_type) == c then out[#out + 1] = c end
    end
    return table.concat(out)
  end

  it("keeps A-Za-z0-9, -._~ and !'()* in the default component mode", function()
    local expect = "!'()*-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~"
    assert.equal(expect, kept())
    assert.equal(expect, kept(2))
  end)

  it("turns every other byte into %XX with upper-case hex", function()
    for i = 0, 255 do
      local c = string.char(i)
      if not c:find("[%w%-%._~!'%(%)%*]") then
        assert.equal(("%%%02X"):format(i), ngx.escape_uri(c))
      end
    end
    assert.equal("a%20b%2Fc%3Fd%3De%26f%2Bg%23h%25", ngx.escape_uri("a b/c?d=e&f+g#h%"))
    assert.equal("%C3%A9%00%FF", ngx.escape_uri("é\0\255"))
  end)

  it("has ngx_lua's types 0 (uri) to 6 (mail auth)", function()
    local printable = {}
    for i = 33, 126 do printable[#printable + 1] = string.char(i) end
    printable = table.concat(printable)
    local function without(chars)
      return (printable:gsub("[" .. chars:gsub("[%^%]%%%-]", "%%%0") .. "]", ""))
    end
    assert.equal(without("#%?"), kept(0))
    assert.equal(without("#%+?"), kept(1))
    assert.equal(without("\"#%'"), kept(3))
    assert.equal(without("\"'"), kept(4))
    local rest = {}
    for i = 127, 255 do rest[#rest + 1] = string.char(i) end
    assert.equal(without("%") .. table.concat(rest), kept(5))
    assert.equal(kept(5), kept(6))
  end)

  it("coerces as lua-resty-core does and truncates a fractional type", function()
    assert.equal("", ngx.escape_uri(nil))
    assert.equal("", ngx.escape_uri(false))
    assert.equal("12", ngx.escape_uri(12))
    assert.equal("true", ngx.escape_uri(true))
    assert.equal("a%20b", ngx.escape_uri("a b", 2.5))
    assert.equal("", ngx.escape_uri(""))
  end)

  it("raises for a type that is not a number or is out of 0..6", function()
    assert.has_error(function() ngx.escape_uri("a", "2") end, '"type" is not a number')
    assert.has_error(function() ngx.escape_uri("a", 7) end, '"type" 7 out of range')
    assert.has_error(function() ngx.escape_uri("a", -1) end, '"type" -1 out of range')
  end)
end)

describe("ngx.unescape_uri", function()
  it("decodes %XX in either case and + as a space", function()
    assert.equal("AJJ~ a b", ngx.unescape_uri("%41%4a%4A%7e%20a+b"))
    assert.equal("\0\255\255é", ngx.unescape_uri("%00%ff%FF%C3%A9"))
  end)

  it("leaves malformed escapes as they are", function()
    assert.equal("%zz%4%A% %2", ngx.unescape_uri("%zz%4%%41%+%2"))
    assert.equal("100%", ngx.unescape_uri("100%"))
    assert.equal("%", ngx.unescape_uri("%"))
    assert.equal("%g0", ngx.unescape_uri("%g0"))
  end)

  it("undoes escape_uri for every byte", function()
    assert.equal(all_bytes, ngx.unescape_uri(ngx.escape_uri(all_bytes)))
    for t = 0, 6 do -- a '+' left as it is comes back as a space
      local escaped = ngx.escape_uri(all_bytes, t)
      local expect = escaped:find("+", 1, true) and all_bytes:gsub("%+", " ") or all_bytes
      assert.equal(expect, ngx.unescape_uri(escaped))
    end
  end)

  it("coerces nil to the empty string and other values with tostring", function()
    assert.equal("", ngx.unescape_uri(nil))
    assert.equal("12", ngx.unescape_uri(12))
    assert.equal("true", ngx.unescape_uri(true))
  end)
end)

describe("ngx.encode_args", function()
  it("escapes keys and values as the component mode", function()
    assert.equal("a=b%20c", ngx.encode_args({ a = "b c" }))
    assert.equal("a%20b=x%2Fy%3Fz%26w%3D1%2B2", ngx.encode_args({ ["a b"] = "x/y?z&w=1+2" }))
    assert.equal("a=%C3%A9~!*'()", ngx.encode_args({ a = "é~!*'()" }))
    assert.equal(ngx.escape_uri(all_bytes) .. "=" .. ngx.escape_uri(all_bytes),
                 ngx.encode_args({ [all_bytes] = all_bytes }))
  end)

  it("gives a bare key for true and nothing for false", function()
    assert.equal("a", ngx.encode_args({ a = true }))
    assert.equal("", ngx.encode_args({ a = false }))
    assert.equal("", ngx.encode_args({}))
  end)

  it("takes numbers as values", function()
    assert.equal("a=10", ngx.encode_args({ a = 10 }))
    assert.equal("a=1.5", ngx.encode_args({ a = 1.5 }))
  end)

  it("repeats the key for each value of a table", function()
    assert.equal("a=1&a=2&a&a=3", ngx.encode_args({ a = { "1", "2", true, false, 3 } }))
    assert.equal("k=a%20b&k=c%2Bd", ngx.encode_args({ k = { "a b", "c+d" } }))
    assert.equal("", ngx.encode_args({ a = {} }))
  end)

  it("joins pairs with & (in table order)", function()
    local s = ngx.encode_args({ a = "1", b = true, c = { "x", "y" } })
    local pieces = {}
    for p in s:gmatch("[^&]+") do pieces[#pieces + 1] = p end
    table.sort(pieces)
    assert.same({ "a=1", "b", "c=x", "c=y" }, pieces)
  end)

  it("raises ngx_lua's errors", function()
    assert.has_error(function() ngx.encode_args({ [1] = "x" }) end,
                     'attempt to use a non-string key in the "args" option table')
    assert.has_error(function() ngx.encode_args({ a = { {} } }) end,
                     "attempt to use table as query arg value")
    assert.has_error(function() ngx.encode_args({ a = ngx.null }) end,
                     "attempt to use userdata as query arg value")
    assert.has_error(function() ngx.encode_args({ a = print }) end,
                     "attempt to use function as query arg value")
    assert.has_error(function() ngx.encode_args() end, "expecting 1 argument but seen 0")
    assert.has_error(function() ngx.encode_args("a=b") end,
                     "bad argument #1 to 'encode_args' (table expected, got string)")
  end)
end)

describe("ngx.decode_args", function()
  it("unescapes keys and values, gives true for bare keys, drops empty keys", function()
    assert.same({ a = { "1", "3" }, b = "2", c = true, d = "", f = "x y z", g = "%zz", h = "%4" },
                ngx.decode_args("a=1&b=2&a=3&c&d=&=e&&f=x%20y+z&g=%zz&h=%4"))
    assert.same({ ["a b"] = "c d", ["a=b"] = "&" }, ngx.decode_args("a+b=c+d&a%3Db=%26"))
    assert.same({ a = "b=c" }, ngx.decode_args("a=b=c"))
    assert.same({ a = { true, true, "1" } }, ngx.decode_args("a&a&a=1"))
    assert.same({}, ngx.decode_args(""))
    assert.same({}, ngx.decode_args("=&="))
    assert.same({ ["12"] = true }, ngx.decode_args(12))
  end)

  it("stops after max pairs (100 by default) with 'truncated', counting each '&'", function()
    assert.same({ n = 2, { a = "1", b = "2" }, "truncated" },
                pack(ngx.decode_args("a=1&b=2&c=3", 2)))
    assert.same({ n = 1, { a = "1", b = "2" } }, pack(ngx.decode_args("a=1&b=2", 2)))
    assert.same({ n = 2, { a = "1", b = "2" }, "truncated" }, pack(ngx.decode_args("a=1&b=2&", 2)))
    assert.same({ n = 2, {}, "truncated" }, pack(ngx.decode_args("&&&a=1", 3)))
    assert.same({ a = "1", b = "2", c = "3" }, ngx.decode_args("a=1&b=2&c=3", 0))
    assert.same({ a = "1", b = "2", c = "3" }, ngx.decode_args("a=1&b=2&c=3", -1))
    local many = {}
    for i = 1, 120 do many[i] = "k" .. i .. "=v" end
    local t, err = ngx.decode_args(table.concat(many, "&"))
    local n = 0
    for _ in pairs(t) do n = n + 1 end
    assert.equal(100, n)
    assert.equal("truncated", err)
  end)

  it("raises ngx_lua's errors", function()
    assert.has_error(function() ngx.decode_args() end, "expecting 1 or 2 arguments but seen 0")
    assert.has_error(function() ngx.decode_args("a", 1, 2) end,
                     "expecting 1 or 2 arguments but seen 3")
    assert.has_error(function() ngx.decode_args(nil) end,
                     "bad argument #1 to 'decode_args' (string expected, got nil)")
    assert.has_error(function() ngx.decode_args("a=1", "x") end,
                     "bad argument #2 to 'decode_args' (number expected, got string)")
  end)
end)

describe("ngx.quote_sql_str", function()
  it("escapes MySQL's special characters inside single quotes", function()
    assert.equal([['a\'b\"c\\d\0e\n\r\t\Zf\bg']], ngx.quote_sql_str("a'b\"c\\d\0e\n\r\t\26f\bg"))
    assert.equal("''", ngx.quote_sql_str(""))
    assert.equal("'plain'", ngx.quote_sql_str("plain"))
    assert.equal("'é\255'", ngx.quote_sql_str("é\255"))
    assert.equal("'12'", ngx.quote_sql_str(12))
  end)

  it("raises ngx_lua's errors", function()
    assert.has_error(function() ngx.quote_sql_str() end, "expecting one argument")
    assert.has_error(function() ngx.quote_sql_str("a", "b") end, "expecting one argument")
    assert.has_error(function() ngx.quote_sql_str(true) end,
                     "bad argument #1 to 'quote_sql_str' (string expected, got boolean)")
  end)
end)
