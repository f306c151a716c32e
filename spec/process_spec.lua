-- Whole scripts in child processes: errors of light threads, a main chunk
-- that ends, and lua_close with work still pending (under `make asan` or
-- `make valgrind` these prove that closing leaks and crashes nothing).
local helpers = require "helpers"

local child = helpers.cosocket_child

describe("a script", function()
  it("reports an uncaught error of a light thread on stderr with its traceback; siblings finish",
    function()
    local out, err, status = child [[
      local done = {}
      cs.spawn(function() cs.sleep(0.002); done[#done + 1] = "a" end)
      cs.spawn(function() cs.sleep(0.001); error("thread failure") end)
      cs.spawn(function() error({ code = 1 }) end)
      cs.spawn(function() cs.sleep(0.004); done[#done + 1] = "b" end)
      cs.run()
      io.write(table.concat(done, ","), "\n")
    ]]
    assert.equal("a,b\n", out)
    assert.matches("thread failure", err, 1, true)
    assert.matches("stack traceback:", err, 1, true)
    assert.matches("table value", err, 1, true)
    assert.equal(0, status)
  end)

  it("whose main chunk only spawns threads and sleeps exits normally", function()
    local out, err, status = child [[
      local done = 0
      for i = 1, 3 do
        cs.spawn(function() cs.sleep(0.002 * i); io.write("t", i, "\n"); done = done + 1 end)
      end
      for _ = 1, 100 do
        if done == 3 then break end
        cs.sleep(0.005)
      end
    ]]
    assert.equal("", err)
    assert.equal("t1\nt2\nt3\n", out)
    assert.equal(0, status)
  end)

  it("that ends with timers, sleepers, waiters and nested waits pending exits 0 quietly",
    function()
    local out, err, status = child [[
      local C = cs.coroutine
      local sema = cs.semaphore(0)
      cs.timer(10, function() io.write("timer ran\n") end)
      cs.timer(0.001, function()                       -- a handler still busy at the end
        cs.spawn(function() sema:wait(10) end)
        cs.run(function() cs.spawn(function() cs.sleep(10) end); cs.sleep(10) end)
      end)
      cs.spawn(function() sema:wait(10); io.write("waiter ran\n") end)
      cs.spawn(function() cs.sleep(10) end)
      cs.spawn(function()                              -- three deep, waiting
        C.wrap(function() C.wrap(function() C.wrap(function() sema:wait(10) end)() end)() end)()
      end)
      cs.spawn(function() C.wrap(function() cs.pcall(function() cs.sleep(10) end) end)() end)
      local parent = cs.spawn(function()               -- waits on a sleeping child
        local child = cs.spawn(function() cs.sleep(10) end)
        cs.wait(child)
      end)
      cs.spawn(function() for _ = 1, 1e7 do cs.sleep(0) end end)   -- always ready again
      cs.spawn(function() return "never waited for" end)       -- a zombie
      local s2 = cs.semaphore(0)
      cs.spawn(function() s2:wait(10); io.write("posted waiter ran\n") end)
      cs.sleep(0.01)
      s2:post(1)                                       -- ready, never resumed
      assert(parent)
      io.write("end\n")
    ]]
    assert.equal("", err)
    assert.equal("end\n", out)
    assert.equal(0, status)
  end)

  it("whose main chunk raises with work pending exits 1 with the error only", function()
    local out, err, status = child [[
      cs.timer(10, function() end)
      cs.spawn(function() cs.sleep(10) end)
      cs.spawn(function() cs.coroutine.wrap(function() cs.sleep(10) end)() end)
      io.write("before\n")
      error("main chunk failure")
    ]]
    assert.equal("before\n", out)
    assert.matches("main chunk failure", err, 1, true)
    assert.is_nil(err:find("cosocket:", 1, true))    -- nothing from the scheduler
    assert.equal(1, status)
  end)
end)
