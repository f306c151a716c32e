-- a name with two addresses, the first refusing (SPEC 2.4: nginx picks one at random
-- for each connect; DECISIONS 6: cosocket tries them in order). two.test is 127.0.0.2
-- then 127.0.0.1; nothing listens on 127.0.0.2 at fx.echo's port. Did 20 connects
-- all succeed? (nginx: all 20 pick 127.0.0.1 with probability 2^-20)
local sock = ngx.socket.tcp()
sock:settimeout(2000)
local all = true
for _ = 1, 20 do
  local ok, err = sock:connect("two.test", fx.echo)
  if not ok and err ~= "connection refused" then out("unexpected", err) end
  all = all and ok == 1
  sock:close()
end
out(all)
