-- the read timeout measures inactivity, re-armed by each read (SPEC 5)
local sock = scripted({ "p", 50 }, { "w", "a" }, { "p", 120 }, { "w", "b" }, { "p", 120 },
  { "w", "c" }, { "p", 120 }, { "w", "d" }, "c")
sock:settimeout(300)
out(sock:receive(4))
