-- Two Lua states in one process do not see each other (STYLE.md 5): a C
-- host (spec/c/two_states.c) runs both and closes one with work pending.
local helpers = require "helpers"

describe("two Lua states in one process", function()
  it("keep their own threads, timers and loops, and close independently", function()
    local fixture = os.getenv("COSOCKET_FIXTURE") or "build/fixture"
    local dir = fixture:match("^(.*)/[^/]*$") or "."
    local out, err, status = helpers.run_program({ dir .. "/two_states", dir })
    assert.equal("", err)
    assert.equal("ok\n", out)
    assert.equal(0, status)
  end)
end)
