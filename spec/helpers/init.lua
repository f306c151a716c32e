-- Spec helpers: test scale, the interpreter in use, child Lua processes
-- (for one-way operations such as cosocket.shutdown), and the fixture servers
-- (spec/fixtures/fixture.c: real peers on loopback).  Every wait is bounded.
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

-- Runs a program (an argv table) with this process' module paths, killed
-- after `timeout` seconds (default 20).  Returns stdout, stderr and the exit
-- status.  Under `make asan` the children get the sanitizer runtime too:
-- they load the instrumented module.
function helpers.run_program(argv, timeout)
  local out, err = os.tmpname(), os.tmpname()
  local preload = os.getenv("COSOCKET_PRELOAD")
  local env = "LUA_CPATH=" .. shell_quote(package.cpath) ..
              " LUA_PATH=" .. shell_quote(package.path) ..
              (preload and preload ~= "" and (" LD_PRELOAD=" .. shell_quote(preload)) or "")
  local words = {}
  for i, a in ipairs(argv) do words[i] = shell_quote(a) end
  local cmd = string.format("env %s timeout -s KILL %d %s >%s 2>%s",
    env, timeout or 20, table.concat(words, " "), shell_quote(out), shell_quote(err))
  local r1, _, r3 = os.execute(cmd)
  local status = type(r1) == "number" and r1 / 256 or r3  -- 5.1 vs 5.2+
  local stdout, stderr = read_file(out), read_file(err)
  os.remove(out); os.remove(err)
  return stdout, stderr, status
end

-- Runs `code` in a child interpreter (the one running this spec).
function helpers.run_lua(code, timeout)
  local script = os.tmpname()
  local f = assert(io.open(script, "wb"))
  f:write(code)
  f:close()
  local stdout, stderr, status = helpers.run_program({ helpers.interpreter(), script }, timeout)
  os.remove(script)
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

