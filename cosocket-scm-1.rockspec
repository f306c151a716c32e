rockspec_format = "3.0"
package = "cosocket"
version = "scm-1"
-- `luarocks make` builds the checkout and ignores the url; `make rock` packs
-- the tree into cosocket/ inside the .src.rock, the directory this url implies
source = { url = "git+https://example.invalid/cosocket.git" }
description = {
  summary = "OpenResty-style cosockets for plain Lua 5.1 and LuaJIT",
  detailed = [[
A C module on libev, libtls and c-ares: non-blocking TCP/TLS cosockets, light
threads, timers and a Lua-side ngx shim, for lua5.1 and luajit outside nginx.]],
  -- license: not decided yet (nothing in STYLE.md / DECISIONS.md)
}
dependencies = { "lua >= 5.1" }
external_dependencies = {
  LIBEV  = { header = "ev.h", library = "ev" },
  LIBTLS = { header = "tls.h", library = "tls" },
  CARES  = { header = "ares.h", library = "cares" },
  PCRE2  = { header = "pcre2.h", library = "pcre2-8" },
}
-- The Makefile is the one build definition: this only forwards variables
build = {
  type = "make",
  build_variables = {
    CFLAGS = "$(CFLAGS)", LIBFLAG = "$(LIBFLAG)", LUA_INCDIR = "$(LUA_INCDIR)",
    LIBEV_INCDIR = "$(LIBEV_INCDIR)", LIBEV_LIBDIR = "$(LIBEV_LIBDIR)",
    LIBTLS_INCDIR = "$(LIBTLS_INCDIR)", LIBTLS_LIBDIR = "$(LIBTLS_LIBDIR)",
    CARES_INCDIR = "$(CARES_INCDIR)", CARES_LIBDIR = "$(CARES_LIBDIR)",
    PCRE2_INCDIR = "$(PCRE2_INCDIR)", PCRE2_LIBDIR = "$(PCRE2_LIBDIR)",
  },
  install_variables = {
    INST_LIBDIR = "$(LIBDIR)", INST_LUADIR = "$(LUADIR)", INST_BINDIR = "$(BINDIR)",
  },
}
-- type "busted" would fetch busted as a rock; the suite needs Debian's tools
test = { type = "command", command = "make test" }
