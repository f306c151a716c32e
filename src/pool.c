/* Keepalive pools: see pool.h.  Pools live in a small hash table per
 * scheduler (the watchers' callbacks touch Lua only to drop a parked state
 * from the anchors table, through the scheduler's own coroutine).  An idle
 * connection stays in the state that parked it, watched by that state's
 * own read watcher, left started (unref'd, as after a read:
 * cs_op_linger_read), and by one keepalive timer per pool, also unref'd: a
 * script that pools a connection still ends when its work is done, and
 * parking and taking a connection start and stop no watcher. */
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
    int slot;   /* where the anchors table holds t's userdata */
    double due; /* ev_now when the keepalive timeout ends it; 0: never */
} pool_item;

struct cs_pool {
    cs_pool *next; /* hash chain */
    cs_sched *s;
    int size, backlog; /* backlog -1: none */
    int count;         /* connections counted: connecting, in use, idle */
    int nidle;
    pool_item *idle_head, *idle_tail;
    ev_timer keepalive; /* for the earliest due, or earlier; unref'd */
    double keepalive_due;
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
    int npools;    /* in the buckets: none, no key to hash for a connect */
    /* The anchors table (in the registry) holds the userdata of every
     * parked state at a slot of its own, and their count at 0 (LuaJIT's
     * fast connect looks there first); free slots are kept here. */
    int anchors_ref;
    int *free_slots, nfree, free_cap;
    int nslots; /* slots ever handed out: 1 to nslots */
    /* the pool cs_pool_of_hostport found last, and for what */
    cs_pool *hp_pool;
    int hp_port;
    size_t hp_hlen;
    char hp_host[64];
};

#define SPARE_ITEMS_MAX 64 /* more are freed */

/* A free slot of the anchors table; 0: no memory. */
static int slot_take(struct cs_pools *p)
{
    if (p->nfree > 0)
        return p->free_slots[--p->nfree];
    if (p->nslots == p->free_cap) { /* room for each to come back */
        int cap = p->free_cap > 0 ? 2 * p->free_cap : 16;
        int *n = realloc(p->free_slots, (size_t)cap * sizeof(*n));
        if (n == NULL)
            return 0;
        p->free_slots = n;
        p->free_cap = cap;
    }
    return ++p->nslots;
}

static void slot_give(struct cs_pools *p, int slot)
{
    p->free_slots[p->nfree++] = slot;
}

/* A record with a slot of the anchors table; NULL: no memory. */
static pool_item *item_new(cs_sched *s)
{
    pool_item *it = s->pools->spare;
    int slot = slot_take(s->pools);

    if (slot == 0)
        return NULL;
    if (it == NULL) {
        it = calloc(1, sizeof(*it));
        if (it == NULL) {
            slot_give(s->pools, slot);
            return NULL;
        }
    } else {
        s->pools->spare = it->next;
        s->pools->nspare--;
        memset(it, 0, sizeof(*it));
    }
    it->slot = slot;
    return it;
}

/* Unlinked; its slot's anchor dropped, or dropped by the caller at once. */
static void item_free(cs_sched *s, pool_item *it)
{
    slot_give(s->pools, it->slot);
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
    if (s->pools->npools == 0 && size <= 0)
        return NULL;
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
    s->pools->npools++;
    return pool;
}

cs_pool *cs_pool_of_hostport(cs_sched *s, const char *host, size_t hlen,
                             int port)
{
    struct cs_pools *p = s->pools;
    char key[sizeof(p->hp_host) + 8];
    cs_pool *pool;

    if (p->hp_pool != NULL && p->hp_port == port && p->hp_hlen == hlen &&
        memcmp(p->hp_host, host, hlen) == 0)
        return p->hp_pool;
    if (hlen > sizeof(p->hp_host))
        return NULL; /* the C method's work */
    pool = cs_pool_get(s, key, cs_pool_key(key, host, hlen, port), 0, -1);
    if (pool != NULL) {
        p->hp_pool = pool;
        p->hp_port = port;
        p->hp_hlen = hlen;
        memcpy(p->hp_host, host, hlen);
    }
    return pool;
}

