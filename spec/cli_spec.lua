-- bin/cosocket: resty-cli's job without nginx (issue #6): a script or -e
-- code run as a handler with the ngx layer, -I, arg, and the exit status
-- of ngx.exit(n) and of an error. Run with the interpreter of this run.
local lua = require("helpers").interpreter() -- luajit, lua5.1 ... lua5.4

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local tmp = os.tmpname()
os.remove(tmp)
os.execute("mkdir -p " .. q(tmp .. "/lib/pkg"))

local function write(name, text)
  local f = assert(io.open(tmp .. "/" .. name, "w"))
  f:write(text)
  f:close()
  return tmp .. "/" .. name
end

local function read(path)
  local f = assert(io.open(path))
  local s = f:read("*a")
  f:close()
  return s
end

-- runs the command line; its stdout, stderr and exit status
local function cosocket(args)
  local cmd = ("COSOCKET_LUA=%s LUA_PATH=%s LUA_CPATH=%s bin/cosocket %s >%s 2>%s; echo $?")
    :format(lua, q("./src/?.lua;" .. package.path), q(package.cpath), args,
            q(tmp .. "/out"), q(tmp .. "/err"))
  local p = assert(io.popen(cmd))
  local status = tonumber(p:read("*a"):match("%d+"))
  p:close()
  return read(tmp .. "/out"), read(tmp .. "/err"), status
end

teardown(function()
  os.execute("rm -rf " .. q(tmp))
end)

describe("bin/cosocket", function()
  it("runs a script with its arguments in arg and ...", function()
    local script = write("args.lua", "print(arg[0], select('#', ...), arg[1], arg[2], #arg, ...)")
    local out, err, status = cosocket(q(script) .. " one 'two words'")
    assert.equal("", err)
    assert.equal(0, status)
    assert.equal(script .. "\t2\tone\ttwo words\t2\tone\ttwo words\n", out)
  end)

  it("runs -e code as a handler, with ngx and cosockets", function()
    local out, err, status = cosocket("-e " .. q([[
      local t = ngx.thread.spawn(function() ngx.sleep(0.01); return "slept" end)
      ngx.say(select(2, ngx.thread.wait(t)), " ", ngx.get_phase(), " ",
              coroutine.running() ~= nil)
    ]]))
    assert.equal("", err)
    assert.equal(0, status)
    assert.equal("slept timer true\n", out)
  end)

  it("waits for the threads and timers the code left", function()
    local out, _, status = cosocket("-e " .. q([[
      ngx.thread.spawn(function() ngx.sleep(0.02); ngx.say("thread") end)
      ngx.timer.at(0.01, function() ngx.say("timer") end)
      ngx.say("main")
    ]]))
    assert.equal(0, status)
    assert.equal("main\ntimer\nthread\n", out)
  end)

  it("runs -e before the script", function()
    local script = write("after.lua", "print('script', x)")
    local out, _, status = cosocket("-e " .. q("x = 1; print('code')") .. " " .. q(script))
    assert.equal(0, status)
    assert.equal("code\nscript\t1\n", out)
  end)

  it("adds -I directories to package.path", function()
    write("lib/mymod.lua", "return { name = 'mymod' }")
    write("lib/pkg/init.lua", "return 'pkg init'")
    local out, err, status = cosocket("-I " .. q(tmp .. "/lib")
      .. " -e " .. q("print(require('mymod').name, (require('pkg')))"))
    assert.equal("", err)
    assert.equal(0, status)
    assert.equal("mymod\tpkg init\n", out)
  end)

  it("exits with ngx.exit's code, stdout flushed, the rest not run", function()
    local out, err, status = cosocket("-e " .. q("ngx.print('before'); ngx.sleep(0); ngx.exit(3); "
                                        .. "print('after')"))
    assert.equal("", err)
    assert.equal(3, status)
    assert.equal("before", out)
    local _, _, status0 = cosocket("-e " .. q("ngx.exit(0)"))
    assert.equal(0, status0)
  end)

  it("exits with the code of ngx.exit in a light thread, the others ended", function()
    local out, err, status = cosocket("-e " .. q("ngx.thread.spawn(function() ngx.sleep(0.01); "
                                        .. "ngx.print('thread'); ngx.exit(5) end); "
                                        .. "ngx.sleep(1); print('entry woke')"))
    assert.equal("", err)
    assert.equal(5, status)
    assert.equal("thread", out)
  end)

  it("exits with 1 on an uncaught error, its traceback on stderr", function()
    local script = write("boom.lua", "local function f() error('boom') end\nf()\n")
    local out, err, status = cosocket(q(script))
    assert.equal(1, status)
    assert.equal("", out)
    assert.matches("^cosocket: " .. script:gsub("%p", "%%%0") .. ":1: boom\n", err)
    assert.matches("stack traceback:", err, 1, true)
  end)

  it("reports a script it cannot load", function()
    local _, err, status = cosocket(q(tmp .. "/missing.lua"))
    assert.equal(1, status)
    assert.matches("missing.lua", err, 1, true)
    _, err, status = cosocket("-e " .. q("x ="))
    assert.equal(1, status)
    assert.matches("command line", err, 1, true)
    _, err, status = cosocket("-x")
    assert.equal(2, status)
    assert.matches("unknown option -x", err, 1, true)
  end)
end)
