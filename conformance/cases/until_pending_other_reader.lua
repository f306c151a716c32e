-- bytes of a partly matched pattern, then another read call (SPEC 6.6, DECISIONS 1:
-- 0.10.23 loses them, cosocket keeps them)
local sock = scripted({ "w", "hello--ab" }, { "p", 500 }, { "w", "Z" }, "c")
sock:settimeout(150)
local it = sock:receiveuntil("--abc")
out(it())
sock:settimeout(3000)
out(sock:receive("*a"))
