-- bench/profile.lua: the profile section of bench/RESULTS.md, for
-- bench/run.lua: the cosocket LuaJIT client and the raw C client on W1 PING
-- C=100, with strace -c (syscalls per roundtrip), perf (cpu-clock samples,
-- kernel included) and callgrind (user-space instructions per roundtrip:
-- two runs of different lengths, the difference leaves start-up out). Each
-- tool is skipped when it is missing.
--
--     require("profile")(h) --> Markdown text
--
-- h: the driver's helpers and settings (see the call in run.lua).
local format, concat = string.format, table.concat

return function(h)
  local have, capture, read_file, ok_exec, trim = h.have, h.capture, h.read_file, h.ok_exec, h.trim
  local sh_quote, scaled, ports = h.sh_quote, h.scaled, h.ports
  local repo, tmp, build, bench_dir, lua_env = h.repo, h.tmp, h.build, h.bench_dir, h.lua_env
  local out = {}
  local port = ports.redis
  local native = format("env %s luajit %s/clients/cosocket_native.lua w=w1 kind=ping c=100",
                        lua_env, bench_dir)
  local raw = build .. "/bench/raw_client rt " .. port .. " 100"
  local n = scaled(100000, 100)
  local function add(s) out[#out + 1] = s end

  local facts = {}
  add("### Profile: cosocket LuaJIT, W1 PING C=100")
  add("")
  add("@SUMMARY@")
  add("")
  if have("strace") then
    -- syscalls per roundtrip (strace slows the client, not the counts)
    local function counts(cmd, ops)
      local f = tmp .. "/strace.txt"
      os.execute(format("cd %s && taskset -c 0 strace -f -c -o %s %s >/dev/null 2>&1",
                        sh_quote(repo), f, cmd))
      local t, total = {}, 0
      for line in (read_file(f) or ""):gmatch("[^\n]+") do
        local calls, name = line:match("^%s*[%d.]+%s+[%d.]+%s+%d+%s+(%d+)%s+%d*%s*([%w_]+)%s*$")
        if calls and name ~= "total" then
          t[#t + 1] = { name = name, n = tonumber(calls) }
        end
      end
      table.sort(t, function(a, b) return a.n > b.n end)
      local parts = {}
      for _, x in ipairs(t) do
        if x.n / ops >= 0.01 then
          parts[#parts + 1] = format("%s %.2f", x.name, x.n / ops)
          total = total + x.n
        end
      end
      return total / ops, concat(parts, ", ")
    end
    local sn = scaled(20000, 100)
    local a, at = counts(format("%s port=%d n=%d", native, port, sn), sn)
    local b, bt = counts(format("%s %d ping", raw, sn), sn)
    add(format("Syscalls per roundtrip (strace -c, %d roundtrips): cosocket LuaJIT **%.2f** (%s); "
               .. "raw C **%.2f** (%s).", sn, a, at, b, bt))
    facts[#facts + 1] = format("%.2f syscalls per roundtrip against raw C's %.2f (%s)", a, b, at)
    add("")
  end
  if have("perf") and ok_exec("perf stat -e cpu-clock true >/dev/null 2>&1") then
    local data = tmp .. "/perf.data"
    local function perf(cmd)
      os.execute(format("cd %s && perf record -q -e cpu-clock -F 20000 -o %s -- "
                        .. "taskset -c 0 %s >/dev/null 2>&1",
                        sh_quote(repo), data, cmd))
    end
    local function report(sort, limit)
      local s = capture(format("perf report -i %s --stdio --no-children --sort %s "
                               .. "--percent-limit %s 2>/dev/null",
                               data, sort, limit))
      local lines = {}
      for line in s:gmatch("[^\n]+") do
        if not line:match("^#") and trim(line) ~= "" then lines[#lines + 1] = trim(line) end
      end
      return lines
    end
    perf(format("%s port=%d n=%d", native, port, n))
    local dso = report("dso", "0.5")
    local sym = report("dso,sym", "0.8")
    perf(format("%s %d ping", raw, n))
    local raw_dso = report("dso", "0.5")
    local function kernel_share(lines)
      for _, l in ipairs(lines) do
        local pct = l:match("^([%d.]+)%%%s+%[kernel")
        if pct then return tonumber(pct) end
      end
    end
    local ka, kb = kernel_share(dso), kernel_share(raw_dso)
    if ka and kb then
      facts[#facts + 1] = format("the kernel takes %.0f%% of the client's CPU (raw C: %.0f%%), "
                                 .. "user space the other %.0f%% (raw C: %.0f%%)",
                                 ka, kb, 100 - ka, 100 - kb)
    end
    add(format("perf (cpu-clock sampling, kernel included, %d roundtrips), by object:", n))
    add("")
    add("```")
    for _, l in ipairs(dso) do add(l) end
    add("```")
    add("")
    add("The raw C client on the same workload, by object:")
    add("")
    add("```")
    for _, l in ipairs(raw_dso) do add(l) end
    add("```")
    add("")
    add("cosocket LuaJIT, top symbols (self time, >= 0.8%):")
    add("")
    add("```")
    for i, l in ipairs(sym) do
      if i > 40 then break end
      add(l)
    end
    add("```")
    add("")
  else
    add("perf: not available.")
    add("")
  end
  if have("valgrind") and have("callgrind_annotate") then
    -- two runs each, n1 and n2 roundtrips: the difference leaves start-up out
    local n1, n2 = scaled(5000, 100), scaled(25000, 500)
    local function cg(env, cmd, nn, file)
      os.execute(format("cd %s && %s taskset -c 0 valgrind --tool=callgrind "
                        .. "--smc-check=all-non-file --callgrind-out-file=%s %s >/dev/null 2>&1",
                        sh_quote(repo), env, file, cmd(nn)))
      local fns, total = {}, nil
      local annotated = capture(format("callgrind_annotate --threshold=100 --auto=no %s", file))
      for line in annotated:gmatch("[^\n]+") do
        local ir, rest = line:match("^%s*([%d,]+)%s+%([%s%d.]+%%%)%s+(.+)$")
        if ir then
          ir = tonumber((ir:gsub(",", "")))
          if rest:match("PROGRAM TOTALS") then
            total = ir
          else
            -- "file:function [object]" -> "function [object basename]"
            local fn, obj = rest:match("^(.-)%s*%[(.-)%]%s*$")
            fn, obj = fn or rest, obj or ""
            fn = fn:gsub("^.*:", "")
            obj = obj:gsub("^.*/", "")
            local name = fn .. (obj ~= "" and " [" .. obj .. "]" or "")
            if obj == "???" then name = "(JIT-compiled Lua code)" end
            fns[name] = (fns[name] or 0) + ir
          end
        end
      end
      return fns, total
    end
    local function per_op(env, cmd)
      local f1, t1 = cg(env, cmd, n1, tmp .. "/cg.1")
      local f2, t2 = cg(env, cmd, n2, tmp .. "/cg.2")
      if not t1 or not t2 then return nil end
      local list = {}
      for name, ir in pairs(f2) do
        local d = (ir - (f1[name] or 0)) / (n2 - n1)
        if d > 0 then list[#list + 1] = { name = name, ir = d } end
      end
      table.sort(list, function(a, b) return a.ir > b.ir end)
      return (t2 - t1) / (n2 - n1), list
    end
    local a, alist = per_op("env " .. lua_env, function(nn)
      return format("luajit %s/clients/cosocket_native.lua w=w1 kind=ping c=100 port=%d n=%d",
                    bench_dir, port, nn)
    end)
    local b, blist = per_op("", function(nn) return format("%s %d ping", raw, nn) end)
    if a and b then
      add(format("callgrind (user-space instructions; runs of %d and %d roundtrips, the difference "
                 .. "divided by %d, so start-up is left out): cosocket LuaJIT **%.0f** "
                 .. "instructions "
                 .. "per roundtrip, raw C **%.0f**.", n1, n2, n2 - n1, a, b))
      add("")
      local top = {}
      for i = 1, #alist do
        if alist[i].name:match("cosocket%.so") and #top < 6 then
          top[#top + 1] = format("%s %.0f", alist[i].name:gsub(" %[cosocket%.so%]", ""),
                                 alist[i].ir)
        end
      end
      facts[#facts + 1] = format("%.0f user-space instructions per roundtrip against raw C's "
                                 .. "%.0f; cosocket.so's biggest: %s", a, b, concat(top, ", "))
      add("cosocket LuaJIT, instructions per roundtrip by function (self):")
      add("")
      add("```")
      for i = 1, math.min(30, #alist) do
        add(format("%8.1f  %5.1f%%  %s", alist[i].ir, alist[i].ir / a * 100, alist[i].name))
      end
      add("```")
      add("")
      add("raw C, instructions per roundtrip by function (self):")
      add("")
      add("```")
      for i = 1, math.min(8, #blist) do
        add(format("%8.1f  %5.1f%%  %s", blist[i].ir, blist[i].ir / b * 100, blist[i].name))
      end
      add("```")
      add("")
    else
      add("callgrind: the runs failed.")
      add("")
    end
  end
  local summary = #facts > 0
    and "Summary: " .. concat(facts, "; ") .. "."
    or "Summary: no profiler was available."
  for i, l in ipairs(out) do
    if l == "@SUMMARY@" then out[i] = summary end
  end
  return concat(out, "\n")
end
