/* The scheduler: one libev loop per Lua state, the ready queues, and the
 * one place where C gives up control (cs_wait).  DECISIONS.md 2 and 3 are
 * the rules: a wait yields when a light thread is running and drives the
 * loop otherwise; the loop is never driven while a light thread runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cosocket.h"
#include "compat.h"

/* First value a wait yields inside a coroutine that cosocket.coroutine
 * resumed: tells its resume wrappers (coroutine.c), and then the
 * scheduler, that this yield is a wait.  The light thread's own coroutine
 * yields without it (cs_wait). */
static const char wait_sentinel = 0;

void cs_push_wait_sentinel(lua_State *L)
{
    lua_pushlightuserdata(L, (void *)&wait_sentinel);
}

cs_sched *cs_sched_get(lua_State *L)
{
    return (cs_sched *)lua_touserdata(L, lua_upvalueindex(1));
}

void cs_register(lua_State *L, int mod, const luaL_Reg *funcs)
{
    lua_pushvalue(L, mod);
    lua_pushvalue(L, mod + 1);
    cs_setfuncs(L, funcs, 1);
    lua_pop(L, 1);
}

void cs_socket_class(lua_State *L, int mod, const char *mt,
                     const char *state_mt, lua_CFunction gc,
                     const luaL_Reg *methods)
{
    luaL_newmetatable(L, state_mt);
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__close"); /* 5.4's <close>; ignored before */
    lua_pop(L, 1);
    luaL_newmetatable(L, mt);
    lua_newtable(L);
    lua_pushvalue(L, mod + 1);
    cs_setfuncs(L, methods, 1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

int cs_fail(lua_State *L, const char *msg)
{
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
}

double cs_ms_to_seconds(lua_Number ms)
{
    if (!(ms < 9007199254740992.0)) /* inf, NaN, beyond exact integers */
        return 0;
    return (double)(long long)ms / 1000.0;
}

#define FREE_OPS_MAX 64 /* records kept for reuse; more are freed */

cs_op *cs_op_take(cs_sched *s)
{
    cs_op *op = s->free_ops;

    if (op != NULL) {
        s->free_ops = op->aux;
        s->nfree_ops--;
        return op;
    }
    op = calloc(1, sizeof(*op));
    if (op != NULL)
        op->io.fd = -1;
    return op;
}

static void op_stop_watchers(cs_op *op, int linger);

void cs_op_give(cs_sched *s, cs_op *op)
{
    if (op == NULL)
        return;
    if (op->s != NULL) /* used: normally stopped already, delivered */
        op_stop_watchers(op, 0);
    op->io.fd = -1; /* its next owner's fd is a new one to libev */
    if (s->loop == NULL || s->nfree_ops >= FREE_OPS_MAX) {
        free(op);
        return;
    }
    op->aux = s->free_ops;
    s->free_ops = op;
    s->nfree_ops++;
}

void cs_ops_free(cs_sched *s)
{
    cs_op *op;

    while ((op = s->free_ops) != NULL) {
        s->free_ops = op->aux;
        free(op);
    }
    s->nfree_ops = 0;
}

void cs_io_set_known(ev_io *w, int fd, int events)
{
    w->fd = fd; /* libev's documented members, set as ev_io_set would */
    w->events = events;
}

int cs_op_unlinger(cs_op *op)
{
    struct ev_loop *loop = op->s != NULL ? op->s->loop : NULL;
    int io = op->lingering;

    if (op->timer_lingering) {
        op->timer_lingering = 0;
        if (loop != NULL) {
            ev_ref(loop);
            ev_timer_stop(loop, &op->timer);
        }
    }
    if (!io)
        return 0;
    op->lingering = 0;
    if (loop != NULL) { /* else lua_close: the loop and watchers are gone */
        ev_ref(loop);   /* as libev wants before stopping an unref'd one */
        ev_io_stop(loop, &op->io);
    }
    return 1;
}

void cs_op_linger_read(cs_op *op, int fd, int known)
{
    struct ev_loop *loop = op->s->loop;

    if (op->lingering && op->io.fd == fd &&
        (op->io.events & (EV_READ | EV_WRITE)) == EV_READ)
        return; /* so it is, since the last read */
    if (op->lingering) {
        op->lingering = 0;
        ev_ref(loop);
        ev_io_stop(loop, &op->io);
    }
    if (known)
        cs_io_set_known(&op->io, fd, EV_READ);
    else
        ev_io_set(&op->io, fd, EV_READ);
    ev_io_start(loop, &op->io);
    ev_unref(loop);
    op->lingering = 1;
}

void cs_op_forget_fd(cs_op *op)
{
    cs_op_unlinger(op);
    op->io.fd = -1;
}

void cs_op_init(cs_op *op, cs_sched *s, void *self, cs_results_fn results)
{
    int fd, events;

    cs_op_unlinger(op);
    fd = op->io.fd; /* the watcher's settings outlive re-initialising */
    events = op->io.events;
    memset(op, 0, sizeof(*op));
    cs_io_set_known(&op->io, fd, events & (EV_READ | EV_WRITE));
    op->s = s;
    op->self = self;
    op->results = results;
    op->fd = -1;
}

void cs_queue_push(struct cs_queue *q, cs_thread *th)
{
    th->q_next = NULL;
    th->q_prev = q->tail;
    if (q->tail != NULL)
        q->tail->q_next = th;
    else
        q->head = th;
    q->tail = th;
    th->queue = q;
}

void cs_queue_remove(cs_thread *th)
{
    struct cs_queue *q = th->queue;

    if (q == NULL)
        return;
    if (th->q_prev != NULL)
        th->q_prev->q_next = th->q_next;
    else
        q->head = th->q_next;
    if (th->q_next != NULL)
        th->q_next->q_prev = th->q_prev;
    else
        q->tail = th->q_prev;
    th->q_next = th->q_prev = NULL;
    th->queue = NULL;
}

static void queue_insert_before(struct cs_queue *q, cs_thread *at,
                                cs_thread *th)
{
    th->q_next = at;
    th->q_prev = at->q_prev;
    if (at->q_prev != NULL)
        at->q_prev->q_next = th;
    else
        q->head = th;
    at->q_prev = th;
    th->queue = q;
}

static cs_thread *queue_pop(struct cs_queue *q)
{
    cs_thread *th = q->head;

    if (th != NULL)
        cs_queue_remove(th);
    return th;
}

/* linger: the wait completed (not cancelled): a read op keeps them */
static void op_stop_watchers(cs_op *op, int linger)
{
    struct ev_loop *loop = op->s->loop;

    if (loop == NULL)
        return; /* lua_close: the loop is gone, and so are its watchers */
    if (linger && op->may_linger) { /* started still, keeping nothing alive */
        op->lingering = ev_is_active(&op->io) != 0; /* an index: not 0/1 */
        op->timer_lingering = ev_is_active(&op->timer) != 0;
        if (op->lingering)
            ev_unref(loop);
        if (op->timer_lingering)
            ev_unref(loop);
        return;
    }
    cs_op_unlinger(op); /* a cancel after the wait completed */
    if (ev_is_active(&op->io))
        ev_io_stop(loop, &op->io);
    if (ev_is_active(&op->timer))
        ev_timer_stop(loop, &op->timer);
}

static void op_on_io(EV_P_ ev_io *w, int revents)
{
    cs_op *op = cs_container_of(w, cs_op, io);

    (void)loop;
    (void)revents;
    cs_op_done(op);
}

static void op_on_timeout(EV_P_ ev_timer *w, int revents)
{
    cs_op *op = cs_container_of(w, cs_op, timer);
    double left = op->timeout_rest;

    (void)revents;
    if (op->timer_lingering) { /* nobody waits: it just stops */
        op->timer_lingering = 0;
        ev_ref(loop);
        ev_timer_stop(loop, w);
        return;
    }
    if (left > 0) { /* set for an earlier wait: the rest of this one */
        op->timeout_rest = 0;
        w->repeat = left;
        ev_timer_again(loop, w);
        return;
    }
    ev_timer_stop(loop, w);
    op->err = "timeout";
    cs_timer_cb_begin(op->s, op->due, op->arm);
    if (op->on_timeout != NULL)
        op->on_timeout(op); /* a waiters queue to leave, a better text */
    cs_op_done(op);
    cs_timer_cb_end(op->s);
}

/* The op's timer runs from now for seconds (> 0).  Op timers repeat, so
 * that libev never stops one by itself: an unref'd lingering timer must
 * only be stopped after ev_ref. */
static void op_timer_start(cs_op *op, double seconds)
{
    struct ev_loop *loop = op->s->loop;

    op->due = ev_now(loop) + seconds;
    op->arm = op->s->arms++;
    op->timeout_rest = 0;
    if (op->timer_lingering) { /* started: early enough, or restarted */
        double remaining = ev_timer_remaining(loop, &op->timer);

        op->timer_lingering = 0;
        ev_ref(loop);
        if (remaining <= seconds) {
            /* it fires first at its old time; op_on_timeout then runs it
             * on for the rest (durations only: no wall clock involved) */
            op->timeout_rest = seconds - remaining;
            return;
        }
        op->timer.repeat = seconds;
        ev_timer_again(loop, &op->timer);
        return;
    }
    if (ev_is_active(&op->timer))
        ev_timer_stop(loop, &op->timer);
    ev_timer_init(&op->timer, op_on_timeout, seconds, seconds);
    ev_timer_start(loop, &op->timer);
}

/* C only: the wait is on its way; from now on the busy rules apply. */
static void op_arm(cs_op *op, cs_thread *th)
{
    cs_sched *s = op->s;

    op->thread = th;
    op->pending = 1;
    op->done = 0;
    op->err = NULL;
    th->waiting = op;
    switch (op->kind) {
    case CS_OP_DEFER: /* a 0 ms timer of ngx's, after one poll here */
        op->due = ev_now(s->loop);
        op->arm = s->arms++;
        cs_queue_push(&s->deferred, th);
        return;
    case CS_OP_DEFER_IO: /* after one poll's events (poll_loop) */
        cs_queue_push(&s->deferred, th);
        return;
    case CS_OP_POST:
        op->done = 1;
        cs_queue_push(&s->posted, th);
        return;
    default:
        break;
    }
    if (op->lingering) {
        if (op->events != 0 && op->io.fd == op->fd &&
            (op->io.events & (EV_READ | EV_WRITE)) == op->events) {
            op->lingering = 0; /* watching already: ref'd again only */
            ev_ref(s->loop);
            goto io_armed;
        }
        cs_op_unlinger(op);
    }
    if (op->events != 0) {
        if (op->io.cb == NULL)
            ev_init(&op->io, op_on_io);
        /* ev_io_set tells libev the fd may be a new file: its epoll backend
         * then re-adds it, a failing syscall per wait.  Same fd, same events:
         * skip it (closing a descriptor resets io.fd to -1, cs_op_forget_fd) */
        if (op->io.fd != op->fd ||
            (op->io.events & (EV_READ | EV_WRITE)) != op->events)
            ev_io_set(&op->io, op->fd, op->events);
        ev_io_start(s->loop, &op->io);
    }
io_armed:
    if (op->timeout > 0)
        op_timer_start(op, op->timeout);
    else if (op->timer_lingering)
        cs_op_unlinger(op); /* io is not lingering here: timer only */
    if (op->on_arm != NULL)
        op->on_arm(op);
}

/* next: its thread runs before the ready ones (cs_op_done_next) */
static void op_complete(cs_op *op, int next)
{
    cs_thread *th = op->thread;

    if (!op->pending || op->done)
        return;
    op_stop_watchers(op, 1);
    op->done = 1;
    if (th == NULL || th == &op->s->main || th->waiting != op)
        return;
    if (next)
        cs_queue_push(&op->s->posted, th);
    else
        cs_ready_push(op->s, th);
}

void cs_op_done(cs_op *op)
{
    op_complete(op, 0);
}

void cs_op_done_next(cs_op *op)
{
    op_complete(op, 1);
}

void cs_op_cancel(cs_op *op)
{
    cs_thread *th = op->thread;

    if (!op->pending)
        return;
    op_stop_watchers(op, 0);
    if (op->on_cancel != NULL) /* done too: a resource handed out, say */
        op->on_cancel(op);
    op->pending = 0;
    op->done = 0;
    if (th != NULL && th->waiting == op) {
        th->waiting = NULL;
        cs_queue_remove(th);
    }
}

void cs_op_watch(cs_op *op, int fd, int events)
{
    struct ev_loop *loop = op->s->loop;

    cs_op_unlinger(op);
    if (ev_is_active(&op->io))
        ev_io_stop(loop, &op->io);
    op->fd = fd;
    op->events = events;
    if (events == 0)
        return;
    if (op->io.cb == NULL)
        ev_init(&op->io, op_on_io);
    ev_io_set(&op->io, fd, events);
    ev_io_start(loop, &op->io);
}

void cs_op_retime(cs_op *op, double seconds)
{
    struct ev_loop *loop = op->s->loop;

    op->timeout = seconds;
    if (seconds > 0) {
        op_timer_start(op, seconds);
        return;
    }
    if (ev_is_active(&op->timer))
        ev_timer_stop(loop, &op->timer);
}

int cs_can_yield(cs_sched *s, lua_State *L)
{
    return cs_isyieldable(L, s->isyieldable);
}

/* Remembers the coroutines between the light thread and the waiting one,
 * entered in the chain map once the wait is armed. 0: no memory. */
static int chain_save(cs_sched *s, cs_thread *th)
{
    int n = s->wrap_depth - s->wrap_base;

    th->nchain = 0;
    if (n <= 0)
        return 1;
    if (n > th->chaincap) {
        lua_State **p = realloc(th->chain, (size_t)n * sizeof(*p));
        if (p == NULL)
            return 0;
        th->chain = p;
        th->chaincap = n;
    }
    memcpy(th->chain, s->wrap + s->wrap_base, (size_t)n * sizeof(*th->chain));
    th->nchain = n;
    return 1;
}

static void chain_set(cs_sched *s, cs_thread *th, int on)
{
    lua_State *L = s->aux;
    int i;

    if (L == NULL)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->chains_ref);
    for (i = 0; i < th->nchain; i++) {
        lua_pushthread(th->chain[i]);
        lua_xmove(th->chain[i], L, 1);
        if (on)
            lua_pushinteger(L, i == th->nchain - 1 ? 2 : 1);
        else
            lua_pushnil(L);
        lua_rawset(L, -3);
    }
    lua_pop(L, 1);
    th->chain_known = (unsigned char)on;
}

void cs_chain_forget(cs_sched *s, cs_thread *th)
{
    if (th->chain_known)
        chain_set(s, th, 0);
    th->nchain = 0;
}

int cs_chain_role(lua_State *L, cs_sched *s, int idx)
{
    int role;

    lua_rawgeti(L, LUA_REGISTRYINDEX, s->chains_ref);
    lua_pushvalue(L, idx);
    lua_rawget(L, -2);
    role = (int)lua_tointeger(L, -1);
    lua_pop(L, 2);
    return role;
}

/* The coroutine that may wait: the running light thread itself, or the
 * innermost coroutine it resumed through cosocket.coroutine. */
static lua_State *chain_top(cs_sched *s)
{
    if (s->wrap_depth > s->wrap_base)
        return s->wrap[s->wrap_depth - 1];
    return s->current->co;
}

static int drive_op_done(void *arg)
{
    return ((cs_op *)arg)->done;
}

int cs_wait(lua_State *L, cs_op *op)
{
    cs_sched *s = op->s;

    if (s->loop == NULL)
        return luaL_error(L, "cosocket: the Lua state is closing");
    if (s->current == NULL) {
        int n;
        ev_now_update(s->loop); /* DECISIONS.md 3: entering a drive */
        do {
            op_arm(op, &s->main);
            if (!cs_drive_until(L, s, drive_op_done, op)) {
                cs_op_cancel(op);
                return luaL_error(L,
                                  "deadlock: nothing can complete this wait");
            }
            op->pending = 0;
            op->done = 0;
            s->main.waiting = NULL;
            n = op->results != NULL ? op->results(L, op) : 0;
        } while (n == CS_AGAIN);
        return n;
    }
    if (L != chain_top(s))
        return luaL_error(L, "cannot wait inside a nested coroutine: "
                             "use cosocket.coroutine");
    if (!cs_can_yield(s, L))
        return luaL_error(L, "attempt to yield across a C-call boundary "
                             "(on PUC Lua 5.1 use cosocket.pcall)");
    /* Armed by the scheduler once the yield has reached it: a yield
     * refused on the way leaves nothing armed or busy (STYLE.md 3). */
    if (!chain_save(s, s->current))
        return luaL_error(L, "no memory");
    s->arm = op;
    if (s->wrap_depth > s->wrap_base) {
        /* through cosocket.coroutine: its wrappers pass the sentinel up */
        s->arm_bare = 0;
        lua_pushlightuserdata(L, (void *)&wait_sentinel);
        if (lua_gettop(L) > 1)   /* index 1 exists: not only the sentinel */
            lua_pushvalue(L, 1); /* keeps self alive while its thread waits */
        else
            lua_pushnil(L);
        return cs_yield(L, 2);
    }
    /* The light thread's own coroutine yields index 1 alone, the anchor:
     * s->arm says it is a wait (a pushed light userdata costs LuaJIT a
     * lookup).  Nothing can take s->arm for a later plain yield's: a yield
     * refused after cs_can_yield (PUC 5.1 in a metamethod) raises up to
     * the end of the thread, since a pcall on the way would have made
     * cs_can_yield refuse first, and cosocket.pcall is a chain. */
    s->arm_bare = 1;
    lua_settop(L, 1);
    return cs_yield(L, 1);
}

/* Resumes th with nargs values on its stack and books what it did. */
void cs_resume_thread(cs_sched *s, cs_thread *th, int nargs)
{
    cs_thread *prev = s->current;
    int prev_base = s->wrap_base;
    int rc, nres = 0;
    cs_op *op;

    s->current = th;
    s->wrap_base = s->wrap_depth;
    s->arm = NULL;
    rc = cs_resume(th->co, s->aux, nargs, &nres);
    s->current = prev;
    s->wrap_base = prev_base;
    th->initial = 0;
    op = s->arm;
    s->arm = NULL;
    if (th->state != CS_TH_ALIVE)
        return; /* killed while it ran (by a thread it spawned, say) */
    if (rc == LUA_YIELD) {
        if (op != NULL &&
            (s->arm_bare ? nres == 1
                         : nres >= 1 && lua_touserdata(th->co, -nres) ==
                                            &wait_sentinel)) {
            if (op->kind == CS_OP_EXIT) { /* it ended its handler */
                lua_settop(th->co, 0);
                cs_thread_kill(th);
                return;
            }
            th->nanchors = nres;
            if (th->nchain > 0)
                chain_set(s, th, 1);
            op_arm(op, th);
            return;
        }
        /* A plain coroutine.yield() in a light thread: like sleep(0). */
        lua_pop(th->co, nres);
        th->nanchors = 0;
        op = cs_thread_op(th);
        if (op == NULL) { /* no memory to wait with: it cannot go on */
            cs_thread_kill(th);
            return;
        }
        cs_op_init(op, s, th, NULL);
        op->kind = CS_OP_DEFER;
        op_arm(op, th);
        return;
    }
    cs_thread_ended(s, th, rc == LUA_OK, nres);
}

/* Hands th the results of the operation it waited on and resumes it. */
static void deliver(cs_sched *s, cs_thread *th)
{
    cs_op *op = th->waiting;
    lua_State *co = th->co;
    int nres = 0, i;

    if (op != NULL) {
        op->pending = 0;
        op->done = 0;
        if (op->results != NULL) {
            lua_checkstack(co, LUA_MINSTACK);
            nres = op->results(co, op);
            if (nres == CS_AGAIN) {
                op_arm(op, th); /* its chain, if any, is still known */
                return;
            }
        }
    }
    th->waiting = NULL;
    if (th->nchain > 0)
        cs_chain_forget(s, th);
    /* A C function's yield resumes as its return of the top nres values:
     * what lies below them goes with its frame (LuaJIT, PUC 5.1 and 5.4
     * alike), so a wait's anchor alone needs no removal.  The sentinel
     * and anchor of a wait through cosocket.coroutine do: its Lua
     * wrappers pass on everything they are resumed with. */
    if (th->nanchors > 1)
        for (i = 0; i < th->nanchors; i++)
            lua_remove(co, -(nres + 1));
    th->nanchors = 0;
    cs_resume_thread(s, th, nres);
}

static void run_posted(cs_sched *s)
{
    cs_thread *th;

    while ((th = queue_pop(&s->posted)) != NULL)
        deliver(s, th);
}

/* What a timer of the running poll readied (th) or fired (timer), with
 * that timer's deadline and start: libev fires timers of one deadline in
 * no set order, ngx in the order they were started. */
struct cs_due {
    double due;
    unsigned arm;
    cs_thread *th;
    cs_timer *timer;
};

static int due_add(cs_sched *s, cs_thread *th, cs_timer *timer, double due,
                   unsigned arm)
{
    struct cs_due *d;

    if (s->ndues == s->duecap) {
        int cap = s->duecap > 0 ? 2 * s->duecap : 16;
        struct cs_due *n = realloc(s->dues, (size_t)cap * sizeof(*n));

        if (n == NULL)
            return 0; /* queued at once instead: the order is all it costs */
        s->dues = n;
        s->duecap = cap;
    }
    d = &s->dues[s->ndues++];
    d->due = due;
    d->arm = arm;
    d->th = th;
    d->timer = timer;
    return 1;
}

static int due_before(const struct cs_due *a, const struct cs_due *b)
{
    return a->due < b->due || (a->due == b->due && (int)(a->arm - b->arm) < 0);
}

/* Queues what the poll's timers did, by deadline, then start: they come
 * by deadline already (an insertion sort moves only the ties). */
static void due_flush(cs_sched *s)
{
    int i, j;

    for (i = 1; i < s->ndues; i++) {
        struct cs_due d = s->dues[i];

        for (j = i; j > 0 && due_before(&d, &s->dues[j - 1]); j--)
            s->dues[j] = s->dues[j - 1];
        s->dues[j] = d;
    }
    for (i = 0; i < s->ndues; i++) {
        cs_thread *th = s->dues[i].th;

        if (s->dues[i].timer != NULL) {
            cs_timer_append_fired(s, s->dues[i].timer);
        } else if (th->waiting != NULL) { /* not cancelled meanwhile */
            th->ready_seq = s->seq++;
            cs_queue_push(&s->ready, th);
        }
    }
    s->ndues = 0;
}

/* A thread an event readied: queued by the position its event had among
 * those libev was given (ev_pending_count: the invoked watcher's index),
 * behind the threads the poll's timers readied (see poll_loop).  The
 * first one reserves a sequence number for each event; threads of one
 * callback keep their order. */
static void polled_push(cs_sched *s, cs_thread *th)
{
    unsigned fed = ev_pending_count(s->loop);
    cs_thread *at = s->polled_first;

    if (at != NULL && at->queue != &s->ready)
        at = s->polled_first = NULL; /* left the queue: start again */
    if (at == NULL) {                /* the first: its event was given last */
        due_flush(s);                /* the timers' go first */
        s->polled_base = s->seq;
        s->seq += fed + 1;
    } else if ((int)(s->polled_base + fed - s->seq) >= 0) {
        s->seq = s->polled_base + fed + 1; /* not expected: made room */
    }
    th->ready_seq = s->polled_base + fed;
    while (at != NULL && (int)(at->ready_seq - th->ready_seq) <= 0)
        at = at->q_next; /* few: the events come last first */
    if (at == NULL)
        cs_queue_push(&s->ready, th);
    else
        queue_insert_before(&s->ready, at, th);
    if (s->polled_first == NULL || at == s->polled_first)
        s->polled_first = th;
}

int cs_due_timer(cs_sched *s, cs_timer *t, double due, unsigned arm)
{
    return s->polling && due_add(s, NULL, t, due, arm);
}

void cs_ready_push(cs_sched *s, cs_thread *th)
{
    if (s->polling) {
        if (!s->timer_cb) {
            polled_push(s, th);
            return;
        }
        if (due_add(s, th, NULL, s->cb_due, s->cb_arm))
            return;
    }
    th->ready_seq = s->seq++;
    cs_queue_push(&s->ready, th);
}

void cs_timer_cb_begin(cs_sched *s, double due, unsigned arm)
{
    s->timer_cb++;
    s->cb_due = due;
    s->cb_arm = arm;
}

void cs_timer_cb_end(cs_sched *s)
{
    s->timer_cb--;
}

/* One pass of the loop.  libev runs the watchers a pass made pending last
 * first: the timers, fed in reverse so that they come out in expiry order,
 * then epoll's events in reverse.  ngx runs the events in epoll's order:
 * so are the threads they ready queued (polled_push).  What the timers
 * did is queued by deadline, then start (due_flush), before the events,
 * as ngx runs the timers that fell due while a thread ran before it polls
 * again.  (A timer that falls due while ngx waits in epoll_wait runs after
 * the events the wait returns; here it runs before them: a matter of
 * timing only.) */
static int poll_loop(cs_sched *s, int flags)
{
    cs_thread *th;
    int active;

    s->polling = 1;
    /* threads that yielded with sleep(0) run again after this poll, among
     * its timers, as the 0 ms timers ngx makes of them (flags: it does
     * not block then); a connect done at once, after its events */
    while ((th = queue_pop(&s->deferred)) != NULL) {
        th->waiting->done = 1;
        if (th->waiting->kind == CS_OP_DEFER_IO) {
            cs_queue_push(&s->deferred_io, th);
            continue;
        }
        cs_timer_cb_begin(s, th->waiting->due, th->waiting->arm);
        cs_ready_push(s, th);
        cs_timer_cb_end(s);
    }
    active = ev_run(s->loop, flags);
    s->polling = 0;
    due_flush(s);
    s->polled_first = NULL;
    while ((th = queue_pop(&s->deferred_io)) != NULL)
        cs_ready_push(s, th);
    return active;
}

void cs_defer_push(cs_sched *s, cs_defer *d)
{
    if (d->queued)
        return;
    d->queued = 1;
    d->next = NULL;
    if (s->deferred_tail != NULL)
        s->deferred_tail->next = d;
    else
        s->deferred_head = d;
    s->deferred_tail = d;
}

void cs_defer_remove(cs_sched *s, cs_defer *d)
{
    cs_defer **p = &s->deferred_head, *prev = NULL;

    if (!d->queued)
        return;
    while (*p != NULL && *p != d) {
        prev = *p;
        p = &(*p)->next;
    }
    if (*p == NULL)
        return;
    *p = d->next;
    if (s->deferred_tail == d)
        s->deferred_tail = prev;
    d->queued = 0;
}

/* Deferred work in order, stopped by a thread it readied to run next (a
 * semaphore's waiter, which runs before the next one is served). */
static void run_deferred(cs_sched *s)
{
    cs_defer *d;

    while ((d = s->deferred_head) != NULL && s->posted.head == NULL) {
        s->deferred_head = d->next;
        if (s->deferred_head == NULL)
            s->deferred_tail = NULL;
        d->queued = 0;
        d->run(d);
    }
}

/* Runs what is ready, in the order it became ready: threads resumed by
 * events and timer callbacks fired by the loop (ngx's order of expiry). */
void cs_run_ready(cs_sched *s)
{
    for (;;) {
        cs_thread *th;

        run_posted(s);
        th = s->ready.head;
        if (s->fired != NULL &&
            cs_timers_dispatch_before(s, th == NULL,
                                      th != NULL ? th->ready_seq : 0))
            continue;
        if (th == NULL) {
            /* deferred work (a semaphore handing out what post() added)
             * waits until nothing else runs, not even a thread that only
             * yielded: ngx's posted events run after those (SPEC.md 10.8) */
            if (s->deferred_head == NULL || s->deferred.head != NULL)
                return;
            run_deferred(s);
            continue;
        }
        cs_queue_remove(th);
        deliver(s, th);
    }
}

void cs_poll_once(cs_sched *s)
{
    cs_run_ready(s);
    poll_loop(s, EVRUN_NOWAIT);
    cs_run_ready(s);
}

int cs_drive_until(lua_State *L, cs_sched *s, int (*cond)(void *), void *arg)
{
    (void)L;
    ev_now_update(s->loop);
    for (;;) {
        int active, flags;

        /* what fell due with the awaited event runs before main goes on */
        cs_run_ready(s);
        if (cond(arg))
            return 1;
        flags = s->deferred.head != NULL ? EVRUN_NOWAIT : EVRUN_ONCE;
        active = poll_loop(s, flags);
        if (!active && !cond(arg) && s->ready.head == NULL &&
            s->posted.head == NULL && s->fired == NULL &&
            s->deferred_head == NULL)
            return 0; /* no watcher, no timer, no thread can change it */
    }
}

void cs_push_threads(lua_State *L, cs_sched *s)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->threads_ref);
}

