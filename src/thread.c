/* Light threads and handlers: spawn, wait, kill, run (DECISIONS.md 2, 3;
 * SPEC.md 10.2-10.4). */
#include <stdlib.h>
#include <string.h>

#include "cosocket.h"
#include "compat.h"

#define THREAD_MT "cosocket.thread"

/* ---- handlers ---------------------------------------------------------- */

cs_handler *cs_handler_new(cs_sched *s)
{
    cs_handler *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return NULL;
    h->s = s;
    h->entry_ref = LUA_NOREF;
    h->exit_ref = LUA_NOREF;
    h->next = s->handlers;
    if (s->handlers != NULL)
        s->handlers->prev = h;
    s->handlers = h;
    return h;
}

static void handler_free(cs_handler *h)
{
    cs_sched *s = h->s;

    if (h->prev != NULL)
        h->prev->next = h->next;
    else
        s->handlers = h->next;
    if (h->next != NULL)
        h->next->prev = h->prev;
    if (s->aux != NULL) {
        luaL_unref(s->aux, LUA_REGISTRYINDEX, h->entry_ref);
        luaL_unref(s->aux, LUA_REGISTRYINDEX, h->exit_ref);
    }
    free(h);
}

void cs_handler_unref(cs_handler *h)
{
    if (h == &h->s->main_handler)
        return;
    if (--h->refs <= 0 && h->done)
        handler_free(h);
}

static void handler_abort(cs_handler *h)
{
    h->failed = 1;
    while (h->threads != NULL)
        cs_thread_kill(h->threads);
}

void cs_own(cs_handler *h, cs_owned *o)
{
    cs_disown(o);
    o->handler = h;
    o->prev = NULL;
    o->next = h->owned;
    if (h->owned != NULL)
        h->owned->prev = o;
    h->owned = o;
}

void cs_disown(cs_owned *o)
{
    cs_handler *h = o->handler;

    if (h == NULL)
        return;
    if (o->prev != NULL)
        o->prev->next = o->next;
    else
        h->owned = o->next;
    if (o->next != NULL)
        o->next->prev = o->prev;
    o->next = o->prev = NULL;
    o->handler = NULL;
}

static void handler_close_owned(cs_handler *h)
{
    while (h->owned != NULL) {
        cs_owned *o = h->owned;
        cs_disown(o);
        o->close(o);
    }
}

/* Ends h when its entry, its light threads and its timers are done. */
void cs_handler_check(cs_handler *h)
{
    cs_sched *s = h->s;
    cs_handler *from = h->from;

    if (h->done || h->entry == NULL || h->entry->state == CS_TH_ALIVE)
        return;
    /* a timer's handler does not wait for the timers its callback made:
     * they are handlers of their own (the ngx.timer.at re-arm idiom) */
    if (!h->failed && (h->nthreads > 0 || (!h->is_timer && h->ntimers > 0)))
        return;
    h->done = 1;
    h->ntimers = 0;
    handler_close_owned(h);
    if (h->waiter != NULL)
        cs_op_done(h->waiter);
    if (h->is_timer)
        s->running_timers--;
    if (h->premature && --s->premature_running == 0)
        cs_shutdown_wake(s);
    if (from != NULL) {
        h->from = NULL;
        from->ntimers--;
        cs_handler_check(from);
        cs_handler_unref(from);
    }
    h->refs++; /* freed below if nobody else holds it */
    cs_handler_unref(h);
}

/* ---- threads ----------------------------------------------------------- */

static void children_unlink(cs_thread *th)
{
    cs_thread *p = th->parent;

    if (!th->linked)
        return; /* the parent may be gone: never touch it then */
    th->linked = 0;
    if (th->prev_sibling != NULL)
        th->prev_sibling->next_sibling = th->next_sibling;
    else
        p->first_child = th->next_sibling;
    if (th->next_sibling != NULL)
        th->next_sibling->prev_sibling = th->prev_sibling;
    th->next_sibling = th->prev_sibling = NULL;
}

static void release_co(cs_thread *th)
{
    if (th->co_ref != LUA_NOREF && th->s->aux != NULL)
        luaL_unref(th->s->aux, LUA_REGISTRYINDEX, th->co_ref);
    th->co_ref = LUA_NOREF;
}

