-- a pattern longer than the data read at once, dribbled (SPEC 6.5)
local pat = string.rep("=", 20) .. "END"
local sock = scripted({ "d", "pre" .. string.rep("=", 25) .. "END" .. "post" }, "c")
local it = sock:receiveuntil(pat)
out(it())
out(sock:receive("*a"))
