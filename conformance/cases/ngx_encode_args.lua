-- ngx.encode_args: one key per table (pair order is unspecified), escaped as
-- the component mode; true: a bare key, false: nothing, a table: the key
-- repeated
out(ngx.encode_args({ a = "b c" }))
out(ngx.encode_args({ ["a b"] = "x/y?z&w=1+2" }))
out(ngx.encode_args({ a = true }), ngx.encode_args({ a = false }), ngx.encode_args({}))
out(ngx.encode_args({ a = { "1", "2", true, false, 3 } }))
out(ngx.encode_args({ a = 10 }), ngx.encode_args({ a = 1.5 }), ngx.encode_args({ a = "" }))
out(ngx.encode_args({ a = {} }), ngx.encode_args({ k = { "a b", "c+d" } }))
out(ngx.encode_args({ a = "é~!*'()" }))
local all = {}
for i = 0, 255 do all[#all + 1] = string.char(i) end
all = table.concat(all)
out(ngx.encode_args({ [all] = all }))
out(pcall(function() return (ngx.encode_args({ [1] = "x" })) end))
out(pcall(function() return (ngx.encode_args({ [true] = "x" })) end))
out(pcall(function() return (ngx.encode_args({ a = { {} } })) end))
out(pcall(function() return (ngx.encode_args({ a = ngx.null })) end))
out(pcall(function() return (ngx.encode_args({ a = print })) end))
out(pcall(function() return (ngx.encode_args(nil)) end))
out(pcall(function() return (ngx.encode_args("a=b")) end))
out(pcall(function() return (ngx.encode_args()) end))
out(pcall(function() return (ngx.encode_args({}, {})) end))
