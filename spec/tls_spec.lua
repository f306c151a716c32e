-- TLS (SPEC.md 3, 7.4, 8.1; DECISIONS.md 5 and 7): sslhandshake's arguments,
-- preconditions and results, verification and its error texts, failed and
-- timed-out handshakes, reads and writes over TLS (records split and joined),
-- client certificates, pooled TLS connections (no second handshake, TLS 1.3
-- session tickets), protocol and cipher settings, many connections at once.
--
-- The peers are socat TLS servers (helpers.start_tls_server, one process per
-- connection; their logs count accepted connections and record the protocol
-- of each handshake) with certificates made by helpers.tls_certs(), plus the
-- plain fixtures (echo, silent) for handshakes against a peer that does not
-- speak TLS.
local cs = require "cosocket"
local helpers = require "helpers"
local socket = require "socket"

local pack = helpers.pack
local unpack = helpers.unpack

local fd_count = helpers.fd_count

local clock = helpers.clock

-- Cleanups of the current test, run by after_each even when the test fails
-- (this busted keeps only the last function given to finally()).
local defer, run_cleanups = helpers.cleanups()

-- configure{} for this test only: the previous values come back after it
-- (a string setting that was unset comes back as false: the default)
local function configure(t) return helpers.configure(defer, t) end

-- drives the loop until pred() is true, at most `limit` s (default 1)
local wait_for = helpers.wait_for

local certs

