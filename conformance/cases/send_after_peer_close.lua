-- after the peer closed: sends fail with an errno text, then "closed" (SPEC 4)
local sock = scripted("c")
out(sock:receive())
-- the first send after FIN usually succeeds; the peer then resets
local results = {}
for _ = 1, 50 do
  local n, err = sock:send("data")
  if not n then
    results[#results + 1] = err
    break
  end
  ngx.sleep(0.01)
end
out(results[1])
out(sock:send("x"))
out(sock:close())