-- Fixture servers ----------------------------------------------------------
--
--   local srv = helpers.start_fixture("script")          -- 127.0.0.1
--   finally(function() srv:stop() end)                   -- even if the test fails
--   sock:connect(srv.host, srv.port)
--   sock:send(helpers.script({ "w", "hello\r\n" }, { "p", 50 }, "c"))
--
-- Modes (see spec/fixtures/fixture.c): echo, script, silent, full, dns, udpecho.
-- opts: ipv6 = true (::1), unix = true (a unix socket at a temporary path:
-- srv.path), port = n (default: one the kernel picks), quiet = true (its
-- stderr to /dev/null, for a test that expects it to fail).  The server object has
-- port (0 for unix), host ("127.0.0.1", "::1", or nil for unix), path, pid,
-- mode and stop().  Servers still running when a spec file ends are stopped
-- then (busted's file end, and a __gc sentinel at state close) as a safety
-- net; use finally() all the same: a later test must not meet a stale server.

local fixture_exe = os.getenv("COSOCKET_FIXTURE") or "build/fixture"

-- calls pred until it returns a true value (returned), every few ms for at
-- most `limit` seconds (then returns pred()'s last value).  luasystem comes
-- with busted; without it, os.execute("sleep 0.01").
local has_system, system = pcall(require, "system")

local function poll_until(limit, pred)
  if has_system then
    local deadline = system.monotime() + limit
    repeat
      local v = pred()
      if v then return v end
      system.sleep(0.002)
    until system.monotime() > deadline
  else
    for _ = 1, limit * 100 do
      local v = pred()
      if v then return v end
      os.execute("sleep 0.01")
    end
  end
  return pred()
end

local fixture_comm = fixture_exe:match("[^/]*$"):sub(1, 15)

-- the process is running: not gone, not a zombie (a fixture outlives the
-- shell that started it, and whoever adopts it may not reap it).  `ours`:
-- and it is our fixture (once it has printed its port: not the shell and env
-- that start it), not a program that got the pid since.  An exiting process
-- has an empty cmdline before it closes its sockets: still ours, by comm.
local function fixture_alive(pid, ours)
  local f = io.open("/proc/" .. pid .. "/stat", "rb")
  if not f then return false end
  local stat = f:read("*a") or ""
  f:close()
  local comm, state = stat:match("^%d+ %((.*)%) (%a)")
  if state == nil or state == "Z" or state == "X" then return false end
  if not ours then return true end
  if comm ~= fixture_comm then return false end
  local c = io.open("/proc/" .. pid .. "/cmdline", "rb")
  if not c then return false end
  local argv0 = (c:read("*a") or ""):match("^[^%z]*")
  c:close()
  return argv0 == fixture_exe or argv0 == ""
end

local function wait_gone(pid, limit)
  return poll_until(limit, function() return not fixture_alive(pid, true) end)
end

local running = {}   -- pid -> server not stopped yet

local Server = {}
Server.__index = Server

-- SIGTERM, then up to 2 s for the process to go; SIGKILL if it does not.
-- Idempotent.  Removes the temporary files.
function Server:stop()
  if self.stopped then return end
  self.stopped = true
  running[self.pid] = nil
  if fixture_alive(self.pid, true) then
    os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
    if not wait_gone(self.pid, 2) then
      io.stderr:write("helpers: fixture ", self.mode, " (pid ", self.pid,
                      ") ignored SIGTERM for 2 s: SIGKILL\n")
      os.execute("kill -KILL " .. self.pid .. " 2>/dev/null")
      wait_gone(self.pid, 1)
    end
  end
  for _, f in ipairs(self.files) do os.remove(f) end
end

local function stop_all()
  local list = {}
  for _, srv in pairs(running) do list[#list + 1] = srv end
  for _, srv in ipairs(list) do srv:stop() end
end

-- safety net 1: busted's end of this spec file (each file loads its own
-- helpers: busted insulates files).  Returning nil, true lets the event go
-- on to the other subscribers.
local in_busted, busted = pcall(require, "busted")
if in_busted and type(busted) == "table" then
  pcall(busted.subscribe, { "file", "end" }, function()
    stop_all()
    return nil, true
  end)
end
-- safety net 2: when these helpers are collected or the state is closed
-- (lua5.1's os.exit does not close it: busted's file end is the one that
-- counts there)
if rawget(_G, "newproxy") then
  local sentinel = newproxy(true)
  getmetatable(sentinel).__gc = function() stop_all() end
  helpers._fixture_sentinel = sentinel
else
  helpers._fixture_sentinel = setmetatable({}, { __gc = function() stop_all() end })
end

-- Starts `fixture MODE ...` without LD_PRELOAD (`make asan` preloads the ASan
-- runtime into the Lua process only), stdout to a temporary file, stderr to
-- ours; waits (at most 5 s) for its "PORT n" line.  Raises if it never comes.
function helpers.start_fixture(mode, opts)
  opts = opts or {}
  assert(type(mode) == "string", "start_fixture: mode expected")
  local f = io.open(fixture_exe, "rb")
  if not f then
    error("fixture server " .. fixture_exe .. " not found: build it with `make " ..
          fixture_exe .. "` (make test does; COSOCKET_FIXTURE overrides the path)", 2)
  end
  f:close()
  local out = os.tmpname()
  local srv = setmetatable({ mode = mode, files = { out } }, Server)
  local args = { shell_quote(fixture_exe), shell_quote(mode) }
  if opts.unix then
    local base = os.tmpname()        -- kept until stop(): reserves the name
    srv.path = base .. ".sock"
    srv.files[#srv.files + 1] = base
    srv.files[#srv.files + 1] = srv.path
    args[#args + 1] = "--unix " .. shell_quote(srv.path)
  elseif opts.ipv6 then
    srv.host = "::1"
    args[#args + 1] = "--ipv6"
  else
    srv.host = "127.0.0.1"
  end
  if opts.port then args[#args + 1] = "--port " .. math.floor(opts.port) end
  local cmd = string.format("env -u LD_PRELOAD %s >%s </dev/null%s & echo $!",
    table.concat(args, " "), shell_quote(out), opts.quiet and " 2>/dev/null" or "")
  local p = assert(io.popen(cmd, "r"))
  local pid = tonumber(p:read("*l") or "")
  p:close()
  if not pid then
    for _, name in ipairs(srv.files) do os.remove(name) end
    error("start_fixture: could not start " .. cmd, 2)
  end
  srv.pid = pid
  running[pid] = srv
  local port = poll_until(5, function()
    local n = read_file(out):match("^PORT (%d+)\n")
    if n then return n end
    if not fixture_alive(pid) then
      -- a failed start (bad mode, bind error): its message is on stderr
      return read_file(out):match("^PORT (%d+)\n") or "dead"
    end
  end)
  if port and port ~= "dead" then
    srv.port = tonumber(port)
    return srv
  end
  srv:stop()
  error(string.format("fixture %s (pid %d) %s: its stderr is in the test output",
    mode, pid, port and "exited without printing its PORT line" or
    "printed no PORT line within 5 s"), 2)
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local script_ops = { c = true, r = true, h = true, e = true, n = true, a = true, l = true }

-- The first line for a `script` fixture.  Each argument is a token: a string
-- ("c", "r", "h", "e", "l", "n", "a") or a table { "w", data },
-- { "d", data } (data sent hex-encoded) or { "p", ms }.
--   helpers.script({ "w", "hello\r\n" }, { "p", 50 }, "c")
--     == "w:68656c6c6f0d0a p:50 c\n"
function helpers.script(...)
  local toks = {}
  for i = 1, select("#", ...) do
    local t = select(i, ...)
    if type(t) == "string" then t = { t } end
    local op, arg = t[1], t[2]
    if (op == "w" or op == "d") and type(arg) == "string" then
      toks[#toks + 1] = op .. ":" .. hex(arg)
    elseif op == "p" and type(arg) == "number" and arg >= 0 then
      toks[#toks + 1] = "p:" .. math.floor(arg)
    elseif script_ops[op] and arg == nil then
      toks[#toks + 1] = op
    else
      error("helpers.script: bad token #" .. i .. " (" .. tostring(op) .. ")", 2)
    end
  end
  return table.concat(toks, " ") .. "\n"
end

-- One DNS query over UDP with LuaSocket, to check the `dns` fixture (and read
-- its count): returns the rcode and the answers, each { type = n, ttl = n,
-- data = rdata }, or nil, "timeout" (after `timeout` s, default 1).
-- qtype: "A", "AAAA", "TXT" or a number.
local qtypes = { A = 1, TXT = 16, AAAA = 28 }

local function u16(s, i) return s:byte(i) * 256 + s:byte(i + 1) end

function helpers.dns_query(srv, name, qtype, timeout)
  local socket = require "socket"
  local qt = qtypes[qtype] or tonumber(qtype)
  local id = math.random(0, 65535)
  local q = { string.char(math.floor(id / 256), id % 256, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0) }
  for label in name:gmatch("[^.]+") do q[#q + 1] = string.char(#label) .. label end
  q[#q + 1] = string.char(0, math.floor(qt / 256), qt % 256, 0, 1)
  q = table.concat(q)
  local u = srv.host == "::1" and socket.udp6() or socket.udp()
  u:settimeout(timeout or 1)
  assert(u:setpeername(srv.host, srv.port))
  assert(u:send(q))
  local r, err = u:receive()
  u:close()
  if not r then return nil, err end
  assert(u16(r, 1) == id, "dns_query: wrong id")
  assert(r:sub(13, #q) == q:sub(13), "dns_query: question not echoed")
  local answers, pos = {}, #q + 1
  for _ = 1, u16(r, 7) do
    local rdlen = u16(r, pos + 10)
    answers[#answers + 1] = { type = u16(r, pos + 2), ttl = u16(r, pos + 6) * 65536 +
                              u16(r, pos + 8), data = r:sub(pos + 12, pos + 11 + rdlen) }
    pos = pos + 12 + rdlen
  end
  return r:byte(4) % 16, answers
end

-- queries for count.test the `dns` fixture has answered (its TXT record)
function helpers.dns_count(srv)
  local rcode, answers = helpers.dns_query(srv, "count.test", "TXT")
  assert(rcode == 0 and answers[1], "dns_count: no answer")
  return tonumber(answers[1].data:sub(2))
end

return helpers
