-- ngx.re runs on PCRE2 here, on PCRE 8.39 in the oracle (DECISIONS 8): some
-- compile errors point elsewhere in the pattern or use other words, a few
-- patterns PCRE 8 accepts are errors for PCRE2 (\8, [\d-z])
for _, re in ipairs({ "(?<n>a)(?<n>b)", "(?<=a+)b", "(?", "\\8", "[\\d-z]" }) do
  local m, err = ngx.re.match("a8-", re)
  out(re, m and m[0], err)
end
