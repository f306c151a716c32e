-- ngx.re.gmatch: iterates over matches; empty matches advance one byte
local function each(it, err)
  if not it then return out(it, err) end
  local seen = {}
  while true do
    local m, e = it()
    if not m then
      seen[#seen + 1] = "end:" .. tostring(e)
      break
    end
    local caps = {}
    for i = 0, #m do caps[#caps + 1] = tostring(m[i]) end
    if m.name ~= nil then caps[#caps + 1] = "name=" .. tostring(m.name) end
    seen[#seen + 1] = "[" .. table.concat(caps, "|") .. "]"
  end
  out(table.concat(seen, " "))
  out(it())
end
each(ngx.re.gmatch("a1b22c333", "(\\d+)"))
each(ngx.re.gmatch("a1b22c333", "(?<name>[a-z])(x)?"))
each(ngx.re.gmatch("ab", ""))
each(ngx.re.gmatch("aXbX", "X*"))
each(ngx.re.gmatch("", "x*"))
each(ngx.re.gmatch("hello", "z"))
each(ngx.re.gmatch("HeLLo", "l", "i"))
each(ngx.re.gmatch("a", "("))
local n = 0
for m in ngx.re.gmatch("one two three", "\\w+") do n = n + #m[0] end
out(n)
