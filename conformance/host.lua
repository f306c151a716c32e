-- conformance/host.lua: runs conformance cases on cosocket, all in this one
-- process, each in its own cosocket.run.  Started by conformance/run.lua:
--
--     luajit conformance/host.lua FX_FILE CASE...
--
-- with LUA_PATH holding src/ and conformance/, LUA_CPATH the build.  Stdout,
-- per case:
--     \2CASE <name>\n <the case's output stream> \n\2END <name>\n
-- or  \2SKIP <name> <reason>\n
-- Stderr gets "== <name>" before each case, so that what cosocket reports
-- there (errors in light threads) can be told apart.
local fx_file = assert(arg[1], "usage: host.lua FX_FILE CASE...")

local ngx = require "cosocket.ngx"
local cs = require "cosocket"
local H = require "harness"

local fx = assert(loadfile(fx_file))()
if fx.dns then
  -- the same DNS server as nginx's `resolver` line
  cs.configure { resolver = fx.host .. ":" .. fx.dns, resolver_timeout = 2000 }
end
if fx.tls and fx.tls.ca then
  -- the test CA, as nginx's lua_ssl_trusted_certificate (its verify depth, 9,
  -- is cosocket's default)
  cs.configure { ssl_trusted_certificate = fx.tls.ca }
end

local stdout, stderr = io.stdout, io.stderr
local is_jit = rawget(_G, "jit") ~= nil

-- `--! needs: x y`: each is a tcp socket method, an ngx.socket function or an
-- ngx field cosocket must provide
local probe = ngx.socket.tcp()
local function has(feature)
  return probe[feature] ~= nil or ngx.socket[feature] ~= nil or ngx[feature] ~= nil
end

local function emit(line)
  stdout:write(H.MARK, line, "\n")
  stdout:flush()
end

for i = 2, #arg do
  local name = arg[i]
  local d, derr = H.directives(name)
  local skip
  if not d then
    skip = derr
  elseif d.skip then
    skip = d.skip
  elseif d["luajit-only"] and not is_jit then
    skip = "LuaJIT only: " .. d["luajit-only"]
  elseif d.needs then
    for feature in d.needs:gmatch("%S+") do
      if not has(feature) then skip = "cosocket lacks " .. feature; break end
    end
  end
  if skip then
    stdout:write("\2SKIP ", name, " ", skip, "\n")
    stdout:flush()
  else
    stderr:write("== ", name, "\n")
    stderr:flush()
    stdout:write("\2CASE ", name, "\n")
    stdout:flush()
    local fn, err = H.load_case(name, emit, fx, ngx.null, _G)
    if not fn then
      emit("LOAD-ERROR " .. H.value(err))
    else
      local ok, rerr = pcall(cs.run, function()
        H.call_case(fn, emit, ngx.null, cs.pcall)
      end)
      if not ok and not ngx.is_exit(rerr) then -- ngx.exit ends a case
        emit("HOST-ERROR cosocket.run raised " .. H.value(rerr, ngx.null))
      end
    end
    stdout:write("\n\2END ", name, "\n")
    stdout:flush()
  end
end