/* A pool with nothing counted and nobody queued goes (SPEC.md 8.1). */
static void pool_maybe_free(cs_pool *pool)
{
    cs_pool **p;

    if (pool->count > 0 || pool->nwaiters > 0 || pool->nidle > 0)
        return;
    if (pool->s->loop != NULL && ev_is_active(&pool->keepalive)) {
        ev_ref(pool->s->loop); /* unref'd: ref first, as libev wants */
        ev_timer_stop(pool->s->loop, &pool->keepalive);
    }
    p = pool_slot(pool->s, pool->key, pool->klen);
    if (*p == pool) {
        *p = pool->next;
        pool->s->pools->npools--;
    }
    if (pool->s->pools->last == pool)
        pool->s->pools->last = NULL;
    if (pool->s->pools->hp_pool == pool)
        pool->s->pools->hp_pool = NULL;
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

static void pool_slot_freed(cs_pool *pool);

/* Pushes the anchors table. */
static void push_anchors(lua_State *L, struct cs_pools *p)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->anchors_ref);
}

/* anchors[slot] = the value on top (popped), or nil (value 0): the table
 * at the top, below it, counts it at index 0 */
static void anchor_set(lua_State *L, int slot, int value)
{
    lua_Integer n;

    if (!value)
        lua_pushnil(L);
    lua_rawseti(L, -2, slot);
    lua_rawgeti(L, -1, 0);
    n = lua_tointeger(L, -1) + (value ? 1 : -1);
    lua_pop(L, 1);
    lua_pushinteger(L, n);
    lua_rawseti(L, -2, 0);
}

void cs_pool_push_anchors(lua_State *L, cs_sched *s)
{
    push_anchors(L, s->pools);
}

/* The pool lets go of the parked state (C only, through the scheduler's
 * own coroutine; nothing to do inside lua_close). */
static void item_unanchor(pool_item *it)
{
    cs_sched *s = it->pool->s;
    lua_State *aux = s->aux;

    if (aux == NULL)
        return;
    push_anchors(aux, s->pools);
    anchor_set(aux, it->slot, 0);
    lua_pop(aux, 1);
}

/* Closes an idle connection: its slot frees up for a queued connect. */
static void item_close(pool_item *it)
{
    cs_pool *pool = it->pool;

    item_unlink(it);
    it->t->parked = NULL;
    cs_tcp_close_fd(it->t); /* its read watcher stops with it */
    item_unanchor(it);
    item_free(pool->s, it);
    pool->count--;
    pool_slot_freed(pool);
}

/* closing it closes the last connection counted in its pool: the pool
 * goes too (pool_maybe_free) */
static int item_is_last(const pool_item *it)
{
    const cs_pool *pool = it->pool;

    return pool->count == 1 && pool->nidle == 1 && pool->nwaiters == 0;
}

void cs_pool_idle_readable(cs_tcp *t)
{
    /* TLS-only records (1.3 session tickets) keep it (DECISIONS.md 7) */
    if (t->tls != NULL && !cs_tls_idle_check(t->tls, t->fd))
        return;
    item_close(t->parked); /* EOF, error or data */
}

/* The keepalive timer fires at the earliest due, or ahead of it.  It
 * repeats (so that libev never stops it by itself, unref'd), with the time
 * to the due it is set for. */
static void keepalive_set(cs_pool *pool, double due)
{
    struct ev_loop *loop = pool->s->loop;
    double in = due - ev_now(loop);
    int was_active = ev_is_active(&pool->keepalive);

    pool->keepalive_due = due;
    pool->keepalive.repeat = in > 0.001 ? in : 0.001;
    ev_timer_again(loop, &pool->keepalive);
    if (!was_active)
        ev_unref(loop);
}

static void keepalive_on_timer(EV_P_ ev_timer *w, int revents)
{
    cs_pool *pool = cs_container_of(w, cs_pool, keepalive);
    cs_sched *s = pool->s;
    double now = ev_now(loop), next = 0;
    pool_item *it;

    (void)revents;
    /* a close may ready a queued connect */
    cs_timer_cb_begin(s, pool->keepalive_due, s->arms++);
    for (;;) { /* one at a time: a close may hand others to a queued connect */
        for (it = pool->idle_tail; it != NULL; it = it->prev)
            if (it->due > 0 && it->due <= now)
                break;
        if (it == NULL)
            break;
        if (item_is_last(it)) {
            item_close(it); /* and the pool with its timer */
            cs_timer_cb_end(s);
            return;
        }
        item_close(it);
    }
    cs_timer_cb_end(s);
    for (it = pool->idle_head; it != NULL; it = it->next)
        if (it->due > 0 && (next == 0 || it->due < next))
            next = it->due;
    if (next > 0) {
        keepalive_set(pool, next);
        return;
    }
    ev_ref(loop);
    ev_timer_stop(loop, w);
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
    t->parked = NULL;
}

