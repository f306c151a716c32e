-- bench/clients/luv_client.lua: the bench workloads on luv (libuv), its TCP
-- API used directly with callbacks: no light threads, replies framed in Lua
-- (common.redis_reply_len), lines and parts split in Lua (common.splitter).
-- No connection pool: pool is n/a.
--
--     luajit bench/clients/luv_client.lua w=w1 kind=ping c=10 n=50000 port=P
local uv = require "luv"
local common = require "common"

local format, sub = string.format, string.sub
local error, tostring = error, tostring

local function check(ok, err)
  if not ok then error(tostring(err), 2) end
  return ok
end

-- connects a new handle; on_connected(h) runs once it is up
local function connect(host, port, on_connected)
  local h = uv.new_tcp()
  h:nodelay(true)
  h:connect(host, port, function(err)
    check(not err, err)
    on_connected(h)
  end)
  return h
end

-- reads whole redis replies from h: on_reply() after each one
local function read_replies(h, on_reply)
  local buf = ""
  h:read_start(function(err, chunk)
    check(not err, err)
    check(chunk, "closed")
    buf = buf == "" and chunk or buf .. chunk
    local len = common.redis_reply_len(buf)
    if len then
      buf = sub(buf, len + 1)
      on_reply()
    end
  end)
end

local function run()
  uv.run()
end

local W = {}

function W.w1(p)
  local req, per, host, port = common.REQ[p.kind], common.per(p.n, p.c), p.host, p.port
  local handles = {}
  for i = 1, p.c do handles[i] = connect(host, port, function() end) end
  run()
  common.gc()
  local done = common.timer(per * p.c)
  for i = 1, p.c do
    local h, left = handles[i], per
    read_replies(h, function()
      left = left - 1
      if left > 0 then h:write(req) else h:read_stop() end
    end)
    h:write(req)
  end
  run()
  local r = done()
  for i = 1, p.c do handles[i]:close() end
  run()
  return r
end

function W.churn(p)
  local req, per, host, port = common.REQ.ping, common.per(p.n, p.c), p.host, p.port
  local function slot(left)
    connect(host, port, function(h)
      read_replies(h, function()
        h:close()
        if left > 1 then slot(left - 1) end
      end)
      h:write(req)
    end)
  end
  common.gc()
  local done = common.timer(per * p.c)
  for _ = 1, p.c do slot(per) end
  run()
  return done()
end

function W.idle(p)
  local host, port, n = p.host, p.port, p.n
  local connected, rss1 = 0, nil
  common.gc()
  local rss0 = common.rss()
  local done = common.timer(n)
  local function on_line(h)
    local feed = common.splitter("\n", function() h:close() end)
    h:read_start(function(err, chunk)
      check(not err, err)
      check(chunk, "closed")
      feed(chunk)
    end)
  end
  for _ = 1, n do
    connect(host, port, function(h)
      on_line(h)
      connected = connected + 1
      if connected == n then
        common.gc()
        rss1 = common.rss()
        connect(host, port, function(ctl)
          on_line(ctl)
          ctl:write("BCAST\n")
        end)
      end
    end)
  end
  run()
  local r = done()
  r.rss_per_conn = (rss1 - rss0) / n
  return r
end

local function stream(p, cmd, sep)
  local expect = common.per(p.total, p.len)
  local count, done = 0, nil
  connect(p.host, p.port, function(h)
    done = common.timer(expect)
    local feed = common.splitter(sep, function() count = count + 1 end)
    h:read_start(function(err, chunk)
      check(not err, err)
      if chunk then feed(chunk) else h:close() end
    end)
    h:write(format("%s %d %d\n", cmd, p.total, p.len))
  end)
  run()
  if count ~= expect then error(format("%d records of %d", count, expect)) end
  return done(count)
end

function W.lines(p) return stream(p, "LINES", "\n") end
function W.parts(p) return stream(p, "PARTS", common.SEP) end

local p = common.params(arg)
local f = W[p.w] or error("n/a: no workload " .. tostring(p.w) .. " for luv")
io.stdout:write(common.format(f(p)))
