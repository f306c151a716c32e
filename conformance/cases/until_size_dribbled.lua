-- streaming while the data arrives a byte at a time (SPEC 6.4)
local sock = scripted({ "d", "abcdefg--XYhijk--XYlm" }, "c")
local it = sock:receiveuntil("--XY")
local parts = {}
for _ = 1, 30 do
  local data, err, partial = it(3)
  parts[#parts + 1] = table.concat({ tostring(data), tostring(err), tostring(partial) }, ",")
  if err then break end
end
out(table.concat(parts, " | "))
