-- cosocket.coroutine and cosocket.pcall / xpcall: waits inside coroutines
-- (SPEC.md 11, DECISIONS.md 2). Assertions are made in main or in the entry
-- of a run (an error in a spawned thread only goes to stderr).
local cs = require "cosocket"
local helpers = require "helpers"

local C = cs.coroutine
local is_puc = not rawget(_G, "jit") and _VERSION == "Lua 5.1"  -- 5.2+ yields across pcall

local recorder = helpers.recorder

local pack = helpers.pack

describe("a wait inside cosocket.coroutine coroutines in a light thread", function()
  it("suspends only that light thread, three deep, and user yields reach the resumer",
    function()
    local log, p = recorder()
    cs.run(function()
      cs.update_time()       -- timings below need a fresh clock (see timer_spec)
      local sema = cs.semaphore(0)
      cs.spawn(function()
        for i = 1, 3 do p("other " .. i); cs.sleep(0.05) end  -- wide gaps: valgrind
        sema:post(1)
      end)
      local c3 = C.create(function(x)
        cs.sleep(0.001)                               -- a wait three deep
        local y = C.yield("c3 " .. x)
        assert(sema:wait(1))                          -- another kind of wait
        return "c3 end " .. y
      end)
      local c2 = C.wrap(function()
        local ok, v = C.resume(c3, "a")
        C.yield("c2 saw " .. tostring(ok) .. " " .. v)
        local ok2, v2 = C.resume(c3, "b")
        return "c2 saw " .. tostring(ok2) .. " " .. v2
      end)
      local c1 = C.create(function()
        p(c2())
        p(c2())
        return "c1 end"
      end)
      local ok, r = C.resume(c1)
      p(tostring(ok) .. " " .. r)
      assert.equal("dead", C.status(c1))
    end)
    assert.same({ "other 1", "c2 saw true c3 a", "other 2", "other 3",
                  "c2 saw true c3 end b", "true c1 end" }, log)
  end)

  it("is cancelled with the light thread when the thread is killed", function()
    local sema = cs.semaphore(0)
    local t1 = cs.spawn(function()
      C.wrap(function() C.wrap(function() sema:wait(10) end)() end)()
    end)
    local t2 = cs.spawn(function() C.wrap(function() cs.sleep(10) end)() end)
    assert.equal(-1, sema:count())
    local _, pending = cs.timer_counts()
    assert.equal(1, cs.kill(t1))
    assert.equal(1, cs.kill(t2))
    assert.equal(0, sema:count())
    cs.update_time()
    local t0 = cs.now()
    cs.run()                                          -- nothing is left to wait for
    cs.update_time()
    assert.is_true(cs.now() - t0 < 1)
    assert.equal(pending, select(2, cs.timer_counts()))
  end)

  it("in a coroutine resumed with the stock resume raises, and the thread goes on", function()
    cs.run(function()
      local sema = cs.semaphore(0)
      local msg = "cannot wait inside a nested coroutine: use cosocket.coroutine"
      local ok, err = coroutine.resume(coroutine.create(function() cs.sleep(0.001) end))
      assert.is_false(ok)
      assert.matches(msg, err, 1, true)
      ok, err = coroutine.resume(coroutine.create(function() return sema:wait(1) end))
      assert.is_false(ok)
      assert.matches(msg, err, 1, true)
      assert.equal(0, sema:count())                  -- nothing left queued
      ok, err = pcall(coroutine.wrap(function() cs.sleep(0.001) end))
      assert.is_false(ok)
      assert.matches(msg, err, 1, true)
      cs.spawn(function() cs.sleep(0.001); sema:post(1) end)
      assert.same({ n = 2, true, nil }, pack(sema:wait(1)))
    end)
  end)
end)

describe("a coroutine resumed from main", function()
  it("drives the loop when it waits, with cosocket.coroutine or the stock functions", function()
    local log, p = recorder()
    local sema = cs.semaphore(0)
    cs.spawn(function() cs.sleep(0.002); p("thread"); sema:post(1) end)
    local co = C.create(function(a)
      assert(sema:wait(1))                  -- only the thread can complete it
      p("after wait")
      cs.sleep(0.001)
      local b = C.yield(a .. "!")
      cs.sleep(0.001)
      return b .. "?"
    end)
    assert.same({ n = 2, true, "x!" }, pack(C.resume(co, "x")))
    assert.same({ "thread", "after wait" }, log)
    assert.same({ n = 2, true, "z?" }, pack(C.resume(co, "z")))
    local stock = coroutine.wrap(function()
      local inner = coroutine.wrap(function() cs.sleep(0.001); coroutine.yield("inner") end)
      coroutine.yield(inner())
      cs.sleep(0.001)
      return "outer"
    end)
    assert.equal("inner", stock())
    assert.equal("outer", stock())
  end)
end)

