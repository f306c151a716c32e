-- ngx.md5, md5_bin, sha1_bin, hmac_sha1, crc32_short, crc32_long
local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end
for _, s in ipairs({ "", "a", "abc", "message digest", string.rep("a", 1000), "\0\255" }) do
  out(ngx.md5(s), hex(ngx.md5_bin(s)), hex(ngx.sha1_bin(s)), ngx.crc32_short(s),
      ngx.crc32_long(s))
end
out(ngx.md5(nil), ngx.md5(12), ngx.md5(true), ngx.crc32_long(nil), ngx.crc32_short(12))
out(hex(ngx.hmac_sha1("key", "The quick brown fox jumps over the lazy dog")))
out(hex(ngx.hmac_sha1("", "")), hex(ngx.hmac_sha1(string.rep("k", 100), "data")))
out(hex(ngx.hmac_sha1(1, 2)))
out(pcall(function() return (ngx.hmac_sha1("k")) end))
out(pcall(function() return (ngx.hmac_sha1("k", "d", "x")) end))
out(pcall(function() return (ngx.hmac_sha1(nil, "d")) end))
out(pcall(function() return (ngx.hmac_sha1("k", {})) end))
