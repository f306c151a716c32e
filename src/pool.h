/* Keepalive pools by key (SPEC.md 8): idle connections parked by
 * setkeepalive, handed out LIFO by connect, watched while idle; a pool's
 * size and backlog bound the connections counted against it. */
#ifndef COSOCKET_POOL_H
#define COSOCKET_POOL_H

#include "tcp.h"

typedef struct cs_pool cs_pool;

/* The pool of key, created with size/backlog when missing and size > 0
 * (backlog -1: none).  NULL when missing and not created. */
cs_pool *cs_pool_get(cs_sched *s, const char *key, size_t klen, int size,
                     int backlog);

/* The pool of the key host .. ":" .. port (port: 1 to 65535), as
 * cs_pool_get without creating one: NULL when missing or when the host is
 * too long for its cache of the last one found (then the C method looks
 * it up). */
cs_pool *cs_pool_of_hostport(cs_sched *s, const char *host, size_t hlen,
                             int port);

/* connect's turn: attaches t to pool and gives it an idle connection
 * (CS_POOL_REUSED), a counted slot for a new one (CS_POOL_NEW), refuses
 * (CS_POOL_FULL: "too many waiting connect operations") or asks it to
 * queue (CS_POOL_QUEUE: then cs_pool_enqueue once the wait is armed). */
enum { CS_POOL_REUSED, CS_POOL_NEW, CS_POOL_FULL, CS_POOL_QUEUE };
int cs_pool_connect(cs_pool *pool, cs_tcp *t);
void cs_pool_enqueue(cs_tcp *t); /* C only: t->conn is armed */
/* connect on an object without a state: the state that parked pool's most
 * recent idle connection, pushed, connected and counted again; NULL (and
 * nothing pushed) when none is idle. */
cs_tcp *cs_pool_take(lua_State *L, cs_pool *pool);
/* The same without Lua (LuaJIT's FFI path): the state's anchors slot in
 * *slot, which the caller must read and clear at once (the slot is free
 * again).  C only. */
cs_tcp *cs_pool_take_slot(cs_pool *pool, int *slot);
void cs_pool_dequeue(cs_tcp *t); /* timeout or kill of a queued connect */

/* A connection counted against t->pool ended: frees its slot (a queued
 * connect gets it). C only. */
void cs_pool_release(cs_tcp *t);

/* The read watcher of t, whose connection idles in a pool, saw it
 * readable: closed, unless TLS records without data woke it. C only. */
void cs_pool_idle_readable(cs_tcp *t);

/* setkeepalive's parking of t, the state in slot 1 of self (at 1), which
 * the pool anchors from now on: 0 and a message pushed on failure. May
 * raise for a bad size argument (at index size_idx) when the pool must be
 * created. */
int cs_pool_park(lua_State *L, cs_tcp *t, int size_idx, double timeout_ms);

/* setkeepalive() without Lua (LuaJIT's FFI path): parks t, which holds a
 * plain connection, counted in its pool, free of anything to report; its
 * anchors slot returned, where the caller must store t's userdata at once.
 * 0: the C method must do it (no pool yet, a queued connect to hand it
 * to, an eviction, no memory).  C only. */
int cs_pool_park_slot(cs_tcp *t, double timeout_ms);
/* The anchors table (pool.c), pushed: where parked states are held. */
void cs_pool_push_anchors(lua_State *L, cs_sched *s);
void cs_pool_close_idle(cs_sched *s); /* shutdown: close every idle one */
void cs_pools_free(cs_sched *s);      /* lua_close */
void cs_open_pool(lua_State *L, int mod);

#endif
