-- conformance/run.lua: runs every case of conformance/cases/ in nginx (the
-- oracle: Debian 12's nginx 1.22 + ngx_lua 0.10.23 + lua-resty-core 0.1.25)
-- and on cosocket (LuaJIT and PUC Lua 5.1), compares the outputs and prints a
-- table, a unified diff for each failure, and as its very last line
--     N passed, N failed[, N skipped]
-- (one count per case and interpreter).  Exit status 0 only if nothing failed.
--
--     luajit conformance/run.lua [options] [CASE-PATTERN...]
--       -v, --show   print both outputs of every case, not only of failures
--       --keep       keep the temporary nginx prefix (its error.log) and say where
--       --runs "luajit lua51"   interpreters to run cosocket on
-- A CASE-PATTERN is a Lua pattern matched against case names (default: all).
--
-- Environment: COSOCKET_BUILD (directory of cosocket.so, default build),
-- COSOCKET_FIXTURE (default $COSOCKET_BUILD/fixture), NGINX (default nginx),
-- NGINX_MODULES (default /usr/lib/nginx/modules), CONFORMANCE_RUNS.
--
-- Everything it starts (fixture servers, TLS servers, nginx, the cosocket hosts) it stops
-- by PID.  It uses LuaSocket (from lua-busted) to talk to nginx, never cosocket.
--
-- Intended differences are listed in conformance/DIFFERENCES (format there):
-- a listed case passes as "diff-allowed" only when nginx's output AND
-- cosocket's output are exactly the ones recorded there.

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local function abspath(p)
  if p:sub(1, 1) == "/" then return p end
  local pwd = os.getenv("PWD") or io.popen("pwd"):read("*l")
  return (pwd .. "/" .. p):gsub("/%./", "/"):gsub("/%.$", "")
end
local conf_dir = abspath(here)
local repo = conf_dir:gsub("/conformance$", "")
package.path = conf_dir .. "/?.lua;" .. repo .. "/spec/?.lua;" .. repo .. "/spec/?/init.lua;"
               .. package.path

local H = require "harness"
local socket = require "socket"

local build = os.getenv("COSOCKET_BUILD") or "build"
if build:sub(1, 1) ~= "/" then build = repo .. "/" .. build end
-- spec/helpers reads COSOCKET_FIXTURE when it loads; it defaults to build/fixture
local fixture_env = os.getenv("COSOCKET_FIXTURE")
local helpers = require "helpers"
local nginx_bin = os.getenv("NGINX") or "nginx"
local nginx_modules = os.getenv("NGINX_MODULES") or "/usr/lib/nginx/modules"

-- options ---------------------------------------------------------------------
local show_all, keep = false, false
local runs_list = os.getenv("CONFORMANCE_RUNS") or "luajit lua51"
local patterns = {}
do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    if a == "-v" or a == "--show" then show_all = true
    elseif a == "--keep" then keep = true
    elseif a == "--runs" then i = i + 1; runs_list = arg[i]
    elseif a:sub(1, 1) == "-" then
      io.stderr:write("run.lua: unknown option ", a, "\n"); os.exit(2)
    else patterns[#patterns + 1] = a end
    i = i + 1
  end
end

local interpreters = { luajit = "luajit", lua51 = "lua5.1" }
local runs = {}
for r in runs_list:gmatch("%S+") do
  if not interpreters[r] then
    io.stderr:write("run.lua: unknown run ", r, " (known: luajit lua51)\n"); os.exit(2)
  end
  runs[#runs + 1] = r
end

-- small tools -------------------------------------------------------------------
local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

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

local function sleep(s) socket.sleep(s) end

-- the process exists and is not a zombie
local function alive(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  if not stat then return false end
  local state = stat:match("^%d+ %(.*%) (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

local function stop_pid(pid, sig_first)
  if not pid or not alive(pid) then return end
  os.execute("kill -" .. (sig_first or "TERM") .. " " .. pid .. " 2>/dev/null")
  for _ = 1, 300 do
    if not alive(pid) then return end
    sleep(0.01)
  end
  os.execute("kill -KILL " .. pid .. " 2>/dev/null")
end

-- a TCP port nothing listens on (for "connection refused", and nginx's own)
local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local function tail(s, n)
  if not s then return "" end
  local lines = {}
  for l in s:gmatch("[^\n]*") do lines[#lines + 1] = l end
  local from = math.max(1, #lines - n)
  return table.concat(lines, "\n", from)
end

-- the cases -----------------------------------------------------------------------
local all_cases = {}
do
  local p = io.popen("ls " .. sh_quote(conf_dir .. "/cases"))
  for f in p:lines() do
    local name = f:match("^([%w_%-]+)%.lua$")
    if name then all_cases[#all_cases + 1] = name end
  end
  p:close()
  table.sort(all_cases)
end

local cases = {}
for _, name in ipairs(all_cases) do
  local take = #patterns == 0
  for _, p in ipairs(patterns) do
    if name:match(p) then take = true end
  end
  if take then cases[#cases + 1] = name end
end

-- conformance/DIFFERENCES ----------------------------------------------------------
--   == title                  starts an item (a (D) item of DECISIONS.md)
--   reason: text              (continuation lines indented)
--   cases: name name ...      or "none yet (...)"
--   expect NAME nginx:        followed by "  | line" lines: nginx's output
--   expect NAME cosocket:     the same for cosocket (both interpreters)
--   expect NAME lua51:        (optional) for PUC 5.1 when it differs from luajit
--   expect NAME nginx-sometimes:   an output the oracle gives only sometimes (a
--   expect NAME nginx-normally:    bug of 0.10.23's), and the one it gives
--                                  otherwise: when nginx prints the first, the
--                                  case is compared as if it had printed the second
--                                  (pairs, in that order; the case may also be in
--                                  another item with nginx/cosocket blocks)
local function parse_differences(path)
  local items, by_case, errors = {}, {}, {}
  local flaky = {}   -- case -> { item =, pairs = { { sometimes =, normally = } } }
  local text = read_file(path)
  if not text then return items, by_case, { "cannot read " .. path } end
  local item, block
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    local title = line:match("^==%s*(.-)%s*$")
    local cname, side = line:match("^expect%s+([%w_%-]+)%s+([%w%-]+):%s*$")
    if line:match("^#") or (line:match("^%s*$") and not block) then
      block = nil
    elseif title then
      item = { title = title, cases = {}, line = n }
      items[#items + 1] = item
      block = nil
    elseif not item then
      errors[#errors + 1] = "line " .. n .. ": text before the first == item"
    elseif cname and (side == "nginx-sometimes" or side == "nginx-normally") then
      local f = flaky[cname]
      if f and f.item ~= item then
        errors[#errors + 1] = "line " .. n .. ": case " .. cname .. " is flaky in two items"
      end
      f = f or { item = item, pairs = {} }
      flaky[cname] = f
      block = {}
      local last = f.pairs[#f.pairs]
      if side == "nginx-sometimes" then
        f.pairs[#f.pairs + 1] = { sometimes = block }
      elseif not last or last.normally then
        errors[#errors + 1] = "line " .. n .. ": nginx-normally without its nginx-sometimes"
      else
        last.normally = block
      end
    elseif cname then
      if side ~= "nginx" and side ~= "cosocket" and side ~= "lua51" then
        errors[#errors + 1] = "line " .. n .. ": unknown side " .. side
      end
      local e = by_case[cname]
      if e and e.item ~= item then
        errors[#errors + 1] = "line " .. n .. ": case " .. cname .. " is in two items"
      end
      e = e or { item = item }
      by_case[cname] = e
      block = {}
      e[side] = block
    elseif line:match("^%s+|") then
      if not block then
        errors[#errors + 1] = "line " .. n .. ": output line outside an expect block"
      else
        block[#block + 1] = line:match("^%s+| ?(.*)$")
      end
    elseif line:match("^%s*$") then
      block = nil
    else
      block = nil
      local k, v = line:match("^(%w+):%s*(.*)$")
      if k == "cases" then
        for c in v:gmatch("[%w_%-]+") do
          if v:match("^none") then break end
          item.cases[#item.cases + 1] = c
        end
      elseif not k and not line:match("^%s") then
        errors[#errors + 1] = "line " .. n .. ": cannot read: " .. line
      end
    end
  end
  for cname, e in pairs(by_case) do
    if not e.nginx or not e.cosocket then
      errors[#errors + 1] = cname .. ": needs both an nginx and a cosocket block"
    end
    local listed = false
    for _, c in ipairs(e.item.cases) do if c == cname then listed = true end end
    if not listed then
      errors[#errors + 1] = cname .. ": has expect blocks but is not in its item's cases:"
    end
  end
  for cname, f in pairs(flaky) do
    local listed = false
    for _, c in ipairs(f.item.cases) do if c == cname then listed = true end end
    if not listed then
      errors[#errors + 1] = cname .. ": has nginx-sometimes blocks but is not in its item's cases:"
    end
    for _, pr in ipairs(f.pairs) do
      if not pr.normally then
        errors[#errors + 1] = cname .. ": an nginx-sometimes block without nginx-normally"
      end
    end
  end
  for _, it in ipairs(items) do
    for _, c in ipairs(it.cases) do
      local f = flaky[c]
      if not by_case[c] and not (f and f.item == it) then
        errors[#errors + 1] = c .. ": listed in \"" .. it.title .. "\" without expect blocks"
      end
      if not read_file(conf_dir .. "/cases/" .. c .. ".lua") then
        errors[#errors + 1] = c .. ": listed in DIFFERENCES but there is no such case"
      end
    end
  end
  return items, by_case, errors, flaky
end

-- output streams -> display lines -------------------------------------------------
local function quote(s)
  return (H.value(s))
end

-- out() lines as they are; anything the case printed itself as `say "..."`
-- (a piece without its newline, cut short by an out() line or the end, as
-- `say-no-newline "..."`)
local function display(stream)
  local lines = {}
  local pos, len = 1, #stream
  while pos <= len do
    if stream:sub(pos, pos) == H.MARK then
      local nl = stream:find("\n", pos, true) or len + 1
      lines[#lines + 1] = stream:sub(pos + 1, nl - 1)
      pos = nl + 1
    else
      local nl = stream:find("\n", pos, true) or len + 1
      local mark = stream:find(H.MARK, pos, true) or len + 1
      if nl < mark then
        lines[#lines + 1] = "say " .. quote(stream:sub(pos, nl - 1))
        pos = nl + 1
      else
        lines[#lines + 1] = "say-no-newline " .. quote(stream:sub(pos, mark - 1))
        pos = mark
      end
    end
  end
  return lines
end

local function same(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

local tmp
local function udiff(a, b, la, lb)
  local fa, fb = tmp .. "/diff-a", tmp .. "/diff-b"
  write_file(fa, table.concat(a, "\n") .. "\n")
  write_file(fb, table.concat(b, "\n") .. "\n")
  local p = io.popen("diff -u --label " .. sh_quote(la) .. " --label " .. sh_quote(lb) ..
                     " " .. fa .. " " .. fb)
  local d = p:read("*a")
  p:close()
  return d
end

local function indent(lines, prefix)
  local t = {}
  for i, l in ipairs(lines) do t[i] = prefix .. l end
  return table.concat(t, "\n")
end

-- TLS material --------------------------------------------------------------------
-- spec/helpers/make_certs.sh into dir: a CA; server (CN and SAN localhost, SAN
-- IP 127.0.0.1), wrong (SAN other.test only) and expired (as server, valid in
-- January 2020 only), all by the CA; self (localhost, signed by its own key).
-- Returns { ca = path, NAME = { cert =, key = } }.
local function make_certs(dir)
  assert(dir:sub(1, 1) == "/", "make_certs: absolute directory expected")
  os.execute("mkdir -p " .. sh_quote(dir))
  local log = dir .. "/make.log"
  os.execute("env -u LD_PRELOAD sh " .. sh_quote(repo .. "/spec/helpers/make_certs.sh") .. " " ..
             sh_quote(dir) ..
             " >" .. sh_quote(log) .. " 2>&1 </dev/null")
  if not (read_file(log) or ""):match("made\n$") then
    error("openssl failed to make the TLS certificates:\n" .. tail(read_file(log), 20))
  end
  local certs = { ca = dir .. "/ca.pem" }
  for _, name in ipairs({ "server", "wrong", "expired", "self" }) do
    certs[name] = { cert = dir .. "/" .. name .. ".pem", key = dir .. "/" .. name .. ".key" }
  end
  return certs
end

-- main ------------------------------------------------------------------------------
local servers, nginx_pid = {}, nil
local host_pids = {}

local function cleanup()
  for _, pid in ipairs(host_pids) do stop_pid(pid) end
  if nginx_pid then stop_pid(nginx_pid, "QUIT") end
  for _, srv in ipairs(servers) do srv:stop() end
  if tmp and not keep then os.execute("rm -rf " .. sh_quote(tmp)) end
end

local function main()
  local failed_setup = {}
  local function need_file(path, why)
    if not read_file(path) then
      failed_setup[#failed_setup + 1] = path .. " is missing (" .. why .. ")"
    end
  end
  need_file(build .. "/cosocket.so", "make")
  need_file(fixture_env or (repo .. "/build/fixture"), "make build/fixture")
  need_file(nginx_modules .. "/ngx_http_lua_module.so", "apt-get install libnginx-mod-http-lua")
  if #failed_setup > 0 then
    for _, m in ipairs(failed_setup) do print("conformance: " .. m) end
    return nil, #cases * #runs
  end

  tmp = io.popen("mktemp -d \"${TMPDIR:-/tmp}/cosocket-conformance.XXXXXX\""):read("*l")
  assert(tmp and tmp ~= "", "mktemp failed")
  os.execute("mkdir -p " .. sh_quote(tmp .. "/logs"))

  -- fixtures
  local function fixture(mode, opts)
    local srv = helpers.start_fixture(mode, opts)
    servers[#servers + 1] = srv
    return srv
  end
  local fx = { host = "127.0.0.1" }
  fx.echo = fixture("echo").port
  fx.echo6 = fixture("echo", { ipv6 = true }).port
  fx.script = fixture("script").port
  fx.script_unix = fixture("script", { unix = true }).path
  fx.echo_unix = fixture("echo", { unix = true }).path
  fx.silent = fixture("silent").port
  fx.full = fixture("full").port
  fx.dns = fixture("dns").port
  fx.udpecho = fixture("udpecho").port   -- for UDP cases (--! needs: udp)
  fx.refused = free_port()
  fx.missing_unix = tmp .. "/no-such.sock"

  -- TLS: a CA and certificates made once per run, socat TLS echo servers
  local certs = make_certs(tmp .. "/tls")
  fx.tls = { ca = certs.ca }
  local function tls_server(name, pair, opts)
    local o = { cert = pair.cert, key = pair.key }
    for k, v in pairs(opts or {}) do o[k] = v end
    local srv = helpers.start_tls_server(o)
    servers[#servers + 1] = srv
    fx.tls[name] = srv.port
  end
  tls_server("good", certs.server)
  tls_server("wronghost", certs.wrong)
  tls_server("expired", certs.expired)
  tls_server("selfsigned", certs.self)
  tls_server("tls13", certs.server, { min_version = "TLS1.3" })

  -- fx files: one per side (nginx, each interpreter); they differ only in
  -- fx.counted, a script fixture of that side's own, so that a case can
  -- count the connections it made there (the `a` token) while the other
  -- sides run their cases at the same time
  local function fx_text(side_fx)
    local function ser(t, ind)
      local keys, lines = {}, { "{" }
      for k in pairs(t) do keys[#keys + 1] = k end
      table.sort(keys)
      for _, k in ipairs(keys) do
        local v = t[k]
        local sv
        if type(v) == "table" then sv = ser(v, ind .. "  ")
        elseif type(v) == "string" then sv = string.format("%q", v)
        else sv = tostring(v) end
        lines[#lines + 1] = string.format("%s  %s = %s,", ind, k, sv)
      end
      lines[#lines + 1] = ind .. "}"
      return table.concat(lines, "\n")
    end
    return "return " .. ser(side_fx, "") .. "\n"
  end
  local fx_files = {}
  for _, side in ipairs({ "nginx", "luajit", "lua51" }) do
    local side_fx = {}
    for k, v in pairs(fx) do side_fx[k] = v end
    local wanted = side == "nginx"
    for _, r in ipairs(runs) do if r == side then wanted = true end end
    if wanted then side_fx.counted = fixture("script").port end
    fx_files[side] = tmp .. (side == "nginx" and "/fx.lua" or "/fx-" .. side .. ".lua")
    write_file(fx_files[side], fx_text(side_fx))
  end

  -- the cosocket hosts, in the background while nginx runs the cases
  local host_env = "env -u LD_PRELOAD LUA_PATH=" ..
    sh_quote(repo .. "/src/?.lua;" .. conf_dir .. "/?.lua;;") ..
    " LUA_CPATH=" .. sh_quote(build .. "/?.so;;")
  local function start_host(run, list, attempt)
    local base = string.format("%s/host-%s-%d", tmp, run, attempt)
    local words = {}
    for i, c in ipairs(list) do words[i] = sh_quote(c) end
    local budget = 60 + 5 * #list
    local cmd = string.format(
      "( cd %s && %s timeout -k 5 %d %s %s %s %s >%s 2>%s </dev/null; echo $? >%s ) " ..
      ">/dev/null 2>&1 </dev/null & echo $!",
      sh_quote(repo), host_env, budget, interpreters[run], sh_quote(conf_dir .. "/host.lua"),
      sh_quote(fx_files[run]), table.concat(words, " "),
      sh_quote(base .. ".out"), sh_quote(base .. ".err"), sh_quote(base .. ".rc"))
    local p = io.popen(cmd)
    local pid = tonumber(p:read("*l"))
    p:close()
    host_pids[#host_pids + 1] = pid
    return { run = run, list = list, base = base, pid = pid, attempt = attempt }
  end
  local hosts = {}
  for _, run in ipairs(runs) do
    hosts[run] = start_host(run, cases, 1)
  end

  -- nginx
  local nport = free_port()
  local user = (io.popen("id -u"):read("*l") == "0") and "user root;\n" or ""
  local conf = table.concat({
    "load_module " .. nginx_modules .. "/ndk_http_module.so;",
    "load_module " .. nginx_modules .. "/ngx_http_lua_module.so;",
    user .. "worker_processes 1;",
    "daemon off;",
    "master_process on;",
    "pid " .. tmp .. "/nginx.pid;",
    "error_log " .. tmp .. "/logs/error.log info;",
    "events { worker_connections 1024; }",
    "http {",
    "  access_log off;",
    "  client_body_temp_path " .. tmp .. "/body;",
    "  proxy_temp_path " .. tmp .. "/proxy;",
    "  fastcgi_temp_path " .. tmp .. "/fastcgi;",
    "  uwsgi_temp_path " .. tmp .. "/uwsgi;",
    "  scgi_temp_path " .. tmp .. "/scgi;",
    "  lua_package_path \"" .. conf_dir .. "/?.lua;;\";",
    "  lua_socket_log_errors off;",
    "  lua_ssl_trusted_certificate " .. fx.tls.ca .. ";",
    "  lua_ssl_verify_depth 9;",
    "  server {",
    "    listen 127.0.0.1:" .. nport .. ";",
    "    location = /run {",
    "      resolver 127.0.0.1:" .. fx.dns .. ";",
    "      resolver_timeout 2s;",
    "      content_by_lua_block { require(\"harness\").nginx_run() }",
    "    }",
    "    location = /run-noresolver {",
    "      content_by_lua_block { require(\"harness\").nginx_run() }",
    "    }",
    "  }",
    "}", "" }, "\n")
  write_file(tmp .. "/nginx.conf", conf)
  local p = io.popen(string.format("%s -p %s -c %s -e %s >%s 2>&1 </dev/null & echo $!",
    sh_quote(nginx_bin), sh_quote(tmp .. "/"), sh_quote(tmp .. "/nginx.conf"),
    sh_quote(tmp .. "/logs/error.log"), sh_quote(tmp .. "/logs/nginx.out")))
  nginx_pid = tonumber(p:read("*l"))
  p:close()
  local up = false
  for _ = 1, 500 do
    if not alive(nginx_pid) then break end
    local c = socket.tcp()
    c:settimeout(0.2)
    if c:connect("127.0.0.1", nport) then c:close(); up = true; break end
    c:close()
    sleep(0.01)
  end
  local nginx_version = (io.popen(sh_quote(nginx_bin) .. " -v 2>&1"):read("*l") or "?")
  print(string.format(
    "==> conformance: %d cases; %s + ngx_lua on 127.0.0.1:%d (pid %s); cosocket: %s",
    #cases, nginx_version:gsub("^nginx version: ", ""), nport, tostring(nginx_pid),
    table.concat(runs, ", ")))
  if not up then
    print("conformance: nginx did not start:\n" .. tail(read_file(tmp .. "/logs/nginx.out"), 20)
          .. "\n" .. tail(read_file(tmp .. "/logs/error.log"), 20))
  end

  -- run each case in nginx
  local ngx_out, ngx_note = {}, {}
  local directives = {}
  for _, name in ipairs(cases) do
    local d = H.directives(name) or {}
    directives[name] = d
    if up and not d.skip then
      local loc = d.location == "noresolver" and "/run-noresolver" or "/run"
      local c = socket.tcp()
      c:settimeout(60)
      local ok, err = c:connect("127.0.0.1", nport)
      local resp, rerr, partial
      if ok then
        c:send("GET " .. loc .. "?case=" .. name .. " HTTP/1.0\r\nHost: localhost\r\n\r\n")
        resp, rerr, partial = c:receive("*a")
      end
      c:close()
      resp = resp or partial
      if not ok or not resp then
        ngx_note[name] = "nginx: " .. tostring(err or rerr)
      else
        local status = tonumber(resp:match("^HTTP/%d%.%d (%d+)"))
        local hend = resp:find("\r\n\r\n", 1, true)
        if status ~= 200 or not hend then
          ngx_note[name] = "nginx answered " .. tostring(status)
        else
          ngx_out[name] = resp:sub(hend + 4)
        end
        if rerr and rerr ~= "closed" then
          ngx_note[name] = "nginx: " .. rerr
        end
      end
    end
  end

  -- collect the hosts' outputs, restarting after a crash or a hang
  local host_out, host_note, host_skip = {}, {}, {}
  for _, run in ipairs(runs) do
    host_out[run], host_note[run], host_skip[run] = {}, {}, {}
    local h = hosts[run]
    while h do
      local rc
      for _ = 1, (60 + 5 * #h.list + 20) * 20 do
        rc = read_file(h.base .. ".rc")
        if rc and rc ~= "" then break end
        if not alive(h.pid) then rc = read_file(h.base .. ".rc") or "?"; break end
        sleep(0.05)
      end
      rc = tonumber(rc)
      local text = read_file(h.base .. ".out") or ""
      local done, current = {}, nil
      for kind, name, rest in text:gmatch("\2(%u+) ([%w_%-]+)([^\n]*)\n") do
        if kind == "CASE" then current = name end
        if kind == "END" then done[name] = true; current = nil end
        if kind == "SKIP" then done[name] = true; host_skip[run][name] = rest:gsub("^ ", "") end
      end
      for name, body in text:gmatch("\2CASE ([%w_%-]+)\n(.-)\n\2END ([%w_%-]+)\n") do
        host_out[run][name] = body
      end
      local rest_list, crashed = {}, nil
      for _, name in ipairs(h.list) do
        if not done[name] then
          if not crashed and (name == current or current == nil) then
            crashed = name
            local partial_out = text:match("\2CASE " .. name:gsub("%-", "%%-") .. "\n(.*)$") or ""
            host_out[run][name] = partial_out
            local err = read_file(h.base .. ".err") or ""
            host_note[run][name] = string.format(
              "the %s host died in this case (exit status %s%s); its stderr ends:\n%s", run,
              tostring(rc), rc == 124 and ": timed out" or "",
              tail(err:match("== " .. name:gsub("%-", "%%-") .. "\n(.*)$") or err, 15))
          else
            rest_list[#rest_list + 1] = name
          end
        end
      end
      if #rest_list > 0 and h.attempt < 20 then
        h = start_host(run, rest_list, h.attempt + 1)
      else
        for _, name in ipairs(rest_list) do
          host_note[run][name] = "not run: too many host crashes"
        end
        h = nil
      end
    end
  end

  -- compare
  local items, diffs, derrors, flaky = parse_differences(conf_dir .. "/DIFFERENCES")
  local passed, failed, skipped = 0, 0, 0
  local reports = {}
  local rows = {}
  for _, name in ipairs(cases) do
    local d = directives[name]
    local row = { name }
    local nlines = ngx_out[name] and display(ngx_out[name])
    -- the oracle's sometimes-output (a 0.10.23 bug listed in DIFFERENCES)
    -- counts as its usual one
    local flaked
    if nlines and flaky[name] then
      for _, pr in ipairs(flaky[name].pairs) do
        if pr.normally and same(nlines, pr.sometimes) then
          nlines, flaked = pr.normally, flaky[name].item.title
          break
        end
      end
    end
    for _, run in ipairs(runs) do
      local res
      local why
      local hout = host_out[run][name]
      local hlines = hout and display(hout)
      local expect = diffs[name]
      if d.skip then
        res, why = "skip", d.skip
      elseif host_skip[run][name] then
        res, why = "skip", host_skip[run][name]
      elseif not nlines then
        res, why = "FAIL", ngx_note[name] or "no nginx output"
      elseif not hlines then
        res, why = "FAIL", host_note[run][name] or "no cosocket output"
      elseif host_note[run][name] then
        res, why = "FAIL", host_note[run][name]
      elseif expect then
        local want = (run == "lua51" and expect.lua51) or expect.cosocket
        if same(nlines, hlines) then
          res, why = "FAIL", "listed in DIFFERENCES (" .. expect.item.title ..
                     ") but the outputs now match: update DIFFERENCES"
        elseif not same(nlines, expect.nginx) then
          res, why = "FAIL", "nginx's output is not the one DIFFERENCES records:\n" ..
                     udiff(expect.nginx, nlines, "DIFFERENCES nginx", "nginx")
        elseif not same(hlines, want) then
          res, why = "FAIL", "cosocket's output is not the one DIFFERENCES records (" ..
                     expect.item.title .. "):\n" ..
                     udiff(want, hlines, "DIFFERENCES cosocket", "cosocket " .. run)
        else
          res = "diff-allowed"
        end
      elseif same(nlines, hlines) then
        res = "pass"
      else
        res, why = "FAIL", udiff(nlines, hlines, "nginx", "cosocket " .. run)
      end
      if flaked then
        local note = "nginx gave the output DIFFERENCES records as its sometimes-output (" ..
                     flaked .. "), compared as its usual one"
        if res == "pass" then res = "diff-allowed" end
        why = why and (note .. "\n" .. why) or note
        row.note = "nginx: sometimes-output"
      end
      if res == "FAIL" then failed = failed + 1
      elseif res == "skip" then skipped = skipped + 1
      else passed = passed + 1 end
      row[#row + 1] = res
      if res == "FAIL" or (show_all and res ~= "skip") then
        reports[#reports + 1] = string.format("---- %s on %s: %s\n%s", name, run, res,
          why and why:gsub("\n*$", "") or "")
        if show_all or not why or why:sub(1, 3) ~= "---" then
          if nlines then reports[#reports + 1] = "nginx:\n" .. indent(nlines, "  | ") end
          if hlines then
            reports[#reports + 1] = "cosocket " .. run .. ":\n" .. indent(hlines, "  | ")
          end
        end
      end
      if res == "skip" and why then row.note = why end
    end
    rows[#rows + 1] = row
  end

  -- the table
  local width = 8
  for _, r in ipairs(rows) do width = math.max(width, #r[1]) end
  local head = { string.format("%-" .. width .. "s", "case") }
  for _, run in ipairs(runs) do head[#head + 1] = string.format("%-13s", run) end
  print(table.concat(head, " "))
  for _, r in ipairs(rows) do
    local cols = { string.format("%-" .. width .. "s", r[1]) }
    for i = 2, #r do cols[#cols + 1] = string.format("%-13s", r[i]) end
    local line = table.concat(cols, " ")
    if r.note then line = line .. " (" .. r.note .. ")" end
    print((line:gsub("%s+$", "")))
  end
  if #reports > 0 then
    print()
    print(table.concat(reports, "\n"))
  end
  local nd, nwith = #items, 0
  for _, it in ipairs(items) do if #it.cases > 0 then nwith = nwith + 1 end end
  print(string.format("\nDIFFERENCES: %d intended differences, %d shown by cases", nd, nwith))
  if #derrors > 0 then
    print("DIFFERENCES has errors (each counted as a failure):")
    for _, e in ipairs(derrors) do print("  " .. e) end
    failed = failed + #derrors
  end
  if keep then print("kept " .. tmp .. " (nginx.conf, logs/error.log, host-*.out/.err)") end
  return passed, failed, skipped
end

local ok, passed, failed, skipped = xpcall(main, debug.traceback)
cleanup()
if not ok then
  print("conformance: runner error: " .. tostring(passed))
  passed, failed, skipped = 0, 1, 0
elseif not passed then
  passed, failed, skipped = 0, failed, 0
end
local total = string.format("%d passed, %d failed", passed, failed)
if skipped > 0 then total = total .. string.format(", %d skipped", skipped) end
print(total)
os.exit(failed == 0 and 0 or 1)
