--! luajit-only: needs the FFI
-- ngx_hex_dump, the nginx symbol lua-resty-string's to_hex calls (DECISIONS 8: not
-- provided by cosocket)
local ffi = require "ffi"
pcall(ffi.cdef, "unsigned char *ngx_hex_dump(unsigned char *dst, const unsigned char *src, "
                .. "size_t len);")
local ok, v = pcall(function() return ffi.C.ngx_hex_dump end)
out(ok, ok and type(v) or (v:match("undefined symbol: ngx_hex_dump") and "undefined symbol" or v))
