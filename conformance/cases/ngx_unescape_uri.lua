-- ngx.unescape_uri: %XX decoded (either case), + is a space, malformed
-- escapes stay as they are
out(ngx.unescape_uri("%41%4a%4A%7e%20a+b"))
out(ngx.unescape_uri("%zz%4%%41%%+%2"), ngx.unescape_uri("100%"), ngx.unescape_uri("%"))
out(ngx.unescape_uri("%00%ff%FF%C3%A9"))
out(ngx.unescape_uri(ngx.escape_uri("a b/é!*")))
out(ngx.unescape_uri(nil), ngx.unescape_uri(false), ngx.unescape_uri(12), ngx.unescape_uri(true))
