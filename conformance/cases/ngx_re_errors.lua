-- ngx.re compile and exec errors: ngx's "pcre_compile() failed: ..." (PCRE 8's
-- words), nil, err from match, nil, nil, err from find/sub/gsub
for _, re in ipairs({ "(abc", "abc)", "[a", "a{2,1}", "*a", "a**", "\\", "\\c", "(?P<1a>x)",
                      "(?z)", "x{99999999999}", "[z-a]", "((((", "a(?#", "[[:foo:]]", "a)b)c",
                      "(*FOO)", "\\x{zz}", "(?<1>a)", "x++++", "\\o{9}",
                      string.rep("x", 120) .. "(" }) do
  out(re, ngx.re.match("abc", re))
end
out(ngx.re.find("abc", "(abc"))
out(ngx.re.sub("abc", "(abc", "x"))
out(ngx.re.gsub("abc", "(abc", "x"))
out(ngx.re.gmatch("abc", "(abc"))
out(ngx.re.match("\255abc", ".", "u"))
out(ngx.re.match("abc", "(\255", "u"))
out(ngx.re.gsub("héllo", "", "-", "u"))
out(ngx.re.match("hello", "l", nil, { pos = 10 }))
out(ngx.re.find("hello", "l", nil, { pos = 7 }))
out(ngx.re.match("hello", "o", nil, { pos = 6 }))
