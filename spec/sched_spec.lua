-- The scheduler: light threads, run, sleep, time (DECISIONS.md 2-4).
local cs = require "cosocket"
local helpers = require "helpers"

local recorder = helpers.recorder

describe("cosocket.spawn", function()
  it("runs the child at once until it first waits, then returns to main", function()
    local log, p = recorder()
    local t = cs.spawn(function(a, b)
      p("child " .. a .. b)
      cs.sleep(0.001)
      p("child again")
    end, "x", "y")
    p("main")
    assert.equal("thread", type(t))
    assert.same({ "child xy", "main" }, log)
    assert.is_true(cs.wait(t))
    assert.same({ "child xy", "main", "child again" }, log)
  end)

  it("follows ngx's order for nested spawns inside a light thread", function()
    local log, p = recorder()
    cs.run(function()
      p("P0")
      cs.spawn(function()
        p("C0")
        cs.spawn(function() p("G0"); cs.sleep(0.001); p("G1") end)
        p("C1")
      end)
      p("P1")
    end)
    assert.same({ "P0", "C0", "G0", "P1", "C1", "G1" }, log)
  end)

  it("posts every spawner of a chain of first runs in order", function()
    local log, p = recorder()
    cs.run(function()
      cs.spawn(function()
        cs.spawn(function()
          cs.spawn(function() p("H") end)
          p("G")
        end)
        p("C")
      end)
      p("P")
    end)
    assert.same({ "H", "P", "C", "G" }, log)
  end)

  it("rejects what is not a Lua function", function()
    assert.has_error(function() cs.spawn(print) end,
      "bad argument #1 to 'spawn' (Lua function expected)")
    assert.has_error(function() cs.spawn(42) end,
      "bad argument #1 to 'spawn' (Lua function expected)")
  end)

  it("reports ngx's statuses: running while waiting, zombie, dead", function()
    local t = cs.spawn(function() cs.sleep(0.005) end)
    assert.equal("running", cs.coroutine.status(t))
    cs.sleep(0.02)
    assert.equal("zombie", cs.coroutine.status(t))
    assert.is_true(cs.wait(t))
    assert.equal("dead", cs.coroutine.status(t))
  end)
end)

