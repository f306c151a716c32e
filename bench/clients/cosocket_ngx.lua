-- bench/clients/cosocket_ngx.lua: runs ngx_workload.lua, the file nginx
-- runs, on cosocket through cosocket.ngx, started the way nginx starts it:
-- from an ngx.timer.at(0, ...) callback.
--
--     luajit bench/clients/cosocket_ngx.lua w=w1 kind=ping c=10 n=50000 port=P
local ngx = require "cosocket.ngx"
local cs = require "cosocket"
local common = require "common"

local p = common.params(arg)
local status = 1
-- W5: the test CA, as nginx.conf's lua_ssl_trusted_certificate
if p.ca then cs.configure { ssl_trusted_certificate = p.ca } end

assert(ngx.timer.at(0, function()
  local ok, r = cs.pcall(require("ngx_workload"), p)
  if ok then
    io.stdout:write(common.format(r))
    status = 0
  else
    io.stderr:write("cosocket_ngx: ", tostring(r), "\n")
  end
end))
cs.run()
os.exit(status)
