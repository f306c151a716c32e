-- cosocket.ngx: an `ngx` table on cosocket, so that code written for
-- ngx_lua runs unchanged (DECISIONS.md 8).  `local ngx = require "cosocket.ngx"`
-- returns it and sets the global `ngx` when there is none.
local cs = require "cosocket"

local type, select, tostring, concat = type, select, tostring, table.concat
local io_stdout, io_stderr, os_date = io.stdout, io.stderr, os.date

local ngx = {}

ngx.null = cs.null

-- log levels, nginx's numbers
ngx.STDERR, ngx.EMERG, ngx.ALERT, ngx.CRIT = 0, 1, 2, 3
ngx.ERR, ngx.WARN, ngx.NOTICE, ngx.INFO, ngx.DEBUG = 4, 5, 6, 7, 8
ngx.OK, ngx.ERROR, ngx.AGAIN, ngx.DONE, ngx.DECLINED = 0, -1, -2, -4, -5

local level_names = { [0] = "stderr", "emerg", "alert", "crit", "error", "warn",
                      "notice", "info", "debug" }

ngx.socket = { tcp = cs.tcp, stream = cs.stream, connect = cs.connect, udp = cs.udp }
ngx.thread = { spawn = cs.spawn, wait = cs.wait, kill = cs.kill }
ngx.sleep = cs.sleep
ngx.now = cs.now
ngx.update_time = cs.update_time

function ngx.time()
  return math.floor(cs.now())
end

local timer_at, timer_every, timer_counts = cs.timer, cs.every, cs.timer_counts
ngx.timer = {
  at = timer_at,
  every = timer_every,
  running_count = function() return (timer_counts()) end,
  pending_count = function() return (select(2, timer_counts())) end,
}

ngx.config = {
  subsystem = "http",
  ngx_lua_version = 10023, -- the oracle's (DECISIONS.md 8)
  nginx_version = 1022001,
  debug = false,
  prefix = function() return "./" end,
}

-- cosockets work everywhere here (DECISIONS.md 8)
function ngx.get_phase()
  return "timer"
end

-- ngx.say / ngx.print: strings, numbers, booleans, nil, ngx.null and array
-- tables, with ngx_lua's argument errors
local function flatten(out, v, name, i, nested)
  local t = type(v)
  if t == "string" or t == "number" then
    out[#out + 1] = tostring(v)
  elseif t == "table" then
    for k = 1, #v do flatten(out, v[k], name, i, true) end
  elseif v == ngx.null then
    out[#out + 1] = "null"
  elseif not nested and (t == "nil" or t == "boolean") then
    out[#out + 1] = tostring(v)
  elseif nested then
    error(("bad argument #%d to '%s' (bad data type %s found)"):format(i, name, t), 4)
  else
    error(("bad argument #%d to '%s' (string, number, boolean, nil, ngx.null, "
           .. "or array table expected, but got %s)"):format(i, name, t), 4)
  end
end

local function echo(name, newline, ...)
  local out = {}
  for i = 1, select("#", ...) do
    flatten(out, (select(i, ...)), name, i, false)
  end
  if newline then out[#out + 1] = "\n" end
  io_stdout:write(concat(out))
  return 1
end

-- the name an argument error shows: how the caller called it ('?' when
-- called by pcall, say), as luaL_argerror does for ngx_lua's C functions
local getinfo = debug.getinfo

function ngx.say(...)
  return echo(getinfo(1, "n").name or "?", true, ...)
end

function ngx.print(...)
  return echo(getinfo(1, "n").name or "?", false, ...)
end
function ngx.flush() io_stdout:flush(); return 1 end

function ngx.log(level, ...)
  if type(level) ~= "number" then
    error("bad argument #1 to 'log' (number expected, got " .. type(level) .. ")", 2)
  end
  if level > cs.log_level() then return end
  local parts = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    parts[i] = v == ngx.null and "null" or tostring(v)
  end
  io_stderr:write(os_date("%Y/%m/%d %H:%M:%S"), " [", level_names[level] or "?",
                  "] cosocket: ", concat(parts), "\n")
end

-- ngx.exit: in the main chunk, flush and exit as resty-cli does
function ngx.exit(code)
  io_stdout:flush()
  os.exit(code == 0 and 0 or (tonumber(code) or 1))
end

ngx.worker = {
  exiting = function() return cs.exiting() end,
  pid = function() return cs.pid() end,
  id = function() return 0 end,
  count = function() return 1 end,
}

-- the semaphore module of lua-resty-core, on cosocket.semaphore
local semaphore = {}
local sema_mt = { __index = semaphore }

function semaphore.new(n)
  n = tonumber(n) or 0
  if n < 0 then error("no negative number", 2) end
  return setmetatable({ sem = cs.semaphore(n) }, sema_mt)
end

local function sema_of(self)
  if type(self) ~= "table" or type(self.sem) ~= "userdata" then
    error("not a semaphore instance", 3)
  end
  return self.sem
end

function semaphore.post(self, n)
  local sem = sema_of(self)
  n = n and tonumber(n) or 1 -- lua-resty-core's: "x" and false post 1
  if n < 1 then error("positive number required", 2) end
  return sem:post(n)
end

function semaphore.wait(self, seconds)
  local sem = sema_of(self)
  local ms = tonumber(seconds) * 1000 -- nil: the arithmetic error, as ngx
  if ms < 0 then error("no negative number", 2) end
  return sem:wait(ms / 1000)
end

function semaphore.count(self)
  return sema_of(self):count()
end

package.preload["ngx.semaphore"] = function() return semaphore end

if rawget(_G, "ngx") == nil then
  rawset(_G, "ngx", ngx)
end

-- ngx_lua's coroutine API: waits inside coroutines suspend the light thread
-- (and, on PUC 5.1, pcall/xpcall that let them) (DECISIONS.md 2, 8)
cs.coroutine.install()

return ngx
