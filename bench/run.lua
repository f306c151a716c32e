-- bench/run.lua: the benchmark driver (issue #8). `make bench` builds what it
-- needs and runs
--
--     luajit bench/run.lua
--
-- It starts redis-server and bench/line_server (plain, and with -tls for W5:
-- a test CA and server certificate made by openssl in its temporary
-- directory) pinned to CPU 1, runs every client on every workload pinned to
-- CPU 0 (through build/bench/rusage, which raises RLIMIT_NOFILE, kills a
-- client stuck past its timeout and reports its rusage), repeats the whole
-- matrix BENCH_REPS times interleaved (rows rotated each round), takes
-- medians, times the start of the `cosocket` command against the bare
-- interpreters' (the start-time section, issue #6), prints the tables,
-- profiles the cosocket LuaJIT client on W1 PING C=100 (bench/profile.lua:
-- perf, callgrind, strace, when present) and writes bench/RESULTS.md.
--
-- Client CPU per op is the user+sys time the client process spends inside
-- its timed section (os.clock(), or CLOCK_PROCESS_CPUTIME_ID in the raw C
-- client) divided by the operations done there; connection setup before the
-- section (W1) and interpreter start-up are left out.
--
-- Environment:
--   BENCH_SCALE    multiplies the operation counts and the W4 stream size (1)
--   BENCH_REPS     repetitions, the median is taken (3)
--   BENCH_ROWS     comma-separated row ids to run (default: all)
--   BENCH_CELLS    comma-separated Lua patterns on cell ids: the cells any of
--                  them matches run (default: all). The start-time section
--                  is the cell "start". E.g. BENCH_CELLS=w5 (the TLS cells),
--                  BENCH_CELLS=start, BENCH_CELLS=w5,start
--   BENCH_STARTS   starts per command and round in the start-time section
--                  (50 times BENCH_SCALE)
--   BENCH_IDLE     W3 connections (10000)
--   BENCH_PROFILE  0: skip the profile
--   BENCH_TIMEOUT  seconds per client run (120)
--   BENCH_OUT      the Markdown file to write (bench/RESULTS.md; "-": none)
--   BENCH_QUIET    wait up to this many seconds for the machine to be idle
--                  (under 20% of a CPU busy over 3 s) before starting (0)
--   COSOCKET_BUILD the build directory (build)
-- Everything it starts it stops by PID.

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local function abspath(p)
  if p:sub(1, 1) == "/" then return p end
  local pwd = os.getenv("PWD") or io.popen("pwd"):read("*l")
  return (pwd .. "/" .. p):gsub("/%./", "/"):gsub("/%.$", "")
end
local bench_dir = abspath(here)
local repo = bench_dir:gsub("/bench$", "")
local build = os.getenv("COSOCKET_BUILD") or "build"
if build:sub(1, 1) ~= "/" then build = repo .. "/" .. build end

local format, concat = string.format, table.concat
local scale = tonumber(os.getenv("BENCH_SCALE") or "1") or 1
local reps = tonumber(os.getenv("BENCH_REPS") or "3") or 3
local idle_n = tonumber(os.getenv("BENCH_IDLE") or "10000") or 10000
local timeout = tonumber(os.getenv("BENCH_TIMEOUT") or "120") or 120
local out_md = os.getenv("BENCH_OUT") or (bench_dir .. "/RESULTS.md")
local want_rows = os.getenv("BENCH_ROWS")
local want_cells = os.getenv("BENCH_CELLS")
local do_profile = os.getenv("BENCH_PROFILE") ~= "0"
local quiet_wait = tonumber(os.getenv("BENCH_QUIET") or "0") or 0
local NOFILE = 30000

-- helpers ---------------------------------------------------------------------
local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function capture(cmd)
  local p = io.popen(cmd .. " 2>/dev/null")
  local s = p:read("*a")
  p:close()
  return s
end

local function trim(s)
  return ((s or ""):gsub("^%s+", ""):gsub("%s+$", ""))
end

local function have(cmd)
  return trim(capture("command -v " .. cmd)) ~= ""
end

local function ok_exec(cmd)
  local r = os.execute(cmd)
  return r == 0 or r == true
end

local function sleep(s)
  os.execute("sleep " .. s)
end

local function alive(pid)
  return pid and ok_exec("kill -0 " .. pid .. " 2>/dev/null")
end

local function now()
  return tonumber(trim(capture("date +%s.%N"))) or os.time()
end

local function log(...)
  io.stderr:write(format(...), "\n")
  io.stderr:flush()
end

local tmp = trim(capture("mktemp -d /tmp/cosocket-bench.XXXXXX"))
assert(tmp ~= "", "mktemp failed")

local started = {} -- pid -> name

local function start_bg(name, cmd, out, err)
  local p = io.popen(format("%s >%s 2>%s </dev/null & echo $!", cmd, sh_quote(out), sh_quote(err)))
  local pid = tonumber(p:read("*l"))
  p:close()
  started[pid] = name
  return pid
end

local function stop(pid)
  if not pid or not started[pid] then return end
  os.execute("kill " .. pid .. " 2>/dev/null")
  for _ = 1, 50 do
    if not alive(pid) then break end
    sleep(0.1)
  end
  if alive(pid) then os.execute("kill -9 " .. pid .. " 2>/dev/null") end
  started[pid] = nil
end

local function cleanup()
  -- all at once (each by its PID): an exited server can stay visible to
  -- kill -0 for seconds (until its new parent reaps it), and one by one the
  -- waits added up to over 15 s
  local pids = {}
  for pid in pairs(started) do
    pids[#pids + 1] = pid
    os.execute("kill " .. pid .. " 2>/dev/null")
  end
  for _ = 1, 50 do
    local any = false
    for _, pid in ipairs(pids) do
      if started[pid] and alive(pid) then any = true else started[pid] = nil end
    end
    if not any then break end
    sleep(0.1)
  end
  for pid in pairs(started) do stop(pid) end
  if os.getenv("BENCH_KEEP") ~= "1" then os.execute("rm -rf " .. sh_quote(tmp)) end
end

-- the matrix ------------------------------------------------------------------
local function scaled(n, min)
  return math.max(min or 1, math.floor(n * scale + 0.5))
end

local MiB = 1024 * 1024
local cells = {}
local function cell(t) cells[#cells + 1] = t end
for _, kind in ipairs { "ping", "get100", "get16k" } do
  for _, c in ipairs { 1, 10, 100, 1000 } do
    local n = c == 1 and 20000 or kind == "get16k" and 30000 or 75000
    cell { id = format("w1-%s-c%d", kind, c), w = "w1", kind = kind, c = c,
           n = scaled(n, c), server = "redis", unit = "roundtrip",
           label = format("W1 %s C=%d", kind == "ping" and "PING" or
             kind == "get100" and "GET 100 B" or "GET 16 KiB", c) }
  end
end
cell { id = "w2-churn", w = "churn", c = 10, n = scaled(8000, 10), server = "redis_churn",
       unit = "connection", label = "W2 connect+PING+close, C=10" }
cell { id = "w2-pool", w = "pool", c = 10, n = scaled(20000, 10), server = "redis",
       unit = "connect", label = "W2 pooled connect+PING+setkeepalive, C=10" }
cell { id = "w3-idle", w = "idle", n = idle_n, server = "line", unit = "connection",
       label = format("W3 %d idle connections", idle_n) }
cell { id = "w4-lines", w = "lines", total = scaled(64 * MiB, 100) , len = 100, server = "line",
       unit = "line", label = "W4 receive('*l'), 100 B lines" }
cell { id = "w4-parts100", w = "parts", total = scaled(64 * MiB, 100), len = 100,
       server = "line", unit = "part", label = "W4 receiveuntil, 100 B parts" }
cell { id = "w4-parts1k", w = "parts", total = scaled(64 * MiB, 1024), len = 1024,
       server = "line", unit = "part", label = "W4 receiveuntil, 1 KiB parts" }
-- W5 TLS, against line_server -tls: a full handshake per connection, chain
-- and name verified against the test CA (churn: a server of its own per
-- row and round, as W2 churn), and line roundtrips on established connections
cell { id = "w5-tls-churn", w = "tls_churn", c = 10, n = scaled(2000, 10),
       server = "tls_churn", tls = true, unit = "connection",
       label = "W5 TLS connect+handshake+roundtrip+close, C=10" }
cell { id = "w5-tls-rt", w = "tls_rt", c = 10, n = scaled(60000, 10), server = "tls",
       tls = true, unit = "roundtrip", label = "W5 TLS roundtrip (5 B line), C=10" }

local lua_path = bench_dir .. "/clients/?.lua;" .. repo .. "/src/?.lua;;"
local lua_env = format("LUA_PATH=%s LUA_CPATH=%s", sh_quote(lua_path),
                       sh_quote(build .. "/?.so;;"))

-- W5's test CA and server certificate: spec/helpers/make_certs.sh, run once
-- in the temporary directory
local certs

local function tls_certs()
  if certs then return certs end
  local dir = tmp .. "/tls"
  os.execute("mkdir -p " .. sh_quote(dir))
  os.execute(format("sh %s %s >%s/make.log 2>&1", sh_quote(repo .. "/spec/helpers/make_certs.sh"),
                    sh_quote(dir), sh_quote(dir)))
  local made = read_file(dir .. "/make.log") or ""
  assert(made:match("made\n$"), "openssl could not make the W5 certificates: " .. made)
  certs = { ca = dir .. "/ca.pem", cert = dir .. "/server.pem", key = dir .. "/server.key" }
  return certs
end

local function kv(c, port)
  local t = { "w=" .. c.w, "port=" .. port }
  for _, k in ipairs { "kind", "c", "n", "total", "len" } do
    if c[k] then t[#t + 1] = k .. "=" .. c[k] end
  end
  if c.tls then t[#t + 1] = "ca=" .. tls_certs().ca end
  return concat(t, " ")
end

local ports = {}

local function lua_row(interp, script)
  return function(c, port)
    return format("env %s %s %s/clients/%s %s", lua_env, interp, bench_dir, script, kv(c, port))
  end
end

local function nginx_cmd(c, port)
  local dir = tmp .. "/nginx"
  os.execute("mkdir -p " .. sh_quote(dir .. "/logs"))
  local params = {}
  for _, k in ipairs { "w", "kind", "c", "n", "total", "len" } do
    local v = c[k]
    if v then
      params[#params + 1] = format("%s = %s", k, type(v) == "string" and format("%q", v) or v)
    end
  end
  params[#params + 1] = "port = " .. port
  params[#params + 1] = 'host = "127.0.0.1"'
  local is_root = trim(capture("id -u")) == "0"
  local conf = concat({
    "load_module /usr/lib/nginx/modules/ndk_http_module.so;",
    "load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;",
    is_root and "user root;" or "",
    "worker_processes 1;",
    "worker_rlimit_nofile " .. NOFILE .. ";",
    "daemon off;",
    -- one process, which is the worker: it exits when its timer is done
    "master_process off;",
    "pid " .. dir .. "/nginx.pid;",
    "error_log " .. dir .. "/logs/error.log warn;",
    "events { worker_connections " .. (NOFILE - 100) .. "; }",
    "http {",
    "  access_log off;",
    "  client_body_temp_path " .. dir .. "/body;",
    "  proxy_temp_path " .. dir .. "/proxy;",
    "  fastcgi_temp_path " .. dir .. "/fastcgi;",
    "  uwsgi_temp_path " .. dir .. "/uwsgi;",
    "  scgi_temp_path " .. dir .. "/scgi;",
    "  lua_package_path \"" .. bench_dir .. "/clients/?.lua;;\";",
    "  lua_socket_log_errors off;",
    -- W5: the test CA; the protocols cosocket and the raw C client offer
    c.tls and "  lua_ssl_trusted_certificate " .. tls_certs().ca .. ";" or "",
    c.tls and "  lua_ssl_protocols TLSv1.2 TLSv1.3;" or "",
    "  init_worker_by_lua_block {",
    "    local p = { " .. concat(params, ", ") .. " }",
    "    ngx.timer.at(0, function()",
    "      local common = require \"common\"",
    "      local ok, r = pcall(require(\"ngx_workload\"), p)",
    "      if ok then io.stdout:write(common.format(r))",
    "      else io.stderr:write(\"nginx: \", tostring(r), \"\\n\") end",
    "      io.stdout:flush()",
    "      os.exit(ok and 0 or 1)",
    "    end)",
    "  }",
    "}", "" }, "\n")
  write_file(dir .. "/nginx.conf", conf)
  return format("nginx -p %s/ -c %s/nginx.conf -e %s/logs/error.log", dir, dir, dir)
end

local function raw_cmd(c, port)
  local bin = build .. "/bench/raw_client"
  if c.w == "w1" then return format("%s rt %d %d %d %s", bin, port, c.c, c.n, c.kind) end
  if c.w == "churn" then return format("%s churn %d %d %d", bin, port, c.c, c.n) end
  -- a pool at best: the connections stay open (the same as W1 PING C=10)
  if c.w == "pool" then return format("%s rt %d %d %d ping", bin, port, c.c, c.n) end
  if c.w == "idle" then return format("%s idle %d %d", bin, port, c.n) end
  if c.tls then
    return format("%s %s %d %d %d %s", bin, c.w == "tls_rt" and "tls-rt" or "tls-churn", port,
                  c.c, c.n, tls_certs().ca)
  end
  return format("%s %s %d %d %d", bin, c.w, port, c.total, c.len)
end

local rows = {
  { id = "raw", label = "raw C (epoll)", cmd = raw_cmd },
  { id = "cs-jit", label = "cosocket LuaJIT", cmd = lua_row("luajit", "cosocket_native.lua"),
    probe = "luajit", module = "cosocket" },
  { id = "cs-51", label = "cosocket Lua 5.1", cmd = lua_row("lua5.1", "cosocket_native.lua"),
    probe = "lua5.1", module = "cosocket" },
  { id = "ngx-jit", label = "cosocket.ngx LuaJIT", cmd = lua_row("luajit", "cosocket_ngx.lua"),
    probe = "luajit", module = "cosocket.ngx" },
  { id = "nginx", label = "nginx + ngx_lua", cmd = nginx_cmd },
  { id = "copas", label = "copas + LuaSocket", cmd = lua_row("luajit", "copas_client.lua"),
    probe = "luajit", module = "copas",
    na = { ["w2-pool"] = "no connection pool",
           ["w3-idle"] = "select(): at most 1024 sockets",
           ["w4-parts100"] = "no receiveuntil", ["w4-parts1k"] = "no receiveuntil",
           ["w5-tls-churn"] = "copas 1.2 has no TLS (copas 2+ wraps LuaSec)",
           ["w5-tls-rt"] = "copas 1.2 has no TLS (copas 2+ wraps LuaSec)" } },
  { id = "cqueues", label = "cqueues", cmd = lua_row("luajit", "cqueues_client.lua"),
    probe = "luajit", module = "cqueues",
    na = { ["w2-pool"] = "no connection pool",
           ["w5-tls-churn"] = "a trusted CA needs luaossl (not installed)",
           ["w5-tls-rt"] = "a trusted CA needs luaossl (not installed)" } },
  { id = "luv", label = "luv (callbacks)", cmd = lua_row("luajit", "luv_client.lua"),
    probe = "luajit", module = "luv",
    na = { ["w2-pool"] = "no connection pool", ["w5-tls-churn"] = "luv has no TLS",
           ["w5-tls-rt"] = "luv has no TLS" } },
}

for i, r in ipairs(rows) do r.index = i end

local function selected_row(r)
  if not want_rows or want_rows == "" then return true end
  for id in want_rows:gmatch("[^,%s]+") do
    if id == r.id then return true end
  end
  return false
end

local function selected_cell(c)
  if not want_cells or want_cells == "" then return true end
  for pat in want_cells:gmatch("[^,]+") do
    if c.id:match(pat) then return true end
  end
  return false
end

-- CPU the whole machine spent (seconds, from /proc/stat), and steal time
local function machine_cpu()
  local line = (read_file("/proc/stat") or ""):match("^cpu%s+([^\n]*)") or ""
  local v = {}
  for x in line:gmatch("%d+") do v[#v + 1] = tonumber(x) end
  local hz = tonumber(trim(capture("getconf CLK_TCK"))) or 100
  -- user nice system idle iowait irq softirq steal
  local busy = (v[1] or 0) + (v[2] or 0) + (v[3] or 0) + (v[6] or 0) + (v[7] or 0)
  return busy / hz, (v[8] or 0) / hz
end

-- CPU seconds a process has used so far (utime + stime)
local function proc_cpu(pid)
  local st = read_file("/proc/" .. pid .. "/stat") or ""
  local rest = st:match("%) (.*)$") or ""
  local f = {}
  for x in rest:gmatch("%S+") do f[#f + 1] = x end
  local hz = tonumber(trim(capture("getconf CLK_TCK"))) or 100
  return ((tonumber(f[12]) or 0) + (tonumber(f[13]) or 0)) / hz
end

local function servers_cpu()
  local t = 0
  for pid in pairs(started) do t = t + proc_cpu(pid) end
  return t
end

-- which rows can run at all
local function probe_rows()
  for _, r in ipairs(rows) do
    if r.id == "raw" then
      if not io.open(build .. "/bench/raw_client") then r.unavailable = "raw_client not built" end
    elseif r.id == "nginx" then
      if not have("nginx") then
        r.unavailable = "nginx not installed"
      elseif not io.open("/usr/lib/nginx/modules/ngx_http_lua_module.so") then
        r.unavailable = "libnginx-mod-http-lua not installed"
      end
    elseif not have(r.probe) then
      r.unavailable = r.probe .. " not installed"
    elseif not ok_exec(format("%s %s -e %s >/dev/null 2>&1", lua_env, r.probe,
                              sh_quote("require '" .. r.module .. "'"))) then
      r.unavailable = format("require '%s' fails on %s", r.module, r.probe)
    end
  end
end

-- servers ---------------------------------------------------------------------
local function start_servers()
  -- the line server prints its port
  local function start_line(name, args)
    local pid = start_bg("line_server", "taskset -c 1 " .. build .. "/bench/line_server" .. args,
                         tmp .. "/" .. name .. ".port", tmp .. "/" .. name .. ".err")
    for _ = 1, 100 do
      local s = read_file(tmp .. "/" .. name .. ".port") or ""
      local port = s:match("PORT (%d+)")
      if port then return tonumber(port) end
      if not alive(pid) then break end
      sleep(0.05)
    end
    error(name .. ": line_server did not start: "
          .. (read_file(tmp .. "/" .. name .. ".err") or ""))
  end
  ports.line = start_line("line", "")
  -- W5: line_server -tls, one for the roundtrips and one per row for the
  -- handshake churn (its TIME_WAIT entries: see W2 churn below)
  local need_tls = false
  for _, c in ipairs(cells) do
    if c.tls and selected_cell(c) then need_tls = true end
  end
  if need_tls then
    local crt = tls_certs()
    local args = format(" -tls %s %s", sh_quote(crt.cert), sh_quote(crt.key))
    ports.tls = start_line("tls", args)
    ports.tls_churn = {}
    for r = 1, reps do
      ports.tls_churn[r] = {}
      for i = 1, #rows do
        ports.tls_churn[r][i] = start_line(format("tls_churn%d_%d", r, i), args)
      end
    end
  end
  -- redis on the first port it can bind (below the ephemeral range); a
  -- second instance for W2 churn alone, so that the TIME_WAIT entries W1
  -- leaves on the first one's port never slow churn's connects down
  local function start_redis(name, first)
    for port = first, first + 100 do
      if trim(capture(format("redis-cli -p %d ping", port))) ~= "PONG" then -- not in use
        local pid = start_bg("redis-server", format(
          "taskset -c 1 redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no "
          .. "--protected-mode no --daemonize no --maxclients 4096 --logfile %s/%s.log",
          port, tmp, name), tmp .. "/" .. name .. ".out", tmp .. "/" .. name .. ".err")
        for _ = 1, 100 do
          if not alive(pid) then break end
          if trim(capture(format("redis-cli -p %d ping", port))) == "PONG" then
            ports[name] = port
            return
          end
          sleep(0.05)
        end
        stop(pid)
      end
    end
    error(name .. ": redis-server did not start: "
          .. (read_file(tmp .. "/" .. name .. ".log") or ""))
  end
  start_redis("redis", 16379)
  -- W2 churn: a redis-server of its own for each row and round. The client
  -- closes first, so every connection leaves a TIME_WAIT entry for 60 s,
  -- and connect()'s port search walks those of the same destination: 8,000
  -- connections to a port used less than a minute before took up to 4x the
  -- CPU (0.80 s against 0.18 s, back to back). One port per row, a round
  -- apart, was not enough: a round is about a minute, and the rotation
  -- moves a row within it.
  ports.redis_churn = {}
  local last = ports.redis
  for r = 1, reps do
    ports.redis_churn[r] = {}
    for i = 1, #rows do
      local name = format("redis_churn%d_%d", r, i)
      start_redis(name, last + 1)
      last = ports[name]
      ports.redis_churn[r][i] = last
    end
  end
  write_file(tmp .. "/v100", string.rep("a", 100))
  write_file(tmp .. "/v16k", string.rep("b", 16384))
  os.execute(format("redis-cli -p %d -x set k100 < %s/v100 >/dev/null", ports.redis, tmp))
  os.execute(format("redis-cli -p %d -x set k16k < %s/v16k >/dev/null", ports.redis, tmp))
  assert(trim(capture(format("redis-cli -p %d strlen k16k", ports.redis))) == "16384",
         "could not set the redis keys")
end

-- running one client ----------------------------------------------------------
local clients_cpu = 0 -- user+sys of every client run, whole processes
local function run_one(row, c, rep)
  local port = ports[c.server]
  if c.server == "redis_churn" then port = ports.redis_churn[rep][row.index] end
  if c.server == "tls_churn" then port = ports.tls_churn[rep][row.index] end
  local cmd = row.cmd(c, port)
  local out, err = tmp .. "/out", tmp .. "/err"
  os.execute(format("cd %s && taskset -c 0 %s/bench/rusage -t %d -n %d %s >%s 2>%s </dev/null",
                    sh_quote(repo), build, timeout, NOFILE, cmd, out, err))
  local o = read_file(out) or ""
  local res = {}
  local line = o:match("RESULT ([^\n]*)")
  local ru = o:match("RUSAGE ([^\n]*)")
  if ru then
    for k, v in ru:gmatch("([%w_]+)=(%S+)") do res[k] = tonumber(v) end
    clients_cpu = clients_cpu + (res.user or 0) + (res.sys or 0)
  end
  if not line or (res.status and res.status ~= 0) then
    local e = trim(read_file(err) or "")
    if row.id == "nginx" then
      e = e .. " " .. trim(read_file(tmp .. "/nginx/logs/error.log") or "")
    end
    e = e:gsub("\n.*", "")
    return nil, (e ~= "" and e or "no RESULT line")
                .. (res.status and format(" (status %d)", res.status) or "")
  end
  for k, v in line:gmatch("([%w_]+)=(%S+)") do res[k] = tonumber(v) end
  res.cpu_op = res.cpu / res.ops
  res.ops_s = res.ops / res.wall
  return res
end

local function median(list)
  if #list == 0 then return nil end
  local t = {}
  for i = 1, #list do t[i] = list[i] end
  table.sort(t)
  local m = math.floor((#t + 1) / 2)
  if #t % 2 == 1 then return t[m] end
  return (t[m] + t[m + 1]) / 2
end

-- results[cell.id][row.id] = { runs = {...}, fails = {...} }
local results = {}

local function run_matrix()
  local active_rows = {}
  for _, r in ipairs(rows) do
    if selected_row(r) then active_rows[#active_rows + 1] = r end
  end
  local active_cells = {}
  for _, c in ipairs(cells) do
    if selected_cell(c) then active_cells[#active_cells + 1] = c end
    results[c.id] = {}
  end
  local total = reps * #active_cells * #active_rows
  local k = 0
  for rep = 1, reps do
    for _, c in ipairs(active_cells) do
      for j = 1, #active_rows do
        -- rows rotated each round: no row always runs first
        local row = active_rows[(j + rep - 2) % #active_rows + 1]
        local slot = results[c.id][row.id] or { runs = {}, fails = {}, by_rep = {} }
        results[c.id][row.id] = slot
        k = k + 1
        local why = row.unavailable or (row.na and row.na[c.id])
        if why then
          slot.na = why
        else
          local res, err = run_one(row, c, rep)
          if res then
            slot.runs[#slot.runs + 1] = res
            slot.by_rep[rep] = res
            log("[%d/%d] %-12s %-8s %9.3f us/%s  %10.0f ops/s%s", k, total, c.id, row.id,
                res.cpu_op * 1e6, c.unit, res.ops_s,
                res.rss_per_conn and format("  %.0f B/conn", res.rss_per_conn) or "")
          else
            slot.fails[#slot.fails + 1] = err
            log("[%d/%d] %-12s %-8s FAILED: %s", k, total, c.id, row.id, err)
          end
        end
      end
    end
  end
  -- medians
  for _, c in ipairs(active_cells) do
    for _, row in ipairs(active_rows) do
      local slot = results[c.id][row.id]
      if slot and #slot.runs > 0 then
        local cpu, ops, rss = {}, {}, {}
        for i, r in ipairs(slot.runs) do
          cpu[i], ops[i] = r.cpu_op, r.ops_s
          if r.rss_per_conn then rss[#rss + 1] = r.rss_per_conn end
        end
        slot.cpu_op, slot.ops_s, slot.rss = median(cpu), median(ops), median(rss)
      end
    end
  end
  return active_rows, active_cells
end

-- the tables ------------------------------------------------------------------
local function fmt_us(v)
  if v >= 100 then return format("%.0f", v) end
  if v >= 10 then return format("%.1f", v) end
  if v >= 1 then return format("%.2f", v) end
  return format("%.3f", v)
end

local function cell_text(slot, value)
  if not slot then return "" end
  if slot.na then return "n/a" end
  if not slot.cpu_op then return "fail" end
  local s = value(slot)
  if #slot.runs < reps then s = s .. format(" (%d/%d)", #slot.runs, reps) end
  return s
end

local function table_md(active_rows, active_cells, title, value, filter)
  local out = { "### " .. title, "",
    "| workload | " .. concat((function()
      local t = {}
      for i, r in ipairs(active_rows) do t[i] = r.label end
      return t
    end)(), " | ") .. " |",
    "|---|" .. string.rep("---:|", #active_rows) }
  local any = false
  for _, c in ipairs(active_cells) do
    if not filter or filter(c) then
      any = true
      local t = {}
      for i, r in ipairs(active_rows) do
        t[i] = cell_text(results[c.id][r.id], function(s) return value(s, c, r) end)
      end
      out[#out + 1] = "| " .. c.label .. " | " .. concat(t, " | ") .. " |"
    end
  end
  out[#out + 1] = ""
  if not any then return "" end -- no such cell in this run
  return concat(out, "\n")
end

-- a row's CPU per op over another's: the median of the ratios of the runs
-- of the same round (the machine drifts between rounds, less within one)
local function ratio(cell_id, a_id, b_id)
  local a, b = results[cell_id][a_id], results[cell_id][b_id]
  if not a or not b or not a.by_rep or not b.by_rep then return nil end
  local list = {}
  for rep = 1, reps do
    local x, y = a.by_rep[rep], b.by_rep[rep]
    if x and y then list[#list + 1] = x.cpu_op / y.cpu_op end
  end
  if #list == 0 then return nil end
  return median(list), math.min(unpack(list)), math.max(unpack(list))
end

local function ratio_to(base_id)
  return function(_, c, r)
    local v = ratio(c.id, r.id, base_id)
    return v and format("%.2fx", v) or "-"
  end
end

-- start time (issue #6) ---------------------------------------------------------
-- Each command runs BENCH_STARTS times in a row under build/bench/rusage -r
-- (fork, exec, wait; pinned to CPU 0), every command once per round, rotated
-- each round as the matrix's rows are; the environment reaches the checkout
-- (lua_env: src/ and build/cosocket.so). Per start: wall time (the first fork
-- to the last wait, over the runs) and CPU (the children's user+sys: for
-- `cosocket`, its /bin/sh trampoline too).
local start_cell = { id = "start" }
local start_n = tonumber(os.getenv("BENCH_STARTS") or "") or scaled(50)
local start_rows = {
  { id = "luajit", label = "`luajit -e ''`", argv = "luajit -e ''", probe = "luajit" },
  { id = "lua51", label = "`lua5.1 -e ''`", argv = "lua5.1 -e ''", probe = "lua5.1" },
  { id = "resty", label = "`resty -e ''` (resty-cli)", argv = "resty -e ''", probe = "resty" },
  { id = "cosocket", label = "`cosocket -e ''` (LuaJIT)", probe = "luajit",
    argv = repo .. "/bin/cosocket -e ''" },
  { id = "cosocket51", label = "`cosocket -e ''` (Lua 5.1, COSOCKET_LUA=lua5.1)",
    probe = "lua5.1", env = "COSOCKET_LUA=lua5.1", argv = repo .. "/bin/cosocket -e ''" },
  -- where the time goes: the C module alone, then with the ngx layer
  { id = "req-cs", label = "`luajit -e 'require \"cosocket\"'`", probe = "luajit",
    argv = "luajit -e " .. sh_quote('require "cosocket"') },
  { id = "req-ngx", label = "`luajit -e 'require \"cosocket.ngx\"'`", probe = "luajit",
    argv = "luajit -e " .. sh_quote('require "cosocket.ngx"') },
}
local start_results = {} -- [row.id] = { by_rep = {}, fails = {}, na = why }

local function start_env(r)
  return format("env %s %s", lua_env, r.env or "")
end

local function run_starts()
  local active = {}
  for _, r in ipairs(start_rows) do
    local slot = { by_rep = {}, fails = {} }
    start_results[r.id] = slot
    if not have(r.probe) then
      slot.na = r.probe == "resty" and "resty-cli not installed" or r.probe .. " not installed"
    elseif not ok_exec(format("cd %s && %s %s >/dev/null 2>&1 </dev/null", sh_quote(repo),
                              start_env(r), r.argv)) then
      slot.na = "fails: " .. r.argv
    else
      active[#active + 1] = r
    end
  end
  local total, k = reps * #active, 0
  for rep = 1, reps do
    for j = 1, #active do
      local r = active[(j + rep - 2) % #active + 1]
      local slot = start_results[r.id]
      local out, err = tmp .. "/out", tmp .. "/err"
      os.execute(format("cd %s && %s taskset -c 0 %s/bench/rusage -t %d -r %d %s >%s 2>%s "
                        .. "</dev/null", sh_quote(repo), start_env(r), build, timeout, start_n,
                        r.argv, out, err))
      local res = {}
      local ru = (read_file(out) or ""):match("RUSAGE ([^\n]*)") or ""
      for key, v in ru:gmatch("([%w_]+)=(%S+)") do res[key] = tonumber(v) end
      k = k + 1
      if res.status == 0 and res.runs == start_n then
        res.wall_op, res.cpu_op = res.wall / start_n, (res.user + res.sys) / start_n
        slot.by_rep[rep] = res
        log("[%d/%d] start %-10s %8.2f ms wall %8.2f ms CPU per start", k, total, r.id,
            res.wall_op * 1e3, res.cpu_op * 1e3)
      else
        local e = trim(read_file(err) or ""):gsub("\n.*", "")
        slot.fails[#slot.fails + 1] = (e ~= "" and e or "no RUSAGE line")
          .. (res.status and format(" (status %d after %d runs)", res.status, res.runs or 0) or "")
        log("[%d/%d] start %-10s FAILED: %s", k, total, r.id, slot.fails[#slot.fails])
      end
    end
  end
end

local function starts_md()
  local function med(slot, key)
    local list = {}
    for rep = 1, reps do
      if slot.by_rep[rep] then list[#list + 1] = slot.by_rep[rep][key] end
    end
    return median(list), #list
  end
  -- the median of the per-round ratios to luajit -e ''
  local function ratio_luajit(slot, key)
    local base = start_results.luajit
    local list = {}
    for rep = 1, reps do
      local x, y = slot.by_rep[rep], base and base.by_rep[rep]
      if x and y then list[#list + 1] = x[key] / y[key] end
    end
    if #list == 0 then return "-" end
    return format("%.2fx", median(list))
  end
  local out = { "## Start time", "",
    format("Issue #6: what starting the `cosocket` command costs against the bare interpreters. "
           .. "Each command ran %d times in a row per round under build/bench/rusage -r "
           .. "(fork, exec, wait; pinned to CPU 0), the commands rotated each round, with "
           .. "LUA_PATH / LUA_CPATH reaching the checkout (src/, %s/cosocket.so). Wall: the "
           .. "first fork to the last wait, per start; CPU: the children's user+sys per start "
           .. "(for `cosocket`, its /bin/sh trampoline and the exec of the interpreter too). "
           .. "Medians of the rounds; ratios: the median of the per-round ratios to "
           .. "`luajit -e ''`.", start_n, (build:gsub("^" .. repo:gsub("%p", "%%%0") .. "/", ""))),
    "",
    "| command | wall per start (ms) | CPU per start (ms) | wall, ratio to luajit | "
      .. "CPU, ratio to luajit | max RSS (KiB) |",
    "|---|---:|---:|---:|---:|---:|" }
  for _, r in ipairs(start_rows) do
    local slot = start_results[r.id]
    local cols
    if slot.na then
      cols = { "n/a", "n/a", "n/a", "n/a", "n/a" }
    else
      local wall, got = med(slot, "wall_op")
      if not wall then
        cols = { "fail", "fail", "fail", "fail", "fail" }
      else
        local note = got < reps and format(" (%d/%d)", got, reps) or ""
        cols = { format("%.2f%s", wall * 1e3, note), format("%.2f", med(slot, "cpu_op") * 1e3),
                 ratio_luajit(slot, "wall_op"), ratio_luajit(slot, "cpu_op"),
                 format("%.0f", med(slot, "maxrss_kb")) }
      end
    end
    out[#out + 1] = "| " .. r.label .. " | " .. concat(cols, " | ") .. " |"
  end
  out[#out + 1] = ""
  return concat(out, "\n")
end

-- targets (LuaJIT native row against raw C, DECISIONS.md 9) -------------------
local function targets(active_cells)
  local t = {}
  local function r(cell_id, row_id)
    local s = results[cell_id] and results[cell_id][row_id]
    return s and s.cpu_op
  end
  local function ratio_target(cell_id, limit, what)
    local v, lo, hi
    if results[cell_id] then v, lo, hi = ratio(cell_id, "cs-jit", "raw") end
    if not v then
      t[#t + 1] = { what = what, target = format("<= %.2fx raw C", limit),
                    got = "not measured", ok = nil }
      return
    end
    t[#t + 1] = { what = what, target = format("<= %.2fx raw C", limit),
                  got = format("%.2fx (%.2f-%.2f)", v, lo, hi),
                  ok = v <= limit,
                  by = v <= limit and "" or format("%.0f%% over", (v / limit - 1) * 100) }
  end
  for _, k in ipairs { "ping", "get100" } do
    for _, cc in ipairs { 10, 100 } do
      ratio_target(format("w1-%s-c%d", k, cc), 1.05,
                   format("W1 %s C=%d", k == "ping" and "PING" or "GET 100 B", cc))
    end
  end
  ratio_target("w1-get16k-c100", 1.15, "W1 GET 16 KiB C=100")
  for _, k in ipairs { "ping", "get100", "get16k" } do
    local name = k == "ping" and "PING" or k == "get100" and "GET 100 B" or "GET 16 KiB"
    ratio_target("w1-" .. k .. "-c1000", 1.10, "W1 " .. name .. " C=1000")
  end
  ratio_target("w2-pool", 1.10, "W2 pool reuse")
  ratio_target("w2-churn", 1.10, "W2 connect+close churn")
  local idle = results["w3-idle"] and results["w3-idle"]["cs-jit"]
  if idle and idle.rss then
    t[#t + 1] = { what = "W3 bytes per idle connection + light thread", target = "<= 2000 B",
                  got = format("%.0f B", idle.rss), ok = idle.rss <= 2000,
                  by = idle.rss <= 2000 and ""
                       or format("%.0f%% over", (idle.rss / 2000 - 1) * 100) }
  end
  local function abs_target(cell_id, limit_us, what)
    local v = r(cell_id, "cs-jit")
    if not v then return end
    v = v * 1e6
    t[#t + 1] = { what = what, target = format("<= %.2f us", limit_us), got = format("%.3f us", v),
                  ok = v <= limit_us,
                  by = v <= limit_us and "" or format("%.0f%% over", (v / limit_us - 1) * 100) }
  end
  abs_target("w4-lines", 0.07, "W4 receive('*l') per 100 B line")
  abs_target("w4-parts1k", 0.40, "W4 receiveuntil per 1 KiB part")
  -- cosocket.ngx within 1.05x of native, every cell
  local worst, worst_id, over = 0, nil, {}
  for _, c in ipairs(active_cells) do
    local v, lo, hi = ratio(c.id, "ngx-jit", "cs-jit")
    if v then
      if v > worst then worst, worst_id = v, c.id end
      if v > 1.05 then over[#over + 1] = format("%s %.2fx (%.2f-%.2f)", c.id, v, lo, hi) end
    end
  end
  if worst_id then
    t[#t + 1] = { what = "cosocket.ngx vs native (every workload)", target = "<= 1.05x",
                  got = format("worst %.2fx (%s)", worst, worst_id), ok = #over == 0,
                  by = #over == 0 and "" or concat(over, ", ") }
  end
  return t
end

local function targets_md(t)
  local out = { "Ratios: the median of the per-round ratios, and in brackets their range over "
                .. "the rounds (a miss inside that range may be noise).", "",
                "| target (LuaJIT rows) | limit | measured | |", "|---|---|---|---|" }
  local met, missed = 0, 0
  for _, x in ipairs(t) do
    local verdict = x.ok == nil and "?" or x.ok and "met" or ("**missed**, " .. x.by)
    if x.ok then met = met + 1 elseif x.ok == false then missed = missed + 1 end
    out[#out + 1] = format("| %s | %s | %s | %s |", x.what, x.target, x.got, verdict)
  end
  out[#out + 1] = ""
  out[#out + 1] = format("%d met, %d missed.", met, missed)
  out[#out + 1] = ""
  return concat(out, "\n")
end

-- profile: bench/profile.lua ------------------------------------------------------
local function profile()
  package.path = bench_dir .. "/?.lua;" .. package.path
  return require("profile") {
    have = have, capture = capture, read_file = read_file, ok_exec = ok_exec, trim = trim,
    sh_quote = sh_quote, scaled = scaled, ports = ports, repo = repo, tmp = tmp,
    build = build, bench_dir = bench_dir, lua_env = lua_env,
  }
end

-- versions --------------------------------------------------------------------
local function versions()
  local function dpkg(p)
    local v = trim(capture("dpkg-query -W -f='${Version}' " .. p))
    return v ~= "" and v or "not installed"
  end
  local t = {
    "- date: " .. os.date("!%Y-%m-%d %H:%M UTC"),
    "- machine: " .. trim(capture("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")) ..
      ", " .. trim(capture("nproc")) .. " CPUs, " .. trim(capture("uname -sr")) ..
      ", " .. trim(capture(". /etc/os-release && echo $PRETTY_NAME")),
    "- cosocket: " .. trim(capture("cd " .. sh_quote(repo) .. " && git describe --always --dirty")),
    "- " .. trim(capture("luajit -v")):gsub(" %-%- .*", "") .. " (Debian luajit2 " ..
      dpkg("luajit2") .. "), " .. trim(capture("lua5.1 -v 2>&1 | head -1")):gsub("  .*", ""),
    "- nginx " .. dpkg("nginx") .. ", libnginx-mod-http-lua " .. dpkg("libnginx-mod-http-lua") ..
      ", lua-resty-core " .. dpkg("lua-resty-core"),
    "- redis-server " .. dpkg("redis-server") .. "; copas " .. dpkg("lua-copas") ..
      ", LuaSocket " .. dpkg("lua-socket") .. ", cqueues " .. dpkg("lua-cqueues") ..
      ", luv " .. dpkg("lua-luv") .. ", libev " .. dpkg("libev4"),
    "- TLS: libtls (libretls) " .. dpkg("libtls26") .. " on OpenSSL " .. dpkg("libssl3")
      .. "; resty-cli " .. (have("resty") and trim(capture("resty -V 2>&1 | head -1")) or
                            "not installed"),
  }
  return concat(t, "\n")
end

-- main ------------------------------------------------------------------------
local function wait_quiet()
  local deadline = now() + quiet_wait
  while true do
    local b0 = machine_cpu()
    sleep(3)
    local busy = (machine_cpu() - b0) / 3
    if busy < 0.2 then return end
    if now() > deadline then
      log("the machine is still busy (%.0f%% of a CPU); starting anyway", busy * 100)
      return
    end
    log("the machine is busy (%.0f%% of a CPU): waiting", busy * 100)
  end
end

local function main()
  if quiet_wait > 0 then wait_quiet() end
  local t0 = now()
  probe_rows()
  for _, r in ipairs(rows) do
    if r.unavailable and selected_row(r) then log("row %s: n/a (%s)", r.id, r.unavailable) end
  end
  start_servers()
  log("servers on CPU 1: redis-server 127.0.0.1:%d (and :%d-%d for W2 churn), line_server "
      .. "127.0.0.1:%d%s; clients on CPU 0", ports.redis, ports.redis_churn[1][1],
      ports.redis_churn[reps][#rows], ports.line,
      ports.tls and format(", line_server -tls :%d (and others for W5 churn)", ports.tls)
      or "")
  local busy0, steal0 = machine_cpu()
  local servers0, t_matrix = servers_cpu(), now()
  local active_rows, active_cells = run_matrix()
  local busy1, steal1 = machine_cpu()
  t_matrix = now() - t_matrix
  -- what the machine ran besides the bench (the driver's own shells are
  -- counted in it, a few percent of a CPU)
  local foreign = (busy1 - busy0) - clients_cpu - (servers_cpu() - servers0)
  local noise = format("While the matrix ran (%.0f s), other processes used about %.0f%% of one "
                       .. "CPU (machine busy time minus the clients' and servers' own) and the "
                       .. "hypervisor stole %.0f%%: the more, the noisier the numbers.",
                       t_matrix, math.max(0, foreign) / t_matrix * 100,
                       (steal1 - steal0) / t_matrix * 100)
  log("%s", noise)
  local do_starts = selected_cell(start_cell)
  if do_starts then
    log("start time: %d starts per command and round ...", start_n)
    run_starts()
  end
  local prof = ""
  if do_profile then
    log("profiling cosocket LuaJIT on W1 PING C=100 ...")
    local ok, p = pcall(profile)
    prof = ok and p or ("profile failed: " .. tostring(p))
  end
  local elapsed = now() - t0
  local not_w3 = function(c) return c.w ~= "idle" end
  local md = concat({
    "# cosocket bench results",
    "",
    "Written by `make bench` (bench/run.lua) from its latest full run: the tables and the "
      .. "profile are never edited by hand. A \"Reading of this run\" section at the end, when "
      .. "there is one, was written by hand for this run; the next run drops it.",
    format("BENCH_SCALE=%s, %d repetitions (median), %.0f s in all.", tostring(scale), reps,
           elapsed),
    "",
    versions(),
    "",
    noise,
    "",
    "Servers (redis-server, bench/line_server) pinned to CPU 1, each client to CPU 0. "
      .. "Client CPU per op: user+sys time of the client process inside its timed section "
      .. "divided by the operations done there (W1 connects before the section; W2 and W3 "
      .. "include their connects). nginx runs as one process (`master_process off`: that "
      .. "process is the worker), the workload in an `ngx.timer.at(0, ...)` from "
      .. "`init_worker_by_lua`; cosocket.ngx runs the very same file (bench/clients/"
      .. "ngx_workload.lua). Peers run on LuaJIT. The raw C row of W2 pool keeps its "
      .. "connections open (what a pool gives at best). W3's CPU is per connection: connect, "
      .. "hold, close. Each cell is the median of its runs; each ratio is the median of the "
      .. "ratios of runs made in the same round (the rows of a cell run back to back, rotated "
      .. "each round), which cancels the machine's drift between rounds. \"n/a\": the peer "
      .. "has no such feature (reasons at the end); \"fail\": every run failed.",
    "",
    "Workloads: W1 C light threads, each on its own connection, doing redis roundtrips "
      .. "(RESP PING, GET of a 100 B or 16 KiB value); W2 C=10 light threads doing connect + "
      .. "PING + close (against a redis-server of its own per row and round) or connect from "
      .. "the pool + PING + setkeepalive; W3 idle connections to the line server, each held "
      .. "by a light thread blocked in receive('*l'), RSS growth per connection (after a full "
      .. "GC); W4 a 64 MiB stream from the line server read with receive('*l') (100 B lines) "
      .. "or split with receiveuntil (100 B and 1 KiB records, a 30-byte separator); W5 TLS "
      .. "against bench/line_server -tls (libtls, a P-256 certificate from a test CA, "
      .. "TCP_NODELAY): C=10 light threads doing connect + sslhandshake (no session reuse; "
      .. "the chain verified against the test CA, configured as `ssl_trusted_certificate` / "
      .. "`lua_ssl_trusted_certificate`, and the name against SNI \"localhost\"; TLS 1.2 or "
      .. "1.3 offered, 1.3 taken) + one 5-byte line roundtrip + close (against a server of "
      .. "its own per row and round), or roundtrips on 10 established TLS connections "
      .. "(handshakes before the timed section). The raw C row of W5 is OpenSSL with one "
      .. "SSL_CTX made before the timed section (as nginx makes its own at start-up).",
    "",
    table_md(active_rows, active_cells, "Client CPU per operation (us)",
             function(s) return fmt_us(s.cpu_op * 1e6) end),
    table_md(active_rows, active_cells, "Client CPU per op, ratio to raw C", ratio_to("raw")),
    table_md(active_rows, active_cells, "Client CPU per op, ratio to nginx + ngx_lua",
             ratio_to("nginx")),
    table_md(active_rows, active_cells, "Wall-clock throughput (ops/s)",
             function(s) return format("%.0f", s.ops_s) end, not_w3),
    table_md(active_rows, active_cells,
             "W3: RSS growth per idle connection with its light thread (bytes)",
             function(s) return s.rss and format("%.0f", s.rss) or "-" end,
             function(c) return c.w == "idle" end),
    do_starts and starts_md() or "",
    "## Targets",
    "",
    targets_md(targets(active_cells)),
    "## Profile",
    "",
    prof,
    "",
  }, "\n")
  -- failures
  local fails = {}
  for _, c in ipairs(active_cells) do
    for _, r in ipairs(active_rows) do
      local s = results[c.id][r.id]
      if s and #s.fails > 0 then
        fails[#fails + 1] = format("- %s / %s: %s", c.id, r.id, s.fails[1])
      end
      if s and s.na then fails[#fails + 1] = format("- %s / %s: n/a, %s", c.id, r.id, s.na) end
    end
  end
  if do_starts then
    for _, r in ipairs(start_rows) do
      local s = start_results[r.id]
      if s.na then fails[#fails + 1] = format("- start / %s: n/a, %s", r.id, s.na) end
      if #s.fails > 0 then fails[#fails + 1] = format("- start / %s: %s", r.id, s.fails[1]) end
    end
  end
  if #fails > 0 then
    md = md .. "## n/a and failures\n\n" .. concat(fails, "\n") .. "\n"
  end
  io.stdout:write(md)
  if out_md ~= "-" then
    write_file(out_md, md)
    log("wrote %s (%.0f s)", out_md, elapsed)
  end
end

local ok, err = xpcall(main, debug.traceback)
cleanup()
if not ok then
  io.stderr:write("bench: ", tostring(err), "\n")
  os.exit(1)
end
