-- .luacheckrc: the module targets PUC 5.1 and LuaJIT; specs may test `jit`
std = "lua51"
max_line_length = 100
files["spec/"] = { std = "luajit+busted" }
exclude_files = { "build/", ".rocks/" }
-- conformance/: the harness reads the ngx global (nginx's, or cosocket.ngx's);
-- a case is a chunk run with out, fx, script, scripted and scripted_unix as
-- globals (conformance/harness.lua)
files["conformance/"] = { std = "luajit", read_globals = { "ngx" } }
files["conformance/cases/"] = {
  std = "luajit",
  read_globals = { "ngx", "out", "fx", "script", "scripted", "scripted_unix" },
}
