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
 * values it yielded or returned (the error value counts as one).  Inline:
 * every wait of a light thread ends here. */
static inline int cs_resume(lua_State *co, lua_State *from, int nargs,
                            int *nres)
{
#if LUA_VERSION_NUM >= 504
    return lua_resume(co, from, nargs, nres);
#elif LUA_VERSION_NUM >= 502
    int rc = lua_resume(co, from, nargs);
    *nres = lua_gettop(co);
    return rc;
#else
    int rc;
    (void)from;
    rc = lua_resume(co, nargs);
    *nres = lua_gettop(co);
    return rc;
#endif
}

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
 * 5.1 and 5.2 it detects C frames between here and the coroutine (on 5.2
 * but pcall and xpcall: see cs_compat_open).
 * Inline for LuaJIT's and 5.3+'s one call, on every wait. */
int cs_isyieldable_walk(lua_State *L);
static inline int cs_isyieldable(lua_State *L,
                                 int (*jit_isyieldable)(lua_State *))
{
#if LUA_VERSION_NUM >= 503
    (void)jit_isyieldable;
    return lua_isyieldable(L);
#else
    return jit_isyieldable != NULL ? jit_isyieldable(L)
                                   : cs_isyieldable_walk(L);
#endif
}
/* The address of LuaJIT's lua_isyieldable, NULL on PUC 5.1. */
int (*cs_find_isyieldable(void))(lua_State *);
/* Once, when the module opens: on 5.2, remembers the pcall and xpcall it
 * finds, the C functions a yield crosses there (lua_pcallk) but which
 * cs_isyieldable_walk cannot otherwise tell from a blocking C frame. */
void cs_compat_open(lua_State *L);

#endif
