-- The scheduler's invariant (STYLE.md 3, issue #9 item 0) not shown
-- elsewhere: a refused yield leaves nothing armed or busy.  Killing a ready
-- thread (sched_spec.lua), __gc and lua_close on busy objects and a killed
-- DNS wait (kill_states_spec.lua) are shown there.
local cs = require "cosocket"
local helpers = require "helpers"

local pack = helpers.pack

-- a socket connected to a new `script` fixture, the script sent
local function scripted(...)
  return (helpers.with_timeout(2000, helpers.scripted(finally, ...)))
end

describe("a yield refused on its way out", function()
  it("leaves the socket neither busy nor armed: the next receive works", function()
    local sock = scripted({ "p", 50 }, { "w", "line\n" }, "c")
    local results
    cs.run(function()
      -- a C function between the thread and the wait: string.gsub's
      -- callback cannot yield on any of the interpreters
      local ok, err = pcall(string.gsub, "x", "x", function()
        return sock:receive()
      end)
      results = { ok, err }
      results[3] = pack(sock:receive()) -- not "socket busy reading"
    end)
    assert.is_false(results[1])
    assert.matches("yield", tostring(results[2]))
    assert.same({ n = 1, "line" }, results[3])
  end)

  it("leaves a sleep unarmed: nothing fires later", function()
    local fired = false
    cs.run(function()
      local ok = pcall(string.gsub, "x", "x", function() cs.sleep(0.01); fired = true end)
      assert.is_false(ok)
    end)
    cs.sleep(0.05)
    assert.is_false(fired)
  end)
end)
