-- the regexes lua-resty-http uses (SPEC.md P2.2), with its "jo" options
local uri = [[^(?:(http[s]?):)?//((?:[^\[\]:/\?]+)|(?:\[.+\]))(?::(\d+))?([^\?]*)\??(.*)]]
for _, u in ipairs({ "http://example.com/path?q=1", "https://example.com:8443/a/b",
                     "//host", "http://[::1]:80/x", "http://user@host/", "ftp://x/",
                     "http://example.com?only=query", "https://h:99999" }) do
  local m = ngx.re.match(u, uri, "jo")
  if m then
    out(u, m[0], m[1], m[2], m[3], m[4], m[5])
  else
    out(u, m)
  end
end
for _, line in ipairs({ "Content-Type: text/html", "X-Empty:", "Bad header", "A:b:c",
                        "Spaced:   value  " }) do
  local m = ngx.re.match(line, "([^:\\s]+):\\s*(.*)", "jo")
  if m then out(line, m[1], m[2]) else out(line, m) end
end
out(ngx.re.find("   ", "^\\s*$", "jo"), ngx.re.find(" x ", "^\\s*$", "jo"))
for m in ngx.re.gmatch("gzip, .deflate,br", "\\.?([^,]+)", "jo") do out(m[0], m[1]) end
out(ngx.re.sub("www.example.com", "^[^.]+\\.", "", "jo"))
out(ngx.re.gsub("a.b.c", "\\.", "\\.", "jo"))
out(ngx.re.find("no-spaces", "\\s", "jo"), ngx.re.find("has space", "\\s", "jo"))
