-- bench/clients/cosocket_native.lua: the bench workloads (workloads.lua) on
-- cosocket's own API (cosocket.tcp, spawn, wait, sleep, run).
--
--     luajit|lua5.1 bench/clients/cosocket_native.lua w=w1 kind=ping c=10 n=50000 port=P
--
-- (LUA_PATH must reach bench/clients/, LUA_CPATH cosocket.so.) Prints the
-- RESULT line of common.lua.
local cs = require "cosocket"
local common = require "common"

local W = require("workloads") {
  tcp = cs.tcp,
  spawn = cs.spawn,
  wait = cs.wait,
  sleep = cs.sleep,
}

local p = common.params(arg)
local f = W[p.w] or error("unknown workload " .. tostring(p.w))
-- W5: the test CA (nginx: lua_ssl_trusted_certificate)
if p.ca then cs.configure { ssl_trusted_certificate = p.ca } end
local r = cs.run(f, p)
io.stdout:write(common.format(r))
