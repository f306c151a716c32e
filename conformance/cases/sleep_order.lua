-- sleepers wake in the order of their deadlines (SPEC 10.5)
local ts = {}
for _, d in ipairs({ 0.08, 0.02, 0.05, 0.01, 0.11 }) do
  ts[#ts + 1] = ngx.thread.spawn(function()
    ngx.sleep(d)
    out("woke", d)
  end)
end
for _, t in ipairs(ts) do ngx.thread.wait(t) end
out("all done")
