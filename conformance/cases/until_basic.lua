-- the SPEC 6.3 example: data before the pattern, then the rest
local sock = scripted({ "w", "hello, world! -someone\r\n--abcedhb blah blah" }, "c")
local it = sock:receiveuntil("\r\n--abcedhb")
out(type(it))
out(it())
out(sock:receive("*a"))
