-- Busted output handler, used as `busted -o spec/summary_handler.lua` by spec/run-all.
--
-- Prints one line per spec file with a mark per test (. passed, F failed, E error, P pending),
-- each failure or error AS IT HAPPENS (a C crash later in the run must not hide it): name,
-- where, message, traceback. At the end of the suite it prints the names of the failed tests
-- and one machine-readable line that spec/run-all sums over runs:
--
--   cosocket-busted-counts: passed=N failed=N errors=N skipped=N
--
-- Output goes to a log file, so every write is flushed and nothing is coloured.
local pretty = require "pl.pretty"

return function(_options)   -- busted passes its options; none are needed
  local busted = require "busted"
  local handler = require "busted.outputHandlers.base"()
  local write, flush = io.write, io.flush
  local at_line_start = true
  local problems = {}   -- names of failed / errored tests and blocks, in order

  local function out(s)
    write(s)
    flush()
    at_line_start = s:sub(-1) == "\n"
  end

  local function message_of(m)
    if type(m) == "string" then return m end
    if m == nil then return "Nil error" end
    return pretty.write(m)
  end

  -- failure (an assertion) or error (anything raised), in an `it` or in a
  -- describe block, file load, before_each...: busted publishes them all here
  local function report(kind)
    return function(element, parent, message, debug)
      local f = handler.format(element, parent, message, debug, kind == "ERROR")
      local where = ""
      local t = f.element.trace
      if t and t.short_src then
        where = " (" .. t.short_src .. ":" .. tostring(t.currentline) .. ")"
      end
      local name = f.name
      if element.descriptor ~= "it" then
        name = name .. " [" .. tostring(element.descriptor) .. "]"
      end
      problems[#problems + 1] = kind .. ": " .. name
      local s = (at_line_start and "" or "\n") .. "---- " .. kind .. ": " .. name .. where
        .. "\n" .. (f.randomseed and ("Random seed: " .. f.randomseed .. "\n") or "")
        .. message_of(f.message) .. "\n"
      if f.trace and f.trace.traceback then
        s = s .. f.trace.traceback:gsub("\n*$", "") .. "\n"
      end
      out(s .. "----\n")
      return nil, true
    end
  end

  local marks = { success = ".", failure = "F", error = "E", pending = "P" }

  busted.subscribe({ "file", "start" }, function(file)
    out((at_line_start and "" or "\n") .. file.name .. " ")
    return nil, true
  end)

  busted.subscribe({ "file", "end" }, function()
    out("\n")
    return nil, true
  end)

  busted.subscribe({ "test", "end" }, function(_, _, status)
    out(marks[status] or "?")
    return nil, true
  end, { predicate = handler.cancelOnPending })

  busted.subscribe({ "failure" }, report("FAILED"))
  busted.subscribe({ "error" }, report("ERROR"))

  busted.subscribe({ "suite", "end" }, function()
    local s = at_line_start and "" or "\n"
    for _, p in ipairs(problems) do
      s = s .. p .. "\n"
    end
    s = s .. string.format("%d successes / %d failures / %d errors / %d pending : %.3f seconds\n",
      handler.successesCount, handler.failuresCount, handler.errorsCount, handler.pendingsCount,
      handler.getDuration())
    s = s .. string.format("cosocket-busted-counts: passed=%d failed=%d errors=%d skipped=%d\n",
      handler.successesCount, handler.failuresCount, handler.errorsCount, handler.pendingsCount)
    out(s)
    problems = {}
    return nil, true
  end)

  return handler
end
