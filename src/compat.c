/* Version shims: see compat.h. */
#include <dlfcn.h>
#include <string.h>

#include "compat.h"

void cs_setfuncs(lua_State *L, const luaL_Reg *l, int nup)
{
    luaL_checkstack(L, nup + 1, "too many upvalues");
    for (; l->name != NULL; l++) {
        int i;
        for (i = 0; i < nup; i++)
            lua_pushvalue(L, -nup);
        lua_pushcclosure(L, l->func, nup);
        lua_setfield(L, -(nup + 2), l->name);
    }
    lua_pop(L, nup);
}

size_t cs_rawlen(lua_State *L, int idx)
{
#if LUA_VERSION_NUM >= 502
    return lua_rawlen(L, idx);
#else
    return lua_objlen(L, idx);
#endif
}

int cs_is_lua_function(lua_State *L, int idx)
{
    return lua_type(L, idx) == LUA_TFUNCTION && !lua_iscfunction(L, idx);
}

#if LUA_VERSION_NUM == 502
/* Registry key: its address, never its (constant) contents. */
static const char yield_through_key = 0;

/* 1 when the C frame ar is one cs_compat_open found: pcall or xpcall. */
static int yields_through(lua_State *L, lua_Debug *ar)
{
    int yes;

    if (!lua_checkstack(L, 3)) /* the set, the function, its entry */
        return 0;
    lua_pushlightuserdata(L, (void *)&yield_through_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    if (!lua_istable(L, -1) || !lua_getinfo(L, "f", ar)) {
        lua_pop(L, 1);
        return 0;
    }
    lua_rawget(L, -2);
    yes = lua_toboolean(L, -1);
    lua_pop(L, 2);
    return yes;
}
#else
#define yields_through(L, ar) 0 /* PUC 5.1: no C frame lets a yield by */
#endif

void cs_compat_open(lua_State *L)
{
#if LUA_VERSION_NUM == 502
    static const char *const names[] = {"pcall", "xpcall"};
    size_t i;

    lua_pushlightuserdata(L, (void *)&yield_through_key);
    lua_newtable(L);
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        lua_getglobal(L, names[i]);
        if (lua_iscfunction(L, -1)) {
            lua_pushboolean(L, 1);
            lua_rawset(L, -3);
        } else {
            lua_pop(L, 1);
        }
    }
    lua_rawset(L, LUA_REGISTRYINDEX);
#else
    (void)L;
#endif
}

int cs_isyieldable_walk(lua_State *L)
{
#if LUA_VERSION_NUM >= 503
    return lua_isyieldable(L);
#else
    lua_Debug ar;
    int level;

    /* Level 0 is the running C function itself; a C frame above it
     * (pcall, xpcall, a C library calling back) blocks the yield, but
     * on 5.2 pcall's and xpcall's. */
    for (level = 1; lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "S", &ar))
            break;
        if (strcmp(ar.what, "C") == 0 && !yields_through(L, &ar))
            return 0;
    }
    return 1;
#endif
}

int (*cs_find_isyieldable(void))(lua_State *)
{
#if LUA_VERSION_NUM == 501
    /* LuaJIT exports it; PUC 5.1 does not.  Calling it through a pointer
     * keeps the module loadable in both (DECISIONS.md 10). */
    union {
        void *p;
        int (*f)(lua_State *);
    } u;
    u.p = dlsym(RTLD_DEFAULT, "lua_isyieldable");
    return u.f;
#else
    return NULL;
#endif
}

int cs_shows_as_integer(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TNUMBER)
        return 0;
#if LUA_VERSION_NUM >= 503
    return lua_isinteger(L, idx);
#else
    {
        lua_Number v = lua_tonumber(L, idx); /* "%.14g": all digits < 1e14 */
        /* the range first: casting NaN or a huge v is undefined */
        return v > -1e14 && v < 1e14 && v == (lua_Number)(long long)v;
    }
#endif
}