static void children_detach(cs_thread *th)
{
    cs_thread *c = th->first_child, *next;

    for (; c != NULL; c = next) {
        next = c->next_sibling;
        c->next_sibling = c->prev_sibling = NULL;
        c->linked = 0;
        c->parent = NULL;
        c->waiter = NULL;
        if (c->state == CS_TH_ZOMBIE)
            release_co(c); /* kept for a wait() that will never reap it */
    }
    th->first_child = NULL;
}

static void handler_unlink(cs_thread *th)
{
    cs_handler *h = th->handler;

    if (th->h_prev != NULL)
        th->h_prev->h_next = th->h_next;
    else
        h->threads = th->h_next;
    if (th->h_next != NULL)
        th->h_next->h_prev = th->h_prev;
    th->h_next = th->h_prev = NULL;
    h->nthreads--;
    th->s->nthreads--;
}

cs_op *cs_thread_op(cs_thread *th)
{
    if (th->op == NULL)
        th->op = cs_op_take(th->s);
    return th->op;
}

static int thread_gc(lua_State *L)
{
    cs_thread *th = lua_touserdata(L, 1);

    /* Alive here only inside lua_close: cancel without running Lua. */
    if (th->waiting != NULL)
        cs_op_cancel(th->waiting);
    cs_op_give(th->s, th->op);
    th->op = NULL;
    free(th->chain);
    th->chain = NULL;
    cs_queue_remove(th);
    children_unlink(th);
    return 0;
}

cs_thread *cs_thread_new(lua_State *L, cs_sched *s, cs_handler *h, int nargs)
{
    cs_thread *th, *parent = s->current != NULL ? s->current : &s->main;
    lua_State *co;

    luaL_checkstack(L, 6, NULL);
    co = lua_newthread(L);
    lua_insert(L, -(nargs + 2));
    lua_xmove(L, co, nargs + 1);
    th = lua_newuserdata(L, sizeof(*th));
    memset(th, 0, sizeof(*th));
    luaL_getmetatable(L, THREAD_MT);
    lua_setmetatable(L, -2);
    cs_push_threads(L, s);
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3); /* threads[co] = th, weak in co */
    lua_pop(L, 2);
    lua_pushvalue(L, -1);
    th->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    th->co = co;
    th->s = s;
    th->handler = h;
    h->refs++;
    h->nthreads++;
    s->nthreads++;
    th->h_next = h->threads;
    if (h->threads != NULL)
        h->threads->h_prev = th;
    h->threads = th;
    if (h->entry == NULL && h != &s->main_handler) {
        h->entry = th; /* an entry has no parent: not a user thread */
        lua_pushvalue(L, -1);
        h->entry_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        return th;
    }
    th->parent = parent;
    th->linked = 1;
    th->next_sibling = parent->first_child;
    if (parent->first_child != NULL)
        parent->first_child->prev_sibling = th;
    parent->first_child = th;
    return th; /* the coroutine is on L */
}

/* Runs th until it first waits, then starts the children that it (and they)
 * asked to spawn in that first run, ngx's order (SPEC.md 10.2). */
void cs_start_thread(cs_sched *s, cs_thread *th)
{
    cs_thread *parent = NULL;

    while (th != NULL) {
        th->initial = 1;
        s->spawn_request = NULL;
        if (parent != NULL)
            parent->spawning = 1; /* "normal" while its child runs */
        cs_resume_thread(s, th, lua_gettop(th->co) - 1);
        if (parent != NULL)
            parent->spawning = 0;
        th = s->spawn_request;
        parent = s->spawn_parent;
        s->spawn_request = NULL;
    }
}