/* Pushes on L the error value at the top of co with co's traceback
 * (debug.traceback as it was when the module loaded). */
void cs_push_traceback(lua_State *L, cs_sched *s, lua_State *co)
{
    int top = lua_gettop(L);

    lua_checkstack(co, 2);
    lua_checkstack(L, 4);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->traceback_ref);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    lua_pushvalue(co, -1); /* the error value */
    lua_xmove(co, L, 1);
    if (lua_isfunction(L, -3) && lua_pcall(L, 2, 1, 0) == LUA_OK &&
        lua_isstring(L, -1))
        return;
    lua_settop(L, top); /* no traceback: the plain value stands */
    lua_pushvalue(co, -1);
    lua_xmove(co, L, 1);
}

void cs_report_error(lua_State *co, cs_sched *s, const char *what)
{
    lua_State *L = s->aux;
    int top = lua_gettop(L);
    const char *msg;

    if (lua_type(co, -1) == LUA_TSTRING || lua_type(co, -1) == LUA_TNUMBER)
        cs_push_traceback(L, s, co);
    else
        lua_pushfstring(L, "(error object is a %s value)",
                        lua_typename(co, lua_type(co, -1)));
    msg = lua_tostring(L, -1);
    fprintf(stderr, "cosocket: %s: %s\n", what, msg != NULL ? msg : "?");
    fflush(stderr);
    lua_settop(L, top);
}
