/* luaopen_cosocket: the scheduler of this Lua state and the module table.
 * Idempotent per state (busted reloads modules for each spec file): a
 * second call returns the table bound to the existing scheduler. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cosocket.h"
#include "compat.h"
#include "buffer.h"
#include "resolver.h"
#include "pool.h"
#include "tls.h"

#define SCHED_MT "cosocket.sched"

/* Registry keys: their addresses, never their (constant) contents. */
static const char module_key = 0;

static void handlers_free(cs_sched *s)
{
    cs_handler *h = s->handlers, *next;

    for (; h != NULL; h = next) {
        next = h->next;
        while (h->owned != NULL)
            cs_disown(h->owned); /* the objects are finalized on their own */
        free(h);
    }
    s->handlers = NULL;
}

/* Runs only in lua_close: stops everything without running Lua.  Objects
 * finalized after this see s->loop == NULL and leave watchers alone. */
static int sched_gc(lua_State *L)
{
    cs_sched *s = lua_touserdata(L, 1);

    if (s->loop == NULL)
        return 0;
    s->aux = NULL; /* no registry work: the state is going away */
    cs_timers_free(s);
    cs_resolver_free(s);
    cs_pools_free(s);
    cs_tls_state_free(s);
    handlers_free(s);
    ev_loop_destroy(s->loop);
    s->loop = NULL;
    cs_buffer_cache_free(s->buffers);
    cs_ops_free(s);
    free(s->spare_lookup); /* lookups dropped from now on are freed */
    s->spare_lookup = NULL;
    free(s->dues);
    s->dues = NULL;
    free(s->iov);
    free(s->iov_isnum);
    free(s->nums);
    free(s->udp_buf);
    s->udp_buf = NULL;
    s->iov = NULL;
    s->iov_isnum = NULL;
    s->nums = NULL;
    return 0;
}

static cs_sched *sched_new(lua_State *L)
{
    cs_sched *s = lua_newuserdata(L, sizeof(*s));

    memset(s, 0, sizeof(*s));
    luaL_newmetatable(L, SCHED_MT);
    lua_pushcfunction(L, sched_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    s->loop = ev_loop_new(EVFLAG_AUTO);
    if (s->loop == NULL)
        luaL_error(L, "cosocket: cannot create an event loop");
    s->aux = lua_newthread(L);
    s->aux_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L); /* coroutine -> thread, weak in the coroutine */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    s->threads_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L); /* coroutine -> role in a waiting chain, weak keys */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    s->chains_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getglobal(L, "debug");
    if (lua_istable(L, -1))
        lua_getfield(L, -1, "traceback");
    else
        lua_pushnil(L);
    s->traceback_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
    lua_pushboolean(L, 0);
    s->traced_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    s->isyieldable = cs_find_isyieldable();
    cs_compat_open(L);
    cs_config_defaults(&s->cfg);
    s->buffers = lua_newuserdata(L, sizeof(*s->buffers));
    memset(s->buffers, 0, sizeof(*s->buffers));
    s->buffers_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    s->main.s = s;
    s->main.handler = &s->main_handler;
    s->main_handler.s = s;
    s->main_handler.exit_ref = LUA_NOREF;
    s->main_handler.entry_ref = LUA_NOREF;
    s->main.op = &s->main_op;
    cs_op_init(s->main.op, s, &s->main, NULL);
    return s;
}

static int module_pid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)getpid());
    return 1;
}

CS_EXPORT int luaopen_cosocket(lua_State *L)
{
    int mod;

    lua_pushlightuserdata(L, (void *)&module_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    if (lua_istable(L, -1))
        return 1;
    lua_pop(L, 1);
    lua_newtable(L);
    mod = lua_gettop(L);
    sched_new(L); /* at mod + 1: upvalue 1 of every function */
    cs_open_thread(L, mod);
    cs_open_timer(L, mod);
    cs_open_semaphore(L, mod);
    cs_open_coroutine(L, mod);
    cs_open_config(L, mod);
    cs_open_pool(L, mod); /* before tcp: its fast paths hold the anchors */
    cs_open_tcp(L, mod);
    cs_open_tls(L, mod);
    cs_open_ngx_helpers(L, mod);
    cs_open_udp(L, mod);
    lua_pushliteral(L, "cosocket scm");
    lua_setfield(L, mod, "_VERSION");
    lua_pushcfunction(L, module_pid);
    lua_setfield(L, mod, "pid");
    lua_pushlightuserdata(L, NULL); /* ngx.null: the NULL light userdata */
    lua_setfield(L, mod, "null");
    lua_pushlightuserdata(L, (void *)&module_key);
    lua_pushvalue(L, mod);
    lua_rawset(L, LUA_REGISTRYINDEX);
    lua_settop(L, mod);
    return 1;
}
