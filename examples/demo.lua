-- The main example: light threads, a timer and cosockets against a tiny
-- line-echo server that the example runs itself, on 127.0.0.1.
-- Run it with `make demo` (or: luajit examples/demo.lua, with the module
-- on LUA_CPATH).
local cosocket = require "cosocket"

-- A server built from cosockets would need listen(); cosocket is a client
-- library, so the demo serves with a child process: socat echoes lines.
local port = 19000 + os.time() % 1000
local server = io.popen("exec socat TCP-LISTEN:" .. port
  .. ",bind=127.0.0.1,reuseaddr,fork PIPE >/dev/null 2>&1 & echo $!")
local server_pid = server:read("*l")
server:close()

local function connect()
  local sock = cosocket.tcp()
  sock:settimeout(2000)
  for _ = 1, 50 do                      -- the server may need a moment
    local ok = sock:connect("127.0.0.1", port)
    if ok then return sock end
    cosocket.sleep(0.02)
  end
  error("the echo server did not start")
end

local results = cosocket.run(function()
  cosocket.timer(0.05, function(premature, name)
    print(("timer %q fired (premature: %s)"):format(name, tostring(premature)))
  end, "hello")

  local threads = {}
  for i = 1, 3 do
    threads[i] = cosocket.spawn(function()
      local sock = connect()
      local replies = {}
      for j = 1, 3 do
        assert(sock:send({ "thread ", i, " line ", j, "\n" }))
        replies[j] = assert(sock:receive("*l"))
        cosocket.sleep(0.01 * i)           -- the others run meanwhile
      end
      sock:close()
      return table.concat(replies, " | ")
    end)
  end

  local out = {}
  for i = 1, 3 do
    local ok, replies = cosocket.wait(threads[i])
    out[i] = ok and replies or ("failed: " .. tostring(replies))
  end
  return out
end)

for i, r in ipairs(results) do print(("thread %d: %s"):format(i, r)) end
os.execute("kill " .. server_pid)
