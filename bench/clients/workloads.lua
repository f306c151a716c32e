-- bench/clients/workloads.lua: the bench workloads, written once against
-- the ngx_lua API's shape and bound to an API by the caller:
--
--     local W = require("workloads")({ tcp = ..., spawn = ..., wait = ...,
--                                      sleep = ... })
--     W[p.w](p) --> {ops, cpu, wall[, rss_per_conn]}
--
-- ngx_workload.lua binds ngx's (the same file in nginx and on cosocket.ngx),
-- cosocket_native.lua cosocket's own, so those three rows (nginx,
-- cosocket.ngx, cosocket native) run the same steps; the copas, cqueues, luv
-- and raw C clients are their own code doing the same workloads.
-- params: w = w1 | churn | pool | idle | lines | parts | tls_rt | tls_churn,
-- port, and per workload kind (ping, get100, get16k), c (light threads), n
-- (operations), total and len (stream bytes, record length). Raises on any
-- failure. TLS verifies against the trusted CA the host configures (nginx:
-- lua_ssl_trusted_certificate; cosocket: configure{}).
local common = require "common"

local byte, sub, format = string.byte, string.sub, string.format
local tonumber, error, tostring = tonumber, error, tostring

-- the API, set once by the caller (the function at the end). Plain
-- upvalues, not a closure made per API: LuaJIT traced the closure variant
-- of W1 at C=10 worse (3,200 user instructions per roundtrip against 1,700).
local tcp, spawn, wait, sleep

local function check(ok, err)
  if not ok then error(tostring(err), 2) end
  return ok
end

local function connect(host, port)
  local sock = tcp()
  check(sock:connect(host, port))
  return sock
end

-- one redis reply: "+PONG", or "$<n>" and n bytes + CRLF
local function redis_reply(sock)
  local line, err = sock:receive("*l")
  check(line, err)
  if byte(line, 1) == 36 then -- "$"
    local data, err2 = sock:receive(tonumber(sub(line, 2)) + 2)
    check(data, err2)
  end
end

local function join(threads)
  for i = 1, #threads do
    local ok, err = wait(threads[i])
    check(ok, err)
  end
end

-- C light threads in a timed section, thread i calling step(arg(i)) n / C
-- times: the result of common.timer
local function timed_threads(p, step, arg)
  local per = common.per(p.n, p.c)
  local function worker(a)
    for _ = 1, per do step(a) end
  end
  local threads = {}
  common.gc()
  local done = common.timer(per * p.c)
  for i = 1, p.c do threads[i] = spawn(worker, arg and arg(i)) end
  join(threads)
  return done()
end

-- C light threads, each on its own connection made by open(host, port)
-- before the timed section, each calling step(sock) n / C times
local function per_connection(p, open, step)
  local socks, threads = {}, {}
  for i = 1, p.c do
    threads[i] = spawn(function() socks[i] = open(p.host, p.port) end)
  end
  join(threads)
  local r = timed_threads(p, step, function(i) return socks[i] end)
  for i = 1, p.c do socks[i]:close() end
  return r
end

local W = {}

-- W1: C light threads, each doing roundtrips on its own connection
function W.w1(p)
  local req = common.REQ[p.kind]
  return per_connection(p, connect, function(sock)
    check(sock:send(req))
    redis_reply(sock)
  end)
end

-- W2: connect + one roundtrip + close (churn) or setkeepalive (pool)
local function w2(p, pool)
  local req, host, port = common.REQ.ping, p.host, p.port
  return timed_threads(p, function()
    local sock = connect(host, port)
    check(sock:send(req))
    redis_reply(sock)
    if pool then
      check(sock:setkeepalive())
    else
      sock:close()
    end
  end)
end
function W.churn(p) return w2(p, false) end
function W.pool(p) return w2(p, true) end

-- W3: n idle connections, each held by a light thread blocked in receive;
-- the RSS growth per connection; then BCAST ends them all
function W.idle(p)
  local host, port, n = p.host, p.port, p.n
  local connected = 0
  local function holder()
    local sock = connect(host, port)
    connected = connected + 1
    local line, err = sock:receive("*l")
    check(line, err)
    sock:close()
  end
  local threads = {}
  common.gc()
  local rss0 = common.rss()
  local done = common.timer(n)
  for i = 1, n do threads[i] = spawn(holder) end
  while connected < n do sleep(0.001) end
  common.gc()
  local rss1 = common.rss()
  local ctl = connect(host, port)
  check(ctl:send("BCAST\n"))
  check(ctl:receive("*l"))
  join(threads)
  ctl:close()
  local r = done()
  r.rss_per_conn = (rss1 - rss0) / n
  return r
end

-- W5 TLS, against line_server -tls: the request is one line, echoed
local LINE = "PING\n"

local function tls_connect(host, port)
  local sock = connect(host, port)
  check(sock:sslhandshake(false, "localhost", true))
  return sock
end

local function tls_roundtrip(sock)
  check(sock:send(LINE))
  check(sock:receive("*l"))
end

-- W5: C light threads, each doing line roundtrips on its own TLS connection
-- (connects and handshakes before the timed section)
function W.tls_rt(p)
  return per_connection(p, tls_connect, tls_roundtrip)
end

-- W5: connect + full handshake (chain and name verified) + one roundtrip
-- + close, C light threads
function W.tls_churn(p)
  local host, port = p.host, p.port
  return timed_threads(p, function()
    local sock = tls_connect(host, port)
    tls_roundtrip(sock)
    sock:close()
  end)
end

local function stream(p, cmd)
  local sock = connect(p.host, p.port)
  local expect = common.per(p.total, p.len)
  local done = common.timer(expect)
  check(sock:send(format("%s %d %d\n", cmd, p.total, p.len)))
  return sock, expect, done
end

local function finish(count, expect, err, done)
  if err ~= "closed" or count ~= expect then
    error(format("%d records of %d, then %s", count, expect, tostring(err)))
  end
  return done(count)
end

-- W4: a stream read as lines
function W.lines(p)
  local sock, expect, done = stream(p, "LINES")
  local count, err = 0
  while true do
    local line, e = sock:receive("*l")
    if not line then err = e; break end
    count = count + 1
  end
  sock:close()
  return finish(count, expect, err, done)
end

-- W4: a stream split with receiveuntil
function W.parts(p)
  local sock, expect, done = stream(p, "PARTS")
  local reader = sock:receiveuntil(common.SEP)
  local count, err = 0
  while true do
    local part, e = reader()
    if not part then err = e; break end
    count = count + 1
  end
  sock:close()
  return finish(count, expect, err, done)
end

return function(api)
  tcp, spawn, wait, sleep = api.tcp, api.spawn, api.wait, api.sleep
  return W
end
