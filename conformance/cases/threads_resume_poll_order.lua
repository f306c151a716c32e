-- light threads whose sockets became readable by the same poll resume in
-- the order the data came in (ngx: epoll's order), not the reverse
local socks, log = {}, {}
for i = 1, 3 do socks[i] = scripted("l") end
local function busy(s) -- no yield: what arrives meanwhile waits for the poll
  ngx.update_time()
  local t0 = ngx.now()
  repeat ngx.update_time() until ngx.now() - t0 >= s
end
local ts = {}
for i = 1, 3 do
  ts[i] = ngx.thread.spawn(function()
    local line = socks[i]:receive()
    log[#log + 1] = "T" .. i .. " " .. tostring(line)
  end)
end
for i = 1, 3 do
  socks[i]:send(i .. "\n")
  busy(0.03)
end
for i = 1, 3 do ngx.thread.wait(ts[i]) end
out(table.concat(log, " "))
