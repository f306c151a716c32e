-- localhost through a configured resolver that does not know it (SPEC 2.4;
-- DECISIONS 6: localhost and *.localhost never reach DNS)
local sock = ngx.socket.tcp()
sock:settimeout(2000)
out(sock:connect("localhost", fx.echo))
out(sock:close())
out(sock:connect("app.localhost", fx.echo))
out(sock:close())
