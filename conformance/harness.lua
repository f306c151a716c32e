-- conformance/harness.lua: the runtime the conformance cases run in, shared by
-- both sides of the comparison:
--   * nginx (the oracle): content_by_lua_block { require("harness").nginx_run() }
--     runs the case named by ?case=NAME and answers with its output;
--   * cosocket: conformance/host.lua runs every case in one process, each in
--     its own cosocket.run.
-- It never loads cosocket itself (nginx must not see it) and keeps no
-- globals: ngx_lua may give each request its own global table.
--
-- A case is conformance/cases/<area>_<name>.lua, a plain chunk run with these
-- globals (its own environment; everything else comes from _G):
--   out(...)          prints one line: the count of its arguments, then each
--                     value (see format)
--   fx                the fixture endpoints the runner started (see run.lua)
--   script(...)       the first line for a `script` fixture (tokens as in
--                     spec/helpers: "c", { "w", data }, { "p", ms }...)
--   scripted(...)     a tcp socket connected to the `script` fixture with that
--                     program sent (timeout 2000 ms set); raises on failure
--   scripted_unix(...) the same over the fixture's unix socket
-- A case that raises gets one more line, `RAISED <message>`.
--
-- Output stream: every out() line starts with the byte \1, so that what a
-- case prints itself (ngx.say, ngx.print) stays apart; run.lua compares the
-- whole stream, in order.
local M = {}

local type, select, tostring = type, select, tostring
local format, concat, byte = string.format, table.concat, string.byte
local floor, huge = math.floor, math.huge
local setmetatable, loadfile, setfenv, io_open = setmetatable, loadfile, setfenv, io.open

M.MARK = "\1"

-- the directory of this file, ending in "/"
M.dir = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./")
M.case_dir = M.dir .. "cases/"

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r",
                  ["\t"] = "\\t", ["\0"] = "\\0" }

local function quote(s)
  return '"' .. s:gsub('[%c"\\\128-\255]', function(c)
    return escapes[c] or format("\\%d", byte(c))
  end) .. '"'
end

-- "chunk:line: " prefixes at the start of a message: their file and line
-- differ between nginx and cosocket (LuaJIT puts the caller's position in
-- argument errors, PUC 5.1 none, lua-resty-core its own file), the text after
-- them is what is compared.  Paths, and [string "..."] chunk names.
function M.normalize(s)
  local prev
  repeat
    prev = s
    s = s:gsub("^[^%s:\"]+:%d+: ", "", 1)
    s = s:gsub('^%[string ".-"%]:%d+: ', "", 1)
  until s == prev
  return s
end

local function number(v)
  if v ~= v then return "nan" end
  if v == huge then return "inf" end
  if v == -huge then return "-inf" end
  if v == floor(v) and v > -2^53 and v < 2^53 then
    return format("%.0f", v)
  end
  return format("%.14g", v)
end

function M.value(v, null)
  local t = type(v)
  if t == "string" then return quote(M.normalize(v)) end
  if t == "number" then return number(v) end
  if t == "nil" or t == "boolean" then return tostring(v) end
  if null ~= nil and v == null then return "ngx.null" end
  return t   -- table, function, thread, userdata, cdata: never an address
end

-- "3: nil \"timeout\" \"abc\""
function M.format(null, ...)
  local n = select("#", ...)
  local parts = { n .. ":" }
  for i = 1, n do
    parts[i + 1] = M.value((select(i, ...)), null)
  end
  return concat(parts, " ")
end

