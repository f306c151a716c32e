--! location: noresolver
-- a name without a resolver configured (SPEC 2.4; DECISIONS 6: cosocket resolves
-- with the system's configuration, and localhost never reaches DNS)
local sock = ngx.socket.tcp()
sock:settimeout(2000)
out(sock:connect("localhost", fx.echo))
out(sock:close())
