-- Spec helpers: test scale, the interpreter in use, and child Lua processes
-- (for one-way operations such as cosocket.shutdown).  Every wait is bounded.
local helpers = {}

local scale = tonumber(os.getenv("COSOCKET_TEST_SCALE") or "1") or 1

-- n scaled down for slow runs (valgrind), never below `min` (default 1)
function helpers.scale(n, min)
  return math.max(min or 1, math.floor(n * scale))
end

-- the interpreter running this spec, to start children with
function helpers.interpreter()
  if rawget(_G, "jit") then return "luajit" end
  if _VERSION == "Lua 5.4" then return "lua5.4" end
  return "lua5.1"
end

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local data = f:read("*a")
  f:close()
  return data
end

-- Runs `code` in a child interpreter with this process' module paths.
-- Returns stdout, stderr and the exit status.  The child is killed after
-- `timeout` seconds (default 20).  Children that load our module get the
-- sanitizer runtime when the suite runs under `make asan`.
function helpers.run_lua(code, timeout)
  local script = os.tmpname()
  local out, err = os.tmpname(), os.tmpname()
  local f = assert(io.open(script, "wb"))
  f:write(code)
  f:close()
  local preload = os.getenv("COSOCKET_PRELOAD")
  local env = "LUA_CPATH=" .. shell_quote(package.cpath) ..
              " LUA_PATH=" .. shell_quote(package.path) ..
              (preload and preload ~= "" and (" LD_PRELOAD=" .. shell_quote(preload)) or "")
  local cmd = string.format("env %s timeout -s KILL %d %s %s >%s 2>%s",
    env, timeout or 20, helpers.interpreter(), shell_quote(script),
    shell_quote(out), shell_quote(err))
  local r1, _, r3 = os.execute(cmd)
  local status = type(r1) == "number" and r1 / 256 or r3  -- 5.1 vs 5.2+
  local stdout, stderr = read_file(out), read_file(err)
  os.remove(script); os.remove(out); os.remove(err)
  return stdout, stderr, status
end

-- number of descriptors this process holds now
function helpers.fd_count()
  local p = io.popen("ls /proc/" .. helpers.pid() .. "/fd")
  local n = 0
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n - 1  -- the listing's own pipe
end

function helpers.pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("*n")
  f:close()
  return pid
end

return helpers
