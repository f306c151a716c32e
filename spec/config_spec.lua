-- cosocket.configure{...}: the keys and defaults of DECISIONS.md 5 (SPEC.md
-- 7.3). The configuration belongs to the Lua state and so to every spec file:
-- each test puts back what it changed; string keys, which cannot be unset
-- once given, are only set in a child process.
local cs = require "cosocket"
local helpers = require "helpers"

local DEFAULTS = {
  connect_timeout = 60000, send_timeout = 60000, read_timeout = 60000,
  keepalive_timeout = 60000, resolver_timeout = 30000, pool_size = 30,
  ssl_verify_depth = 9, max_pending_timers = 1024, max_running_timers = 256,
  send_lowat = 0, log_level = 4, log_errors = false, prefer_ipv6 = false,
}
local STRING_KEYS = { "ssl_trusted_certificate", "ssl_protocols", "ssl_ciphers", "resolver" }

local saved = cs.configure()

-- the error raised by configure(t), position prefix removed
local function config_error(t)
  local ok, err = pcall(cs.configure, t)
  assert.is_false(ok, "configure accepted a bad table")
  assert.equal("string", type(err))
  return (err:gsub("^.-:%d+: ", ""))
end

describe("cosocket.configure", function()
  after_each(function() cs.configure(saved) end)

  it("returns every key with the documented defaults", function()
    local cfg = cs.configure()
    for key, value in pairs(DEFAULTS) do
      assert.equal(value, cfg[key], key)
    end
    assert.equal("number", type(cfg.buffer_size))
    assert.is_true(cfg.buffer_size > 0)
    assert.equal(cfg.buffer_size, math.floor(cfg.buffer_size))
    assert.is_nil(cfg.ssl_trusted_certificate)      -- none: the system CA directory
    assert.is_nil(cfg.resolver)                     -- none: /etc/resolv.conf
    for key in pairs(cfg) do                        -- nothing else
      assert.is_true(DEFAULTS[key] ~= nil or key == "buffer_size" or
                     key == "ssl_protocols" or key == "ssl_ciphers", key)
    end
    assert.same(cfg, cs.configure({}))
  end)

  it("stores numbers and booleans and returns them", function()
    local new = {
      connect_timeout = 1234, send_timeout = 2345, read_timeout = 3456,
      keepalive_timeout = 0, resolver_timeout = 5000, buffer_size = 1, pool_size = 5,
      ssl_verify_depth = 3, max_pending_timers = 2048, max_running_timers = 128,
      send_lowat = 512, log_level = 7, log_errors = true, prefer_ipv6 = true,
    }
    local cfg = cs.configure(new)
    local again = cs.configure()
    for key, value in pairs(new) do
      assert.equal(value, cfg[key], key)
      assert.equal(value, again[key], key)
    end
    cs.configure { log_errors = false }             -- one key alone changes only it
    local after = cs.configure()
    assert.is_false(after.log_errors)
    assert.equal(1234, after.connect_timeout)
  end)

  it("stores strings and returns them (child)", function()
    local out, err, status = helpers.run_lua [[
      local cs = require "cosocket"
      local cfg = cs.configure {
        ssl_trusted_certificate = "/etc/ssl/certs/ca-certificates.crt",
        ssl_protocols = "TLSv1.2 TLSv1.3", ssl_ciphers = "HIGH:!aNULL",
        resolver = "127.0.0.1 10.0.0.1:5353 [::1]:53 ::1",
      }
      local again = cs.configure()
      for _, k in ipairs { "ssl_trusted_certificate", "ssl_protocols", "ssl_ciphers",
                           "resolver" } do
        io.write(k, "=", tostring(cfg[k]), "|", tostring(again[k] == cfg[k]), "\n")
      end
    ]]
    assert.equal("", err)
    assert.equal("ssl_trusted_certificate=/etc/ssl/certs/ca-certificates.crt|true\n" ..
                 "ssl_protocols=TLSv1.2 TLSv1.3|true\n" ..
                 "ssl_ciphers=HIGH:!aNULL|true\n" ..
                 "resolver=127.0.0.1 10.0.0.1:5353 [::1]:53 ::1|true\n", out)
    assert.equal(0, status)
  end)

  it("raises for an unknown key and changes nothing", function()
    local before = cs.configure()
    assert.matches("lua_socket_pool_size", config_error { lua_socket_pool_size = 5 }, 1, true)
    assert.matches("poolsize", config_error { poolsize = 5 }, 1, true)
    assert.matches("connect_timout", config_error { connect_timeout = 5, connect_timout = 5 },
                   1, true)                         -- the good key is not stored either
    assert.has_error(function() cs.configure { [1] = 5 } end)
    assert.same(before, cs.configure())
  end)

  it("raises for a value of the wrong type, naming the key", function()
    local before = cs.configure()
    local wrong = {
      connect_timeout = "60000", read_timeout = true, pool_size = "30", buffer_size = {},
      max_pending_timers = false, log_level = "4", log_errors = 1, prefer_ipv6 = "yes",
      ssl_verify_depth = "9", ssl_trusted_certificate = 1, ssl_protocols = true,
      ssl_ciphers = {}, resolver = 53, resolver_timeout = "30s", send_lowat = true,
      keepalive_timeout = "0", send_timeout = {}, max_running_timers = "256",
    }
    local count = 0
    for key, value in pairs(wrong) do
      local err = config_error { [key] = value }
      assert.matches('"' .. key .. '"', err, 1, true)
      count = count + 1
    end
    assert.equal(13 + #STRING_KEYS + 1, count)      -- every key of DECISIONS.md 5
    assert.has_error(function() cs.configure("pool_size=5") end)
    assert.same(before, cs.configure())
  end)

  it("raises for a bad value, naming the key, and changes nothing", function()
    local before = cs.configure()
    local bad = {
      { connect_timeout = -1 }, { read_timeout = -0.5 }, { keepalive_timeout = -1 },
      { resolver_timeout = -1000 }, { send_timeout = -1 },
      { pool_size = 2.5 }, { pool_size = 0 }, { pool_size = -3 }, { buffer_size = 0 },
      { max_running_timers = -1 }, { max_pending_timers = 1.5 }, { ssl_verify_depth = -1 },
      { send_lowat = -1 }, { log_level = 1.5 },
      { ssl_protocols = "TLSv9" }, { ssl_protocols = "TLSv1.2 TLSv9" }, { ssl_protocols = "" },
      { resolver = "not-an-ip" }, { resolver = "127.0.0.1:99999" }, { resolver = "" },
    }
    for _, t in ipairs(bad) do
      local key = next(t)
      local err = config_error(t)
      assert.matches('"' .. key .. '"', err, 1, true)
      assert.same(before, cs.configure())
    end
  end)

  it("stores neither value of a call with one good and one bad key", function()
    local before = cs.configure()
    config_error { pool_size = 7, ssl_protocols = "TLSv9" }
    config_error { resolver = "127.0.0.1", connect_timeout = -1 }
    config_error { max_running_timers = 10, prefer_ipv6 = "true" }
    assert.same(before, cs.configure())
  end)
end)
