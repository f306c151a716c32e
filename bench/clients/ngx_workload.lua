-- bench/clients/ngx_workload.lua: the bench workloads (workloads.lua) on
-- the ngx_lua API. The very same file runs inside nginx + ngx_lua (in an
-- ngx.timer, bench/run.lua writes the nginx.conf) and on cosocket through
-- cosocket.ngx (bench/clients/cosocket_ngx.lua).
--
--     require("ngx_workload")(params) --> {ops, cpu, wall[, rss_per_conn]}
--
-- params: see workloads.lua.
-- luacheck: globals ngx
local W = require("workloads") {
  tcp = ngx.socket.tcp,
  spawn = ngx.thread.spawn,
  wait = ngx.thread.wait,
  sleep = ngx.sleep,
}

return function(p)
  local f = W[p.w]
  if not f then error("unknown workload " .. tostring(p.w)) end
  return f(p)
end
