/* Time, sleep and timers: cosocket.now/update_time/sleep, timer/every,
 * timer_counts and shutdown (SPEC.md 10.5-10.7, DECISIONS.md 2). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cosocket.h"
#include "compat.h"
#include "ngx_int.h"

/* A pending timer.  libev only marks it fired; the scheduler starts its
 * callback between passes (no Lua runs inside a libev callback). */
struct cs_timer {
    ev_timer w;
    cs_sched *s;
    cs_handler *from; /* creator of a one-shot timer: it waits for it */
    int fn_ref;       /* { f, args... } */
    int nargs;
    int fires; /* firings not yet dispatched */
    unsigned char every, queued, premature, stopped;
    unsigned fired_seq;    /* when it first fired: ordered with threads */
    double due;            /* its next firing (loop time) */
    unsigned arm;          /* s->arms when it was started for it */
    cs_timer *next, *prev; /* s->timers: every timer not yet freed */
    cs_timer *fired_next;  /* s->fired: waiting for dispatch */
};

static lua_Number timer_now(cs_sched *s)
{
    return floor(ev_now(s->loop) * 1000.0) / 1000.0;
}

static int timer_now_lua(lua_State *L)
{
    lua_pushnumber(L, timer_now(cs_sched_get(L)));
    return 1;
}

static int timer_update_time(lua_State *L)
{
    ev_now_update(cs_sched_get(L)->loop);
    return 0;
}

static int timer_sleep(lua_State *L)
{
    cs_sched *s = cs_sched_get(L);
    cs_thread *me = s->current != NULL ? s->current : &s->main;
    cs_op *op;
    int n = lua_gettop(L);
    lua_Number ms;
    int64_t delay;

    if (n != 1)
        return luaL_error(L, "attempt to pass %d arguments, but accepted 1", n);
    ms = luaL_checknumber(L, 1) * 1000;
    delay = cs_ngx_int64(ms); /* NaN and infinities: negative, as ngx's */
    if (delay < 0)
        return luaL_error(L, "invalid sleep duration \"%d\"",
                          cs_ngx_low32(delay));
    if (ms < 1 && s->current == NULL) {
        cs_poll_once(s); /* main: let the others run once */
        return 0;
    }
    if ((op = cs_thread_op(me)) == NULL)
        return luaL_error(L, "no memory");
    cs_op_init(op, s, me, NULL);
    if (ms < 1)
        op->kind = CS_OP_DEFER;
    else
        op->timeout = cs_ms_to_seconds(ms);
    lua_settop(L, 0);
    return cs_wait(L, op);
}

static void timer_unlink(cs_timer *t)
{
    cs_sched *s = t->s;

    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        s->timers = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
}

static void timer_free(cs_timer *t)
{
    timer_unlink(t);
    if (t->s->aux != NULL)
        luaL_unref(t->s->aux, LUA_REGISTRYINDEX, t->fn_ref);
    free(t);
}

void cs_timer_append_fired(cs_sched *s, cs_timer *t)
{
    t->fired_seq = s->seq++;
    t->fired_next = NULL;
    if (s->fired_tail != NULL)
        s->fired_tail->fired_next = t;
    else
        s->fired = t;
    s->fired_tail = t;
}

/* t fired, due at due: its callback starts between two passes, in the
 * order of the poll's timers (cs_due_timer) */
static void timer_queue(cs_timer *t, double due, unsigned arm)
{
    cs_sched *s = t->s;

    t->fires++;
    if (t->queued)
        return;
    t->queued = 1;
    if (!cs_due_timer(s, t, due, arm))
        cs_timer_append_fired(s, t);
}

static void timer_on_fire(EV_P_ ev_timer *w, int revents)
{
    cs_timer *t = cs_container_of(w, cs_timer, w);
    cs_sched *s = t->s;
    double due = t->due;
    unsigned arm = t->arm;

    (void)revents;
    if (!t->every) {
        s->pending_timers--;
        s->oneshot_timers--;
    } else { /* started again for its next firing, as ngx adds it again */
        t->due += t->w.repeat;
        if (t->due < ev_now(loop))
            t->due = ev_now(loop);
        t->arm = s->arms++;
    }
    timer_queue(t, due, arm);
}

