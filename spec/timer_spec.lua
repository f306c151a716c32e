-- Timers: cosocket.timer / every / timer_counts / shutdown (SPEC.md 10.7,
-- DECISIONS.md 2 and 5). `every` timers and shutdown only run in children:
-- an `every` never ends and shutdown is one-way for a Lua state.
local cs = require "cosocket"
local helpers = require "helpers"

local recorder = helpers.recorder

local pack = helpers.pack

-- runs `code` (after `local cs = require "cosocket"`) in a child interpreter
local child = helpers.cosocket_child

describe("cosocket.timer", function()
  it("calls f later with premature = false and the extra arguments, and returns 1", function()
    local got
    local fired = cs.semaphore(0)
    assert.equal(1, cs.timer(0.001, function(...) got = pack(...); fired:post(1) end,
                             "a", nil, 3))
    assert.is_nil(got)                       -- never at once
    assert.is_true(fired:wait(1))
    assert.same({ n = 4, false, "a", nil, 3 }, got)
  end)

  it("fires timers in the order of their expiry, not of their creation", function()
    local log, p = recorder()
    local last = cs.semaphore(0)
    cs.timer(0.02, function() p("late"); last:post(1) end)
    cs.timer(0.005, function() p("early") end)
    cs.timer(0.01, function() p("middle") end)
    assert.is_true(last:wait(1))
    assert.same({ "early", "middle", "late" }, log)
  end)
end)

-- burns `seconds` of CPU time without touching the cached clock
local function busy(seconds)
  local deadline = os.clock() + seconds
  for _ = 1, 1e9 do
    if os.clock() >= deadline then break end
  end
end

