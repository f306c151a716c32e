-- ngx.null: the NULL light userdata, truthy (SPEC P2.2)
out(type(ngx.null))
out(ngx.null and "truthy" or "falsy")
out(ngx.null == ngx.null)
