-- require "ngx.re": split, with captures, max, ctx and res (lua-resty-core's
-- handling of empty matches included)
local split = require("ngx.re").split
local function show(t, ...)
  if type(t) ~= "table" then return out(t, ...) end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. t[k] end
  out(table.concat(parts, " "), ...)
end
show(split("a,b,c", ","))
show(split("a,b,c", ",", nil, nil, 2))
show(split("a,b,,c,,", ","))
show(split("a,b,,c,,", ",", nil, nil, 10))
show(split(",a", ","))
show(split("abc", ""))
show(split("abc", "", nil, nil, 2))
show(split("a1b2c", "(\\d)"))
show(split("a1b2c", "(\\d)|x"))
show(split("a, b ,c", "\\s*,\\s*"))
show(split("", ","))
show(split("abc", "x"))
show(split("abc", "("))
show(split("a,b,c", ",", nil, { pos = 3 }))
show(split("a,b,c", ",", nil, nil, nil, { "x", "y", "z", "w", "v" }))
show(split("a,b,c", ",", nil, { pos = 10 }))
show(split(123, "2"))
show(split("aXbX", "X*"))
show(split("abc", "b*"))
show(split("a,b", ",", "jo"))
show(split(",,,", ","))
show(split(",,,", ",", nil, nil, 2))
show(split("abc", "$"))
show(split("a1b", "(x)?(\\d)"))
out(pcall(function() return (split("a,b,c", ",", nil, nil, nil, "x")) end))
