/* ngx's integer conversions of Lua numbers, as they come out on x86-64
 * (the oracle's platform), written without C's undefined conversions.
 * There NaN and numbers that do not fit become the most negative value
 * (cvttsd2si), so ngx reports them, or works with them, as such: tested
 * by conformance/cases/args_nan_inf.lua. */
#ifndef COSOCKET_NGX_INT_H
#define COSOCKET_NGX_INT_H

#include <stdint.h>
#include <lua.h>

/* (ngx_int_t) v, and LuaJIT's lua_tointeger(v) */
static inline int64_t cs_ngx_int64(lua_Number v)
{
    return v >= -9223372036854775808.0 && v < 9223372036854775808.0 ? (int64_t)v
                                                                    : INT64_MIN;
}

/* (int) of such an integer, and what "%d" prints of one: its low 32 bits */
static inline int cs_ngx_low32(int64_t i)
{
    uint32_t u = (uint32_t)(uint64_t)i;

    return u < 0x80000000u ? (int)u : (int)(u - 0x80000000u) + INT32_MIN;
}

/* (int) lua_tointeger(v): ngx's port numbers */
static inline int cs_ngx_int(lua_Number v)
{
    return cs_ngx_low32(cs_ngx_int64(v));
}

/* LuaJIT's FFI conversion to an int argument: lua-resty-core's counts */
static inline int cs_ngx_int32(lua_Number v)
{
    return v >= -2147483648.0 && v < 2147483648.0 ? (int)v : INT32_MIN;
}

#endif