describe("cosocket.coroutine.wrap", function()
  it("behaves as standard Lua", function()
    local w = C.wrap(function(a) local b = C.yield(a + 1); return b * 2 end)
    assert.equal(2, w(1))
    assert.equal(10, w(5))
    local ok, err = pcall(w)
    assert.is_false(ok)
    assert.matches("cannot resume dead coroutine$", err)
    ok, err = pcall(C.wrap(function() error("inside wrap") end))
    assert.is_false(ok)
    assert.matches("coroutine_spec.lua:%d+: inside wrap$", err)
    local e = {}
    ok, err = pcall(C.wrap(function() error(e) end))
    assert.is_false(ok)
    assert.equal(e, err)
  end)

  it("and resume pass on as many values as the stock functions, none for a bare yield",
    function()
    -- the counts each call returns, for a body that may wait before each step
    local function counts(lib, wait)
      local function n(...) return select("#", ...) end
      local body = function()
        wait(); lib.yield()
        wait(); lib.yield(nil)
        wait()
      end
      local w, c = lib.wrap(body), lib.create(body)
      local r = {}
      for i = 1, 3 do r[i] = n(w()) end
      for i = 4, 6 do r[i] = n(lib.resume(c)) end
      r[7] = n(lib.wrap(function() return 1, nil end)())
      return table.concat(r, " ")
    end
    local function no_wait() end
    local stock = counts(coroutine, no_wait)
    assert.equal("0 1 0 1 2 1 2", stock)        -- the stock functions' counts
    assert.equal(stock, counts(C, no_wait))      -- main
    assert.equal(stock, cs.run(function() return counts(C, no_wait) end))
    -- a wait inside passes its own yield up: the counts stay
    assert.equal(stock, cs.run(function()
      return counts(C, function() cs.sleep(0.001) end)
    end))
  end)

  it("propagates an error raised after a wait to a catching caller in a light thread",
    function()
    local r = cs.run(function()
      return pack(cs.pcall(C.wrap(function() cs.sleep(0.001); error("late failure") end)))
    end)
    assert.is_false(r[1])
    assert.matches("coroutine_spec.lua:%d+: late failure$", r[2])
  end)
end)

describe("cosocket.coroutine.resume", function()
  it("raises 'coroutine expected' for what is not a coroutine", function()
    assert.has_error(function() C.resume(42) end,
      "bad argument #1 to 'resume' (coroutine expected)")
    assert.has_error(function() C.status("co") end,
      "bad argument #1 to 'status' (coroutine expected)")
  end)

  it("refuses a running or dead coroutine with the standard messages", function()
    local co
    co = C.create(function() return C.resume(co) end)
    assert.same({ n = 3, true, false, "cannot resume running coroutine" }, pack(C.resume(co)))
    assert.same({ n = 2, false, "cannot resume dead coroutine" }, pack(C.resume(co)))
  end)
end)

describe("cosocket.coroutine.status", function()
  it("names plain coroutines suspended, running, normal and dead, in main and in a thread",
    function()
    local function check()
      local seen = {}
      local co
      co = C.create(function()
        seen.self = C.status(co)
        C.resume(C.create(function() seen.parent = C.status(co) end))
        C.yield()
      end)
      seen.created = C.status(co)
      C.resume(co)
      seen.yielded = C.status(co)
      C.resume(co)
      seen.finished = C.status(co)
      local failed = C.create(function() error("x") end)
      C.resume(failed)
      seen.failed = C.status(failed)
      return seen
    end
    local want = { created = "suspended", self = "running", parent = "normal",
                   yielded = "suspended", finished = "dead", failed = "dead" }
    assert.same(want, check())
    assert.same(want, cs.run(check))
  end)

  it("names light threads running (also while waiting), zombie and dead", function()
    cs.run(function()
      assert.equal("running", C.status(C.running()))
      local t = cs.spawn(function() cs.sleep(0.002) end)
      assert.equal("running", C.status(t))
      cs.sleep(0.01)
      assert.equal("zombie", C.status(t))
      assert.is_true(cs.wait(t))
      assert.equal("dead", C.status(t))
      local k = cs.spawn(function() cs.sleep(1) end)
      assert.equal(1, cs.kill(k))
      assert.equal("dead", C.status(k))
    end)
  end)

  it("names a light thread normal from inside a coroutine it resumed", function()
    local seen = cs.run(function()
      local me = C.running()
      local s
      C.resume(C.create(function() s = C.status(me) end))
      return s
    end)
    assert.equal("normal", seen)
  end)

  it("names a waiting chain normal and running for others, who cannot resume it", function()
    local r = cs.run(function()
      local seen = {}
      local outer, inner
      outer = C.create(function()
        inner = C.create(function() cs.sleep(0.01); C.yield("inner yield") end)
        return C.resume(inner)
      end)
      cs.spawn(function()
        cs.sleep(0.002)                     -- inner is sleeping, outer resumed it
        seen.outer, seen.inner = C.status(outer), C.status(inner)
        seen.resume_outer = pack(C.resume(outer, "intruder"))
        seen.resume_inner = pack(C.resume(inner, "intruder"))
      end)
      seen.result = pack(C.resume(outer))
      return seen
    end)
    assert.same({
      outer = "normal", inner = "running",
      resume_outer = { n = 2, false, "cannot resume normal coroutine" },
      resume_inner = { n = 2, false, "cannot resume running coroutine" },
      result = { n = 3, true, true, "inner yield" },
    }, r)
  end)
end)