/* Hands the idle connection it to t, a state other than the one that
 * parked it (which is left empty): t is connected, counted. */
static void item_give(pool_item *it, cs_tcp *t)
{
    cs_pool *pool = it->pool;
    cs_tcp *from = it->t;
    int fd = from->fd;

    item_unlink(it);
    from->parked = NULL;
    cs_op_forget_fd(&from->rd); /* its watcher stops: t's takes over */
    /* the same open file libev watched: no EV__IOFDSET, no epoll_ctl (the
     * write record, lent per operation, learns it at its first wait) */
    cs_io_set_known(&t->rd.io, fd, EV_READ);
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

cs_tcp *cs_pool_take_slot(cs_pool *pool, int *slot)
{
    pool_item *it = pool->idle_head;
    cs_tcp *t;

    if (it == NULL)
        return NULL;
    t = it->t;
    *slot = it->slot;
    item_unlink(it);
    state_reopen(t, pool, t->fd);
    item_free(pool->s, it);
    return t;
}

cs_tcp *cs_pool_take(lua_State *L, cs_pool *pool)
{
    int slot;
    cs_tcp *t = cs_pool_take_slot(pool, &slot);

    if (t == NULL)
        return NULL;
    push_anchors(L, pool->s->pools);
    lua_rawgeti(L, -1, slot);
    lua_insert(L, -2); /* the state, then the table */
    anchor_set(L, slot, 0);
    lua_pop(L, 1);
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

/* Links it, holding t (counted in pool, anchored at it->slot), as the most
 * recently parked: t's connection idles from now on, watched by t's read
 * watcher and the pool's keepalive timer. */
static void park_item(pool_item *it, cs_pool *pool, cs_tcp *t,
                      double timeout_ms)
{
    cs_sched *s = t->s;

    it->pool = pool;
    it->t = t;
    it->next = pool->idle_head;
    if (pool->idle_head != NULL)
        pool->idle_head->prev = it;
    else
        pool->idle_tail = it;
    pool->idle_head = it;
    pool->nidle++;
    /* closed if the peer closes or sends */
    cs_op_linger_read(&t->rd, t->fd,
                      t->rd.io.fd == t->fd ||
                          (t->wr != NULL && t->wr->io.fd == t->fd));
    t->parked = it;
    if (timeout_ms > 0) {
        it->due = ev_now(s->loop) + timeout_ms / 1000.0;
        if (!ev_is_active(&pool->keepalive)) {
            ev_init(&pool->keepalive, keepalive_on_timer);
            keepalive_set(pool, it->due);
        } else if (it->due < pool->keepalive_due) {
            keepalive_set(pool, it->due);
        }
    }
    t->counted = 0;
    t->pool = NULL;
    cs_tcp_detach(t); /* t is closed; its fd and TLS wait in the pool */
}

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
    push_anchors(L, s->pools);
    lua_rawgeti(L, 1, 1); /* the state of self */
    anchor_set(L, it->slot, 1);
    lua_pop(L, 1);
    park_item(it, pool, t, timeout_ms);
    pool_slot_freed(pool);
    return 1;
}

int cs_pool_park_slot(cs_tcp *t, double timeout_ms)
{
    cs_pool *pool = t->pool;
    pool_item *it;

    if (pool == NULL || !t->counted || pool->nwaiters > 0 ||
        pool->nidle >= pool->size)
        return 0; /* a pool to make, a queued connect, an eviction */
    it = item_new(t->s);
    if (it == NULL)
        return 0;
    park_item(it, pool, t, timeout_ms);
    return it->slot;
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
    s->pools->npools = 0;
    s->pools->last = NULL;
    s->pools->hp_pool = NULL;
    free(s->pools->free_slots);
    s->pools->free_slots = NULL;
    s->pools->nfree = s->pools->free_cap = s->pools->nslots = 0;
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
    lua_newtable(L);
    lua_pushinteger(L, 0);
    lua_rawseti(L, -2, 0);
    s->pools->anchors_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    s->on_shutdown = cs_pool_close_idle;
    cs_register(L, mod, funcs);
}
