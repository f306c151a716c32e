-- bench/clients/copas_client.lua: the bench workloads on copas + LuaSocket
-- (Debian's copas 1.2: socket.select dispatcher, so at most FD_SETSIZE =
-- 1024 sockets: idle is n/a; no connection pool: pool is n/a; no
-- receiveuntil: parts is n/a).
--
--     luajit bench/clients/copas_client.lua w=w1 kind=ping c=10 n=50000 port=P
local copas = require "copas"
local socket = require "socket"
local common = require "common"

copas.autoclose = false -- a thread that ends must not close the socket it last waited on

local byte, sub, format = string.byte, string.sub, string.format
local tonumber, error, tostring = tonumber, error, tostring

local function check(ok, err)
  if not ok then error(tostring(err), 2) end
  return ok
end

local function connect(host, port)
  local skt = socket.tcp()
  check(copas.connect(skt, host, port))
  skt:setoption("tcp-nodelay", true)
  return copas.wrap(skt), skt
end

local function redis_reply(s)
  local line, err = s:receive("*l")
  check(line, err)
  if byte(line, 1) == 36 then -- "$"
    check(s:receive(tonumber(sub(line, 2)) + 2))
  end
end

-- copas.loop never returns: step until every thread is done
local function run_until(threads_left)
  while threads_left() > 0 do copas.step() end
end

local W = {}

function W.w1(p)
  local req, per, host, port = common.REQ[p.kind], common.per(p.n, p.c), p.host, p.port
  local socks, raw, left = {}, {}, p.c
  for i = 1, p.c do
    copas.addthread(function()
      socks[i], raw[i] = connect(host, port)
      left = left - 1
    end)
  end
  run_until(function() return left end)
  common.gc()
  local done = common.timer(per * p.c)
  left = p.c
  for i = 1, p.c do
    local s = socks[i]
    copas.addthread(function()
      for _ = 1, per do
        check(s:send(req))
        redis_reply(s)
      end
      left = left - 1
    end)
  end
  run_until(function() return left end)
  local r = done()
  for i = 1, p.c do raw[i]:close() end
  return r
end

function W.churn(p)
  local req, per, host, port = common.REQ.ping, common.per(p.n, p.c), p.host, p.port
  local left = p.c
  common.gc()
  local done = common.timer(per * p.c)
  for _ = 1, p.c do
    copas.addthread(function()
      for _ = 1, per do
        local s, skt = connect(host, port)
        check(s:send(req))
        redis_reply(s)
        skt:close()
      end
      left = left - 1
    end)
  end
  run_until(function() return left end)
  return done()
end

function W.lines(p)
  local expect = common.per(p.total, p.len)
  local count, left, done = 0, 1, nil
  copas.addthread(function()
    local s, skt = connect(p.host, p.port)
    done = common.timer(expect)
    check(s:send(format("LINES %d %d\n", p.total, p.len)))
    while s:receive("*l") do count = count + 1 end
    skt:close()
    left = 0
  end)
  run_until(function() return left end)
  if count ~= expect then error(format("%d records of %d", count, expect)) end
  return done(count)
end

local p = common.params(arg)
local f = W[p.w] or error("n/a: no workload " .. tostring(p.w) .. " for copas")
io.stdout:write(common.format(f(p)))