-- ngx handles expired timers in order of expiry: whatever fell due first (a
-- timer's callback, a sleeping thread) runs first, and has run when a wait
-- that fell due with or after it returns. Main's waits keep that order too.
describe("events that fall due in one loop pass", function()
  it("run in order of expiry: a sleep due before a timer resumes first", function()
    local log, p = recorder()
    cs.run(function()
      cs.timer(0.002, function() p("timer") end)
      busy(0.005)                 -- both are due when the loop next looks
      cs.sleep(0.001)
      p("sleeper")
    end)
    assert.same({ "sleeper", "timer" }, log)
  end)

  it("have started the timer callbacks due no later than main's wait when it returns",
    function()
    local ran = 0
    for _ = 1, 5 do
      local done = false
      cs.timer(0.001, function() done = true end)
      cs.sleep(0.001)
      if done then ran = ran + 1 end
      cs.sleep(0.005)                        -- let a late callback finish
    end
    assert.equal(5, ran)
  end)

  it("have run the light threads due no later than main's wait when it returns", function()
    local ran = 0
    for _ = 1, 5 do
      local done = false
      cs.spawn(function() cs.sleep(0.001); done = true end)
      cs.sleep(0.001)
      if done then ran = ran + 1 end
      cs.sleep(0.005)                        -- let a late thread finish
    end
    assert.equal(5, ran)
  end)
end)

describe("cosocket.timer's arguments and limits", function()

  it("raises ngx's errors for bad arguments", function()
    local f = function() end
    assert.has_error(function() cs.timer() end, "expecting at least 2 arguments but got 0")
    assert.has_error(function() cs.timer(1) end, "expecting at least 2 arguments but got 1")
    assert.has_error(function() cs.every(1) end, "expecting at least 2 arguments but got 1")
    assert.has_error(function() cs.timer(1, print) end,
      "bad argument #2 to 'timer' (Lua function expected)")
    assert.has_error(function() cs.timer(1, "f") end,
      "bad argument #2 to 'timer' (Lua function expected)")
    assert.has_error(function() cs.every(1, print) end,
      "bad argument #2 to 'every' (Lua function expected)")
    assert.has_error(function() cs.every(0, f) end, "delay cannot be zero")
    assert.has_error(function() cs.timer("soon", f) end,
      "bad argument #1 to 'timer' (number expected, got string)")
    local _, pending = cs.timer_counts()
    assert.has_error(function() cs.timer(-1, f) end)   -- rejected, not left pending
    assert.equal(pending, select(2, cs.timer_counts()))
  end)

  it("counts running and pending timers before, while and after a callback runs", function()
    local r0, p0, d0 = cs.timer_counts()
    local inside
    local started, release, second = cs.semaphore(0), cs.semaphore(0), cs.semaphore(0)
    cs.timer(0.005, function()
      inside = { cs.timer_counts() }
      started:post(1)
      release:wait(1)                         -- still running until main posts
    end)
    assert.same({ r0, p0 + 1, d0 }, { cs.timer_counts() })
    cs.timer(0.3, function() second:post(1) end)    -- a second pending one (late: valgrind)
    assert.same({ r0, p0 + 2, d0 }, { cs.timer_counts() })
    assert.is_true(started:wait(1))
    assert.same({ r0 + 1, p0 + 1, d0 }, inside)
    assert.same({ r0 + 1, p0 + 1, d0 }, { cs.timer_counts() })
    release:post(1)
    cs.sleep(0)
    assert.same({ r0, p0 + 1, d0 }, { cs.timer_counts() })
    assert.is_true(second:wait(1))
    assert.same({ r0, p0, d0 }, { cs.timer_counts() })
  end)

  it("runs a callback as a handler of its own: it can sleep, spawn, wait and use semaphores",
    function()
    local done = cs.semaphore(0)
    local r = {}
    cs.timer(0, function(premature)
      r.premature = premature
      local t = cs.spawn(function(x) cs.sleep(0.002); return x * 2 end, 21)
      local mine = cs.semaphore(0)
      cs.spawn(function() cs.sleep(0.001); mine:post(1) end)
      r.sema = pack(mine:wait(1))
      r.wait = pack(cs.wait(t))
      cs.sleep(0.001)
      r.inner = cs.run(function() cs.sleep(0.001); return "inner run" end)
      done:post(1)
    end)
    assert.same({ n = 2, true, nil }, pack(done:wait(1)))
    assert.same({ premature = false, sema = { n = 2, true, nil }, wait = { n = 2, true, 42 },
                  inner = "inner run" }, r)
  end)

  it("refuses a timer over max_pending_timers with nil, 'too many pending timers'", function()
    local _, p0 = cs.timer_counts()
    local old = cs.configure().max_pending_timers
    finally(function() cs.configure { max_pending_timers = old } end)
    assert.equal(p0 + 2, cs.configure({ max_pending_timers = p0 + 2 }).max_pending_timers)
    local fired, sema = 0, cs.semaphore(0)
    local function f() fired = fired + 1; sema:post(1) end
    assert.equal(1, cs.timer(0.001, f))
    assert.equal(1, cs.timer(0.001, f))
    assert.same({ n = 2, nil, "too many pending timers" }, pack(cs.timer(0.001, f)))
    assert.same({ n = 2, nil, "too many pending timers" }, pack(cs.timer(0, f)))
    assert.is_true(sema:wait(1))
    assert.is_true(sema:wait(1))
    assert.equal(2, fired)
    assert.equal(1, cs.timer(0, f))           -- room again once they fired
    assert.is_true(sema:wait(1))
    assert.equal(3, fired)
  end)
end)

describe("the cached time", function()
  it("is refreshed when run starts, before f runs (DECISIONS.md 3)", function()
    cs.update_time()
    local t0 = cs.now()
    busy(0.02)
    local seen = cs.run(function() return cs.now() end)
    assert.is_true(seen - t0 >= 0.015, "f saw a stale time")
    -- so a sleep f starts lasts its whole length
    cs.update_time()
    t0 = cs.now()
    busy(0.02)
    cs.run(function() cs.sleep(0.01) end)
    cs.update_time()
    assert.is_true(cs.now() - t0 >= 0.028, "f's sleep was cut short")
  end)
end)

describe("cosocket.run and timers", function()
  it("waits for the one-shot timers f and its threads created, not for others' timers",
    function()
    local log, p = recorder()
    local others, gate = false, cs.semaphore(0)
    cs.timer(0, function() gate:wait(1); others = true end)  -- main's: not waited for
    cs.run(function()
      cs.timer(0.002, function() p("f's timer") end)
      cs.spawn(function()
        cs.timer(0.005, function()
          cs.sleep(0.001)
          p("thread's timer")
        end)
      end)
    end)
    assert.same({ "f's timer", "thread's timer" }, log)
    assert.is_false(others)
    gate:post(1)
    cs.sleep(0)
    assert.is_true(others)
  end)

  it("does not wait for the timers that its timers' callbacks create (their own handlers)",
    function()
    -- DECISIONS.md 2: a timer is done when its callback has finished
    local log, p = recorder()
    local chained = cs.semaphore(0)
    cs.run(function()
      cs.timer(0.001, function()
        cs.timer(0.02, function() p("chained timer"); chained:post(1) end)
        p("f's timer")
      end)
    end)
    assert.same({ "f's timer" }, log)
    assert.is_true(chained:wait(1))
    assert.same({ "f's timer", "chained timer" }, log)
  end)

  it("does not wait for every timers f created (child)", function()
    local out, err, status = child [[
      local n = 0
      cs.run(function() cs.every(0.005, function() n = n + 1 end) end)
      io.write(n, "\n")                      -- returned before the first firing
      for _ = 1, 100 do
        if n >= 2 then break end
        cs.sleep(0.005)
      end
      io.write(tostring(n >= 2), "\n")
      cs.shutdown()
    ]]
    assert.equal("", err)
    assert.equal("0\ntrue\n", out)
    assert.equal(0, status)
  end)
end)

describe("a callback that re-arms its own timer (the ngx.timer.at idiom)", function()
  it("counts as one running timer each time, and so never runs out (child)", function()
    local out, err, status = child [[
      cs.configure { max_running_timers = 2 }
      local n, counts = 0, {}
      local function tick(premature)
        if premature then return end
        n = n + 1
        counts[#counts + 1] = (cs.timer_counts())
        if n < 6 then cs.timer(0.001, tick) end
      end
      cs.timer(0.001, tick)
      cs.run()
      io.write(n, " ", table.concat(counts, ","), " ", select(3, cs.timer_counts()), "\n")
    ]]
    assert.equal("", err)
    assert.equal("6 1,1,1,1,1,1 0\n", out)
    assert.equal(0, status)
  end)
end)

describe("cosocket.every (child processes)", function()
  it("fires repeatedly until shutdown, which runs it once more with premature = true", function()
    local out, err, status = child [[
      local flags = {}
      local sema = cs.semaphore(0)
      assert(cs.every(0.002, function(premature, a, b)
        flags[#flags + 1] = tostring(premature) .. a .. b
        if #flags == 5 then sema:post(1) end
      end, "x", "y") == 1)
      local ok = sema:wait(2)
      local before = #flags
      local _, pending = cs.timer_counts()
      cs.shutdown()
      local after = #flags
      cs.sleep(0.02)                          -- stopped: no more firings
      io.write(tostring(ok), " ", tostring(before >= 5), " ", pending, " ",
               after - before, " ", flags[1], " ", flags[#flags], " ", #flags - after, " ",
               select(2, cs.timer_counts()), "\n")
    ]]
    assert.equal("", err)
    assert.equal("true true 1 1 falsexy truexy 0 0\n", out)
    assert.equal(0, status)
  end)

  it("schedules the next run before the callback runs: slow callbacks overlap", function()
    local out, err, status = child [[
      local running, most, n = 0, 0, 0
      cs.every(0.003, function(premature)
        if premature then return end
        n = n + 1
        running = running + 1
        if running > most then most = running end
        cs.sleep(0.01)
        running = running - 1
      end)
      cs.sleep(0.04)
      cs.shutdown()
      io.write(tostring(most >= 2), " ", tostring(n >= 3), "\n")
    ]]
    assert.equal("", err)
    assert.equal("true true\n", out)
    assert.equal(0, status)
  end)
end)

describe("timer callbacks that fail (child processes)", function()
  it("report the error on stderr with a traceback and do not stop the others", function()
    local out, err, status = child [[
      cs.timer(0, function() error("boom in callback") end)
      cs.timer(0, function() error({}) end)
      cs.timer(0.001, function()
        cs.spawn(function() cs.sleep(0.001); error("boom in its thread") end)
        cs.sleep(0.01)
        io.write("sibling thread's handler went on\n")
      end)
      cs.timer(0.002, function(_, x) io.write("later timer ", x, "\n") end, "ran")
      cs.run()
      io.write(table.concat({ cs.timer_counts() }, " "), "\n")
    ]]
    assert.equal("later timer ran\nsibling thread's handler went on\n0 0 0\n", out)
    assert.matches("boom in callback", err, 1, true)
    assert.matches("boom in its thread", err, 1, true)
    assert.matches("stack traceback:", err, 1, true)
    assert.matches("table value", err, 1, true)
    assert.equal(0, status)
  end)

  it("over max_running_timers are not run, are counted as dropped and reported once", function()
    local out, err, status = child [[
      assert(cs.configure({ max_running_timers = 1 }).max_running_timers == 1)
      local ran = {}
      local gate, ticked = cs.semaphore(0), cs.semaphore(0)
      cs.timer(0, function() gate:wait(5); ran[#ran + 1] = "long" end)
      cs.timer(0.002, function() ran[#ran + 1] = "dropped 1" end)
      cs.timer(0.004, function() ran[#ran + 1] = "dropped 2" end)
      cs.spawn(function() cs.sleep(0.01); ticked:post(1) end)
      ticked:wait(5)
      local running, pending, dropped = cs.timer_counts()
      io.write(running, " ", pending, " ", dropped, "\n")
      gate:post(1)
      cs.sleep(0)                               -- "long" ends: room again
      cs.timer(0.001, function() ran[#ran + 1] = "after" end)
      cs.run()
      io.write(table.concat(ran, ","), " ", table.concat({ cs.timer_counts() }, " "), "\n")
    ]]
    assert.equal("1 0 2\nlong,after 0 0 2\n", out)
    local _, reports = err:gsub("max_running_timers are not enough", "")
    assert.equal(1, reports)
    assert.equal(0, status)
  end)
end)

describe("cosocket.shutdown (child processes)", function()
  it("runs every pending timer once with premature = true before it returns", function()
    local out, err, status = child [[
      local log = {}
      cs.timer(10, function(premature, a)
        cs.sleep(0.005)                         -- shutdown waits for it to finish
        log[#log + 1] = "once " .. tostring(premature) .. " " .. a
      end, "x")
      cs.every(10, function(premature, a)
        log[#log + 1] = "every " .. tostring(premature) .. " " .. a
      end, "y")
      io.write(table.concat({ cs.timer_counts() }, " "), " ", tostring(cs.exiting()), "\n")
      cs.shutdown()
      table.sort(log)
      io.write(table.concat(log, ","), "\n")
      io.write(table.concat({ cs.timer_counts() }, " "), " ", tostring(cs.exiting()), "\n")
    ]]
    assert.equal("", err)
    assert.equal("0 2 0 false\nevery true y,once true x\n0 0 0 true\n", out)
    assert.equal(0, status)
  end)

  it("then refuses timers with a delay but still takes timer(0)", function()
    local out, err, status = child [[
      cs.shutdown()
      local function show(a, b) io.write(tostring(a), " ", tostring(b), "\n") end
      show(cs.timer(0.001, function() end))
      show(cs.every(1, function() end))
      show(cs.timer(0, function(premature, a) io.write("zero ran ", a, "\n") end, "!"))
      cs.run()
      cs.shutdown()                             -- again: nothing left, returns
      io.write("end\n")
    ]]
    assert.equal("", err)
    assert.equal("nil process exiting\nnil process exiting\n1 nil\nzero ran !\nend\n", out)
    assert.equal(0, status)
  end)

  it("called inside a light thread, yields until the premature callbacks are done", function()
    local out, err, status = child [[
      local log = {}
      cs.timer(5, function(premature)
        cs.sleep(0.005)
        log[#log + 1] = "callback " .. tostring(premature)
      end)
      cs.run(function()
        cs.spawn(function() cs.sleep(0.001); log[#log + 1] = "sibling" end)
        cs.shutdown()
        log[#log + 1] = "shutdown returned"
      end)
      io.write(table.concat(log, ","), "\n")
    ]]
    assert.equal("", err)
    assert.equal("sibling,callback true,shutdown returned\n", out)
    assert.equal(0, status)
  end)

  it("called again inside a premature callback, does not wait for that callback itself",
    function()
    local out, err, status = child [[
      local log = {}
      cs.timer(1, function(premature)
        if premature then
          cs.shutdown()
          log[#log + 1] = "inner shutdown returned"
        end
      end)
      cs.shutdown()
      log[#log + 1] = "main shutdown returned"
      io.write(table.concat(log, ","), "\n")
    ]]
    assert.equal("", err)
    assert.equal("inner shutdown returned,main shutdown returned\n", out)
    assert.equal(0, status)
  end)

  it("called by two light threads at once, returns in both", function()
    local out, err, status = child [[
      cs.timer(5, function() cs.sleep(0.005) end)
      local returned = 0
      cs.spawn(function() cs.shutdown(); returned = returned + 1 end)
      cs.spawn(function() cs.shutdown(); returned = returned + 1 end)
      cs.sleep(0.03)
      io.write(returned, "\n")
    ]]
    assert.equal("", err)
    assert.equal("2\n", out)
    assert.equal(0, status)
  end)
end)