/* A one-shot timer that will never run: its creator stops waiting. */
static void timer_release_from(cs_timer *t)
{
    cs_handler *from = t->from;

    t->from = NULL;
    if (from == NULL)
        return;
    from->ntimers--;
    cs_handler_check(from);
    cs_handler_unref(from);
}

static void timer_start_handler(cs_sched *s, cs_timer *t)
{
    lua_State *L = s->aux;
    int top = lua_gettop(L), i;
    cs_handler *h;

    if (!t->premature && s->running_timers >= s->cfg.max_running_timers) {
        s->dropped_timers++;
        if (!s->dropped_reported) {
            fprintf(stderr,
                    "cosocket: %d max_running_timers are not enough: "
                    "timer callbacks were not run\n",
                    s->cfg.max_running_timers);
            s->dropped_reported = 1;
        }
        timer_release_from(t);
        return;
    }
    h = cs_handler_new(s);
    if (h == NULL) {
        s->dropped_timers++;
        timer_release_from(t);
        return;
    }
    h->is_timer = 1;
    h->premature = t->premature;
    s->running_timers++;
    if (t->premature)
        s->premature_running++;
    h->from = t->from; /* the creator's reference moves to the handler */
    t->from = NULL;
    lua_checkstack(L, t->nargs + 4);
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->fn_ref);
    lua_rawgeti(L, -1, 1);
    lua_pushboolean(L, t->premature);
    for (i = 2; i <= t->nargs + 1; i++)
        lua_rawgeti(L, top + 1, i);
    lua_remove(L, top + 1);
    cs_thread_new(L, s, h, t->nargs + 1);
    lua_settop(L, top);
    cs_start_thread(s, h->entry);
}

int cs_timers_dispatch_before(cs_sched *s, int any, unsigned seq)
{
    cs_timer *t = s->fired;

    if (t == NULL || (!any && (int)(t->fired_seq - seq) > 0))
        return 0;
    s->fired = t->fired_next;
    if (s->fired == NULL)
        s->fired_tail = NULL;
    t->queued = 0;
    while (t->fires > 0) {
        t->fires--;
        timer_start_handler(s, t);
    }
    if (!t->every || t->stopped)
        timer_free(t);
    return 1;
}

static int timer_create(lua_State *L, int every)
{
    cs_sched *s = cs_sched_get(L);
    cs_handler *from;
    int n = lua_gettop(L), i;
    lua_Number delay;
    cs_timer *t;

    if (n < 2)
        return luaL_error(L, "expecting at least 2 arguments but got %d", n);
    delay = floor(luaL_checknumber(L, 1) * 1000) / 1000;
    luaL_argcheck(L, delay >= 0, 1, "delay cannot be negative");
    if (every && delay == 0)
        return luaL_error(L, "delay cannot be zero");
    luaL_argcheck(L, cs_is_lua_function(L, 2), 2, "Lua function expected");
    if (s->exiting && delay > 0)
        return cs_fail(L, "process exiting");
    if (s->pending_timers >= s->cfg.max_pending_timers)
        return cs_fail(L, "too many pending timers");
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return cs_fail(L, "no memory");
    lua_createtable(L, n - 1, 0);
    for (i = 2; i <= n; i++) {
        lua_pushvalue(L, i);
        lua_rawseti(L, -2, i - 1);
    }
    t->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    t->nargs = n - 2;
    t->s = s;
    t->every = (unsigned char)every;
    t->next = s->timers;
    if (s->timers != NULL)
        s->timers->prev = t;
    s->timers = t;
    s->pending_timers++;
    if (!every) {
        from = s->current != NULL ? s->current->handler : &s->main_handler;
        from->ntimers++;
        from->refs++;
        t->from = from;
        s->oneshot_timers++;
    }
    ev_timer_init(&t->w, timer_on_fire, delay, every ? delay : 0.);
    ev_timer_start(s->loop, &t->w);
    t->due = ev_now(s->loop) + delay;
    t->arm = s->arms++;
    lua_pushinteger(L, 1);
    return 1;
}

