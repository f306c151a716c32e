-- Writes the seed corpus of receive_fuzz (fuzz/corpus/receive/), in the
-- input layout described at the top of fuzz/receive_fuzz.c. The files are
-- what counts; this only says how they were made.
-- Run from the checkout's top: luajit fuzz/gen_corpus.lua
local dir = "fuzz/corpus/receive/"

local KIND = { line = 0, count = 1, all = 2, any = 3, ["until"] = 4 }
local LITERAL = 8
-- h0 bits 5-7 for want_mode 0-3 (as tcp_io.c, one byte, compaction, growth)
local WANT = { [0] = 0, 4, 6, 7 }

-- h1: a count or receiveany's max is 1 + h1 % 32; until's size is h1 % 17
local function h1(t)
  if t.kind == "count" or t.kind == "any" then
    return t.n - 1
  end
  return t.n or 0
end

-- literal bytes: h0, h1, h2, h3 (split: see receive_fuzz.c), pattern, data
local function literal(t)
  local h0 = KIND[t.kind] + LITERAL + (t.inclusive and 16 or 0) + 32 * WANT[t.want or 0]
  local pat = t.pat or ""
  local h2 = #pat > 0 and #pat - 1 or 0
  assert(#pat <= 16)
  return string.char(h0, h1(t), h2, (t.split or 0) + (t.vary and 64 or 0)) .. pat .. t.data
end

-- the small alphabet ("ab\r\n"): letters, "|" ends a chunk after the
-- letter before it (a short read), "!" makes that read EAGAIN first
local function alphabet(t)
  local code = { a = 0, b = 1, ["\r"] = 2, ["\n"] = 3 }
  local h0 = KIND[t.kind] + (t.inclusive and 16 or 0) + 32 * WANT[t.want or 0]
  local pat = {}
  for c in (t.pat or ""):gmatch(".") do
    pat[#pat + 1] = string.char(code[c])
  end
  local h2 = (#pat > 0 and #pat - 1 or 0) + 8
  local data = {}
  for c in t.data:gmatch(".") do
    if c == "|" then
      data[#data] = string.char(data[#data]:byte() % 4 + 16)
    elseif c == "!" then
      data[#data] = string.char(data[#data]:byte() + 32)
    else
      data[#data + 1] = string.char(code[c] + 4) -- no chunk end
    end
  end
  return string.char(h0, h1(t), h2, t.vary and 64 or 0) .. table.concat(pat)
    .. table.concat(data)
end

local seeds = {
  line_crlf = literal { kind = "line", split = 0x13,
    data = "line1\r\nli\rne2\r\r\n\r\n\nlast-no-newline" },
  line_alphabet = alphabet { kind = "line", data = "ab\r|\nb|!a\r\n|\n\ra|b" },
  count_5 = literal { kind = "count", n = 5, split = 0x12, data = "hello, world!" },
  count_exact = alphabet { kind = "count", n = 2, want = 2, data = "ab|ab|!ab" },
  all = literal { kind = "all", split = 0x33, data = "everything\r\nthere is" },
  any_4 = literal { kind = "any", n = 4, split = 0x17, data = "abcdefghijklmnop" },
  until_spec = literal { kind = "until", pat = "\r\n--abcedhb", split = 0x15,
    data = "hello, world! -someone\r\n--abcedhb blah blah" },
  until_spec_size4 = literal { kind = "until", n = 4, pat = "\r\n--abcedhb", split = 0x15,
    data = "hello, world! -someone\r\n--abcedhb blah blah" },
  until_dashes = literal { kind = "until", pat = "--", split = 0x11, data = "a--b--c--" },
  until_inclusive_size5 = literal { kind = "until", n = 5, inclusive = true, pat = "_END_",
    split = 0x14, data = "hello world _END_ blah" },
  until_prefix_x = literal { kind = "until", pat = "--abc", split = 0x31, data = "x---abcy" },
  until_aab = literal { kind = "until", pat = "aab", split = 0x11, data = "aaab" },
  until_ababc = literal { kind = "until", n = 1, pat = "ababc", split = 0x12, data = "abababc" },
  until_ab1ab2_size2 = literal { kind = "until", n = 2, pat = "ab1ab2", split = 0x01,
    data = "ab1ab1" },
  until_eof_prefix = literal { kind = "until", pat = "--abc", split = 0x32, data = "hello--ab" },
  until_alphabet_size3 = alphabet { kind = "until", n = 3, pat = "abab", want = 3,
    data = "aba|ababa|!bab|aabab|abaab|a" },
  until_vary_sizes = literal { kind = "until", n = 3, vary = true, pat = "\r\n--abcedhb",
    split = 0x13, data = "hello, world! -someone\r\n--abcedhb blah\r\n--abcedhb\r\n--abc" },
  until_alphabet_vary = alphabet { kind = "until", n = 1, vary = true, pat = "aabaa",
    data = "aabaabaa|aaba|!aab|aaaabaa|ab" },
  until_alphabet_crlf = alphabet { kind = "until", inclusive = true, pat = "\r\n\r\n",
    want = 1, data = "a\r\n\r|a\r\n|\r\n\r|\r\n\r\n|b" },
}

for name, bytes in pairs(seeds) do
  local f = assert(io.open(dir .. name, "wb"))
  f:write(bytes)
  f:close()
end
