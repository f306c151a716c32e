-- ngx.re option "d" (DFA matching: the longest match): cosocket has no DFA
-- mode (DECISIONS 8) and raises
out(pcall(function()
  local m = ngx.re.match("abcd", "a|ab|abc", "d")
  return m and m[0]
end))