void cs_thread_ended(cs_sched *s, cs_thread *th, int ok, int nres)
{
    cs_handler *h = th->handler;
    int is_entry = h->entry == th;

    th->state = CS_TH_ZOMBIE;
    th->failed = !ok;
    th->nres = ok ? nres : 1;
    handler_unlink(th);
    children_detach(th);
    if (!ok && (!is_entry || h->is_timer) && h->exit_ref == LUA_NOREF)
        cs_report_error(th->co, s,
                        is_entry ? "timer callback aborted"
                                 : "light thread aborted");
    if (th->waiter != NULL && th->waiter->pending && !th->waiter->done) {
        th->waiter->aux = th; /* keeps co anchored until it is reaped */
        cs_op_done_next(th->waiter);
    } else {
        release_co(th);
    }
    if (is_entry && !ok)
        handler_abort(h);
    cs_handler_check(h);
    cs_handler_unref(h);
}

void cs_thread_kill(cs_thread *th)
{
    cs_handler *h = th->handler;

    if (th->state != CS_TH_ALIVE)
        return;
    if (th->waiting != NULL)
        cs_op_cancel(th->waiting);
    cs_chain_forget(th->s, th);
    cs_queue_remove(th);
    th->state = CS_TH_DEAD;
    th->nres = 0;
    release_co(th);
    handler_unlink(th);
    children_detach(th);
    children_unlink(th);
    cs_handler_check(h);
    cs_handler_unref(h);
}

static cs_thread *thread_lookup(lua_State *L, cs_sched *s, int idx)
{
    cs_thread *th;

    cs_push_threads(L, s);
    lua_pushvalue(L, idx);
    lua_rawget(L, -2);
    th = lua_touserdata(L, -1);
    lua_pop(L, 2);
    return th;
}

/* Moves the outcome of a finished thread onto L: true, results... or
 * false, err; the thread is reaped (dead). */
static int thread_reap(lua_State *L, cs_thread *th)
{
    int n = th->nres;

    if (th->state != CS_TH_ZOMBIE)
        return 0;
    if (!lua_checkstack(L, n + 1)) {
        n = 0; /* cannot happen with sane result counts; stay safe */
    }
    lua_pushboolean(L, !th->failed);
    lua_xmove(th->co, L, n);
    th->state = CS_TH_DEAD;
    th->nres = 0;
    children_unlink(th);
    release_co(th);
    return n + 1;
}

/* ---- Lua API ----------------------------------------------------------- */

static int spawn_results(lua_State *L, cs_op *op)
{
    (void)op;
    lua_pushvalue(L, -1); /* the child's coroutine, yielded as the anchor */
    return 1;
}

static int chain_is(cs_sched *s, lua_State *L)
{
    if (s->wrap_depth > s->wrap_base)
        return L == s->wrap[s->wrap_depth - 1];
    return L == s->current->co;
}

static int thread_spawn(lua_State *L)
{
    cs_sched *s = cs_sched_get(L);
    cs_thread *cur = s->current, *th;
    cs_handler *h = cur != NULL ? cur->handler : &s->main_handler;

    if (!cs_is_lua_function(L, 1))
        return luaL_argerror(L, 1, "Lua function expected");
    th = cs_thread_new(L, s, h, lua_gettop(L) - 1);
    if (cur != NULL && cur->initial && chain_is(s, L) && cs_can_yield(s, L)) {
        /* The spawner is itself in its first run: it is posted and the
         * one that started it starts the child (ngx's order). */
        s->spawn_request = th;
        s->spawn_parent = cur;
        lua_insert(L, 1); /* the child: the anchor its results push */
        lua_settop(L, 1);
        cs_op *op = cs_thread_op(cur);
        if (op == NULL)
            return luaL_error(L, "no memory");
        cs_op_init(op, s, cur, spawn_results);
        op->kind = CS_OP_POST;
        return cs_wait(L, op);
    }
    cs_start_thread(s, th);
    if (cur == NULL)
        cs_run_ready(s);
    return 1;
}

static int wait_results(lua_State *L, cs_op *op)
{
    cs_thread *th = op->aux, *c;

    for (c = op->thread->first_child; c != NULL; c = c->next_sibling)
        if (c->waiter == op)
            c->waiter = NULL;
    return thread_reap(L, th);
}

