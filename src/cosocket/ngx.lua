-- cosocket.ngx: an `ngx` table on cosocket, so that code written for
-- ngx_lua runs unchanged (DECISIONS.md 8).  `local ngx = require "cosocket.ngx"`
-- returns it and sets the global `ngx` when there is none.
local cs = require "cosocket"

local type, select, tostring, concat = type, select, tostring, table.concat
local io_stdout, io_stderr, os_date = io.stdout, io.stderr, os.date

local ngx = {}

ngx.null = cs.null

-- log levels, nginx's numbers
ngx.STDERR, ngx.EMERG, ngx.ALERT, ngx.CRIT = 0, 1, 2, 3
ngx.ERR, ngx.WARN, ngx.NOTICE, ngx.INFO, ngx.DEBUG = 4, 5, 6, 7, 8
ngx.OK, ngx.ERROR, ngx.AGAIN, ngx.DONE, ngx.DECLINED = 0, -1, -2, -4, -5

local level_names = { [0] = "stderr", "emerg", "alert", "crit", "error", "warn",
                      "notice", "info", "debug" }

ngx.socket = { tcp = cs.tcp, stream = cs.stream, connect = cs.connect, udp = cs.udp }
ngx.thread = { spawn = cs.spawn, wait = cs.wait, kill = cs.kill }
ngx.sleep = cs.sleep
ngx.now = cs.now
ngx.update_time = cs.update_time

function ngx.time()
  return math.floor(cs.now())
end

local timer_at, timer_every, timer_counts = cs.timer, cs.every, cs.timer_counts
ngx.timer = {
  at = timer_at,
  every = timer_every,
  running_count = function() return (timer_counts()) end,
  pending_count = function() return (select(2, timer_counts())) end,
}

ngx.config = {
  subsystem = "http",
  ngx_lua_version = 10023, -- the oracle's (DECISIONS.md 8)
  nginx_version = 1022001,
  debug = false,
  prefix = function() return "./" end,
}

-- cosockets work everywhere here (DECISIONS.md 8)
function ngx.get_phase()
  return "timer"
end

