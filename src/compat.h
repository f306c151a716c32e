/* The only place that knows which Lua it is built for (STYLE.md 6).
 * Shims carry the cs_ prefix: LuaJIT's headers declare 5.2 names that
 * PUC 5.1 does not export. */
#ifndef COSOCKET_COMPAT_H
#define COSOCKET_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#ifndef LUA_OK
#define LUA_OK 0
#endif

/* Resumes co with nargs values on its stack; *nres receives the count of
 * values it yielded or returned (the error value counts as one). */
int cs_resume(lua_State *co, lua_State *from, int nargs, int *nres);

/* Yields the top n values; the caller returns this at once.  A refused
 * yield raises inside, before anything after it runs. */
#define cs_yield(L, n) lua_yield((L), (n))

void cs_setfuncs(lua_State *L, const luaL_Reg *l, int nup);
size_t cs_rawlen(lua_State *L, int idx);
/* 1 for a Lua function, 0 otherwise (C functions, other types). */
int cs_is_lua_function(lua_State *L, int idx);
/* 1 when the value at idx is a number that tostring shows as a plain
 * decimal integer (5.3+ shows an integral float as "6379.0"). */
int cs_shows_as_integer(lua_State *L, int idx);
/* Can L yield here?  Exact where the VM can tell (LuaJIT, 5.3+); on PUC
 * 5.1 it detects pcall-like C frames between here and the coroutine. */
int cs_isyieldable(lua_State *L, int (*jit_isyieldable)(lua_State *));
/* The address of LuaJIT's lua_isyieldable, NULL on PUC 5.1. */
int (*cs_find_isyieldable(void))(lua_State *);

#endif