describe("cosocket.coroutine.isyieldable", function()
  it("is true in a light thread and the coroutines it resumes, false in main", function()
    assert.is_false(C.isyieldable())
    local r = cs.run(function()
      local nested
      C.resume(C.create(function() nested = C.isyieldable() end))
      return { C.isyieldable(), nested }
    end)
    assert.same({ true, true }, r)
    assert.is_true(cs.run(function() return C.wrap(function() return C.isyieldable() end)() end))
  end)
end)

describe("cosocket.pcall and cosocket.xpcall", function()
  it("return like pcall and xpcall around waits in a light thread", function()
    local r = cs.run(function()
      local out = {}
      out.ok = pack(cs.pcall(function(a) cs.sleep(0.001); return a, nil, "b" end, "x"))
      out.err = pack(cs.pcall(function() cs.sleep(0.001); error("caught") end))
      local e = {}
      local _, got = cs.pcall(function() cs.semaphore(0):wait(0.001); error(e) end)
      out.same_object = got == e
      local seen
      out.xerr = pack(cs.xpcall(function() cs.sleep(0.001); error("x failure") end,
                                function(m) seen = m; return "handled" end))
      out.seen = seen
      out.xok = pack(cs.xpcall(function(a, b) cs.sleep(0.001); return a, b end, error, 1, 2))
      out.nested = pack(cs.pcall(cs.pcall, function() cs.sleep(0.001); error("deep") end))
      return out
    end)
    assert.same({ n = 4, true, "x", nil, "b" }, r.ok)
    assert.equal(2, r.err.n)
    assert.is_false(r.err[1])
    assert.matches("coroutine_spec.lua:%d+: caught$", r.err[2])
    assert.is_true(r.same_object)
    assert.same({ n = 2, false, "handled" }, r.xerr)
    assert.matches("coroutine_spec.lua:%d+: x failure$", r.seen)
    assert.same({ n = 3, true, 1, 2 }, r.xok)
    assert.equal(3, r.nested.n)
    assert.is_true(r.nested[1])
    assert.is_false(r.nested[2])
    assert.matches("deep$", r.nested[3])
  end)

  it("return what pcall and xpcall return for a value that cannot be called", function()
    local r = cs.run(function()
      return { pack(pcall(42)), pack(cs.pcall(42)),
               pack(xpcall(42, tostring)), pack(cs.xpcall(42, tostring)) }
    end)
    assert.same(r[1], r[2])
    assert.same(r[3], r[4])
  end)

  it("let the caller's own yields through to its resumer", function()
    local r = cs.run(function()
      local w = C.wrap(function()
        local ok = cs.pcall(function()
          C.yield(1)
          cs.sleep(0.001)
          C.yield(2)
        end)
        return ok and 3
      end)
      return { w(), w(), w() }
    end)
    assert.same({ 1, 2, 3 }, r)
  end)

  it("call the xpcall handler where the error happened (debug.traceback sees it)", function()
    local tb = cs.run(function()
      local function failing_deep_inside()
        cs.sleep(0.001)
        error("traced")
      end
      local _, t = cs.xpcall(function() failing_deep_inside() end, debug.traceback)
      return t
    end)
    assert.matches("traced", tb, 1, true)
    assert.matches("failing_deep_inside", tb, 1, true)
  end)

  it("work from main, where waits drive the loop", function()
    assert.same({ n = 2, true, "main" },
      pack(cs.pcall(function() cs.sleep(0.001); return "main" end)))
    local ok, err = cs.xpcall(function() cs.sleep(0.001); error("e") end,
                              function(m) return "h: " .. m end)
    assert.is_false(ok)
    assert.matches("^h: .*e$", err)
  end)
end)