-- ngx.say / ngx.print: strings, numbers, booleans, nil, ngx.null and array
-- tables, with ngx_lua's argument errors
local function flatten(out, v, name, i, nested)
  local t = type(v)
  if t == "string" or t == "number" then
    out[#out + 1] = tostring(v)
  elseif t == "table" then
    for k = 1, #v do flatten(out, v[k], name, i, true) end
  elseif v == ngx.null then
    out[#out + 1] = "null"
  elseif not nested and (t == "nil" or t == "boolean") then
    out[#out + 1] = tostring(v)
  elseif nested then
    error(("bad argument #%d to '%s' (bad data type %s found)"):format(i, name, t), 4)
  else
    error(("bad argument #%d to '%s' (string, number, boolean, nil, ngx.null, "
           .. "or array table expected, but got %s)"):format(i, name, t), 4)
  end
end

local function echo(name, newline, ...)
  local out = {}
  for i = 1, select("#", ...) do
    flatten(out, (select(i, ...)), name, i, false)
  end
  if newline then out[#out + 1] = "\n" end
  io_stdout:write(concat(out))
  return 1
end

-- the name an argument error shows: how the caller called it ('?' when
-- called by pcall, say), as luaL_argerror does for ngx_lua's C functions
local getinfo = debug.getinfo

function ngx.say(...)
  return echo(getinfo(1, "n").name or "?", true, ...)
end

function ngx.print(...)
  return echo(getinfo(1, "n").name or "?", false, ...)
end
function ngx.flush() io_stdout:flush(); return 1 end

function ngx.log(level, ...)
  if type(level) ~= "number" then
    error("bad argument #1 to 'log' (number expected, got " .. type(level) .. ")", 2)
  end
  if level > cs.log_level() then return end
  local parts = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    parts[i] = v == ngx.null and "null" or tostring(v)
  end
  io_stderr:write(os_date("%Y/%m/%d %H:%M:%S"), " [", level_names[level] or "?",
                  "] cosocket: ", concat(parts), "\n")
end

-- ngx.exit: in the main chunk, flush and exit as resty-cli does. In any
-- thread of a handler it ends the whole handler, its light threads killed
-- (as in ngx_lua: no pcall stops it, nothing is reported); cosocket.run
-- then raises a table to its caller, which ngx.is_exit recognises
-- (bin/cosocket turns it into the exit status).
local exit_mt = { __tostring = function(e) return "ngx.exit(" .. tostring(e.code) .. ")" end }

-- is v what ngx.exit raised? Then its code.
function ngx.is_exit(v)
  if type(v) == "table" and getmetatable(v) == exit_mt then return v.code end
  return nil
end

function ngx.exit(code)
  code = tonumber(code) or 1
  -- in a handler, exit_handler does not return
  if not cs.exit_handler(setmetatable({ code = code }, exit_mt)) then
    io_stdout:flush() -- the main chunk or one of its threads
    os.exit(code == 0 and 0 or code)
  end
end

-- What lua-resty-http reads at load time (SPEC P2.2): there is no request
-- here. ngx.var is empty (reads give nil; writes raise as ngx does for an
-- unknown variable); ngx.header takes writes and does nothing; the
-- ngx.req functions raise, naming themselves.
local function missing(name)
  return function()
    error(name .. " is not available outside nginx (no request in cosocket)", 2)
  end
end

ngx.req = {}
for _, f in ipairs({ "socket", "get_headers", "get_method", "set_method", "get_uri_args",
                     "set_uri_args", "get_post_args", "read_body", "discard_body",
                     "get_body_data", "get_body_file", "set_body_data", "set_body_file",
                     "init_body", "append_body", "finish_body", "set_header",
                     "clear_header", "raw_header", "http_version", "start_time",
                     "is_internal", "set_uri" }) do
  ngx.req[f] = missing("ngx.req." .. f)
end
for _, f in ipairs({ "redirect", "exec", "send_headers", "eof", "on_abort" }) do
  ngx[f] = missing("ngx." .. f)
end
ngx.var = setmetatable({}, {
  __newindex = function(_, name)
    error('variable "' .. tostring(name) .. '" not found for writing '
          .. "(ngx.var is empty in cosocket)", 2)
  end,
})
ngx.header = {}
ngx.status = 0
ngx.ctx = {}
ngx.HTTP_OK, ngx.HTTP_CREATED, ngx.HTTP_NO_CONTENT = 200, 201, 204
ngx.HTTP_MOVED_PERMANENTLY, ngx.HTTP_MOVED_TEMPORARILY = 301, 302
ngx.HTTP_BAD_REQUEST, ngx.HTTP_UNAUTHORIZED, ngx.HTTP_FORBIDDEN = 400, 401, 403
ngx.HTTP_NOT_FOUND, ngx.HTTP_INTERNAL_SERVER_ERROR = 404, 500
ngx.HTTP_BAD_GATEWAY, ngx.HTTP_SERVICE_UNAVAILABLE = 502, 503
ngx.HTTP_GET, ngx.HTTP_HEAD, ngx.HTTP_PUT, ngx.HTTP_POST = 2, 4, 16, 8
ngx.HTTP_DELETE = 32

ngx.worker = {
  exiting = function() return cs.exiting() end,
  pid = function() return cs.pid() end,
  id = function() return 0 end,
  count = function() return 1 end,
}

-- the semaphore module of lua-resty-core, on cosocket.semaphore
local semaphore = {}
local sema_mt = { __index = semaphore }

function semaphore.new(n)
  n = tonumber(n) or 0
  if n < 0 then error("no negative number", 2) end
  return setmetatable({ sem = cs.semaphore(n) }, sema_mt)
end

local function sema_of(self)
  if type(self) ~= "table" or type(self.sem) ~= "userdata" then
    error("not a semaphore instance", 3)
  end
  return self.sem
end

function semaphore.post(self, n)
  local sem = sema_of(self)
  n = n and tonumber(n) or 1 -- lua-resty-core's: "x" and false post 1
  if n < 1 then error("positive number required", 2) end
  return sem:post(n)
end

function semaphore.wait(self, seconds)
  local sem = sema_of(self)
  local ms = tonumber(seconds) * 1000 -- nil: the arithmetic error, as ngx
  if ms < 0 then error("no negative number", 2) end
  return sem:wait(ms / 1000)
end

function semaphore.count(self)
  return sema_of(self):count()
end

package.preload["ngx.semaphore"] = function() return semaphore end

-- hashes, crc32, base64, URI escapes, query args, SQL quoting
-- (ngx_helpers.c); lua-resty-core's coercions: nil and false give "",
-- other values tostring
local function str(s)
  if type(s) == "string" then return s end
  return s and tostring(s) or ""
end

local md5, md5_bin, sha1_bin, crc32 = cs._md5, cs._md5_bin, cs._sha1_bin, cs._crc32
function ngx.md5(s) return md5(str(s)) end
function ngx.md5_bin(s) return md5_bin(str(s)) end
function ngx.sha1_bin(s) return sha1_bin(str(s)) end
function ngx.crc32_short(s) return crc32(str(s)) end
function ngx.crc32_long(s) return crc32(str(s)) end

-- ngx_lua's own C functions: their argument errors come from C
ngx.hmac_sha1 = cs._hmac_sha1
ngx.encode_args = cs._encode_args
ngx.decode_args = cs._decode_args
ngx.quote_sql_str = cs._quote_sql_str

local encode_base64, decode_base64 = cs._encode_base64, cs._decode_base64

function ngx.encode_base64(s, no_padding)
  if no_padding and no_padding ~= true then
    error("bad no_padding: boolean expected, got " .. type(no_padding), 2)
  end
  return encode_base64(str(s), no_padding)
end

function ngx.decode_base64(s)
  if type(s) ~= "string" then error("string argument only", 2) end
  return decode_base64(s)
end

local escape_uri, unescape_uri, floor = cs._escape_uri, cs._unescape_uri, math.floor

-- type: 0 uri, 1 args, 2 uri component (default), 3 html, 4 refresh,
-- 5 memcached, 6 mail auth
function ngx.escape_uri(s, esc_type)
  if esc_type == nil then
    esc_type = 2
  elseif type(esc_type) ~= "number" then
    error('"type" is not a number', 2)
  elseif esc_type < 0 or esc_type > 6 then
    error('"type" ' .. esc_type .. " out of range", 2)
  end
  return escape_uri(str(s), floor(esc_type))
end

function ngx.unescape_uri(s)
  return unescape_uri(str(s))
end

-- ngx.re (ngx_re.c): match, find, gmatch and sub/gsub with a template in
-- C; sub/gsub with a function and split here, on a compile/exec pair,
-- so that a replacement function may wait, as in ngx.
local re_compile, re_exec, re_sub, re_gsub = cs._re_compile, cs._re_exec, cs._re_sub, cs._re_gsub
local sub = string.sub

local function sub_function(subj, regex, replace, opts, global)
  local compiled, err = re_compile(regex, opts)
  if not compiled then return nil, nil, err end
  subj = tostring(subj)
  local len, out, n, pos, copied, count = #subj, {}, 0, 0, 0, 0
  while true do
    local m, from, to = re_exec(compiled, subj, pos)
    if not m then
      if from then return nil, nil, from end
      break
    end
    count = count + 1
    out[n + 1] = sub(subj, copied + 1, from)
    out[n + 2] = tostring(replace(m))
    n = n + 2
    copied, pos = to, to
    if pos == from then -- an empty match: the next try starts one on
      pos = pos + 1
      if pos > len then break end
    end
    if not global then break end
  end
  if count == 0 then return subj, 0 end
  out[n + 1] = sub(subj, copied + 1)
  return concat(out), count
end

local function substitute(subj, regex, replace, opts, global)
  if type(replace) == "function" then
    return sub_function(subj, regex, replace, opts, global)
  end
  if type(replace) ~= "string" then replace = tostring(replace) end
  if global then return re_gsub(subj, regex, replace, opts) end
  return re_sub(subj, regex, replace, opts)
end

ngx.re = {
  match = cs._re_match,
  find = cs._re_find,
  gmatch = cs._re_gmatch,
  sub = function(subj, regex, replace, opts)
    return substitute(subj, regex, replace, opts, false)
  end,
  gsub = function(subj, regex, replace, opts)
    return substitute(subj, regex, replace, opts, true)
  end,
}

-- require "ngx.re": lua-resty-core's split, step for step (its handling
-- of empty matches and of a max included)
local ngx_re = {}

function ngx_re.split(subj, regex, opts, ctx, max, res)
  subj = tostring(subj)
  if not ctx then
    ctx = { pos = 1 }
  elseif not ctx.pos then
    ctx.pos = 1
  end
  max = max or 0
  if not res then
    res = {}
  elseif type(res) ~= "table" then
    error("res is not a table", 2)
  end
  local len = #subj
  if ctx.pos > len then
    res[1] = nil
    return res
  end
  local compiled, err = re_compile(regex, opts)
  if not compiled then return nil, err end
  local sub_idx, res_idx, count, last_empty = ctx.pos, 0, 1, nil
  ctx.pos = sub_idx - 1
  while max <= 0 or count < max do
    local m, from, to, rc = re_exec(compiled, subj, ctx.pos > 0 and ctx.pos or 0)
    if not m then
      if from then return nil, from end
      break
    end
    ctx.pos = from == to and to + 1 or to
    -- the first group (all the subject when it did not take part but a
    -- later one did: ngx's offsets -1, -1)
    local capture = rc > 1 and (m[1] or subj) or nil
    from, to = from + 1, to + 1
    if last_empty then sub_idx = last_empty end
    if from == to then last_empty = from end
    if from > sub_idx or not last_empty then
      count = count + 1
      res_idx = res_idx + 1
      res[res_idx] = sub(subj, sub_idx, from - 1)
      if capture then
        res_idx = res_idx + 1
        res[res_idx] = capture
      end
      sub_idx = to
      if sub_idx > len then break end
    end
  end
  if max <= 0 and sub_idx > len then -- empty pieces at the end are dropped
    for i = res_idx, 1, -1 do
      if res[i] ~= "" then
        res_idx = i
        break
      end
      res[i] = nil
    end
  else
    res_idx = res_idx + 1
    res[res_idx] = sub(subj, sub_idx)
  end
  res[res_idx + 1] = nil
  return res
end

-- no JIT here: a stack size has nothing to size
function ngx_re.opt(option)
  if option ~= "jit_stack_size" then error("unrecognized option name", 2) end
end

package.preload["ngx.re"] = function() return ngx_re end

-- ngx.shared.DICT: a dictionary per name and Lua state, created on first
-- use (DECISIONS.md 8), with ngx_lua's semantics: an LRU queue (lookups
-- move a key to the front; stores, gets and incr first free up to two
-- expired keys from its back), times in whole milliseconds of ngx.now().
-- Memory is never short here: forcible is always false.
local shared_zones = setmetatable({}, { __mode = "k" }) -- zone -> true

local function now_ms()
  return floor(cs.now() * 1000 + 0.5)
end

-- seconds to ngx's expiry time in ms (0: never), as ngx's C cast truncates
local function expires_at(seconds)
  local ms = seconds * 1000
  ms = ms >= 0 and floor(ms) or -floor(-ms)
  return ms > 0 and now_ms() + ms or 0
end

local function lru_remove(node)
  node.prev.next = node.next
  node.next.prev = node.prev
end

local function lru_front(zone, node)
  local q = zone.queue
  node.next, node.prev = q.next, q
  q.next.prev = node
  q.next = node
end

local function zone_delete(zone, node)
  lru_remove(node)
  zone.nodes[node.key] = nil
end

-- n = 1: frees up to two expired keys at the back; n = 0: the last key
-- whatever its expiry, then as n = 1 (ngx_http_lua_shdict_expire)
local function zone_expire(zone, n)
  local q, now, freed = zone.queue, now_ms(), 0
  while n < 3 do
    local node = q.prev
    if node == q then return freed end
    if n ~= 0 and (node.expires == 0 or node.expires - now > 0) then return freed end
    n = n + 1
    zone_delete(zone, node)
    freed = freed + 1
  end
  return freed
end

-- the node and "ok", "expired" (still there) or nil; a found node moves
-- to the front
local function zone_lookup(zone, key)
  local node = zone.nodes[key]
  if not node then return nil end
  lru_remove(node)
  lru_front(zone, node)
  if node.expires ~= 0 and node.expires - now_ms() < 0 then return node, "expired" end
  return node, "ok"
end

local function check_zone(dict)
  local zone = type(dict) == "table" and rawget(dict, 1)
  if not shared_zones[zone] then error('bad "zone" argument', 3) end
  return zone
end

local function check_key(key)
  if key == nil then return nil, "nil key" end
  if type(key) ~= "string" then key = tostring(key) end
  if #key == 0 then return nil, "empty key" end
  if #key > 65535 then return nil, "key too long" end
  return key
end

local value_types = { string = true, number = true, boolean = true }
local OP_SET, OP_ADD, OP_REPLACE = 0, 1, 2

local function store(dict, op, key, value, exptime, flags)
  local zone = check_zone(dict)
  if not exptime then
    exptime = 0
  elseif exptime < 0 then
    error('bad "exptime" argument', 2)
  end
  if not flags then
    flags = 0
  elseif type(flags) ~= "number" then
    error('bad "flags" argument', 2)
  end
  local err
  key, err = check_key(key)
  if not key then return nil, err end
  if value ~= nil and not value_types[type(value)] then return nil, "bad value type" end
  if value == nil and op ~= OP_SET then
    return false, "attempt to add or replace nil values", false
  end
  zone_expire(zone, 1)
  local node, state = zone_lookup(zone, key)
  if op == OP_REPLACE and state ~= "ok" then return false, "not found", false end
  if op == OP_ADD and state == "ok" then return false, "exists", false end
  if value == nil then
    if node then zone_delete(zone, node) end
    return true, nil, false
  end
  if not node then
    node = { key = key }
    zone.nodes[key] = node
    lru_front(zone, node)
  end
  node.value, node.expires = value, expires_at(exptime)
  node.flags = flags >= 0 and floor(flags) or -floor(-flags)
  return true, nil, false
end

local shdict = {}

function shdict.set(dict, key, value, exptime, flags)
  return store(dict, OP_SET, key, value, exptime, flags)
end

function shdict.add(dict, key, value, exptime, flags)
  return store(dict, OP_ADD, key, value, exptime, flags)
end

function shdict.replace(dict, key, value, exptime, flags)
  return store(dict, OP_REPLACE, key, value, exptime, flags)
end

shdict.safe_set, shdict.safe_add = shdict.set, shdict.add

function shdict.delete(dict, key)
  return store(dict, OP_SET, key, nil)
end

local function get(dict, key, stale)
  local zone = check_zone(dict)
  local err
  key, err = check_key(key)
  if not key then return nil, err end
  if not stale then zone_expire(zone, 1) end
  local node, state = zone_lookup(zone, key)
  if not node or (state == "expired" and not stale) then return nil end
  local flags = node.flags ~= 0 and node.flags or nil
  if stale then return node.value, flags, state == "expired" end
  if flags then return node.value, flags end
  return node.value
end

function shdict.get(dict, key)
  return get(dict, key, false)
end

function shdict.get_stale(dict, key)
  return get(dict, key, true)
end

function shdict.incr(dict, key, value, init, init_ttl)
  local zone = check_zone(dict)
  local err
  key, err = check_key(key)
  if not key then return nil, err end
  value = tonumber(value)
  if value == nil then error("cannot convert 'nil' to 'double'", 2) end
  if init and type(init) ~= "number" then
    local t = type(init)
    init = tonumber(init)
    if not init then error("bad init arg: number expected, got " .. t, 2) end
  end
  if init_ttl ~= nil then
    local t = type(init_ttl)
    init_ttl = tonumber(init_ttl)
    if not init_ttl then error("bad init_ttl arg: number expected, got " .. t, 2) end
    if init_ttl < 0 then error('bad "init_ttl" argument', 2) end
    if not init then error('must provide "init" when providing "init_ttl"', 2) end
  else
    init_ttl = 0
  end
  zone_expire(zone, 1)
  local node, state = zone_lookup(zone, key)
  if state ~= "ok" then
    if not init then return nil, "not found" end
    if not node then
      node = { key = key }
      zone.nodes[key] = node
      lru_front(zone, node)
    end
    node.value, node.flags, node.expires = value + init, 0, expires_at(init_ttl)
  elseif type(node.value) ~= "number" then
    return nil, "not a number"
  else
    node.value = node.value + value
  end
  if not init then return node.value end
  return node.value, nil, false
end

-- ttl and expire look a key up without touching the queue or its expiry
function shdict.ttl(dict, key)
  local zone = check_zone(dict)
  local err
  key, err = check_key(key)
  if not key then return nil, err end
  local node = zone.nodes[key]
  if not node then return nil, "not found" end
  if node.expires == 0 then return 0 end
  return (node.expires - now_ms()) / 1000
end

function shdict.expire(dict, key, exptime)
  local zone = check_zone(dict)
  if not exptime then error('bad "exptime" argument', 2) end
  local err
  key, err = check_key(key)
  if not key then return nil, err end
  local node = zone.nodes[key]
  if not node then return nil, "not found" end
  node.expires = expires_at(exptime)
  return true
end

function shdict.flush_all(dict)
  local zone = check_zone(dict)
  local q = zone.queue
  local node = q.next
  while node ~= q do
    node.expires = 1
    node = node.next
  end
  zone_expire(zone, 0)
end

-- luaL_argerror's message for argument narg of the function `level`
-- levels above arg_error's caller (its name as called: '?' from pcall; a
-- method's self is argument 0), at the position of that function's caller
local function arg_error(level, narg, expected, got)
  local info = getinfo(level + 2, "n")
  local name = info and info.name or "?"
  local msg = expected .. " expected, got " .. got
  if info and info.namewhat == "method" then
    narg = narg - 1
    if narg == 0 then
      error(("calling '%s' on bad self (%s)"):format(name, msg), level + 3)
    end
  end
  error(("bad argument #%d to '%s' (%s)"):format(narg, name, msg), level + 3)
end

-- flush_expired and get_keys are C functions in ngx_lua: their checks
local function count_arg(...)
  local n = select("#", ...)
  if n ~= 1 and n ~= 2 then
    error(("expecting 1 or 2 argument(s), but saw %d"):format(n), 3)
  end
  local dict, max = ...
  if type(dict) ~= "table" then arg_error(1, 1, "table", type(dict)) end
  if n == 2 and type(max) ~= "number" then arg_error(1, 2, "number", type(max)) end
  return check_zone(dict), n == 2 and floor(max) or nil
end

function shdict.flush_expired(...)
  local zone, max = count_arg(...)
  max = max or 0
  local q, now, freed = zone.queue, now_ms(), 0
  local node = q.prev
  while node ~= q do
    local prev = node.prev
    if node.expires ~= 0 and node.expires <= now then
      zone_delete(zone, node)
      freed = freed + 1
      if max ~= 0 and freed == max then break end
    end
    node = prev
  end
  return freed
end

-- least recently used first
function shdict.get_keys(...)
  local zone, max = count_arg(...)
  max = max or 1024
  local q, now, keys = zone.queue, now_ms(), {}
  local node = q.prev
  while node ~= q do
    if node.expires == 0 or node.expires > now then
      keys[#keys + 1] = node.key
      if max ~= 0 and #keys == max then break end
    end
    node = node.prev
  end
  return keys
end

local shdict_mt = { __index = shdict }

ngx.shared = setmetatable({}, {
  __index = function(shared, name)
    if type(name) ~= "string" then return nil end
    local q = {}
    q.next, q.prev = q, q
    local zone = { name = name, nodes = {}, queue = q }
    shared_zones[zone] = true
    local dict = setmetatable({ zone }, shdict_mt)
    rawset(shared, name, dict)
    return dict
  end,
})

-- table.new, table.clear and bit, which the lua-resty-* clients require
-- unconditionally, into package.preload where absent (LuaJIT's built-ins,
-- or a bit module installed, are never replaced) (DECISIONS.md 8)
local function absent(name)
  if package.loaded[name] ~= nil or package.preload[name] ~= nil then return false end
  return not pcall(require, name)
end

if absent("table.new") then
  package.preload["table.new"] = function()
    local function new() return {} end -- no preallocation on PUC Lua
    table.new = new -- luacheck: ignore 142 (as LuaJIT's: the table library gets it)
    return new
  end
end

if absent("table.clear") then
  package.preload["table.clear"] = function()
    local next_ = next
    local function clear(t)
      local k = next_(t)
      while k ~= nil do
        t[k] = nil
        k = next_(t)
      end
    end
    table.clear = clear -- luacheck: ignore 142
    return clear
  end
end

-- bit: LuaBitOp's functions in plain Lua (32-bit, results signed), four
-- bits at a time through 16x16 tables; enough for the clients' hashing
-- and packing on PUC Lua
local function make_bit()
  local fmod = math.fmod
  local toint = math.tointeger or function(v) return v end -- luacheck: ignore 143
  local M32, M31 = 4294967296, 2147483648

  local function u32(x)
    x = tonumber(x) or error("bad argument (number expected)", 3)
    local f = floor(x) -- LuaBitOp rounds, half to even
    local d = x - f
    if d > 0.5 or (d == 0.5 and f % 2 == 1) then f = f + 1 end
    return f % M32
  end

  local function tobit(x)
    x = u32(x)
    if x >= M31 then x = x - M32 end
    return toint(x)
  end

  local nib_and, nib_or, nib_xor = {}, {}, {}
  for a = 0, 15 do
    for b = 0, 15 do
      local r_and, r_or, r_xor, p = 0, 0, 0, 1
      for i = 0, 3 do
        local x, y = floor(a / 2 ^ i) % 2, floor(b / 2 ^ i) % 2
        if x == 1 and y == 1 then r_and = r_and + p end
        if x == 1 or y == 1 then r_or = r_or + p end
        if x ~= y then r_xor = r_xor + p end
        p = p * 2
      end
      nib_and[a * 16 + b], nib_or[a * 16 + b], nib_xor[a * 16 + b] = r_and, r_or, r_xor
    end
  end

  local function op2(tbl, a, b)
    local r, p = 0, 1
    for _ = 1, 8 do
      local x, y = a % 16, b % 16
      r = r + tbl[x * 16 + y] * p
      a, b, p = (a - x) / 16, (b - y) / 16, p * 16
    end
    return r
  end

  local function fold(tbl)
    return function(x, ...)
      local r = u32(x)
      for i = 1, select("#", ...) do r = op2(tbl, r, u32((select(i, ...)))) end
      return tobit(r)
    end
  end

  local bit = { tobit = tobit }
  bit.band = fold(nib_and)
  bit.bor = fold(nib_or)
  bit.bxor = fold(nib_xor)

  function bit.bnot(x) return tobit(M32 - 1 - u32(x)) end

  local function shift_count(n) return u32(n) % 32 end

  function bit.lshift(x, n) return tobit(u32(x) * 2 ^ shift_count(n)) end
  function bit.rshift(x, n) return tobit(floor(u32(x) / 2 ^ shift_count(n))) end
  function bit.arshift(x, n) return tobit(floor(tobit(x) / 2 ^ shift_count(n))) end

  function bit.rol(x, n)
    x, n = u32(x), shift_count(n)
    return tobit(x * 2 ^ n % M32 + floor(x / 2 ^ (32 - n)))
  end

  function bit.ror(x, n)
    x, n = u32(x), shift_count(n)
    return tobit(floor(x / 2 ^ n) + x * 2 ^ (32 - n) % M32)
  end

  function bit.bswap(x)
    x = u32(x)
    local b0, b1, b2 = x % 256, floor(x / 256) % 256, floor(x / 65536) % 256
    local b3 = floor(x / 16777216)
    return tobit(((b0 * 256 + b1) * 256 + b2) * 256 + b3)
  end

  function bit.tohex(x, n)
    n = n == nil and 8 or tobit(n)
    local digits = "0123456789abcdef"
    if n < 0 then n, digits = -n, "0123456789ABCDEF" end
    if n > 8 then n = 8 end
    x = u32(x)
    local out = {}
    for i = n, 1, -1 do
      local d = fmod(x, 16)
      out[i] = digits:sub(d + 1, d + 1)
      x = (x - d) / 16
    end
    return concat(out)
  end

  return bit
end

if absent("bit") then
  package.preload["bit"] = make_bit
end

-- lua-resty-string's FFI modules look OpenSSL's symbols up in ffi.C
if rawget(_G, "jit") then
  local ok, ffi = pcall(require, "ffi")
  if ok then pcall(ffi.load, "libcrypto.so.3", true) end
end

if rawget(_G, "ngx") == nil then
  rawset(_G, "ngx", ngx)
end

-- ngx_lua's coroutine API: waits inside coroutines suspend the light thread
-- (and, on PUC 5.1, pcall/xpcall that let them) (DECISIONS.md 2, 8)
cs.coroutine.install()

return ngx
