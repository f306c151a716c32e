/* Gathering of send data (SPEC.md 4): strings, numbers, booleans, nil and
 * nested array tables become an iovec over the Lua strings themselves, in
 * the scheduler's scratch arrays (one send gathers at a time: no
 * allocation per send once they have grown).  TCP and UDP send share it. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "cosocket.h"
#include "gather.h"
#include "ngx_int.h"

#define GATHER_MAX_DEPTH 100

/* One send call's gathering, in the scheduler's scratch arrays (only one
 * send gathers at a time: no allocation per send once they have grown). */
typedef struct gather_ctx {
    cs_sched *s;
    int n;           /* iovec entries used */
    size_t total;    /* bytes */
    size_t nums_len; /* formatted numbers; their entries hold offsets */
    int idx;         /* the argument, for errors */
} gather_ctx;

static int gather_grow(cs_sched *s)
{
    int cap = s->iovcap ? s->iovcap * 2 : 64;
    struct iovec *iov = realloc(s->iov, (size_t)cap * sizeof(*iov));
    unsigned char *isn;

    if (iov == NULL)
        return 0;
    s->iov = iov;
    isn = realloc(s->iov_isnum, (size_t)cap);
    if (isn == NULL)
        return 0;
    s->iov_isnum = isn;
    s->iovcap = cap;
    return 1;
}

static int gather_piece(gather_ctx *c, const char *p, size_t len, int is_num)
{
    cs_sched *s = c->s;

    if (len == 0)
        return 1;
    if (c->n == s->iovcap && !gather_grow(s))
        return 0;
    s->iov[c->n].iov_base = (void *)p;
    s->iov[c->n].iov_len = len;
    s->iov_isnum[c->n] = (unsigned char)is_num;
    c->n++;
    c->total += len;
    return 1;
}

/* ngx_lua's number text: int32 values as integers, others as %.14g */
static int gather_number(gather_ctx *c, lua_Number v)
{
    cs_sched *s = c->s;
    char tmp[64];
    int i = cs_ngx_int32(v), len; /* INT32_MIN for what does not fit */

    if (v == (lua_Number)i)
        len = snprintf(tmp, sizeof(tmp), "%d", i);
    else
        len = snprintf(tmp, sizeof(tmp), "%.14g", (double)v);
    if (c->nums_len + (size_t)len > s->nums_cap) {
        size_t cap = s->nums_cap ? s->nums_cap * 2 : 256;
        char *p;
        while (cap < c->nums_len + (size_t)len)
            cap *= 2;
        p = realloc(s->nums, cap);
        if (p == NULL)
            return 0;
        s->nums = p;
        s->nums_cap = cap;
    }
    memcpy(s->nums + c->nums_len, tmp, (size_t)len);
    if (!gather_piece(c, (const char *)(uintptr_t)c->nums_len, (size_t)len, 1))
        return 0;
    c->nums_len += (size_t)len;
    return 1;
}

static void gather_raise(lua_State *L, gather_ctx *c, const char *msg)
{
    luaL_argerror(L, c->idx, msg);
}

/* Gathers the array table at idx (strict, as ngx_lua). May raise. */
static void gather_table(lua_State *L, gather_ctx *c, int idx, int depth)
{
    lua_Number max = 0;
    int i, n;

    if (depth > GATHER_MAX_DEPTH)
        gather_raise(L, c, "tables nested too deep");
    luaL_checkstack(L, 4, NULL);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_Number k = lua_tonumber(L, -2);
        if (lua_type(L, -2) != LUA_TNUMBER || !(k >= 1) ||
            k >= 9223372036854775808.0 || k != (lua_Number)(long long)k)
            gather_raise(L, c, "non-array table found");
        if (k > max)
            max = k;
        lua_pop(L, 1);
    }
    n = max > INT_MAX ? INT_MAX : (int)max;
    for (i = 1; i <= n; i++) {
        size_t len;
        const char *p;
        int ok = 1;

        lua_rawgeti(L, idx, i);
        switch (lua_type(L, -1)) {
        case LUA_TSTRING:
            p = lua_tolstring(L, -1, &len);
            ok = gather_piece(c, p, len, 0); /* the table anchors the string */
            break;
        case LUA_TNUMBER:
            ok = gather_number(c, lua_tonumber(L, -1));
            break;
        case LUA_TTABLE:
            gather_table(L, c, lua_gettop(L), depth + 1);
            break;
        default:
            gather_raise(L, c,
                         lua_pushfstring(L, "bad data type %s found",
                                         luaL_typename(L, -1)));
        }
        lua_pop(L, 1);
        if (!ok)
            luaL_error(L, "no memory");
    }
}

int cs_gather(lua_State *L, cs_sched *s, int idx, size_t *total)
{
    gather_ctx c;
    const char *p;
    size_t len;
    int i, type = lua_type(L, idx), ok = 1;

    memset(&c, 0, sizeof(c));
    c.s = s;
    c.idx = idx;
    switch (type) {
    case LUA_TSTRING:
        p = lua_tolstring(L, idx, &len);
        ok = gather_piece(&c, p, len, 0);
        break;
    case LUA_TNUMBER:
        ok = gather_number(&c, lua_tonumber(L, idx));
        break;
    case LUA_TBOOLEAN:
        p = lua_toboolean(L, idx) ? "true" : "false";
        ok = gather_piece(&c, p, strlen(p), 0);
        break;
    case LUA_TNIL:
        ok = gather_piece(&c, "nil", 3, 0);
        break;
    case LUA_TTABLE:
        gather_table(L, &c, idx, 0);
        break;
    default:
        luaL_argerror(L, idx,
                      lua_pushfstring(L,
                                      "string, number, boolean, nil, or array "
                                      "table expected, got %s",
                                      lua_typename(L, type)));
    }
    if (!ok)
        luaL_error(L, "no memory");
    for (i = 0; i < c.n; i++) /* numbers: offsets into s->nums until now */
        if (s->iov_isnum[i])
            s->iov[i].iov_base = s->nums + (uintptr_t)s->iov[i].iov_base;
    *total = c.total;
    return c.n;
}