static int thread_wait(lua_State *L)
{
    cs_sched *s = cs_sched_get(L);
    cs_thread *me = s->current != NULL ? s->current : &s->main, *th;
    cs_op *op;
    int n = lua_gettop(L), i;

    if (n == 0)
        return luaL_error(L, "at least one coroutine should be specified");
    for (i = 1; i <= n; i++) {
        luaL_argcheck(L, lua_type(L, i) == LUA_TTHREAD, i,
                      "lua thread expected");
        th = thread_lookup(L, s, i);
        if (th == NULL || th->handler->entry == th)
            return luaL_error(L, "attempt to wait on a coroutine that is "
                                 "not a user thread");
        if (th->parent != me)
            return luaL_error(L, "only the parent coroutine can wait on "
                                 "the thread");
        if (th->state == CS_TH_ZOMBIE)
            return thread_reap(L, th);
        if (th->state == CS_TH_DEAD && i == n)
            return cs_fail(L, "already waited or killed");
    }
    if ((op = cs_thread_op(me)) == NULL)
        return luaL_error(L, "no memory");
    cs_op_init(op, s, me, wait_results);
    for (i = 1; i <= n; i++) {
        th = thread_lookup(L, s, i);
        if (th->state == CS_TH_ALIVE)
            th->waiter = op;
    }
    return cs_wait(L, op);
}

static int thread_kill(lua_State *L)
{
    cs_sched *s = cs_sched_get(L);
    cs_thread *me = s->current != NULL ? s->current : &s->main, *th;

    luaL_argcheck(L, lua_type(L, 1) == LUA_TTHREAD, 1, "lua thread expected");
    th = thread_lookup(L, s, 1);
    if (th == NULL || th->handler->entry == th)
        return cs_fail(L, "not user thread");
    if (th->parent != me)
        return cs_fail(L, "killer not parent");
    if (th->state == CS_TH_ZOMBIE) {
        lua_settop(L, 0);
        thread_reap(L, th);
        return cs_fail(L, "already terminated");
    }
    if (th->state == CS_TH_DEAD)
        return cs_fail(L, "already waited or killed");
    cs_thread_kill(th);
    lua_pushinteger(L, 1);
    return 1;
}

/* run's waiter killed (or the state closing): the handler goes on alone. */
static void run_cancel(cs_op *op)
{
    cs_handler *h = op->aux;

    h->waiter = NULL;
    cs_handler_unref(h);
}

/* run: results of a handler, for the Lua wrapper that re-raises. */
static int run_results(lua_State *L, cs_op *op)
{
    cs_handler *h = op->aux;
    cs_sched *s = h->s;
    cs_thread *entry = h->entry;
    int n;

    h->waiter = NULL;
    if (h->exit_ref != LUA_NOREF) {
        lua_pushboolean(L, 0);
        lua_rawgeti(L, LUA_REGISTRYINDEX, h->exit_ref);
        n = 2;
    } else if (!entry->failed) {
        n = entry->nres;
        lua_pushboolean(L, 1);
        lua_checkstack(L, n + 2);
        lua_xmove(entry->co, L, n);
        n++;
    } else {
        lua_pushboolean(L, 0);
        lua_rawgeti(L, LUA_REGISTRYINDEX, s->traced_ref);
        if (lua_type(entry->co, -1) == LUA_TSTRING) {
            lua_pushvalue(entry->co, -1);
            lua_xmove(entry->co, L, 1);
            if (!lua_rawequal(L, -1, -2)) {
                lua_pop(L, 1);
                cs_push_traceback(L, s, entry->co);
            }
            lua_remove(L, -2);
            /* Remember it: an enclosing run re-raises it unchanged. */
            lua_pushvalue(L, -1);
            lua_rawseti(L, LUA_REGISTRYINDEX, s->traced_ref);
        } else {
            lua_pop(L, 1);
            lua_pushvalue(entry->co, -1);
            lua_xmove(entry->co, L, 1);
        }
        n = 2;
    }
    entry->state = CS_TH_DEAD;
    cs_handler_unref(h);
    return n;
}

static int all_done(void *arg)
{
    cs_sched *s = arg;

    return s->nthreads == 0 && s->oneshot_timers == 0 && s->fired == NULL;
}

