-- bench/clients/cqueues_client.lua: the bench workloads on cqueues (its
-- controller and cqueues.socket, binary mode, unbuffered output). No
-- connection pool: pool is n/a. parts splits read chunks in Lua
-- (common.splitter): cqueues has no receiveuntil.
--
--     luajit bench/clients/cqueues_client.lua w=w1 kind=ping c=10 n=50000 port=P
local cqueues = require "cqueues"
local socket = require "cqueues.socket"
local common = require "common"

local byte, sub, format = string.byte, string.sub, string.format
local tonumber, error, tostring = tonumber, error, tostring

local cq = cqueues.new()

local function check(ok, err)
  if not ok then error(tostring(err), 2) end
  return ok
end

local function connect(host, port)
  local s = socket.connect(host, port)
  check(s:connect())
  s:setmode("b", "bn")
  return s
end

local function redis_reply(s)
  local line, err = s:read("*l")
  check(line, err)
  if byte(line, 1) == 36 then -- "$"
    check(s:read(tonumber(sub(line, 2)) + 2))
  end
end

local function loop()
  local ok, err = cq:loop()
  check(ok, err)
end

local W = {}

function W.w1(p)
  local req, per, host, port = common.REQ[p.kind], common.per(p.n, p.c), p.host, p.port
  local socks = {}
  for i = 1, p.c do
    cq:wrap(function() socks[i] = connect(host, port) end)
  end
  loop()
  common.gc()
  local done = common.timer(per * p.c)
  for i = 1, p.c do
    local s = socks[i]
    cq:wrap(function()
      for _ = 1, per do
        check(s:write(req))
        redis_reply(s)
      end
    end)
  end
  loop()
  local r = done()
  for i = 1, p.c do socks[i]:close() end
  return r
end

function W.churn(p)
  local req, per, host, port = common.REQ.ping, common.per(p.n, p.c), p.host, p.port
  common.gc()
  local done = common.timer(per * p.c)
  for _ = 1, p.c do
    cq:wrap(function()
      for _ = 1, per do
        local s = connect(host, port)
        check(s:write(req))
        redis_reply(s)
        s:close()
      end
    end)
  end
  loop()
  return done()
end

function W.idle(p)
  local host, port, n = p.host, p.port, p.n
  local connected, rss1 = 0, nil
  common.gc()
  local rss0 = common.rss()
  local done = common.timer(n)
  local function holder()
    local s = connect(host, port)
    connected = connected + 1
    check(s:read("*l"))
    s:close()
  end
  for _ = 1, n do cq:wrap(holder) end
  cq:wrap(function()
    while connected < n do cqueues.sleep(0.001) end
    common.gc()
    rss1 = common.rss()
    local ctl = connect(host, port)
    check(ctl:write("BCAST\n"))
    check(ctl:read("*l"))
    ctl:close()
  end)
  loop()
  local r = done()
  r.rss_per_conn = (rss1 - rss0) / n
  return r
end

local function stream(p, cmd, reader)
  local expect = common.per(p.total, p.len)
  local count, done
  cq:wrap(function()
    local s = connect(p.host, p.port)
    done = common.timer(expect)
    check(s:write(format("%s %d %d\n", cmd, p.total, p.len)))
    count = reader(s)
    s:close()
  end)
  loop()
  if count ~= expect then error(format("%d records of %d", count, expect)) end
  return done(count)
end

function W.lines(p)
  return stream(p, "LINES", function(s)
    local count = 0
    while s:read("*l") do count = count + 1 end
    return count
  end)
end

function W.parts(p)
  return stream(p, "PARTS", function(s)
    local count = 0
    local feed = common.splitter(common.SEP, function() count = count + 1 end)
    while true do
      local chunk = s:read(-65536) -- what is there, up to 64 KiB
      if not chunk then break end
      feed(chunk)
    end
    return count
  end)
end

local p = common.params(arg)
local f = W[p.w] or error("n/a: no workload " .. tostring(p.w) .. " for cqueues")
io.stdout:write(common.format(f(p)))
