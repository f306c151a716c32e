/* cosocket.semaphore(n): ngx.semaphore's semantics (SPEC.md 10.8).
 * Waiters are threads in a FIFO queue; their wait is an op like any other,
 * so kill and timeouts need nothing special. */
#include <string.h>

#include "cosocket.h"
#include "compat.h"
#include "ngx_int.h"

#define SEMA_MT "cosocket.semaphore"

typedef struct cs_sema {
    cs_sched *s;
    lua_Integer count;
    int nwaiters;
    struct cs_queue waiters; /* FIFO; a waiter leaves it when served */
    cs_defer hand_out;       /* post() hands resources out later, as ngx */
} cs_sema;

static cs_sema *sema_check(lua_State *L)
{
    cs_sema *sema = lua_touserdata(L, 1);

    if (sema != NULL && lua_getmetatable(L, 1)) {
        luaL_getmetatable(L, SEMA_MT);
        if (lua_rawequal(L, -1, -2)) {
            lua_pop(L, 2);
            return sema;
        }
    }
    luaL_error(L, "not a semaphore instance");
    return NULL;
}

static void sema_on_arm(cs_op *op)
{
    cs_sema *sema = op->self;

    cs_queue_push(&sema->waiters, op->thread);
    sema->nwaiters++;
}

static void sema_wake(cs_sema *sema);

/* A waiter times out or is killed: it leaves the queue, or gives back
 * the resource it was handed and has not taken yet. */
static void sema_on_cancel(cs_op *op)
{
    cs_sema *sema = op->self;

    if (op->thread->queue == &sema->waiters) {
        cs_queue_remove(op->thread);
        sema->nwaiters--;
    } else if (op->done && op->err == NULL) {
        sema->count++;
        sema_wake(sema);
    }
}

static int sema_results(lua_State *L, cs_op *op)
{
    /* ngx's asynchronous path returns two values either way */
    lua_pushboolean(L, op->err == NULL);
    if (op->err != NULL)
        lua_pushstring(L, op->err);
    else
        lua_pushnil(L);
    return 2;
}

/* Hands a free resource to the first waiter, between two resumes; that
 * waiter runs before the next is served, as ngx resumes each one as it
 * serves it (a waiter that waits again queues behind the others). */
static void sema_hand_out(cs_defer *d)
{
    cs_sema *sema = cs_container_of(d, cs_sema, hand_out);
    cs_thread *th = sema->waiters.head;

    if (sema->count <= 0 || th == NULL)
        return;
    cs_queue_remove(th);
    sema->nwaiters--;
    sema->count--;
    cs_op_done_next(th->waiting);
    if (sema->count > 0)
        sema_wake(sema); /* the next, once this one has run */
}

static void sema_wake(cs_sema *sema)
{
    if (sema->waiters.head != NULL)
        cs_defer_push(sema->s, &sema->hand_out);
}

/* Counts are lua-resty-core's: a number that is no int (NaN, 1e300)
 * comes in as the most negative int, as its FFI call converts it, and a
 * semaphore that got one is as good as dead (ngx_int.h).  ngx sums them
 * in an int; here the sum stops at the int's ends instead of overflowing. */
static int sema_new(lua_State *L)
{
    cs_sched *s = cs_sched_get(L);
    lua_Number n = lua_isnoneornil(L, 1) ? 0 : luaL_checknumber(L, 1);
    cs_sema *sema;

    if (n < 0) /* NaN passes, as in lua-resty-core */
        return luaL_error(L, "no negative number");
    sema = lua_newuserdata(L, sizeof(*sema));
    sema->s = s;
    sema->count = cs_ngx_int32(n);
    sema->nwaiters = 0;
    sema->waiters.head = sema->waiters.tail = NULL;
    memset(&sema->hand_out, 0, sizeof(sema->hand_out));
    sema->hand_out.run = sema_hand_out;
    luaL_getmetatable(L, SEMA_MT);
    lua_setmetatable(L, -2);
    return 1;
}

static int sema_post(lua_State *L)
{
    cs_sema *sema = sema_check(L);
    lua_Number n = lua_isnoneornil(L, 2) ? 1 : luaL_checknumber(L, 2);
    lua_Integer add;

    if (n < 1) /* NaN passes, as in lua-resty-core */
        return luaL_error(L, "positive number required");
    add = cs_ngx_int32(n);
    if (add > 0 && sema->count > INT32_MAX - add)
        sema->count = INT32_MAX;
    else if (add < 0 && sema->count < INT32_MIN - add)
        sema->count = INT32_MIN;
    else
        sema->count += add;
    sema_wake(sema);
    lua_pushboolean(L, 1);
    return 1;
}

static int sema_wait(lua_State *L)
{
    cs_sema *sema = sema_check(L);
    cs_sched *s = sema->s;
    cs_thread *me = s->current != NULL ? s->current : &s->main;
    cs_op *op;
    lua_Number timeout = luaL_checknumber(L, 2);

    if (timeout < 0)
        return luaL_error(L, "no negative number");
    if (sema->waiters.head == NULL && sema->count > 0) {
        sema->count--;
        lua_pushboolean(L, 1);
        return 1;
    }
    if (timeout < 0.001)
        return cs_fail(L, "timeout");
    if ((op = cs_thread_op(me)) == NULL)
        return luaL_error(L, "no memory");
    cs_op_init(op, s, sema, sema_results);
    op->timeout = cs_ms_to_seconds(timeout * 1000); /* 0: forever */
    op->on_arm = sema_on_arm;
    op->on_cancel = sema_on_cancel;
    op->on_timeout = sema_on_cancel;
    lua_settop(L, 1);
    return cs_wait(L, op);
}

static int sema_count(lua_State *L)
{
    cs_sema *sema = sema_check(L);

    lua_pushinteger(L, sema->count - sema->nwaiters);
    return 1;
}

static int sema_gc(lua_State *L)
{
    cs_sema *sema = lua_touserdata(L, 1);
    cs_thread *th;

    cs_defer_remove(sema->s, &sema->hand_out);
    /* Only inside lua_close can waiters remain: cancel them, C only. */
    while ((th = sema->waiters.head) != NULL) {
        if (th->waiting != NULL)
            cs_op_cancel(th->waiting);
        else
            cs_queue_remove(th);
    }
    return 0;
}

void cs_open_semaphore(lua_State *L, int mod)
{
    static const luaL_Reg methods[] = {{"post", sema_post},
                                       {"wait", sema_wait},
                                       {"count", sema_count},
                                       {NULL, NULL}};
    static const luaL_Reg funcs[] = {{"semaphore", sema_new}, {NULL, NULL}};

    luaL_newmetatable(L, SEMA_MT);
    lua_pushcfunction(L, sema_gc);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);
    lua_pushvalue(L, mod + 1);
    cs_setfuncs(L, methods, 1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    cs_register(L, mod, funcs);
}