static int thread_run(lua_State *L)
{
    cs_sched *s = cs_sched_get(L);
    cs_thread *me = s->current != NULL ? s->current : &s->main;
    cs_op *op;
    cs_handler *h;
    cs_thread *entry;

    if (lua_gettop(L) == 0) {
        if (s->current != NULL)
            return luaL_error(L, "cosocket.run() without a function would "
                                 "wait for itself");
        cs_drive_until(L, s, all_done, s);
        lua_pushboolean(L, 1);
        return 1;
    }
    if (!cs_is_lua_function(L, 1))
        return luaL_argerror(L, 1, "Lua function expected");
    h = cs_handler_new(s);
    if (h == NULL)
        return luaL_error(L, "no memory");
    entry = cs_thread_new(L, s, h, lua_gettop(L) - 1);
    (void)entry;
    lua_settop(L, 0);
    if ((op = cs_thread_op(me)) == NULL)
        return luaL_error(L, "no memory");
    cs_op_init(op, s, h, run_results);
    op->aux = h;
    op->on_cancel = run_cancel;
    h->waiter = op;
    h->refs++;
    ev_now_update(s->loop); /* DECISIONS.md 3: entering run refreshes it */
    cs_start_thread(s, h->entry);
    if (h->done) {
        h->waiter = NULL;
        return run_results(L, op);
    }
    return cs_wait(L, op);
}

/* exit_handler(v): ngx.exit in a handler (SPEC 10.2: a light thread
 * calling ngx.exit aborts its handler with every light thread in it).
 * Kills the other threads of the caller's handler, remembers v and ends
 * the caller's thread; a run() waiting for the handler re-raises v.  Returns
 * false for the main chunk and its light threads: the caller then ends the
 * process, as resty-cli does. */
static int thread_exit_handler(lua_State *L)
{
    cs_sched *s = cs_sched_get(L);
    cs_thread *me = s->current, *th;
    cs_op *op;
    cs_handler *h;

    luaL_checkany(L, 1);
    if (me == NULL || me->handler == &s->main_handler) {
        lua_pushboolean(L, 0); /* the main chunk's: the caller exits */
        return 1;
    }
    h = me->handler;
    if (h->exit_ref == LUA_NOREF) {
        lua_pushvalue(L, 1);
        h->exit_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    for (;;) { /* me stays alive, so h does too */
        th = h->threads != me ? h->threads : me->h_next;
        if (th == NULL)
            break;
        cs_thread_kill(th);
    }
    /* Then me ends as if killed: a yield passes a pcall (LuaJIT, and
     * cosocket.pcall on 5.1) as ngx.exit's does; where none can be made,
     * v is raised instead. */
    if (!cs_can_yield(s, L)) {
        lua_settop(L, 1);
        return lua_error(L);
    }
    if ((op = cs_thread_op(me)) == NULL)
        return luaL_error(L, "no memory");
    cs_op_init(op, s, me, NULL);
    op->kind = CS_OP_EXIT;
    return cs_wait(L, op);
}

static const char run_wrapper[] =
    "local run_c, error = ...\n"
    "local function finish(ok, ...)\n"
    "  if ok then return ... end\n"
    "  error((...), 0)\n"
    "end\n"
    "return function(...) return finish(run_c(...)) end\n";

void cs_open_thread(lua_State *L, int mod)
{
    static const luaL_Reg funcs[] = {{"spawn", thread_spawn},
                                     {"wait", thread_wait},
                                     {"kill", thread_kill},
                                     {"exit_handler", thread_exit_handler},
                                     {NULL, NULL}};

    luaL_newmetatable(L, THREAD_MT);
    lua_pushcfunction(L, thread_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    cs_register(L, mod, funcs);
    /* run = wrapper(run_c): the re-raise happens in Lua, after a resume */
    if (luaL_loadbuffer(L, run_wrapper, sizeof(run_wrapper) - 1,
                        "=cosocket.run") != LUA_OK)
        lua_error(L);
    lua_pushvalue(L, mod + 1);
    lua_pushcclosure(L, thread_run, 1);
    lua_getglobal(L, "error");
    lua_call(L, 2, 1);
    lua_setfield(L, mod, "run");
}
