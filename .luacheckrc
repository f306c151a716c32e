-- .luacheckrc: the module targets PUC 5.1 and LuaJIT; specs may test `jit`
std = "lua51"
max_line_length = 100
files["spec/"] = { std = "luajit+busted" }
exclude_files = { "build/", ".rocks/" }