describe("cosocket.wait", function()
  it("returns true and every result of the thread", function()
    local t = cs.spawn(function() cs.sleep(0.001); return "r1", nil, "r3" end)
    local pack = helpers.pack
    assert.same({ n = 4, true, "r1", nil, "r3" }, pack(cs.wait(t)))
  end)

  it("returns exactly false and the error of a thread that failed", function()
    local t1 = cs.spawn(function() cs.sleep(0.001); error("bad bad!") end)
    local r = { cs.wait(t1) }
    assert.equal(2, #r)
    assert.is_false(r[1])
    assert.matches("sched_spec.lua:%d+: bad bad!$", r[2])
    local t2 = cs.spawn(function() error({ code = 7 }) end)
    local ok, e = cs.wait(t2)
    assert.is_false(ok)
    assert.equal(7, e.code)
  end)

  it("takes the first finished thread in argument order, else the first to end", function()
    local slow = cs.spawn(function() cs.sleep(0.03); return "slow" end)
    local fast = cs.spawn(function() cs.sleep(0.001); return "fast" end)
    assert.same({ true, "fast" }, { cs.wait(slow, fast) })
    local done1 = cs.spawn(function() return "d1" end)
    local done2 = cs.spawn(function() return "d2" end)
    assert.same({ true, "d2" }, { cs.wait(done2, done1) })
    assert.same({ true, "d1" }, { cs.wait(done1) })
    assert.same({ true, "slow" }, { cs.wait(slow) })
  end)

  it("skips a thread already waited for unless it is the last argument", function()
    local a = cs.spawn(function() return "a" end)
    local b = cs.spawn(function() cs.sleep(0.001); return "b" end)
    assert.is_true(cs.wait(a))
    assert.same({ nil, "already waited or killed" }, { cs.wait(a) })
    assert.same({ true, "b" }, { cs.wait(a, b) })
  end)

  it("raises ngx's errors for bad arguments", function()
    assert.has_error(function() cs.wait() end, "at least one coroutine should be specified")
    assert.has_error(function() cs.wait(1) end,
      "bad argument #1 to 'wait' (lua thread expected)")
    local co = coroutine.create(function() end)
    assert.has_error(function() cs.wait(co) end,
      "attempt to wait on a coroutine that is not a user thread")
    local child
    cs.spawn(function() child = cs.spawn(function() cs.sleep(0.001) end) end)
    assert.has_error(function() cs.wait(child) end,
      "only the parent coroutine can wait on the thread")
    cs.sleep(0.01)
  end)
end)

describe("cosocket.kill", function()
  it("kills a sleeping thread and stops its timer", function()
    local t = cs.spawn(function() cs.sleep(30) end)
    local _, pending = cs.timer_counts()
    assert.equal(1, cs.kill(t))
    assert.equal("dead", cs.coroutine.status(t))
    assert.same({ nil, "already waited or killed" }, { cs.wait(t) })
    assert.same({ nil, "already waited or killed" }, { cs.kill(t) })
    local start = cs.now()
    cs.run()                       -- nothing is left to wait for
    cs.update_time()
    assert.is_true(cs.now() - start < 5)
    assert.equal(pending, select(2, cs.timer_counts()))
  end)

  it("takes a semaphore waiter off its queue", function()
    local sema = cs.semaphore(0)
    local t = cs.spawn(function() sema:wait(30) end)
    assert.equal(-1, sema:count())
    assert.equal(1, cs.kill(t))
    assert.equal(0, sema:count())
    sema:post(1)
    assert.is_true(sema:wait(0))
  end)

  it("reaps a finished thread with 'already terminated'", function()
    local t = cs.spawn(function() return 1 end)
    assert.same({ nil, "already terminated" }, { cs.kill(t) })
    assert.same({ nil, "already waited or killed" }, { cs.wait(t) })
  end)

  it("refuses what is not its child", function()
    local co = coroutine.create(function() end)
    assert.same({ nil, "not user thread" }, { cs.kill(co) })
    assert.has_error(function() cs.kill("x") end,
      "bad argument #1 to 'kill' (lua thread expected)")
    local child
    local parent = cs.spawn(function() child = cs.spawn(function() cs.sleep(0.005) end) end)
    assert.same({ nil, "killer not parent" }, { cs.kill(child) })
    cs.wait(parent)
    cs.sleep(0.01)
    cs.run(function()
      local entry = coroutine.running()
      local t = cs.spawn(function() return cs.kill(entry) end)
      assert.same({ true, nil, "not user thread" }, { cs.wait(t) })
    end)
  end)

  it("leaves the threads the killed one spawned running", function()
    local log, p = recorder()
    local parent = cs.spawn(function()
      cs.spawn(function() cs.sleep(0.005); p("grandchild done") end)
      cs.sleep(10)
    end)
    cs.kill(parent)
    cs.run()
    assert.same({ "grandchild done" }, log)
  end)

  it("takes a killed thread off the ready queue", function()
    local log, p = recorder()
    cs.run(function()
      local sema = cs.semaphore(0)
      local victim = cs.spawn(function() sema:wait(1); p("victim ran") end)
      sema:post(1)                  -- the victim is now ready to run again
      assert.equal(1, cs.kill(victim))
    end)
    assert.same({}, log)
  end)
end)

describe("cosocket.sleep", function()
  it("checks its argument like ngx.sleep", function()
    assert.has_error(function() cs.sleep(1, 2) end, "attempt to pass 2 arguments, but accepted 1")
    assert.has_error(function() cs.sleep() end, "attempt to pass 0 arguments, but accepted 1")
    assert.has_error(function() cs.sleep("x") end,
      "bad argument #1 to 'sleep' (number expected, got string)")
    assert.has_error(function() cs.sleep(-1) end, 'invalid sleep duration "-1000"')
  end)

  it("waits about the time asked and returns nothing", function()
    cs.update_time()
    local t0 = cs.now()
    assert.equal(0, select("#", cs.sleep(0.05)))
    cs.update_time()
    assert.is_true(cs.now() - t0 >= 0.045)
  end)

  it("sleep(0) and a plain yield let the others run in turn", function()
    local log, p = recorder()
    cs.run(function()
      cs.spawn(function() for i = 1, 3 do p("t" .. i); cs.sleep(0) end end)
      for i = 1, 3 do p("m" .. i); coroutine.yield() end
    end)
    assert.same({ "t1", "m1", "t2", "m2", "t3", "m3" }, log)
  end)

  it("sleep(0) in a loop does not starve a timer or the loop", function()
    local fired, spins = false, 0
    cs.run(function()
      cs.spawn(function() cs.sleep(0.01); fired = true end)
      while not fired and spins < 1e7 do
        spins = spins + 1
        cs.sleep(0)
      end
    end)
    assert.is_true(fired)
  end)

  it("sleep(0) in main lets ready threads run once", function()
    local ran = false
    cs.spawn(function() coroutine.yield(); ran = true end)
    cs.sleep(0)
    assert.is_true(ran)
  end)

  it("keeps many sleeping threads at once", function()
    local n = helpers.scale(10000, 20)
    local done = 0
    cs.run(function()
      for i = 1, n do
        cs.spawn(function() cs.sleep(0.01 + (i % 7) / 1000); done = done + 1 end)
      end
    end)
    assert.equal(n, done)
  end)
end)

describe("cosocket.now", function()
  it("is cached until update_time or the next loop pass", function()
    local t0 = cs.now()
    local x = 0
    for i = 1, 2e6 do x = x + i end   -- CPU-bound: the cache does not move
    assert.equal(t0, cs.now())
    assert.equal(0, select("#", cs.update_time()))
    assert.is_true(cs.now() >= t0)
    assert.equal(cs.now(), math.floor(cs.now() * 1000) / 1000)  -- ms resolution
    assert.is_true(math.abs(cs.now() - os.time()) < 2)
  end)
end)

describe("cosocket.run", function()
  it("returns the results of f after its threads and timers are done", function()
    local log, p = recorder()
    local a, b = cs.run(function(x)
      cs.spawn(function() cs.sleep(0.01); p("thread") end)
      cs.timer(0.02, function(premature, arg) p("timer " .. tostring(premature) .. arg) end, "!")
      return x, "second"
    end, "first")
    assert.same({ "first", "second" }, { a, b })
    assert.same({ "thread", "timer false!" }, log)
  end)

  it("re-raises a string error with the traceback appended once", function()
    local ok, err = pcall(cs.run, function()
      cs.run(function() cs.sleep(0.001); error("inner failure") end)
    end)
    assert.is_false(ok)
    assert.matches("sched_spec.lua:%d+: inner failure\nstack traceback:", err)
    local _, count = err:gsub("stack traceback:", "")
    assert.equal(1, count)
  end)

  it("re-raises other error values unchanged", function()
    local e = {}
    local ok, err = pcall(cs.run, function() error(e) end)
    assert.is_false(ok)
    assert.equal(e, err)
  end)

  it("kills the threads of an entry that fails", function()
    local log, p = recorder()
    assert.has_error(function()
      cs.run(function()
        cs.spawn(function() cs.sleep(0.01); p("survived") end)
        error("entry failed")
      end)
    end)
    cs.sleep(0.03)
    assert.same({}, log)
  end)

  it("inside a light thread, yields its caller while the handler runs", function()
    local log, p = recorder()
    cs.run(function()
      cs.spawn(function() cs.sleep(0.005); p("sibling") end)
      local r = cs.run(function() cs.sleep(0.02); return "inner" end)
      p(r)
    end)
    assert.same({ "sibling", "inner" }, log)
  end)

  it("without f, drives until nothing is left anywhere", function()
    local done = 0
    for _ = 1, 3 do cs.spawn(function() cs.sleep(0.005); done = done + 1 end) end
    cs.timer(0.01, function() done = done + 1 end)
    cs.run()
    assert.equal(4, done)
    assert.has_error(function()
      cs.run(function() cs.run() end)
    end)
  end)

  it("rejects a missing or non-Lua function", function()
    local ok, err = pcall(cs.run, print)
    assert.is_false(ok)
    assert.matches("bad argument #1 to '.*' %(Lua function expected%)", err)
    assert.is_false(pcall(cs.run, 1))
  end)
end)

describe("a wait with nothing that can complete it", function()
  it("raises instead of spinning", function()
    local sema = cs.semaphore(0)
    assert.has_error(function() sema:wait(math.huge) end,
      "deadlock: nothing can complete this wait")
    assert.equal(0, sema:count())      -- nothing left queued
  end)
end)
