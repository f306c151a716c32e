-- Running out of descriptors (issue #9): with RLIMIT_NOFILE lowered in a
-- child process, connect returns "too many open files", nothing crashes,
-- and connects work again once descriptors are freed.
local helpers = require "helpers"

describe("when the process runs out of descriptors", function()
  it("connect fails with a clear error and recovers once some are closed", function()
    local srv = helpers.start_fixture("echo")
    finally(function() srv:stop() end)
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write(([[
      local cs = require "cosocket"
      local socks, err = {}, nil
      for i = 1, 200 do                     -- bounded: the limit is 40
        local s = cs.tcp()
        local ok, e = s:connect("127.0.0.1", %d)
        if not ok then err = e; break end
        socks[#socks + 1] = s
      end
      io.write(tostring(err), " ", tostring(#socks > 10), "\n")
      for i = 1, 5 do socks[i]:close() end
      local s = cs.tcp()
      local ok = s:connect("127.0.0.1", %d)
      assert(s:send("again\n"))
      io.write(tostring(ok), " ", tostring(s:receive()), "\n")
    ]]):format(srv.port, srv.port))
    f:close()
    local out, err, status = helpers.run_program(
      { "sh", "-c", "ulimit -n 40 && exec " .. helpers.interpreter() .. " " .. script })
    os.remove(script)
    assert.equal("", err)
    assert.equal("too many open files true\n1 again\n", out)
    assert.equal(0, status)
  end)
end)
