-- ngx.exit in a light thread ends the whole handler: the entry and the
-- other threads never run again, and no pcall stops it
ngx.thread.spawn(function() ngx.sleep(0.05) out("sibling woke") end)
ngx.thread.spawn(function()
  ngx.sleep(0.01)
  out("exiting")
  out(pcall(ngx.exit, 200))
  out("after exit")
end)
out("entry sleeps")
ngx.sleep(0.2)
out("entry woke")
