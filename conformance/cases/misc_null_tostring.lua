--! luajit-only: PUC 5.1 prints the NULL light userdata as "userdata: (nil)", its own tostring
-- tostring(ngx.null) (SPEC P2.2)
out(tostring(ngx.null))
