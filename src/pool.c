/* Keepalive pools: see pool.h.  Pools live in a small hash table per
 * scheduler (no Lua in the watchers' callbacks); idle connections are
 * watched by unref'd libev watchers, so a script that pools a connection
 * still ends when its work is done. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pool.h"
#include "compat.h"
#include "tls.h"

#define POOL_BUCKETS 64

/* An idle connection: the state that parked it, which keeps its fd and
 * TLS (a TLS connection stays TLS: no new handshake), anchored in the
 * registry while parked. */
typedef struct pool_item {
    struct pool_item *next, *prev; /* most recently parked first */
    cs_pool *pool;
    cs_tcp *t;
    int ref;       /* registry reference to t's userdata */
    ev_io io;      /* the peer closes or sends: close it */
    ev_timer idle; /* keepalive timeout */
} pool_item;

struct cs_pool {
    cs_pool *next; /* hash chain */
    cs_sched *s;
    int size, backlog; /* backlog -1: none */
    int count;         /* connections counted: connecting, in use, idle */
    int nidle;
    pool_item *idle_head, *idle_tail;
    struct cs_queue waiters; /* queued connects, FIFO */
    int nwaiters;
    size_t klen;
    char key[1];
};

struct cs_pools {
    cs_pool *buckets[POOL_BUCKETS];
    pool_item *spare; /* records of taken connections, for the next park */
    int nspare;
    cs_pool *last; /* the one cs_pool_get found last: usually the next */
};

#define SPARE_ITEMS_MAX 64 /* more are freed */

static pool_item *item_new(cs_sched *s)
{
    pool_item *it = s->pools->spare;

    if (it == NULL)
        return calloc(1, sizeof(*it));
    s->pools->spare = it->next;
    s->pools->nspare--;
    memset(it, 0, sizeof(*it));
    return it;
}

/* Its watchers are stopped. */
static void item_free(cs_sched *s, pool_item *it)
{
    if (s->pools->nspare >= SPARE_ITEMS_MAX) {
        free(it);
        return;
    }
    it->next = s->pools->spare;
    s->pools->spare = it;
    s->pools->nspare++;
}

