-- streaming with a size: chunks, then nil, nil, nil at the pattern (SPEC 6.4)
local sock = scripted({ "w", "hello, world! -someone\r\n--abcedhb blah blah" }, "c")
local it = sock:receiveuntil("\r\n--abcedhb")
for _ = 1, 9 do
  out(it(4))
end
out(sock:receive("*a"))
