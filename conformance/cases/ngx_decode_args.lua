-- ngx.decode_args: unescaped keys and values, bare keys true, empty keys
-- dropped, repeated keys an array; max (default 100) counts every '&'
local function show(t, ...)
  if type(t) ~= "table" then return out(t, ...) end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = t[k]
    if type(v) == "table" then
      local items = {}
      for i = 1, #v do items[i] = tostring(v[i]) end
      v = "{" .. table.concat(items, ",") .. "}"
    end
    parts[#parts + 1] = k .. "=" .. tostring(v)
  end
  out(table.concat(parts, " "), ...)
end
show(ngx.decode_args("a=1&b=2&a=3&c&d=&=e&&f=x%20y+z&g=%zz&h=%4"))
show(ngx.decode_args("a=1&b=2&c=3", 2))
show(ngx.decode_args("a=1&b=2", 2))
show(ngx.decode_args("a=1&b=2&", 2))
show(ngx.decode_args("&&&a=1", 3))
show(ngx.decode_args("a=1&b=2&c=3", 0))
show(ngx.decode_args("a=1&b=2&c=3", -1))
show(ngx.decode_args(""))
show(ngx.decode_args("a"))
show(ngx.decode_args("a=b=c"))
show(ngx.decode_args("a&a&a=1"))
show(ngx.decode_args("=&="))
show(ngx.decode_args("a+b=c+d&a%3Db=%26"))
show(ngx.decode_args(12))
local many = {}
for i = 1, 120 do many[#many + 1] = "k" .. i .. "=v" end
local t, err = ngx.decode_args(table.concat(many, "&"))
local n = 0
for _ in pairs(t) do n = n + 1 end
out(n, err)
out(pcall(function() return (ngx.decode_args(nil)) end))
out(pcall(function() return (ngx.decode_args()) end))
out(pcall(function() return (ngx.decode_args("a", 1, 2)) end))
out(pcall(function() return (ngx.decode_args("a=1", "x")) end))
