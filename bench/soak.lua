-- The soak (issue #9): SOAK_ROUNDTRIPS (default 1,000,000) line roundtrips
-- with pool reuse across 100 light threads, against the bench's line server
-- on 127.0.0.1. After a warm-up (the first tenth), the resident set must stay
-- flat (growth under 1 MiB) and, once the pools are closed, the descriptor
-- count must be back at its start. Prints the figures; exits 1 on a miss.
-- Run by `make soak` (the server's path comes in SOAK_SERVER).
local cs = require "cosocket"

local TOTAL = tonumber(os.getenv("SOAK_ROUNDTRIPS")) or 1000000
local THREADS = 100
local SERVER = os.getenv("SOAK_SERVER") or "build/bench/line_server"
local LIMIT = 1024 * 1024

local function rss()
  local f = assert(io.open("/proc/self/statm"))
  local _, pages = f:read("*n", "*n")
  f:close()
  return pages * 4096
end

local function my_pid()
  local f = assert(io.open("/proc/self/stat")) -- this process, not a child
  local pid = f:read("*n")
  f:close()
  return pid
end

local function fds()
  -- the listing may count popen's own pipe: fd_count takes the least of 3
  local p = io.popen("ls /proc/" .. my_pid() .. "/fd 2>/dev/null | wc -l")
  local n = tonumber(p:read("*a"))
  p:close()
  return n
end

local function fd_count()
  local best = math.huge
  for _ = 1, 3 do best = math.min(best, fds()) end
  return best
end

-- the server: started here, stopped by its PID
local out = os.tmpname()
local pid = io.popen("exec " .. SERVER .. " >" .. out .. " 2>/dev/null & echo $!"):read("*l")
local port
for _ = 1, 500 do
  local f = io.open(out)
  local line = f and f:read("*l")
  if f then f:close() end
  port = line and tonumber(line:match("^PORT (%d+)"))
  if port then break end
  os.execute("sleep 0.01")
end
os.remove(out)
if not port then
  os.execute("kill " .. pid)
  error("the line server did not start")
end

local function phase(count)
  local per = math.floor(count / THREADS)
  cs.run(function()
    local threads = {}
    for i = 1, THREADS do
      threads[i] = cs.spawn(function()
        for j = 1, per do
          local sock = cs.tcp()
          sock:settimeout(5000)
          assert(sock:connect("127.0.0.1", port, { pool = "soak", pool_size = 20 }))
          local msg = "ping " .. i .. " " .. j
          assert(sock:send(msg .. "\n"))
          local reply = assert(sock:receive("*l"))
          assert(reply == msg, reply)
          assert(sock:setkeepalive(60000))
        end
      end)
    end
    for i = 1, THREADS do assert(cs.wait(threads[i])) end
  end)
  return per * THREADS
end

collectgarbage()
local fd0 = fd_count()
local t0 = os.clock()
local done = phase(TOTAL / 10)          -- warm-up: buffers, pools, the JIT
collectgarbage()
collectgarbage()
local rss1 = rss()
done = done + phase(TOTAL - done)
collectgarbage()
collectgarbage()
local rss2 = rss()
local stats = cs.pool_stats().soak or { idle = 0, in_use = 0 }
local cpu = os.clock() - t0
cs.shutdown()                             -- closes the idle pooled connections
local fd1 = fd_count()
os.execute("kill " .. pid)

local growth = rss2 - rss1
print(("soak: %d roundtrips by %d light threads, %.2f us client CPU each")
  :format(done, THREADS, cpu * 1e6 / done))
print(("soak: pool idle %d, in use %d at the end"):format(stats.idle, stats.in_use))
print(("soak: RSS after warm-up %.1f MiB, at the end %.1f MiB: growth %d bytes (limit %d)")
  :format(rss1 / 1048576, rss2 / 1048576, growth, LIMIT))
print(("soak: descriptors at the start %d, after shutdown %d"):format(fd0, fd1))
local ok = growth < LIMIT and fd1 == fd0
print(ok and "soak: ok" or "soak: FAILED")
os.exit(ok and 0 or 1)
