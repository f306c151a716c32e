-- ngx.re.match: [0] and numbered captures, false for groups that did not
-- take part, named captures, options, ctx.pos, a res table to fill
local function show(m, ...)
  if type(m) ~= "table" then return out(m, ...) end
  local keys = {}
  for k in pairs(m) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    if type(a) == type(b) then return a < b end
    return type(a) == "number"
  end)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = m[k]
    if type(v) == "table" then
      local items = {}
      for i = 1, #v do items[i] = tostring(v[i]) end
      v = "{" .. table.concat(items, ",") .. "}"
    end
    parts[#parts + 1] = tostring(k) .. "=" .. tostring(v)
  end
  out(table.concat(parts, " "), ...)
end
show(ngx.re.match("hello world", "(\\w+) (\\w+)"))
show(ngx.re.match("hello", "(h)(x)?(e)"))
show(ngx.re.match("hello", "(?<first>h)(?<none>x)?(e)"))
show(ngx.re.match("x", "(?<a>h)|(?<b>e)|x"))
show(ngx.re.match("hello", "z"))
show(ngx.re.match("HELLO", "hel", "i"))
show(ngx.re.match("a\nb", "^b", "m"))
show(ngx.re.match("a\nb", "^b"))
show(ngx.re.match("a\nb", "a.b", "s"))
show(ngx.re.match("a\nb", "a.b"))
show(ngx.re.match("ab", "a b", "x"))
show(ngx.re.match("ab", "b", "a"))
show(ngx.re.match("héllo", "h(.)", "u"))
show(ngx.re.match("héllo", "h(.)"))
show(ngx.re.match("abc", "b", "jo"))
show(ngx.re.match("abc", "b", ""))
show(ngx.re.match("abc", "b", nil))
show(ngx.re.match(nil, "ni"))
show(ngx.re.match(123, "2"))
show(ngx.re.match("", ""))
show(ngx.re.match("hello", "(?<a>h)|(?<a>e)", "D"))
show(ngx.re.match("e", "(?<a>h)|(?<a>e)", "D"))
show(ngx.re.match("x", "(?<a>h)|(?<a>e)|x", "D"))
local ctx = {}
show(ngx.re.match("hello", "l", nil, ctx))
out(ctx.pos)
show(ngx.re.match("hello", "l", nil, ctx))
out(ctx.pos)
show(ngx.re.match("hello", "l", nil, ctx))
out(ctx.pos)
ctx = { pos = 6 }
show(ngx.re.match("hello", "$", nil, ctx))
out(ctx.pos)
ctx = { pos = 0 }
show(ngx.re.match("hello", "h", nil, ctx))
out(ctx.pos)
local res = { 9, 9, 9, x = 1 }
show(ngx.re.match("hello", "(e)", nil, nil, res))
show(res)
out(pcall(function() return (ngx.re.match("abc", "b", "z")) end))
out(pcall(function() return (ngx.re.match("abc", "b", "ijz")) end))
