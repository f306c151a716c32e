-- streaming mode with repeated-prefix patterns (SPEC 6.4, 6.5)
local function chunks(data, pattern, size)
  local sock = scripted({ "w", data }, "c")
  local it = sock:receiveuntil(pattern)
  local parts = {}
  for _ = 1, 20 do
    local d, err, partial = it(size)
    parts[#parts + 1] = table.concat({ tostring(d), tostring(err), tostring(partial) }, ",")
    if d == nil then break end
  end
  out(pattern, size, table.concat(parts, " | "))
  out(sock:receive("*a"))
end
chunks("ab1ab1ab2z", "ab1ab2", 2)
chunks("ab1ab1", "ab1ab2", 2)
chunks("x---abcy", "--abc", 1)
chunks("aaaaab", "aab", 2)