-- pool keys of the servers this file started: none may be left after a test
local pool_keys = {}
local function leftover_keys()
  local left, stats = {}, cs.pool_stats()
  for key in pairs(pool_keys) do
    if stats[key] ~= nil then left[#left + 1] = key end
  end
  return left
end

-- a TLS server (socat) with the certificate pair `pair` (default: the good
-- server certificate); `opts` adds start_tls_server's options
local function tls_server(pair, opts)
  pair = pair or certs.server
  local o = { cert = pair.cert, key = pair.key }
  for k, v in pairs(opts or {}) do o[k] = v end
  local srv = helpers.start_tls_server(o)
  defer(function() srv:stop() end)
  srv.key_name = srv.host .. ":" .. srv.port
  pool_keys[srv.key_name] = true
  return srv
end

local function fixture(mode) return helpers.fixture(defer, mode) end

-- a socket connected to srv, small timeouts
local function connected(srv, timeouts)
  local sock = cs.tcp()
  sock:settimeouts(unpack(timeouts or { 2000, 2000, 2000 }))
  assert.same({ n = 1, 1 }, pack(sock:connect(srv.host, srv.port)))
  return sock
end

-- a socket connected to srv with TLS done (no verification unless `verify`)
local function tls_connected(srv, name, verify)
  local sock = connected(srv)
  local sess, err = sock:sslhandshake(nil, name, verify)
  assert(sess, "sslhandshake: " .. tostring(err))
  return sock, sess
end

-- one round trip on an echoing connection
local roundtrip = helpers.roundtrip

-- the handshake result with the CA of the tests trusted (or `trust`: a CA file,
-- or false for the default trust) against a server with `pair`
local function verify_against(pair, name, trust)
  if trust == nil then trust = certs.ca end
  configure({ ssl_trusted_certificate = trust })
  local srv = tls_server(pair)
  local sock = connected(srv)
  local r = pack(sock:sslhandshake(nil, name, true))
  if r[1] ~= nil then r[1] = type(r[1]) end
  return r, sock, srv
end

-- an `openssl s_server -www` on 127.0.0.1 that shows certs.server by default
-- and certs.wrong_host to a client whose SNI is other.test
local function sni_server()
  local port
  for _ = 1, 5 do
    local l = assert(socket.bind("127.0.0.1", 0))
    local _, p = l:getsockname()
    l:close()
    port = tonumber(p)
    local cmd = string.format("env -u LD_PRELOAD openssl s_server -quiet -www " ..
      "-accept 127.0.0.1:%d -cert %s -key %s -servername other.test -cert2 %s -key2 %s " ..
      "</dev/null >/dev/null 2>&1 & echo $!", port, certs.server.cert, certs.server.key,
      certs.wrong_host.cert, certs.wrong_host.key)
    local f = assert(io.popen(cmd))
    local pid = tonumber(f:read("*l"))
    f:close()
    defer(function() os.execute("kill -KILL " .. pid .. " 2>/dev/null") end)
    for _ = 1, 200 do   -- at most 2 s until it listens
      local c = socket.tcp()
      c:settimeout(0.1)
      local ok = c:connect("127.0.0.1", port)
      c:close()
      if ok then return { host = "127.0.0.1", port = port } end
      socket.sleep(0.01)
    end
  end
  error("sni_server: openssl s_server did not start")
end

-- TLS 1.3 session tickets the server sends after a handshake, as openssl
-- s_client sees them (it reads for 0.3 s)
local function tickets_sent(srv)
  local p = assert(io.popen("sleep 0.3 | env -u LD_PRELOAD timeout 5 openssl s_client " ..
                            "-connect 127.0.0.1:" .. srv.port .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  local n = 0
  for _ in out:gmatch("Post%-Handshake New Session Ticket arrived") do n = n + 1 end
  return n, out
end

local fds_at_start

describe("TLS", function()
  setup(function()
    certs = helpers.tls_certs()
    collectgarbage()
    collectgarbage()
    fds_at_start = fd_count()
  end)

  after_each(function()
    run_cleanups()
    collectgarbage()
    -- the servers are gone: the idle watchers close what the pools kept
    wait_for(function() return #leftover_keys() == 0 end, 2)
  end)

  describe("sslhandshake arguments and preconditions", function()
    it("raises for more than 4 arguments after the object", function()
      local srv = tls_server()
      local sock = connected(srv)
      assert.has_error(function() sock:sslhandshake(nil, "localhost", false, false, 5) end,
        "ngx.socket sslhandshake: expecting 1 ~ 5 arguments (including the object), " ..
        "but seen 6")
      -- nothing happened: the handshake still works
      assert.equal("userdata", type((sock:sslhandshake())))
      roundtrip(sock)
    end)

    it("raises on a socket that never connected", function()
      local sock = cs.tcp()
      assert.has_error(function() sock:sslhandshake() end,
        "socket is never created nor connected")
      assert.has_error(function() sock:sslhandshake(false, "localhost", true) end,
        "socket is never created nor connected")
    end)

    it("returns nil, 'closed' on a closed socket", function()
      local srv = tls_server()
      local sock = connected(srv)
      assert.equal(1, sock:close())
      assert.same({ n = 2, nil, "closed" }, pack(sock:sslhandshake()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:sslhandshake(false, "localhost", true)))
    end)

    it("returns nil, 'closed' after setkeepalive parked the connection", function()
      local srv = tls_server()
      local sock = tls_connected(srv)
      roundtrip(sock)
      assert.equal(1, sock:setkeepalive())
      assert.same({ n = 2, nil, "closed" }, pack(sock:sslhandshake()))
    end)

    it("returns nil, 'socket busy reading' while another thread reads", function()
      local srv = tls_server()
      local sock = connected(srv, { 2000, 2000, 100 })
      local r, read
      cs.run(function()
        local reader = cs.spawn(function() return sock:receive() end)
        r = pack(sock:sslhandshake())
        read = pack(cs.wait(reader))
      end)
      assert.same({ n = 2, nil, "socket busy reading" }, r)
      assert.same({ n = 4, true, nil, "timeout", "" }, read)
      -- not closed: the handshake can follow
      assert.equal("userdata", type((sock:sslhandshake())))
      roundtrip(sock)
    end)
  end)

  describe("results", function()
    it("a session userdata by default, true when reused_session is false", function()
      local srv = tls_server()
      local a = connected(srv)
      local r = pack(a:sslhandshake())
      assert.equal(1, r.n)
      assert.equal("userdata", type(r[1]))
      roundtrip(a)
      local b = connected(srv)
      assert.same({ n = 1, true }, pack(b:sslhandshake(false)))
      roundtrip(b)
      -- a session from another connection is accepted (resumption may or may not happen)
      local c = connected(srv)
      local r2 = pack(c:sslhandshake(r[1], "localhost"))
      assert.equal("userdata", type(r2[1]))
      roundtrip(c)
      a:close(); b:close(); c:close()
    end)

    it("a second sslhandshake on a TLS connection returns at once", function()
      local srv = tls_server()
      local sock, sess = tls_connected(srv)
      roundtrip(sock)
      local t0 = socket.gettime()
      local again = pack(sock:sslhandshake())
      assert.equal(1, again.n)
      assert.equal("userdata", type(again[1]))
      assert.same({ n = 1, true }, pack(sock:sslhandshake(false)))
      local same = pack(sock:sslhandshake(sess, "localhost", true))
      assert.equal(1, same.n)
      assert.is_true(rawequal(sess, same[1]), "the session passed in is returned")
      assert.is_true(socket.gettime() - t0 < 0.05)
      roundtrip(sock, "after")
      assert.equal(1, wait_for(function() return srv:handshakes() end))
      assert.equal(1, srv:accepted())
    end)
  end)

  describe("reads and writes", function()
    it("send and receive lines, counts, receiveany and receiveuntil", function()
      local srv = tls_server()
      local sock = tls_connected(srv)
      -- a table of pieces, nested
      assert.same({ n = 1, 12 }, pack(sock:send({ "hel", "lo", { " wor", "ld" }, "\n" })))
      assert.same({ n = 1, "hello world" }, pack(sock:receive("*l")))
      -- several writes make one line; CR dropped
      assert.equal(3, sock:send("abc"))
      assert.equal(5, sock:send("de\r\nf"))
      assert.equal(4, sock:send("ghi\n"))
      assert.same({ n = 1, "abcde" }, pack(sock:receive()))
      assert.same({ n = 1, "fghi" }, pack(sock:receive()))
      -- counts
      assert.equal(10, sock:send("0123456789"))
      assert.same({ n = 1, "0123" }, pack(sock:receive(4)))
      assert.same({ n = 1, "456789" }, pack(sock:receive(6)))
      -- receiveany returns what is there (at most max)
      assert.equal(6, sock:send("xyzxyz"))
      local got = {}
      local n = 0
      while n < 6 do
        local part, err = sock:receiveany(4)
        assert(part, err)
        assert.is_true(#part >= 1 and #part <= 4)
        got[#got + 1] = part
        n = n + #part
      end
      assert.equal("xyzxyz", table.concat(got))
      -- receiveuntil, the delimiter sent in pieces
      local it = sock:receiveuntil("--sep--")
      assert(sock:send({ "part1--s", "ep--par" }))
      assert(sock:send("t2--se"))
      assert(sock:send("p--"))
      assert.same({ n = 1, "part1" }, pack(it()))
      assert.same({ n = 1, "part2" }, pack(it()))
      local it2 = sock:receiveuntil("\r\n", { inclusive = true })
      assert(sock:send("incl\r\n"))
      assert.same({ n = 1, "incl\r\n" }, pack(it2()))
      sock:close()
    end)

    it("reads data split across TLS records, and *a up to the peer's close", function()
      local srv = tls_server(nil, { mode = "script", script = [[
printf 'ab'; sleep 0.05
printf 'c\r\nd'; sleep 0.05
printf 'ef\n0123'; sleep 0.05
printf '4567'; sleep 0.05
printf 'rest of'; sleep 0.05
printf ' it']] })
      local sock = tls_connected(srv)
      assert.same({ n = 1, "abc" }, pack(sock:receive()))
      assert.same({ n = 1, "def" }, pack(sock:receive()))
      assert.same({ n = 1, "012345" }, pack(sock:receive(6)))
      assert.same({ n = 1, "67" }, pack(sock:receive(2)))
      assert.same({ n = 1, "rest of it" }, pack(sock:receive("*a")))
      assert.same({ n = 3, nil, "closed", "" }, pack(sock:receive()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:receive()))
    end)

    it("*l at the peer's close returns nil, 'closed' and the partial line", function()
      local srv = tls_server(nil, { mode = "script", script = "printf 'one\\ntwo'" })
      local sock = tls_connected(srv)
      assert.same({ n = 1, "one" }, pack(sock:receive()))
      assert.same({ n = 3, nil, "closed", "two" }, pack(sock:receive()))
    end)

    it("a peer that dies without close_notify: the read ends with 'closed'", function()
      local srv = tls_server()
      local sock = tls_connected(srv)
      roundtrip(sock)
      assert.equal(5, sock:send("part\n"))
      assert.equal("part", sock:receive())
      assert.equal(1, srv:kill_children())
      local r = pack(sock:receive())
      assert.same({ n = 3, nil, "closed", "" }, r)
    end)

    it("moves a megabyte each way with a reader and a writer thread", function()
      local srv = tls_server()
      local sock = tls_connected(srv)
      sock:settimeouts(2000, 5000, 5000)
      local chunk = ("0123456789abcdef"):rep(64)   -- 1 KiB
      local data = chunk:rep(1024)
      local sent, got
      cs.run(function()
        local w = cs.spawn(function() return sock:send(data) end)
        local r = cs.spawn(function() return sock:receive(#data) end)
        sent = pack(cs.wait(w))
        got = pack(cs.wait(r))
      end)
      assert.same({ n = 2, true, #data }, sent)
      assert.equal(2, got.n)
      assert.is_true(got[1])
      assert.is_true(got[2] == data, "the data came back unchanged")
      roundtrip(sock)
      sock:close()
    end)

    it("a read timeout is not fatal: partial data, then the next read goes on", function()
      local srv = tls_server()
      local sock = tls_connected(srv)
      sock:settimeouts(2000, 2000, 100)
      assert.equal(3, sock:send("abc"))
      local t0 = clock()
      assert.same({ n = 3, nil, "timeout", "abc" }, pack(sock:receive()))
      assert.is_true(clock() - t0 >= 0.09)
      assert.same({ n = 3, nil, "timeout", "" }, pack(sock:receive(5)))
      assert.equal(4, sock:send("def\n"))
      assert.same({ n = 1, "def" }, pack(sock:receive()))
      roundtrip(sock)
      sock:close()
    end)
  end)

  describe("verification", function()
    it("succeeds for localhost with the test CA configured", function()
      local r, sock, srv = verify_against(certs.server, "localhost")
      assert.same({ n = 1, "userdata" }, r)
      roundtrip(sock)
      sock:close()
      -- the IP address in the certificate matches too
      local sock2 = connected(srv)
      assert.equal("userdata", type((sock2:sslhandshake(nil, "127.0.0.1", true))))
      roundtrip(sock2)
    end)

    it("with the default trust (/etc/ssl/certs) the test CA is unknown", function()
      local r = verify_against(certs.server, "localhost", false)
      assert.same({ n = 2, nil, "20: unable to get local issuer certificate" }, r)
    end)

    it("wrong host: 'certificate host mismatch'", function()
      local r = verify_against(certs.wrong_host, "localhost")
      assert.same({ n = 2, nil, "certificate host mismatch" }, r)
    end)

    it("expired: '10: certificate has expired'", function()
      local r = verify_against(certs.expired, "localhost")
      assert.same({ n = 2, nil, "10: certificate has expired" }, r)
    end)

    it("not yet valid: '9: certificate is not yet valid'", function()
      local r = verify_against(certs.not_yet, "localhost")
      assert.same({ n = 2, nil, "9: certificate is not yet valid" }, r)
    end)

    it("self-signed: '18: self-signed certificate' (OpenSSL 3 spelling)", function()
      local r = verify_against(certs.self_signed, "localhost")
      assert.same({ n = 2, nil, "18: self-signed certificate" }, r)
    end)

    it("an untrusted root sent in the chain: " ..
       "'19: self-signed certificate in certificate chain'", function()
      local r = verify_against(certs.with_root, "localhost", false)
      assert.same({ n = 2, nil, "19: self-signed certificate in certificate chain" }, r)
    end)

    it("a chain through an intermediate CA verifies (default depth 9)", function()
      local r, sock = verify_against(certs.chain, "localhost")
      assert.same({ n = 1, "userdata" }, r)
      roundtrip(sock)
    end)

    it("a leaf whose intermediate is not sent: '20: unable to get local issuer certificate'",
      function()
      local r = verify_against(certs.chain_leaf_only, "localhost")
      assert.same({ n = 2, nil, "20: unable to get local issuer certificate" }, r)
    end)

    it("ssl_verify_depth 0 rejects the intermediate: '22: certificate chain too long'",
      function()
      configure({ ssl_verify_depth = 0 })
      local r = verify_against(certs.chain, "localhost")
      assert.same({ n = 2, nil, "22: certificate chain too long" }, r)
      -- a leaf signed by the trusted CA itself is within depth 0
      local r2 = verify_against(certs.server, "localhost")
      assert.same({ n = 1, "userdata" }, r2)
    end)

    it("without server_name checks the chain only", function()
      local r = verify_against(certs.wrong_host, nil)
      assert.same({ n = 1, "userdata" }, r)
      local r2 = verify_against(certs.wrong_host, false)
      assert.same({ n = 1, "userdata" }, r2)
      -- ... but the chain is checked
      local r3 = verify_against(certs.wrong_host, nil, false)
      assert.same({ n = 2, nil, "20: unable to get local issuer certificate" }, r3)
      local r4 = verify_against(certs.expired, nil)
      assert.same({ n = 2, nil, "10: certificate has expired" }, r4)
    end)

    it("ssl_verify false checks nothing, a server_name is still accepted", function()
      for _, pair in ipairs({ certs.wrong_host, certs.expired, certs.self_signed }) do
        local srv = tls_server(pair)
        local sock = connected(srv)
        assert.equal("userdata", type((sock:sslhandshake(nil, "localhost", false))))
        roundtrip(sock)
        sock:close()
      end
    end)

    it("a failed verification closes the socket", function()
      local r, sock, srv = verify_against(certs.wrong_host, "localhost")
      assert.same({ n = 2, nil, "certificate host mismatch" }, r)
      assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
      assert.same({ n = 2, nil, "closed" }, pack(sock:receive()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:sslhandshake()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:close()))
      -- the socket object can connect again
      assert.equal(1, sock:connect(srv.host, srv.port))
      assert.equal("userdata", type((sock:sslhandshake())))
      roundtrip(sock)
    end)

    it("sends server_name as SNI", function()
      local srv = sni_server()
      configure({ ssl_trusted_certificate = certs.ca })
      -- only with SNI other.test does the server show the other.test certificate
      local a = connected(srv)
      assert.equal("userdata", type((a:sslhandshake(nil, "other.test", true))))
      a:close()
      local b = connected(srv)
      assert.equal("userdata", type((b:sslhandshake(nil, "localhost", true))))
      b:close()
      -- without a name: the default certificate (localhost), only its chain checked
      local c = connected(srv)
      assert.equal("userdata", type((c:sslhandshake(nil, nil, true))))
      c:close()
    end)

    it("the trusted CA file can change between handshakes", function()
      local srv = tls_server()
      configure({ ssl_trusted_certificate = certs.ca })
      local a = connected(srv)
      assert.equal("userdata", type((a:sslhandshake(nil, "localhost", true))))
      cs.configure({ ssl_trusted_certificate = false })
      local b = connected(srv)
      assert.same({ n = 2, nil, "20: unable to get local issuer certificate" },
                  pack(b:sslhandshake(nil, "localhost", true)))
      cs.configure({ ssl_trusted_certificate = certs.ca })
      local c = connected(srv)
      assert.equal("userdata", type((c:sslhandshake(nil, "localhost", true))))
      a:close(); c:close()
    end)
  end)

  -- libtls parses a CA file whole at every handshake; cosocket gives it a
  -- private directory of hashed names made from the file once instead
  -- (ca_dir.h), which must verify exactly as the file did
  describe("a trusted CA file", function()
    -- a file in certs.dir of the given PEM files' contents (or raw text)
    local function ca_file(name, ...)
      local parts = {}
      for i, part in ipairs({ ... }) do
        parts[i] = part:match("^/") and certs.pem(part) or part
      end
      local path = certs.dir .. "/" .. name
      local f = assert(io.open(path, "wb"))
      f:write(table.concat(parts))
      f:close()
      return path
    end

    local function openssl(args)
      assert(os.execute("env -u LD_PRELOAD openssl " .. args .. " >/dev/null 2>&1"))
    end

    it("of several certificates: the one that signed is found anywhere in it", function()
      local many = ca_file("many.pem", certs.client.cert, certs.wrong_host.cert,
                           certs.expired.cert, certs.dir .. "/inter.pem", certs.ca)
      assert.same({ n = 1, "userdata" }, (verify_against(certs.server, "localhost", many)))
      -- the intermediate in the file completes a chain the server sends without it
      assert.same({ n = 1, "userdata" },
                  (verify_against(certs.chain_leaf_only, "localhost", many)))
      -- a certificate of the file has the self-signed one's subject, not its key
      assert.same({ n = 2, nil, "18: self-signed certificate" },
                  (verify_against(certs.self_signed, "localhost", many)))
      assert.same({ n = 2, nil, "10: certificate has expired" },
                  (verify_against(certs.expired, "localhost", many)))
    end)

    it("with two CA certificates of one subject: the one whose key signed", function()
      local twin = certs.dir .. "/twin.pem"
      openssl("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes " ..
              "-keyout " .. certs.dir .. "/twin.key -subj '/CN=cosocket test CA' " ..
              "-days 30 -out " .. twin)
      assert.same({ n = 2, nil, "20: unable to get local issuer certificate" },
                  (verify_against(certs.server, "localhost", twin)))
      local both = ca_file("twin_first.pem", twin, certs.ca)
      assert.same({ n = 1, "userdata" }, (verify_against(certs.server, "localhost", both)))
    end)

    it("keeps the trust settings of TRUSTED CERTIFICATE blocks", function()
      local trusted, rejected = certs.dir .. "/trusted.pem", certs.dir .. "/rejected.pem"
      openssl("x509 -in " .. certs.ca .. " -addtrust serverAuth -trustout -out " .. trusted)
      openssl("x509 -in " .. certs.ca .. " -addreject serverAuth -trustout -out " .. rejected)
      assert.matches("^%-%-%-%-%-BEGIN TRUSTED CERTIFICATE", certs.pem(trusted))
      assert.same({ n = 1, "userdata" }, (verify_against(certs.server, "localhost", trusted)))
      assert.same({ n = 2, nil, "28: certificate rejected" },
                  (verify_against(certs.server, "localhost", rejected)))
    end)

    it("skips text around the blocks and blocks that are not certificates", function()
      local f = ca_file("commented.pem", "# the test CA\n", certs.ca_key, certs.ca, "the end\n")
      assert.same({ n = 1, "userdata" }, (verify_against(certs.server, "localhost", f)))
    end)

    it("that does not parse, holds no certificate or is missing: " ..
       "'failed to create ssl connection'", function()
      local files = {
        ca_file("bad_block.pem", certs.ca,
                "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"),
        ca_file("empty.pem", ""),
        ca_file("text.pem", "no certificate here\n"),
        certs.dir .. "/missing.pem",
      }
      for _, f in ipairs(files) do
        assert.same({ n = 2, nil, "failed to create ssl connection" },
                    (verify_against(certs.server, "localhost", f)), f)
      end
    end)

    -- runs a child with TMPDIR set that verifies against srv with the CA
    -- file `ca`, lists its temporary directory ("<name> <mode> <files>")
    -- and ends with `ending`; returns the listing and TMPDIR's entries after
    local function child_dirs(srv, ca, tmpdir, ending)
      local out, err = helpers.run_lua(string.format([[
local cs = require "cosocket"
cs.configure { ssl_trusted_certificate = %q }
local sock = cs.tcp()
assert(sock:connect(%q, %d))
assert(sock:sslhandshake(nil, "localhost", true))
local p = io.popen("cd %s 2>/dev/null && for d in *; do " ..
                   "echo $d $(stat -c %%a $d) $(ls $d | sort | tr '\\n' ' '); done")
io.write(p:read("*a"))
p:close()
%s
]], ca, srv.host, srv.port, tmpdir, ending), 10, { "TMPDIR=" .. tmpdir })
      local p = io.popen("ls -A " .. tmpdir .. " 2>/dev/null")
      local after = p:read("*a")
      p:close()
      return out, err, after
    end

    it("is read once into a private directory of hashed names, removed when the " ..
       "Lua state closes and at exit", function()
      local srv = tls_server()
      local many = ca_file("many2.pem", certs.expired.cert, certs.server.cert, certs.ca)
      local tmpdir = certs.dir .. "/tmpdir"
      assert(os.execute("mkdir -p " .. tmpdir))
      for _, ending in ipairs({ "", "os.exit(0)" }) do
        local out, err, after = child_dirs(srv, many, tmpdir, ending)
        -- the expired and the server certificates share the subject CN=localhost
        local name, mode, files = (out or ""):match("^(cosocket%-ca%-%w+) (%d+) (.-) ?\n$")
        assert(name, "listing: " .. tostring(out) .. tostring(err))
        assert.equal("700", mode)
        -- one file per certificate: <8 hex digits of the subject hash>.<n>
        local by_hash, count = {}, 0
        for hash, n in files:gmatch("(%x+)%.(%d+)") do
          assert.equal(8, #hash)
          by_hash[hash] = (by_hash[hash] or "") .. n
          count = count + 1
        end
        assert.equal(3, count, files)
        local suffixes = {}
        for _, ns in pairs(by_hash) do suffixes[#suffixes + 1] = ns end
        table.sort(suffixes)
        assert.same({ "0", "01" }, suffixes)
        assert.equal("", after, ending)
      end
    end)

    it("is used as it is when no directory can be made", function()
      local srv = tls_server()
      local out, err = child_dirs(srv, certs.ca, certs.dir .. "/no/such/dir", "")
      assert.equal("", out, err)
      assert.equal("", err)
    end)
  end)

  describe("failed handshakes", function()
    it("against a plain TCP echo peer: nil, 'handshake failed', socket closed", function()
      local srv = fixture("echo")
      local sock = connected(srv, { 1000, 1000, 1000 })
      local t0 = clock()
      assert.same({ n = 2, nil, "handshake failed" }, pack(sock:sslhandshake()))
      assert.is_true(clock() - t0 < 0.9, "no wait for a timeout")
      assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
    end)

    it("against a peer that closes at once: nil, 'handshake failed'", function()
      local l = assert(socket.bind("127.0.0.1", 0))
      defer(function() l:close() end)
      l:settimeout(2)
      local _, port = l:getsockname()
      local sock = connected({ host = "127.0.0.1", port = tonumber(port) }, { 1000, 1000, 1000 })
      local c = assert(l:accept())
      c:close()
      assert.same({ n = 2, nil, "handshake failed" }, pack(sock:sslhandshake(nil, "localhost")))
      assert.same({ n = 2, nil, "closed" }, pack(sock:receive()))
    end)

    it("against a silent peer: nil, 'timeout' after the connect timeout", function()
      local srv = fixture("silent")
      local sock = connected(srv, { 200, 2000, 2000 })
      local t0 = clock()
      assert.same({ n = 2, nil, "timeout" }, pack(sock:sslhandshake()))
      local took = clock() - t0
      assert.is_true(took >= 0.18 and took < 1, "took " .. took)
      assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
      -- the read timeout does not bound it
      local sock2 = connected(srv, { 300, 2000, 50 })
      t0 = clock()
      assert.same({ n = 2, nil, "timeout" }, pack(sock2:sslhandshake()))
      took = clock() - t0
      assert.is_true(took >= 0.28 and took < 1, "took " .. took)
    end)

    it("against a silent peer: the configured connect_timeout bounds it", function()
      local srv = fixture("silent")
      configure({ connect_timeout = 150 })
      local sock = cs.tcp()
      assert.equal(1, sock:connect(srv.host, srv.port))
      local t0 = clock()
      assert.same({ n = 2, nil, "timeout" }, pack(sock:sslhandshake()))
      local took = clock() - t0
      assert.is_true(took >= 0.13 and took < 1, "took " .. took)
    end)

    it("killing a thread blocked in a handshake closes its socket", function()
      local srv = fixture("silent")
      local sock = connected(srv, { 5000, 5000, 5000 })
      local t0 = clock()
      cs.run(function()
        local t = cs.spawn(function() return sock:sslhandshake() end)
        cs.sleep(0.05)
        assert.equal(1, cs.kill(t))
      end)
      assert.is_true(clock() - t0 < 1)
      assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
    end)
  end)

  describe("client certificates", function()
    it("setclientcert with good PEMs makes a client-auth server accept", function()
      local srv = tls_server(nil, { client_ca = certs.ca })
      configure({ ssl_trusted_certificate = certs.ca })
      local sock = cs.tcp()
      sock:settimeouts(2000, 2000, 2000)
      -- before connect, as ngx allows
      assert.same({ n = 1, true },
        pack(sock:setclientcert(certs.pem(certs.client.cert), certs.pem(certs.client.key))))
      assert.equal(1, sock:connect(srv.host, srv.port))
      assert.equal("userdata", type((sock:sslhandshake(nil, "localhost", true))))
      roundtrip(sock)
      roundtrip(sock, "again")
      sock:close()
      -- after connect, no verification of the server
      local sock2 = connected(srv)
      assert.is_true(sock2:setclientcert(certs.pem(certs.client.cert),
                                         certs.pem(certs.client.key)))
      assert.same({ n = 1, true }, pack(sock2:sslhandshake(false)))
      roundtrip(sock2)
    end)

    it("without a client certificate the server refuses (TLS 1.3: at the first read)",
      function()
      local srv = tls_server(nil, { client_ca = certs.ca })
      local sock = connected(srv, { 1000, 1000, 1000 })
      local t0 = clock()
      local sess, err = sock:sslhandshake()
      if sess then   -- TLS 1.3: the client is done before the server checks
        local sent = sock:send("ping\n")
        local line, rerr = sock:receive()
        assert.is_nil(line)
        assert.is_string(rerr)
        assert.is_not.equal("timeout", rerr)
        assert.is_truthy(sent == nil or sent == 5)
      else
        assert.equal("handshake failed", err)
      end
      assert.is_true(clock() - t0 < 0.9, "no wait for a timeout")
    end)

    it("without a client certificate, TLS 1.2: nil, 'handshake failed'", function()
      local srv = tls_server(nil, { client_ca = certs.ca })
      configure({ ssl_protocols = "TLSv1.2" })
      local sock = connected(srv, { 1000, 1000, 1000 })
      assert.same({ n = 2, nil, "handshake failed" }, pack(sock:sslhandshake()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
    end)

    it("a client certificate from another CA is refused", function()
      local srv = tls_server(nil, { client_ca = certs.ca })
      configure({ ssl_protocols = "TLSv1.2" })
      local sock = connected(srv, { 1000, 1000, 1000 })
      assert.is_true(sock:setclientcert(certs.pem(certs.self_signed.cert),
                                        certs.pem(certs.self_signed.key)))
      assert.same({ n = 2, nil, "handshake failed" }, pack(sock:sslhandshake()))
    end)

    it("cleared with (nil, nil): no certificate is sent any more", function()
      local srv = tls_server(nil, { client_ca = certs.ca })
      configure({ ssl_protocols = "TLSv1.2" })
      local sock = connected(srv, { 1000, 1000, 1000 })
      assert.is_true(sock:setclientcert(certs.pem(certs.client.cert),
                                        certs.pem(certs.client.key)))
      assert.same({ n = 1, true }, pack(sock:setclientcert(nil, nil)))
      assert.same({ n = 1, true }, pack(sock:setclientcert()))
      assert.same({ n = 2, nil, "handshake failed" }, pack(sock:sslhandshake()))
    end)

    it("argument errors", function()
      local sock = cs.tcp()
      local cert, key = certs.pem(certs.client.cert), certs.pem(certs.client.key)
      local msg = "client certificate must be supplied with corresponding private key"
      assert.same({ n = 2, nil, msg }, pack(sock:setclientcert(cert)))
      assert.same({ n = 2, nil, msg }, pack(sock:setclientcert(cert, nil)))
      assert.same({ n = 2, nil, msg }, pack(sock:setclientcert(nil, key)))
      assert.same({ n = 2, nil, msg }, pack(sock:setclientcert(false, key)))
      local r = pack(sock:setclientcert({}, key))
      assert.equal(2, r.n)
      assert.is_nil(r[1])
      assert.matches("^bad cert arg: %a+ expected, got table$", r[2])
      r = pack(sock:setclientcert(cert, {}))
      assert.equal(2, r.n)
      assert.is_nil(r[1])
      assert.matches("^bad pkey arg: %a+ expected, got table$", r[2])
    end)

    it("PEM text that is no certificate: nil, err from setclientcert or the handshake",
      function()
      local srv = tls_server()
      local sock = connected(srv, { 1000, 1000, 1000 })
      local r = pack(sock:setclientcert("not a certificate", "not a key"))
      if r[1] == true then r = pack(sock:sslhandshake()) end
      assert.equal(2, r.n)
      assert.is_nil(r[1])
      assert.is_string(r[2])
    end)
  end)

  describe("pooled TLS connections", function()
    it("are reused without a new handshake: getreusedtimes 0, 1, 2, one connection",
      function()
      local srv = tls_server()
      configure({ ssl_trusted_certificate = certs.ca })
      local sessions = {}
      for i = 0, 2 do
        local sock = connected(srv)
        assert.equal(i, sock:getreusedtimes())
        local t0 = socket.gettime()
        local sess, err = sock:sslhandshake(nil, "localhost", true)
        assert.equal("userdata", type(sess), tostring(err))
        if i > 0 then
          assert.is_true(socket.gettime() - t0 < 0.05, "a reused connection is handshaked")
        end
        sessions[#sessions + 1] = sess
        roundtrip(sock, "round " .. i)
        assert.same({ n = 1, 1 }, pack(sock:setkeepalive()))
      end
      assert.equal(1, srv:accepted())
      assert.equal(1, wait_for(function() return srv:handshakes() end))
      assert.equal(1, cs.pool_stats()[srv.key_name].idle)
      -- reusing: the passed session, or true for false
      local sock = connected(srv)
      assert.equal(3, sock:getreusedtimes())
      assert.is_true(rawequal(sessions[1], sock:sslhandshake(sessions[1], "localhost", true)))
      assert.same({ n = 1, true }, pack(sock:sslhandshake(false)))
      roundtrip(sock)
      sock:close()
      assert.equal(1, srv:accepted())
    end)

    it("the server really sends TLS 1.3 session tickets (the next tests need them)",
      function()
      local srv = tls_server()
      local n, out = tickets_sent(srv)
      assert.is_true(n >= 1, "no session ticket seen:\n" .. out)
      assert.matches("TLSv1.3", out)
    end)

    it("session tickets that came after the handshake are not unread data", function()
      local srv = tls_server()
      local sock = tls_connected(srv)
      cs.sleep(0.1)   -- the tickets are in the kernel now, nothing was read
      assert.same({ n = 1, 1 }, pack(sock:setkeepalive()))
      assert.same({ "TLSv1.3" }, srv:protocols())
      local again = connected(srv)
      assert.equal(1, again:getreusedtimes())
      assert.equal("userdata", type((again:sslhandshake())))
      roundtrip(again)
      assert.same({ n = 1, 1 }, pack(again:setkeepalive()))
      assert.equal(1, srv:accepted())
    end)

    it("session tickets arriving while idle in the pool keep the connection", function()
      local srv = tls_server()
      local sock = tls_connected(srv)
      assert.same({ n = 1, 1 }, pack(sock:setkeepalive()))   -- at once
      cs.sleep(0.15)
      local st = cs.pool_stats()[srv.key_name]
      assert.same(1, st and st.idle)
      local again = connected(srv)
      assert.equal(1, again:getreusedtimes())
      assert.equal("userdata", type((again:sslhandshake())))
      roundtrip(again)
      again:close()
      assert.equal(1, srv:accepted())
    end)

    it("session tickets before a roundtrip: setkeepalive after it works too", function()
      local srv = tls_server()
      local sock = tls_connected(srv)
      cs.sleep(0.1)
      roundtrip(sock)
      cs.sleep(0.05)
      assert.same({ n = 1, 1 }, pack(sock:setkeepalive()))
    end)

    it("unread decrypted data: nil, 'unread data in buffer', connection usable", function()
      local srv = tls_server()
      local sock = tls_connected(srv)
      assert.equal(6, sock:send("ab\ncd\n"))
      assert.equal("ab", sock:receive())
      assert.same({ n = 2, nil, "unread data in buffer" }, pack(sock:setkeepalive()))
      assert.equal("cd", sock:receive())
      roundtrip(sock)
      assert.same({ n = 1, 1 }, pack(sock:setkeepalive()))
    end)

    it("application data not read yet: nil, 'connection in dubious state'", function()
      local srv = tls_server()
      local sock = tls_connected(srv)
      roundtrip(sock)
      assert.equal(3, sock:send("ab\n"))
      cs.sleep(0.1)   -- the echo is in the kernel
      assert.same({ n = 2, nil, "connection in dubious state" }, pack(sock:setkeepalive()))
      assert.same({ n = 2, nil, "closed" }, pack(sock:send("x")))
      assert.is_nil(cs.pool_stats()[srv.key_name])
    end)

    it("an idle TLS connection is dropped when the peer sends data or goes", function()
      local srv = tls_server(nil, { mode = "script", script = [[
read line; printf 'hello\n'; sleep 0.2; printf 'unsolicited\n'; sleep 2]] })
      local sock = tls_connected(srv)
      roundtrip(sock, "hello")
      assert.same({ n = 1, 1 }, pack(sock:setkeepalive()))
      assert.equal(1, cs.pool_stats()[srv.key_name].idle)
      assert.is_true(wait_for(function() return cs.pool_stats()[srv.key_name] == nil end, 1))
      -- the peer dies without close_notify
      local srv2 = tls_server()
      local sock2 = tls_connected(srv2)
      roundtrip(sock2)
      assert.same({ n = 1, 1 }, pack(sock2:setkeepalive()))
      cs.sleep(0.05)
      assert.equal(1, cs.pool_stats()[srv2.key_name].idle)
      assert.equal(1, srv2:kill_children())
      assert.is_true(wait_for(function() return cs.pool_stats()[srv2.key_name] == nil end, 1))
      -- a new connect makes a new connection
      local sock3 = tls_connected(srv2)
      assert.equal(0, sock3:getreusedtimes())
      roundtrip(sock3)
      sock3:close()
      assert.equal(2, srv2:accepted())
    end)
  end)

  describe("protocols and ciphers", function()
    it("TLS 1.3 by default, ssl_protocols = 'TLSv1.2' still connects with 1.2", function()
      local srv = tls_server()
      local a = tls_connected(srv)
      roundtrip(a)
      a:close()
      configure({ ssl_protocols = "TLSv1.2" })
      local b = tls_connected(srv, "localhost")
      roundtrip(b)
      b:close()
      configure({ ssl_protocols = "TLSv1.2 TLSv1.3" })
      local c = tls_connected(srv)
      roundtrip(c)
      c:close()
      assert.same({ "TLSv1.3", "TLSv1.2", "TLSv1.3" },
        wait_for(function()
          local p = srv:protocols()
          return #p == 3 and p
        end))
    end)

    it("ssl_protocols = 'TLSv1.3' against a TLS 1.2 server: nil, 'handshake failed'",
      function()
      local srv = tls_server(nil, { max_version = "TLS1.2" })
      local a = tls_connected(srv)
      roundtrip(a)
      a:close()
      configure({ ssl_protocols = "TLSv1.3" })
      local b = connected(srv, { 1000, 1000, 1000 })
      assert.same({ n = 2, nil, "handshake failed" }, pack(b:sslhandshake()))
      assert.same({ "TLSv1.2" }, srv:protocols())
    end)

    it("ssl_ciphers chooses the TLS 1.2 cipher", function()
      local srv = tls_server()
      configure({ ssl_protocols = "TLSv1.2", ssl_ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256" })
      local a = tls_connected(srv)
      roundtrip(a)
      a:close()
      assert.matches("SSL connection using ECDHE%-ECDSA%-AES128%-GCM%-SHA256",
        wait_for(function()
          local log = srv:log()
          return log:find("SSL connection using") and log
        end))
      -- a cipher the server's EC key cannot use
      cs.configure({ ssl_ciphers = "ECDHE-RSA-AES128-GCM-SHA256" })
      local b = connected(srv, { 1000, 1000, 1000 })
      assert.same({ n = 2, nil, "handshake failed" }, pack(b:sslhandshake()))
    end)
  end)

  it("200 concurrent TLS connections each do a few roundtrips", function()
    local srv = tls_server()
    configure({ ssl_trusted_certificate = certs.ca })
    local n, rounds = helpers.scale(200, 10), 3
    local ok, bad = 0, {}
    local t0 = clock()
    cs.run(function()
      for i = 1, n do
        cs.spawn(function()
          local sock = cs.tcp()
          sock:settimeouts(5000, 5000, 5000)
          local r, err = sock:connect(srv.host, srv.port)
          if not r then bad[#bad + 1] = i .. " connect: " .. tostring(err); return end
          r, err = sock:sslhandshake(nil, "localhost", true)
          if not r then bad[#bad + 1] = i .. " sslhandshake: " .. tostring(err); return end
          for j = 1, rounds do
            local msg = i .. ":" .. j .. ":" .. ("x"):rep(i)
            local sent, e1 = sock:send({ msg:sub(1, 3), msg:sub(4), "\n" })
            local line, e2 = sock:receive()
            if sent ~= #msg + 1 or line ~= msg then
              bad[#bad + 1] = string.format("%d/%d: sent %s (%s), got %s (%s)", i, j,
                tostring(sent), tostring(e1), tostring(line), tostring(e2))
              return
            end
          end
          sock:close()
          ok = ok + 1
        end)
      end
    end)
    assert.same({}, { unpack(bad, 1, math.min(#bad, 5)) })
    assert.equal(n, ok)
    assert.equal(n, srv:accepted())
    assert.is_true(clock() - t0 < 8, "took " .. (clock() - t0))
  end)

  it("gives every descriptor back", function()
    assert.same({}, leftover_keys())
    collectgarbage()
    collectgarbage()
    assert.equal(fds_at_start, fd_count())
  end)
end)