static int timer_at(lua_State *L)
{
    return timer_create(L, 0);
}

static int timer_every(lua_State *L)
{
    return timer_create(L, 1);
}

static int timer_counts(lua_State *L)
{
    cs_sched *s = cs_sched_get(L);

    lua_pushinteger(L, s->running_timers);
    lua_pushinteger(L, s->pending_timers);
    lua_pushinteger(L, s->dropped_timers);
    return 3;
}

static int shutdown_done(void *arg)
{
    cs_sched *s = arg;

    return s->premature_running == 0 && s->fired == NULL;
}

static void shutdown_on_arm(cs_op *op)
{
    cs_queue_push(&op->s->shutdown_waiters, op->thread);
}

static void shutdown_on_cancel(cs_op *op)
{
    if (op->thread->queue == &op->s->shutdown_waiters)
        cs_queue_remove(op->thread);
}

/* The last premature callback is done: every shutdown() returns. */
void cs_shutdown_wake(cs_sched *s)
{
    cs_thread *th;

    while ((th = s->shutdown_waiters.head) != NULL) {
        cs_queue_remove(th);
        cs_op_done(th->waiting);
    }
}

static int timer_shutdown(lua_State *L)
{
    cs_sched *s = cs_sched_get(L);
    cs_thread *me = s->current != NULL ? s->current : &s->main;
    cs_op *op;
    cs_timer *t;

    if (!s->exiting) {
        s->exiting = 1;
        for (t = s->timers; t != NULL; t = t->next) {
            if (t->stopped || (!t->every && t->queued))
                continue; /* already fired: runs normally */
            ev_timer_stop(s->loop, &t->w);
            t->premature = 1;
            t->stopped = 1;
            t->fires = 0;
            s->pending_timers--;
            if (!t->every)
                s->oneshot_timers--;
            timer_queue(t, 0, 0); /* not in a poll: queued at once */
        }
        if (s->on_shutdown != NULL)
            s->on_shutdown(s);
    }
    if (s->current == NULL) {
        cs_drive_until(L, s, shutdown_done, s);
        return 0;
    }
    if (s->current->handler->premature)
        return 0; /* a premature callback would wait for itself */
    while (cs_timers_dispatch_before(s, 1, 0))
        ; /* the premature callbacks start now */
    if (shutdown_done(s))
        return 0;
    if ((op = cs_thread_op(me)) == NULL)
        return luaL_error(L, "no memory");
    cs_op_init(op, s, me, NULL);
    op->on_arm = shutdown_on_arm;
    op->on_cancel = shutdown_on_cancel;
    lua_settop(L, 0);
    return cs_wait(L, op);
}

/* exiting(): shutdown() has begun (ngx.worker.exiting) */
static int timer_exiting(lua_State *L)
{
    lua_pushboolean(L, cs_sched_get(L)->exiting);
    return 1;
}

void cs_timers_free(cs_sched *s)
{
    while (s->timers != NULL) {
        if (s->loop != NULL)
            ev_timer_stop(s->loop, &s->timers->w);
        timer_free(s->timers);
    }
    s->fired = s->fired_tail = NULL;
}

void cs_open_timer(lua_State *L, int mod)
{
    static const luaL_Reg funcs[] = {{"now", timer_now_lua},
                                     {"update_time", timer_update_time},
                                     {"sleep", timer_sleep},
                                     {"timer", timer_at},
                                     {"every", timer_every},
                                     {"timer_counts", timer_counts},
                                     {"shutdown", timer_shutdown},
                                     {"exiting", timer_exiting},
                                     {NULL, NULL}};

    cs_register(L, mod, funcs);
}
