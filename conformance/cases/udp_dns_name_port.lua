--! needs: udp
-- "name:port": the whole string goes to the resolver in ngx_lua (the port
-- is split off only for IP literals) (SPEC 12, 2.4); the port in a message
-- is shown as <port> (it changes with every run)
local function show(ok, err)
  if err then err = err:gsub(":" .. fx.udpecho, ":<port>") end
  out(ok, err)
end
local u = ngx.socket.udp()
u:settimeout(2000)
show(u:setpeername("v4.test:" .. fx.udpecho))
show(u:setpeername("v4.test:" .. fx.udpecho, fx.udpecho))
show(u:send("x"))