static unsigned pool_hash(const char *key, size_t len)
{
    unsigned h = 2166136261u; /* FNV-1a */
    size_t i;

    for (i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 16777619u;
    return h % POOL_BUCKETS;
}

static cs_pool **pool_slot(cs_sched *s, const char *key, size_t klen)
{
    cs_pool **p = &s->pools->buckets[pool_hash(key, klen)];

    while (*p != NULL &&
           ((*p)->klen != klen || memcmp((*p)->key, key, klen) != 0))
        p = &(*p)->next;
    return p;
}

cs_pool *cs_pool_get(cs_sched *s, const char *key, size_t klen, int size,
                     int backlog)
{
    cs_pool **p, *pool = s->pools->last;

    if (pool != NULL && pool->klen == klen && memcmp(pool->key, key, klen) == 0)
        return pool;
    p = pool_slot(s, key, klen);
    if (*p != NULL || size <= 0) { /* an existing pool keeps its size */
        s->pools->last = *p;       /* (SPEC.md 2.3) */
        return *p;
    }
    pool = calloc(1, sizeof(*pool) + klen);
    if (pool == NULL)
        return NULL;
    pool->s = s;
    pool->size = size;
    pool->backlog = backlog;
    pool->klen = klen;
    memcpy(pool->key, key, klen);
    *p = pool;
    return pool;
}

/* A pool with nothing counted and nobody queued goes (SPEC.md 8.1). */
static void pool_maybe_free(cs_pool *pool)
{
    cs_pool **p;

    if (pool->count > 0 || pool->nwaiters > 0 || pool->nidle > 0)
        return;
    p = pool_slot(pool->s, pool->key, pool->klen);
    if (*p == pool)
        *p = pool->next;
    if (pool->s->pools->last == pool)
        pool->s->pools->last = NULL;
    free(pool);
}

/* ---- idle connections -------------------------------------------------- */

static void item_unlink(pool_item *it)
{
    cs_pool *pool = it->pool;

    if (it->prev != NULL)
        it->prev->next = it->next;
    else
        pool->idle_head = it->next;
    if (it->next != NULL)
        it->next->prev = it->prev;
    else
        pool->idle_tail = it->prev;
    pool->nidle--;
}

/* Stops the unref'd watchers: ref first, or libev's count goes wrong. */
static void item_unwatch(pool_item *it)
{
    struct ev_loop *loop = it->pool->s->loop;

    if (loop == NULL)
        return;
    if (ev_is_active(&it->io)) {
        ev_ref(loop);
        ev_io_stop(loop, &it->io);
    }
    if (ev_is_active(&it->idle)) {
        ev_ref(loop);
        ev_timer_stop(loop, &it->idle);
    }
}

static void pool_slot_freed(cs_pool *pool);

/* The pool lets go of the parked state (C only: the scheduler's own
 * coroutine drops the reference; none left inside lua_close). */
static void item_unanchor(pool_item *it)
{
    lua_State *aux = it->pool->s->aux;

    if (aux != NULL)
        luaL_unref(aux, LUA_REGISTRYINDEX, it->ref);
}

/* Closes an idle connection: its slot frees up for a queued connect. */
static void item_close(pool_item *it)
{
    cs_pool *pool = it->pool;

    item_unwatch(it);
    item_unlink(it);
    cs_tcp_close_fd(it->t);
    item_unanchor(it);
    item_free(pool->s, it);
    pool->count--;
    pool_slot_freed(pool);
}

static void item_on_readable(EV_P_ ev_io *w, int revents)
{
    pool_item *it = cs_container_of(w, pool_item, io);

    (void)loop;
    (void)revents;
    /* TLS-only records (1.3 session tickets) keep it (DECISIONS.md 7) */
    if (it->t->tls != NULL && !cs_tls_idle_check(it->t->tls, it->t->fd))
        return;
    item_close(it); /* EOF, error or data */
}

static void item_on_idle_timeout(EV_P_ ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    item_close(cs_container_of(w, pool_item, idle));
}

/* t, connected to fd and counted in pool: open for use again */
static void state_reopen(cs_tcp *t, cs_pool *pool, int fd)
{
    t->fd = fd;
    t->reused++;
    t->connected = 1;
    t->read_closed = t->write_closed = 0;
    t->eof = 0;
    t->may_read = 0;
    t->pool = pool;
    t->counted = 1;
    t->conn_errno = 0;
    t->next_addr = 0;
    /* the same open file libev watched: no EV__IOFDSET, no epoll_ctl (the
     * write record, lent per operation, learns it at its first wait) */
    cs_io_set_known(&t->rd.io, fd, EV_READ);
}

/* Hands the idle connection it to t, a state other than the one that
 * parked it (which is left empty): t is connected, counted. */
static void item_give(pool_item *it, cs_tcp *t)
{
    cs_pool *pool = it->pool;
    cs_tcp *from = it->t;
    int fd = from->fd;

    item_unwatch(it);
    item_unlink(it);
    t->reused = from->reused;
    t->is_unix = from->is_unix;
    t->nodelay = from->nodelay;
    t->tls = from->tls;
    t->tls_io = from->tls_io;
    from->fd = -1;
    from->tls = NULL;
    from->tls_io = NULL;
    state_reopen(t, pool, fd);
    item_unanchor(it);
    item_free(pool->s, it);
}

cs_tcp *cs_pool_take(lua_State *L, cs_pool *pool)
{
    pool_item *it = pool->idle_head;
    cs_tcp *t;

    if (it == NULL)
        return NULL;
    t = it->t;
    item_unwatch(it);
    item_unlink(it);
    lua_rawgeti(L, LUA_REGISTRYINDEX, it->ref);
    luaL_unref(L, LUA_REGISTRYINDEX, it->ref);
    state_reopen(t, pool, t->fd);
    item_free(pool->s, it);
    return t;
}

/* ---- counting and queueing --------------------------------------------- */

int cs_pool_connect(cs_pool *pool, cs_tcp *t)
{
    /* the most recently parked: setkeepalive peeked at it, its watcher
     * watched it since; no second peek here (ngx takes it as it is) */
    pool_item *it = pool->idle_head;

    t->pool = pool;
    if (it != NULL) {
        item_give(it, t);
        return CS_POOL_REUSED;
    }
    if (pool->backlog >= 0) {
        /* queued connects count too, as in nginx */
        if (pool->count + pool->nwaiters + 1 > pool->size + pool->backlog)
            return CS_POOL_FULL;
        if (pool->count + 1 > pool->size)
            return CS_POOL_QUEUE;
    }
    pool->count++;
    t->counted = 1;
    return CS_POOL_NEW;
}

void cs_pool_enqueue(cs_tcp *t)
{
    cs_pool *pool = t->pool;

    cs_queue_push(&pool->waiters, t->wr->thread);
    pool->nwaiters++;
    t->queued = 1;
}

void cs_pool_dequeue(cs_tcp *t)
{
    cs_pool *pool = t->pool;

    if (!t->queued)
        return;
    cs_queue_remove(t->wr->thread);
    pool->nwaiters--;
    t->queued = 0;
    t->pool = NULL;
    pool_maybe_free(pool);
}

/* A slot or an idle connection is free: the first queued connect gets it
 * (SPEC.md 8.6): an idle one it takes, else it opens a new one. */
static void pool_slot_freed(cs_pool *pool)
{
    cs_thread *th = pool->waiters.head;
    cs_tcp *t;
    pool_item *it;

    if (th == NULL || pool->s->loop == NULL) {
        pool_maybe_free(pool);
        return;
    }
    t = th->waiting->self;
    cs_queue_remove(th);
    pool->nwaiters--;
    t->queued = 0;
    it = pool->idle_head;
    if (it != NULL) {
        item_give(it, t);
        cs_op_done(t->wr);
        return;
    }
    if (pool->count + 1 > pool->size) { /* not free after all: wait more */
        cs_queue_push(&pool->waiters, th);
        pool->nwaiters++;
        t->queued = 1;
        return;
    }
    pool->count++;
    t->counted = 1;
    cs_tcp_connect_go(t);
}

void cs_pool_release(cs_tcp *t)
{
    cs_pool *pool = t->pool;

    if (t->queued) {
        cs_pool_dequeue(t);
        return;
    }
    t->pool = NULL;
    if (pool == NULL || !t->counted)
        return;
    t->counted = 0;
    if (t->s->loop == NULL)
        return; /* lua_close: the pools are gone */
    pool->count--;
    pool_slot_freed(pool);
}

/* ---- setkeepalive ------------------------------------------------------ */

int cs_pool_park(lua_State *L, cs_tcp *t, int size_idx, double timeout_ms)
{
    cs_sched *s = t->s;
    cs_pool *pool = t->pool;
    pool_item *it;
    int size;

    if (pool == NULL) {
        if (t->key == NULL) { /* connect keeps it whenever no pool counts t */
            lua_pushliteral(L, "closed");
            return 0;
        }
        size = s->cfg.pool_size;
        if (size_idx > 0 && !lua_isnoneornil(L, size_idx))
            size = (int)luaL_checkinteger(L, size_idx);
        pool = cs_pool_get(s, t->key, t->klen, 1, -1);
        if (pool != NULL && pool->count == 0 && pool->nidle == 0 &&
            pool->nwaiters == 0) {
            if (size <= 0) {
                int last = lua_gettop(L); /* before the message is pushed */
                pool_maybe_free(pool);
                return luaL_argerror(
                    L, last,
                    lua_pushfstring(L, "bad \"pool_size\" option value: %d",
                                    size));
            }
            pool->size = size; /* a new pool: this call sizes it */
        }
        if (pool == NULL) {
            lua_pushliteral(L, "no memory");
            return 0;
        }
    }
    it = item_new(s);
    if (it == NULL) {
        lua_pushliteral(L, "no memory");
        return 0;
    }
    if (!t->counted)
        pool->count++; /* made before the pool existed: counted now */
    if (pool->nidle >= pool->size)
        item_close(pool->idle_tail); /* the least recently parked goes */
    lua_rawgeti(L, 1, 1); /* the state of self */
    it->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    it->pool = pool;
    it->t = t;
    it->next = pool->idle_head;
    if (pool->idle_head != NULL)
        pool->idle_head->prev = it;
    else
        pool->idle_tail = it;
    pool->idle_head = it;
    pool->nidle++;
    ev_init(&it->io, item_on_readable);
    if (t->rd.io.fd == t->fd || (t->wr != NULL && t->wr->io.fd == t->fd))
        cs_io_set_known(&it->io, t->fd, EV_READ); /* no epoll_ctl */
    else
        ev_io_set(&it->io, t->fd, EV_READ);
    ev_io_start(s->loop, &it->io);
    ev_unref(s->loop);
    if (timeout_ms > 0) {
        ev_init(&it->idle, item_on_idle_timeout);
        it->idle.repeat = timeout_ms / 1000.0;
        ev_timer_again(s->loop, &it->idle); /* repeating: safe unref'd */
        ev_unref(s->loop);
    }
    t->counted = 0;
    t->pool = NULL;
    cs_tcp_detach(t); /* t is closed; its fd and TLS wait in the pool */
    pool_slot_freed(pool);
    return 1;
}

void cs_pool_close_idle(cs_sched *s)
{
    int i;

    for (i = 0; i < POOL_BUCKETS; i++) {
        cs_pool *pool = s->pools->buckets[i], *next;
        for (; pool != NULL; pool = next) {
            next = pool->next;
            while (pool->idle_head != NULL) {
                /* closing the last connection of a pool frees the pool */
                int last =
                    pool->nidle == 1 && pool->count == 1 && pool->nwaiters == 0;
                item_close(pool->idle_head);
                if (last)
                    break;
            }
        }
    }
}

void cs_pools_free(cs_sched *s)
{
    int i;

    for (i = 0; i < POOL_BUCKETS; i++) {
        cs_pool *pool = s->pools->buckets[i], *next;
        for (; pool != NULL; pool = next) {
            pool_item *it = pool->idle_head, *inext;
            next = pool->next;
            for (; it != NULL; it = inext) {
                inext = it->next; /* the state's finalizer closes it */
                free(it);
            }
            free(pool);
        }
        s->pools->buckets[i] = NULL;
    }
    s->pools->last = NULL;
    while (s->pools->spare != NULL) {
        pool_item *it = s->pools->spare;
        s->pools->spare = it->next;
        free(it);
    }
    s->pools->nspare = 0;
}

/* pool_stats(): { [key] = { idle = n, in_use = n, queued = n } } */
static int pool_stats(lua_State *L)
{
    cs_sched *s = cs_sched_get(L);
    int i;

    lua_newtable(L);
    for (i = 0; i < POOL_BUCKETS; i++) {
        cs_pool *pool;
        for (pool = s->pools->buckets[i]; pool != NULL; pool = pool->next) {
            lua_pushlstring(L, pool->key, pool->klen);
            lua_createtable(L, 0, 5);
            lua_pushinteger(L, pool->nidle);
            lua_setfield(L, -2, "idle");
            lua_pushinteger(L, pool->count - pool->nidle);
            lua_setfield(L, -2, "in_use");
            lua_pushinteger(L, pool->nwaiters);
            lua_setfield(L, -2, "queued");
            lua_pushinteger(L, pool->size);
            lua_setfield(L, -2, "size");
            lua_pushinteger(L, pool->backlog);
            lua_setfield(L, -2, "backlog");
            lua_rawset(L, -3);
        }
    }
    return 1;
}

void cs_open_pool(lua_State *L, int mod)
{
    static const luaL_Reg funcs[] = {{"pool_stats", pool_stats}, {NULL, NULL}};
    cs_sched *s = lua_touserdata(L, mod + 1);

    s->pools = lua_newuserdata(L, sizeof(*s->pools));
    memset(s->pools, 0, sizeof(*s->pools));
    s->pools_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    s->on_shutdown = cs_pool_close_idle;
    cs_register(L, mod, funcs);
}
