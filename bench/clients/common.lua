-- bench/clients/common.lua: what every Lua bench client shares: parameters,
-- the requests, clocks, RSS, the result line, and a chunk splitter for the
-- peers that have no receive('*l') or receiveuntil of their own.
--
-- Clients take key=value arguments (bench/run.lua passes them) and print one
--     RESULT ops=<n> cpu=<s> wall=<s> [rss_per_conn=<bytes>]
-- line. cpu is os.clock(): the process's user+sys time (clock(3) reads
-- CLOCK_PROCESS_CPUTIME_ID), over the timed section only.
local M = {}

local floor, format, find, sub = math.floor, string.format, string.find, string.sub

-- the W4 separator; bench/line_server.c sends the same
M.SEP = "\r\n--cosocket-bench-boundary\r\n"

-- redis requests in RESP (what lua-resty-redis sends)
M.REQ = {
  ping = "*1\r\n$4\r\nPING\r\n",
  get100 = "*2\r\n$3\r\nGET\r\n$4\r\nk100\r\n",
  get16k = "*2\r\n$3\r\nGET\r\n$4\r\nk16k\r\n",
}

function M.params(argv)
  local p = {}
  for i = 1, #argv do
    local k, v = argv[i]:match("^([%w_]+)=(.*)$")
    if not k then error("bad argument " .. argv[i] .. " (want key=value)") end
    p[k] = tonumber(v) or v
  end
  p.host = p.host or "127.0.0.1"
  return p
end

M.cpu = os.clock

-- a wall clock in seconds: clock_gettime through the FFI on LuaJIT (also
-- inside nginx), LuaSocket's gettime on PUC Lua
local wall
if rawget(_G, "jit") then
  local ffi = require "ffi"
  pcall(ffi.cdef, [[
    typedef struct { long tv_sec; long tv_nsec; } cs_bench_timespec;
    int clock_gettime(int clk_id, cs_bench_timespec *tp);
  ]])
  local ok, ts = pcall(ffi.new, "cs_bench_timespec")
  if ok then
    local C = ffi.C
    wall = function()
      C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
      return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
    end
  end
end
if not wall then
  local ok, socket = pcall(require, "socket")
  wall = ok and socket.gettime or os.time
end
M.wall = wall

-- resident set size in bytes
function M.rss()
  local f = assert(io.open("/proc/self/statm", "r"))
  local _, res = f:read("*n", "*n")
  f:close()
  return res * 4096
end

function M.gc()
  collectgarbage("collect")
  collectgarbage("collect")
end

-- the RESULT line for {ops, cpu, wall, rss_per_conn}
function M.format(r)
  local s = format("RESULT ops=%d cpu=%.6f wall=%.6f", r.ops, r.cpu, r.wall)
  if r.rss_per_conn then s = s .. format(" rss_per_conn=%.1f", r.rss_per_conn) end
  return s .. "\n"
end

-- starts a timed section; its function returns the result table
function M.timer(ops)
  local cpu0, wall0 = M.cpu(), M.wall()
  return function(n)
    return { ops = n or ops, cpu = M.cpu() - cpu0, wall = M.wall() - wall0 }
  end
end

function M.per(n, c)
  return floor(n / c)
end

-- redis reply framing for callback clients: the length of the whole reply
-- at the start of buf, or nil while it is incomplete
function M.redis_reply_len(buf)
  local e = find(buf, "\n", 1, true)
  if not e then return nil end
  if sub(buf, 1, 1) == "$" then
    local need = e + tonumber(sub(buf, 2, e - 2)) + 2
    if #buf >= need then return need end
    return nil
  end
  return e
end

-- feeds chunks, calls on_record(record) for each sep-terminated record (the
-- separator left out), as receive('*l') / receiveuntil would return them
function M.splitter(sep, on_record)
  local rest = ""
  local seplen = #sep
  return function(chunk)
    local data = rest == "" and chunk or rest .. chunk
    local pos = 1
    while true do
      local s = find(data, sep, pos, true)
      if not s then break end
      on_record(sub(data, pos, s - 1))
      pos = s + seplen
    end
    rest = sub(data, pos)
  end
end

return M
