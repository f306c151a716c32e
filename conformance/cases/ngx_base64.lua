-- ngx.encode_base64 / decode_base64: padding, no_padding, invalid input
-- decodes to nil; everything from the first '=' on is ignored
out(ngx.encode_base64(""), ngx.encode_base64("f"), ngx.encode_base64("fo"),
    ngx.encode_base64("foo"), ngx.encode_base64("foob"), ngx.encode_base64("fooba"),
    ngx.encode_base64("foobar"))
out(ngx.encode_base64("f", true), ngx.encode_base64("fo", true), ngx.encode_base64("foo", true))
out(ngx.encode_base64("\255\254\253\0\1"), ngx.encode_base64("f", false))
out(ngx.encode_base64(nil), ngx.encode_base64(123), ngx.encode_base64(true))
out(pcall(function() return (ngx.encode_base64("f", 1)) end))
out(pcall(function() return (ngx.encode_base64("f", "yes")) end))
for _, s in ipairs({ "", "Zg==", "Zg", "Zg=", "Zm8=", "Zm8", "Zm9v", "Zm9v=", "Z", "Zg===",
                     "Zg==Zg==", "Z m9v", "Zm9v\n", "Zm-_", "+/+/", "-_-_", "Zh==", "Zm9=",
                     "====", "=", "Zg=a", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy", "@@@@", "Zm9vY",
                     "Zm9vY===", "AAAA", "/w==", "\0" }) do
  out(s, ngx.decode_base64(s))
end
out(pcall(function() return (ngx.decode_base64(nil)) end))
out(pcall(function() return (ngx.decode_base64(12)) end))
