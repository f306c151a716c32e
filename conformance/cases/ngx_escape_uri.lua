-- ngx.escape_uri: the default (component) mode keeps A-Za-z0-9, -._~ and
-- also !'()*; every byte is checked, and each of the types 0..6
local kept = {}
for i = 0, 255 do
  local c = string.char(i)
  if ngx.escape_uri(c) == c then kept[#kept + 1] = c end
end
out(table.concat(kept))
local all = {}
for i = 0, 255 do all[#all + 1] = string.char(i) end
out(ngx.escape_uri(table.concat(all)))
for t = 0, 6 do
  kept = {}
  for i = 0, 255 do
    local c = string.char(i)
    if ngx.escape_uri(c, t) == c then kept[#kept + 1] = i end
  end
  out(t, table.concat(kept, " "))
end
out(ngx.escape_uri("a b/c?d=e&f+g#h%"), ngx.escape_uri("é"), ngx.escape_uri(""))
out(ngx.escape_uri(nil), ngx.escape_uri(false), ngx.escape_uri(12), ngx.escape_uri(true))
out(ngx.escape_uri("a b", 0), ngx.escape_uri("a b", 2.5))
out(pcall(function() return (ngx.escape_uri("a", 7)) end))
out(pcall(function() return (ngx.escape_uri("a", -1)) end))
out(pcall(function() return (ngx.escape_uri("a", "2")) end))