describe("a wait under the plain pcall in a light thread", function()
  it("works on LuaJIT; on PUC 5.1 returns false naming cosocket.pcall and arms nothing",
    function()
    local r = cs.run(function()
      local out = {}
      local sema = cs.semaphore(0)
      cs.spawn(function() cs.sleep(0.005); sema:post(1) end)
      out.sleep = pack(pcall(cs.sleep, 0.001))
      out.wait = pack(pcall(function() return sema:wait(1) end))
      out.count = sema:count()
      cs.sleep(0.01)                          -- the post comes: kept if nobody took it
      out.count_after_post = sema:count()
      out.again = pack(sema:wait(0))
      cs.sleep(0.001)                         -- the thread can wait normally
      cs.spawn(function() sema:post(1) end)
      out.normal = pack(sema:wait(1))
      return out
    end)
    if is_puc then
      assert.is_false(r.sleep[1])
      assert.matches("cosocket.pcall", r.sleep[2], 1, true)
      assert.is_false(r.wait[1])
      assert.matches("cosocket.pcall", r.wait[2], 1, true)
      assert.equal(0, r.count)
      assert.equal(1, r.count_after_post)
      assert.same({ n = 1, true }, r.again)
    else
      assert.same({ n = 1, true }, r.sleep)
      assert.same({ n = 3, true, true, nil }, r.wait)
      assert.equal(0, r.count)
      assert.equal(0, r.count_after_post)
      assert.same({ n = 2, nil, "timeout" }, r.again)
    end
    assert.same({ n = 1, true }, r.normal)
  end)
end)

describe("cosocket.coroutine.install (child processes)", function()
  it("installs the global coroutine table (and pcall/xpcall on PUC 5.1)", function()
    local out, err, status = helpers.run_lua [[
      local cs = require "cosocket"
      local stock, stock_pcall, stock_xpcall = coroutine, pcall, xpcall
      local M = cs.coroutine.install()
      local puc = not rawget(_G, "jit") and _VERSION == "Lua 5.1"
      local checks = {
        M == cs.coroutine, coroutine == cs.coroutine, package.loaded.coroutine == cs.coroutine,
        coroutine._create == stock.create, coroutine._resume == stock.resume,
        coroutine._yield == stock.yield, coroutine._wrap == stock.wrap,
        coroutine._status == stock.status,
        pcall == (puc and cs.pcall or stock_pcall), xpcall == (puc and cs.xpcall or stock_xpcall),
        require("coroutine") == cs.coroutine,
      }
      for i = 1, #checks do io.write(tostring(checks[i]), " ") end
      io.write("\n")
    ]]
    assert.equal("", err)
    assert.equal(("true "):rep(11) .. "\n", out)
    assert.equal(0, status)
  end)

  it("makes a lua-resty-http style body reader work inside cosocket.run", function()
    local out, err, status = helpers.run_lua [[
      local cs = require "cosocket"
      cs.coroutine.install()
      -- as lua-resty-http: the functions are taken when the library loads
      local co_create, co_resume = coroutine.create, coroutine.resume
      local co_yield, co_status = coroutine.yield, coroutine.status
      local function co_wrap(func)
        local co = co_create(func)
        return function(...)
          if co_status(co) == "suspended" then
            return select(2, co_resume(co, ...))
          else
            return nil, "can't resume a " .. co_status(co) .. " coroutine"
          end
        end
      end
      local function body_reader(chunks)
        return co_wrap(function(max)
          for i = 1, chunks do
            cs.sleep(0.002)                   -- the socket read
            max = co_yield("chunk" .. i .. "/" .. tostring(max))
          end
        end)
      end
      local result = cs.run(function()
        local ticks = 0
        cs.spawn(function() for _ = 1, 4 do ticks = ticks + 1; cs.sleep(0.001) end end)
        local reader = body_reader(3)
        local parts = {}
        for _ = 1, 10 do
          local ok, chunk = pcall(reader, 8192)   -- often called under pcall
          if not ok then parts[#parts + 1] = "error " .. tostring(chunk); break end
          if not chunk then break end
          parts[#parts + 1] = chunk
        end
        parts[#parts + 1] = select(2, reader())
        return table.concat(parts, ",") .. " ticks " .. ticks
      end)
      io.write(result, "\n")
    ]]
    assert.equal("", err)
    assert.equal("chunk1/8192,chunk2/8192,chunk3/8192,can't resume a dead coroutine ticks 4\n",
                 out)
    assert.equal(0, status)
  end)
end)
