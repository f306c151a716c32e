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
  return "lua" .. _VERSION:match("%d+%.%d+")   -- lua5.1 ... lua5.4
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
function helpers.run_lua(code, timeout, env)
  local script = os.tmpname()
  local f = assert(io.open(script, "wb"))
  f:write(code)
  f:close()
  local argv = { helpers.interpreter(), script }
  if env then  -- "NAME=value" strings, set for the child only
    argv = { "env" }
    for _, e in ipairs(env) do argv[#argv + 1] = e end
    argv[#argv + 1] = helpers.interpreter()
    argv[#argv + 1] = script
  end
  local stdout, stderr, status = helpers.run_program(argv, timeout)
  os.remove(script)
  return stdout, stderr, status
end

-- number of descriptors this process holds now.  Listed here, with
-- LuaFileSystem (busted needs it), less the listing's own descriptor: exact.
-- A child's listing (`ls` through io.popen, the fallback) may see the write
-- end of popen's own pipe, which the parent closes only once the child runs;
-- under load, all of three tries in a row have counted it (an over-count of
-- one), so the fallback's least of three is not always right.
local has_lfs, lfs = pcall(require, "lfs")

function helpers.fd_count()
  if has_lfs then
    local n = 0
    for name in lfs.dir("/proc/self/fd") do
      if name ~= "." and name ~= ".." then n = n + 1 end
    end
    return n - 1  -- the listing's own directory descriptor
  end
  local best
  for _ = 1, 3 do
    local p = io.popen("ls /proc/" .. helpers.pid() .. "/fd")
    local n = 0
    for _ in p:lines() do n = n + 1 end
    p:close()
    n = n - 1  -- the listing's own pipe
    if not best or n < best then best = n end
  end
  return best
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

-- TLS material and TLS servers ----------------------------------------------
--
--   local certs = helpers.tls_certs()
--   local srv = helpers.start_tls_server{ cert = certs.server.cert, key = certs.server.key }
--   sock:connect(srv.host, srv.port); sock:sslhandshake(nil, "localhost", true)
--   srv:accepted()        -- connections the server accepted so far
--
-- helpers.tls_certs() makes, with the openssl CLI, once per process (cached
-- in the registry: busted reloads these helpers per file), EC P-256 keys and
-- certificates in a temporary directory removed at the end of the suite.
-- Every entry but `ca` is { cert = path, key = path }, the cert a PEM file:
--   ca           the test CA (a path; ca_key its key)
--   server       CN localhost, SAN DNS:localhost and IP:127.0.0.1, by the CA
--   wrong_host   SAN DNS:other.test only, by the CA
--   expired      as server, valid Jan 2020 only
--   not_yet      as server, valid from 2099 on
--   self_signed  CN/SAN localhost, signed by its own key
--   chain        leaf (SAN localhost) by an intermediate CA, the file holds
--                leaf + intermediate; chain_leaf_only: the same leaf alone
--   with_root    the server cert followed by the CA cert (for an untrusted
--                root sent in the chain)
--   client       CN cosocket test client, clientAuth, by the CA
-- certs.dir is the directory; certs.pem(path) reads a file.

local certs_key = "cosocket.spec.tls_certs"

-- the script that makes them, shared with conformance/run.lua and bench/run.lua
local cert_script_path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "make_certs.sh"

function helpers.tls_certs()
  local reg = debug.getregistry()
  if reg[certs_key] then return reg[certs_key] end
  local p = assert(io.popen("mktemp -d /tmp/cosocket-tls.XXXXXX"))
  local dir = p:read("*l")
  p:close()
  assert(dir and dir:match("^/tmp/cosocket%-tls%.[%w]+$"), "tls_certs: mktemp -d failed")
  local log = dir .. "/make.log"
  os.execute("env -u LD_PRELOAD sh " .. shell_quote(cert_script_path) .. " " .. shell_quote(dir) ..
             " >" .. shell_quote(log) .. " 2>&1")
  if not read_file(log):match("made\n$") then
    error("tls_certs: openssl failed:\n" .. read_file(log), 2)
  end
  local function pair(name, certfile)
    return { cert = dir .. "/" .. (certfile or name) .. ".pem", key = dir .. "/" .. name .. ".key" }
  end
  local certs = {
    dir = dir,
    ca = dir .. "/ca.pem",
    ca_key = dir .. "/ca.key",
    server = pair("server"),
    wrong_host = pair("wrong"),
    expired = pair("expired"),
    not_yet = pair("notyet"),
    self_signed = pair("self"),
    chain = pair("leaf", "chain"),
    chain_leaf_only = pair("leaf"),
    with_root = pair("server", "with_root"),
    client = pair("client"),
    pem = function(path)
      local data = read_file(path)
      assert(data ~= "", "tls_certs: cannot read " .. path)
      return data
    end,
  }
  reg[certs_key] = certs
  -- removed at the end of the suite, or when the state closes
  local function remove() os.execute("rm -rf " .. shell_quote(dir)) end
  if in_busted and type(busted) == "table" then
    pcall(busted.subscribe, { "suite", "end" }, function()
      remove()
      return nil, true
    end)
  end
  reg[certs_key .. ".sentinel"] = setmetatable({}, { __gc = remove })
  if rawget(_G, "newproxy") then
    local sentinel = newproxy(true)
    getmetatable(sentinel).__gc = remove
    reg[certs_key .. ".sentinel"] = sentinel
  end
  return certs
end

-- the process is running (not gone, not a zombie) and its name is comm
local function proc_alive(pid, comm)
  local f = io.open("/proc/" .. pid .. "/stat", "rb")
  if not f then return false end
  local stat = f:read("*a") or ""
  f:close()
  local c, state = stat:match("^%d+ %((.*)%) (%a)")
  if state == nil or state == "Z" or state == "X" then return false end
  return comm == nil or c == comm
end

-- the pids of pid's children and their descendants
local function descendants(pid, out)
  out = out or {}
  local f = io.open("/proc/" .. pid .. "/task/" .. pid .. "/children", "rb")
  if not f then return out end
  local list = f:read("*a") or ""
  f:close()
  for child in list:gmatch("%d+") do
    out[#out + 1] = tonumber(child)
    descendants(child, out)
  end
  return out
end

local TlsServer = {}
TlsServer.__index = TlsServer

function TlsServer:log() return read_file(self.logfile) end

-- connections accepted so far (the listener logs each one)
function TlsServer:accepted()
  local n = 0
  for _ in self:log():gmatch("accepting connection from") do n = n + 1 end
  return n
end

-- handshakes completed so far, and the protocol versions they used, in order
function TlsServer:protocols()
  local list = {}
  for v in self:log():gmatch("SSL proto version used: (%S+)") do list[#list + 1] = v end
  return list
end

function TlsServer:handshakes() return #self:protocols() end

-- the processes serving connections now (one socat child each, and what it runs)
function TlsServer:children()
  local list = {}
  for _, pid in ipairs(descendants(self.pid)) do
    if proc_alive(pid) then list[#list + 1] = pid end
  end
  return list
end

-- SIGKILLs the processes serving the current connections: their peers see
-- the TCP connection end without a TLS close_notify
function TlsServer:kill_children()
  local list = self:children()
  for _, pid in ipairs(list) do os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
  for _, pid in ipairs(list) do
    poll_until(2, function() return not proc_alive(pid) end)
  end
  return #list
end

-- The processes serving connections get SIGKILL (on SIGTERM a socat child
-- may wait in SSL_shutdown for its peer's close_notify), the listener SIGTERM
-- (SIGKILL if it is still there after 2 s).  Idempotent.  Removes the log
-- and script files.
function TlsServer:stop()
  if self.stopped then return end
  self.stopped = true
  running[self.pid] = nil
  local kids = descendants(self.pid)
  for _, pid in ipairs(kids) do os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
  os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
  if not poll_until(2, function() return not proc_alive(self.pid) end) then
    os.execute("kill -KILL " .. self.pid .. " 2>/dev/null")
    poll_until(1, function() return not proc_alive(self.pid) end)
  end
  for _, pid in ipairs(kids) do poll_until(1, function() return not proc_alive(pid) end) end
  for _, f in ipairs(self.files) do os.remove(f) end
end

-- a port nobody listens on now (LuaSocket binds one and lets it go)
local function free_port()
  local socket = require "socket"
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

-- Starts a TLS server (socat, one process per connection) on 127.0.0.1 and
-- waits (at most 5 s) until it listens.  opts:
--   cert, key     its certificate (chain) and key files (required)
--   client_ca     require a client certificate signed by this CA file
--   mode          "echo" (default: every byte is sent back) or "script":
--                 opts.script, a shell script whose stdout is sent to the
--                 client (stdin is what the client sends); when it exits the
--                 server closes the connection (close_notify, then FIN)
--   min_version, max_version   "TLS1.2" / "TLS1.3"
--   ciphers       the server's OpenSSL cipher list (TLS 1.2)
-- The server object has host, port, pid, accepted(), handshakes(),
-- protocols(), log(), children(), kill_children() and stop().  It counts
-- every accepted connection, so a reused pooled connection shows as none.
function helpers.start_tls_server(opts)
  assert(type(opts) == "table" and opts.cert and opts.key, "start_tls_server: cert and key")
  local mode = opts.mode or "echo"
  local srv = setmetatable({ mode = mode, host = "127.0.0.1", files = {} }, TlsServer)
  local target
  if mode == "echo" then
    target = "PIPE"
  elseif mode == "script" then
    assert(type(opts.script) == "string", "start_tls_server: script expected")
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write("#!/bin/sh\n", opts.script, "\n")
    f:close()
    os.execute("chmod +x " .. shell_quote(path))
    srv.files[#srv.files + 1] = path
    target = "EXEC:" .. path
  else
    error("start_tls_server: unknown mode " .. tostring(mode), 2)
  end
  for _, v in ipairs({ opts.cert, opts.key, opts.client_ca or "", target:sub(6) }) do
    assert(not v:find("[,:!\"'%s]"), "start_tls_server: a path socat cannot take: " .. v)
  end
  local function listen_address(port)
    local o = { "OPENSSL-LISTEN:" .. port, "bind=127.0.0.1", "reuseaddr", "fork",
                "backlog=1024", "nodelay", "cert=" .. opts.cert, "key=" .. opts.key }
    if opts.client_ca then
      o[#o + 1] = "verify=1"
      o[#o + 1] = "cafile=" .. opts.client_ca
    else
      o[#o + 1] = "verify=0"
    end
    if opts.min_version then o[#o + 1] = "min-version=" .. opts.min_version end
    if opts.max_version then o[#o + 1] = "max-version=" .. opts.max_version end
    if opts.ciphers then o[#o + 1] = "cipher=" .. opts.ciphers end
    return table.concat(o, ",")
  end
  srv.logfile = os.tmpname()
  srv.files[#srv.files + 1] = srv.logfile
  for _ = 1, 5 do     -- another process may take the free port first
    local port = free_port()
    local cmd = string.format(
      "env -u LD_PRELOAD socat -d -d %s %s </dev/null >/dev/null 2>%s & echo $!",
      shell_quote(listen_address(port)), shell_quote(target), shell_quote(srv.logfile))
    local p = assert(io.popen(cmd, "r"))
    local pid = tonumber(p:read("*l") or "")
    p:close()
    if not pid then error("start_tls_server: could not start " .. cmd, 2) end
    local state = poll_until(5, function()
      if read_file(srv.logfile):find("listening on") then return "up" end
      if not proc_alive(pid) then return "dead" end
    end)
    if state == "up" then
      srv.pid, srv.port = pid, port
      running[pid] = srv
      return srv
    end
    local log = read_file(srv.logfile)
    if proc_alive(pid) then os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
    if not log:find("Address already in use") then
      for _, f in ipairs(srv.files) do os.remove(f) end
      error("start_tls_server: socat did not start: " .. log, 2)
    end
  end
  for _, f in ipairs(srv.files) do os.remove(f) end
  error("start_tls_server: no free port after 5 tries", 2)
end


-- Small helpers shared by the spec files ------------------------------------
--
-- The ones that register a cleanup take the function to register it with as
-- their first argument: busted's `finally` (a field of each test's
-- environment, not a global: the caller passes its own), safe only as the
-- test's one registration since this busted keeps the last function given
-- to it, or a file's `defer` (helpers.cleanups), which keeps them all.
-- `assert` here is luassert's, as in the spec files.
local assert = (function()
  local ok, luassert = pcall(require, "luassert")
  return ok and luassert or assert
end)()

-- every value, nil ones too, and their count
function helpers.pack(...) return { n = select("#", ...), ... } end

helpers.unpack = rawget(_G, "unpack") or rawget(table, "unpack")

-- cosocket's loop time, updated now
function helpers.clock()
  local cs = require "cosocket"
  cs.update_time()
  return cs.now()
end

-- Cleanups run by after_each even when the test fails (this busted keeps
-- only the last function given to finally()):
--   local defer, run_cleanups = helpers.cleanups()
--   after_each(run_cleanups)
-- run_cleanups() runs them in reverse order, each in pcall, and forgets them.
function helpers.cleanups()
  local list = {}
  local function defer(fn) list[#list + 1] = fn end
  local function run()
    for i = #list, 1, -1 do pcall(list[i]) end
    list = {}
  end
  return defer, run
end

-- drives the loop (cs.sleep) until pred() is true, at most `limit` s
-- (default 1), every `step` s (default 0.005); returns pred()'s last value
function helpers.wait_for(pred, limit, step)
  local cs = require "cosocket"
  local deadline = helpers.clock() + (limit or 1)
  repeat
    local v = pred()
    if v then return v end
    cs.sleep(step or 0.005)
  until helpers.clock() > deadline
  return pred()
end

-- a new fixture of `mode` (opts as helpers.start_fixture), stopped by a
-- cleanup registered with `register`
function helpers.fixture(register, mode, opts)
  local srv = helpers.start_fixture(mode, opts)
  register(function() srv:stop() end)
  return srv
end

-- a cosocket connected to a new fixture of `mode` (stopped by a cleanup
-- registered with `register`), and the tokens, if any, sent as a script
-- (helpers.script); returns the socket and the server
function helpers.connected(register, mode, ...)
  local srv = helpers.fixture(register, mode)
  local sock = require("cosocket").tcp()
  assert.equal(1, sock:connect(srv.host, srv.port))
  if select("#", ...) > 0 then assert(sock:send(helpers.script(...))) end
  return sock, srv
end

-- a cosocket connected to a new `script` fixture, the script sent (even an
-- empty one); returns the socket and the server
function helpers.scripted(register, ...)
  local sock, srv = helpers.connected(register, "script")
  assert(sock:send(helpers.script(...)))
  return sock, srv
end

-- sock:settimeout(ms); returns sock and the rest as given
function helpers.with_timeout(ms, sock, ...)
  sock:settimeout(ms)
  return sock, ...
end

-- defines the test twice with `it`: fn(kind) gets "w" (one write per piece)
-- or "d" (the same bytes dribbled one per write)
function helpers.each_peer(it, text, fn)
  it(text .. " (one write)", function() fn("w") end)
  it(text .. " (dribbled)", function() fn("d") end)
end

-- one echo round trip: `text` (default "ping") and a LF sent, the line read
function helpers.roundtrip(sock, text)
  text = text or "ping"
  assert.same({ n = 1, #text + 1 }, helpers.pack(sock:send(text .. "\n")))
  assert.same({ n = 1, text }, helpers.pack(sock:receive()))
end

-- a LuaSocket listener on 127.0.0.1 (its accepted connections show what the
-- peer sees), closed by a cleanup registered with `register` if given;
-- returns it and its port
function helpers.listener(register)
  local l = assert(require("socket").bind("127.0.0.1", 0))
  l:settimeout(2)
  local _, port = l:getsockname()
  if register then register(function() l:close() end) end
  return l, tonumber(port)
end

-- the next accepted connection of l, closed by a cleanup registered with
-- `register`
function helpers.accept(register, l)
  local c = assert(l:accept())
  register(function() c:close() end)
  return c
end

-- "eof" when the peer's side has ended, "open" when it is still open and
-- silent (within `limit` s, default 1), else the data it got
function helpers.peer_state(conn, limit)
  conn:settimeout(limit or 1)
  local data, err, partial = conn:receive("*a")
  if data then return data == "" and "eof" or data end
  if err == "timeout" then
    return (partial == nil or partial == "") and "open" or partial
  end
  return "eof"    -- "closed", "connection reset by peer"
end

-- Connections the `script` fixture srv accepted so far, not counting the
-- ones this function made to ask (its `a` token, over LuaSocket)
function helpers.accepted(srv)
  local c = require("socket").tcp()
  c:settimeout(2)
  assert(c:connect(srv.host, srv.port))
  assert(c:send(helpers.script("a")))
  local line, err = c:receive("*l")
  c:close()
  assert(line, "accepted: no count from the fixture: " .. tostring(err))
  srv.asked = (srv.asked or 0) + 1
  return tonumber(line) - srv.asked
end

-- cosocket.configure(t) for this test only: the previous values come back
-- in a cleanup registered with `register` (a string setting that was unset
-- comes back as false: the default)
function helpers.configure(register, t)
  local cs = require "cosocket"
  local before = cs.configure({})
  local restore = {}
  for k in pairs(t) do
    if before[k] == nil then restore[k] = false else restore[k] = before[k] end
  end
  register(function() cs.configure(restore) end)
  return cs.configure(t)
end

-- a log and a function that appends its argument to it
function helpers.recorder()
  local log = {}
  return log, function(s) log[#log + 1] = s end
end

-- runs `code` in a child interpreter, cosocket required as `cs` (10 s)
function helpers.cosocket_child(code)
  return helpers.run_lua('local cs = require "cosocket"\n' .. code, 10)
end

return helpers