-- the first line for a `script` fixture (spec/helpers.script's tokens)
local script_ops = { c = true, r = true, h = true, e = true, n = true, a = true, l = true }

local function hex(s)
  return (s:gsub(".", function(c) return format("%02x", byte(c)) end))
end

function M.script(...)
  local toks = {}
  for i = 1, select("#", ...) do
    local t = select(i, ...)
    if type(t) == "string" then t = { t } end
    local op, arg = t[1], t[2]
    if (op == "w" or op == "d") and type(arg) == "string" then
      toks[#toks + 1] = op .. ":" .. hex(arg)
    elseif op == "p" and type(arg) == "number" and arg >= 0 then
      toks[#toks + 1] = "p:" .. floor(arg)
    elseif script_ops[op] and arg == nil then
      toks[#toks + 1] = op
    else
      error("script: bad token #" .. i .. " (" .. tostring(op) .. ")", 2)
    end
  end
  return concat(toks, " ") .. "\n"
end

-- The `--! key: value` lines at the top of a case file:
--   --! needs: sslhandshake setkeepalive udp   (features cosocket must have,
--                                                 else the case is skipped)
--   --! luajit-only: reason                      (not run on PUC 5.1)
--   --! location: noresolver                     (nginx location without resolver)
--   --! skip: reason
function M.directives(name)
  local f = io_open(M.case_dir .. name .. ".lua", "rb")
  if not f then return nil, "no such case: " .. name end
  local d = {}
  for line in f:lines() do
    local k, v = line:match("^%-%-!%s*([%w%-]+)%s*:%s*(.-)%s*$")
    if k then
      d[k] = v
    elseif not line:match("^%-%-") and not line:match("^%s*$") then
      break
    end
  end
  f:close()
  return d
end

-- Loads a case as a function with its own environment.  `emit(line)` writes
-- one out() line; `null` is ngx.null.
function M.load_case(name, emit, fx, null, G)
  local fn, err = loadfile(M.case_dir .. name .. ".lua")
  if not fn then return nil, err end
  local env = {}
  env.fx = fx
  env.script = M.script
  env.out = function(...) emit(M.format(null, ...)) end
  local function scripted_at(host, port, ...)
    local sock = G.ngx.socket.tcp()
    sock:settimeout(2000)
    local ok, cerr
    if port then ok, cerr = sock:connect(host, port) else ok, cerr = sock:connect(host) end
    if not ok then error("scripted: connect: " .. tostring(cerr), 3) end
    local sent, serr = sock:send(M.script(...))
    if not sent then error("scripted: send: " .. tostring(serr), 3) end
    return sock
  end
  env.scripted = function(...) return scripted_at(fx.host, fx.script, ...) end
  env.scripted_unix = function(...) return scripted_at("unix:" .. fx.script_unix, nil, ...) end
  setfenv(fn, setmetatable(env, { __index = G }))
  return fn
end

-- Runs a loaded case: its error becomes a RAISED line.  `pcall`: one that
-- can yield (the host passes cosocket.pcall: on PUC 5.1 the built-in cannot,
-- and what the ngx layer installs as the global is under test, not relied on)
function M.call_case(fn, emit, null, pcall)
  local ok, err = pcall(fn)
  if not ok then
    emit("RAISED " .. M.value(err, null))
  end
end

-- nginx ---------------------------------------------------------------------

local fx_cache

local function nginx_fx(ngx)
  if not fx_cache then
    fx_cache = assert(loadfile(ngx.config.prefix() .. "fx.lua"))()
  end
  return fx_cache
end

function M.nginx_run()
  local G = _G
  local ngx = G.ngx
  local name = ngx.var.arg_case
  if not name or not name:match("^[%w_%-]+$") then
    ngx.status = 400
    ngx.say("bad case name")
    return
  end
  -- out() from a timer callback cannot print: those lines wait for the next
  -- out() of the request (or its end), which keeps their order
  local pending = {}
  local function emit(line)
    if ngx.get_phase() == "timer" then
      pending[#pending + 1] = line
      return
    end
    for i = 1, #pending do
      ngx.print(M.MARK, pending[i], "\n")
      pending[i] = nil
    end
    ngx.print(M.MARK, line, "\n")
  end
  local fn, err = M.load_case(name, emit, nginx_fx(ngx), ngx.null, G)
  if not fn then
    emit("LOAD-ERROR " .. M.value(err))
    return
  end
  M.call_case(fn, emit, ngx.null, G.pcall)
  for i = 1, #pending do
    ngx.print(M.MARK, pending[i], "\n")
    pending[i] = nil
  end
end

return M
