/* Shared types of cosocket: the per-state scheduler, light threads,
 * handlers and pending operations. */
#ifndef COSOCKET_H
#define COSOCKET_H

#include <stddef.h>
#include <sys/uio.h>
#include <ev.h>
#include <lua.h>
#include <lauxlib.h>

#define CS_EXPORT __attribute__((visibility("default")))
#define cs_container_of(p, type, member)                                       \
    ((type *)(void *)((char *)(p)-offsetof(type, member)))

#ifndef CS_DEBUG
#define CS_DEBUG 0
#endif

typedef struct cs_sched cs_sched;
typedef struct cs_thread cs_thread;
typedef struct cs_handler cs_handler;
typedef struct cs_op cs_op;
typedef struct cs_config cs_config;
typedef struct cs_timer cs_timer;
typedef struct cs_resolver cs_resolver;
typedef struct cs_owned cs_owned;

/* Pushes the results of a finished operation on L and returns their count.
 * Never raises: it runs between two resumes, outside any protected call.
 * CS_AGAIN instead: the operation is not over (a read woke up to too few
 * bytes), nothing is pushed and the scheduler arms it again as it is set
 * (fd, events, timeout) without resuming the thread. */
typedef int (*cs_results_fn)(lua_State *L, cs_op *op);
#define CS_AGAIN (-1)
/* Undoes what arming did beyond the watchers (a queue slot, say). C only. */
typedef void (*cs_cancel_fn)(cs_op *op);
/* Extra work when the operation is armed (join a waiters queue). C only. */
typedef void (*cs_arm_fn)(cs_op *op);

/* CS_OP_DEFER: done after one poll, with its timers (sleep(0), as a 0 ms
 * timer of ngx's); CS_OP_DEFER_IO: after one poll, after its events (a
 * connect done at once, which ngx learns of from epoll) */
enum { CS_OP_PLAIN = 0, CS_OP_DEFER, CS_OP_DEFER_IO, CS_OP_POST, CS_OP_EXIT };

/* A pending operation: the one thing a light thread (or main) waits on.
 * It lives inside the object that owns it (socket, thread, semaphore), so
 * waiting allocates nothing. */
struct cs_op {
    /* what each wait and wake-up looks at first, then the timer: with a
     * thousand sockets busy, every cache line a request touches is a miss.
     * The io watcher's callback reads self and the flags right after it. */
    ev_io io;                      /* armed when events != 0 */
    void *self;                    /* the object the operation belongs to */
    unsigned char kind;            /* CS_OP_* */
    unsigned char pending;         /* armed and not yet delivered: busy rules */
    unsigned char done;            /* completed, results not yet delivered */
    unsigned char may_linger;      /* its watchers may outlive a wait */
    unsigned char lingering;       /* io started, unref'd, nobody waiting */
    unsigned char timer_lingering; /* the same for its timer */
    int fd, events;
    cs_sched *s;
    cs_thread *thread; /* who waits: a light thread, or &s->main */
    cs_results_fn results;
    const char *err;     /* outcome recorded by callbacks, NULL for success */
    double timeout;      /* seconds; <= 0 means no timer */
    double timeout_rest; /* seconds it runs on after its timer fires */
    double due;   /* when its timer falls due (loop time); sleep(0)'s: now */
    unsigned arm; /* s->arms when its timer was started */
    cs_arm_fn on_arm;
    ev_timer timer;          /* armed when timeout > 0 */
    cs_cancel_fn on_cancel;  /* kill or close: undo what arming did */
    cs_cancel_fn on_timeout; /* before completing with "timeout" */
    void *aux; /* operation-specific (the thread that ended, ...) */
};

enum { CS_TH_ALIVE = 0, CS_TH_ZOMBIE, CS_TH_DEAD };

/* A light thread: a coroutine the scheduler resumes.  The struct is the
 * userdata kept in the state's thread map, weakly keyed by the coroutine,
 * so that finished threads nobody holds are collected. */
struct cs_thread {
    /* what a resume looks at, first: one cache line (see cs_op) */
    lua_State *co;              /* NULL for the main pseudo-thread */
    cs_op *waiting;             /* armed operation it waits on */
    cs_thread *q_next, *q_prev; /* ready, deferred or posted queue */
    void *queue;                /* which queue holds it, or NULL */
    unsigned ready_seq;         /* when it became ready: events run in order */
    int nanchors;               /* values it yielded with a wait */
    int nchain, chaincap;
    unsigned char state;       /* CS_TH_* */
    unsigned char initial;     /* in its first run, started by spawn */
    unsigned char chain_known; /* chain entered in the state's chain map */
    unsigned char failed;      /* ended by an error */
    unsigned char linked;      /* in its parent's list of children */
    unsigned char spawning;    /* posted while the child it spawned runs */
    lua_State **chain;         /* coroutines it waits through (nested) */
    int co_ref;                /* registry ref anchoring co while it runs */
    int nres;                  /* values left on co when it ended */
    cs_sched *s;
    cs_handler *handler;
    cs_thread *parent;
    cs_thread *first_child, *next_sibling, *prev_sibling;
    cs_thread *h_next, *h_prev; /* the handler's live threads */
    cs_op *waiter;              /* parent's wait() watching it */
    cs_op *op; /* its own waits (sleep, wait, run...): made at the first */
};

/* Something a handler closes when it ends (its sockets, DECISIONS.md 2). */
struct cs_owned {
    cs_owned *next, *prev;
    cs_handler *handler;
    void (*close)(cs_owned *o); /* C only; unlinks first */
};

/* A handler: main, each run(f), each timer callback (DECISIONS.md 2). */
struct cs_handler {
    cs_sched *s;
    cs_thread *entry;   /* NULL for main */
    int entry_ref;      /* keeps the entry's results until collected */
    cs_thread *threads; /* live light threads, entry included */
    int nthreads;
    int ntimers;      /* one-shot timers it created, not yet finished */
    int refs;         /* threads + timers + waiter: frees it at zero */
    cs_op *waiter;    /* a run() waiting for it */
    cs_handler *from; /* handler of the timer that created it */
    cs_owned *owned;  /* closed when it ends (main: never) */
    cs_handler *next, *prev;
    int exit_ref; /* what exit_handler() raises: run() re-raises it */
    unsigned char done, failed, is_timer, premature;
};

struct cs_config {
    double connect_timeout, send_timeout, read_timeout; /* ms */
    double keepalive_timeout, resolver_timeout;         /* ms */
    int buffer_size, pool_size, ssl_verify_depth;
    int max_pending_timers, max_running_timers, send_lowat, log_level;
    int log_errors, prefer_ipv6;
    int trusted_ref, protocols_ref, ciphers_ref, resolver_ref; /* strings */
};

struct cs_queue {
    cs_thread *head, *tail;
};

/* Work the scheduler runs between two resumes, outside any callback (a
 * semaphore handing out what post() added: ngx posts an event for it). */
typedef struct cs_defer {
    struct cs_defer *next;
    void (*run)(struct cs_defer *d);
    int queued;
} cs_defer;

#define CS_MAX_NESTING 200

struct cs_sched {
    struct ev_loop *loop;
    lua_State *aux; /* scratch coroutine for the scheduler's own Lua work */
    int aux_ref;
    cs_thread main;
    cs_op main_op;   /* main's own operation */
    cs_op *free_ops; /* records of cs_op_take, linked through aux */
    int nfree_ops;
    cs_handler main_handler;
    cs_thread *current; /* running light thread, NULL when none */
    struct cs_queue ready, deferred, posted;
    struct cs_queue deferred_io;  /* CS_OP_DEFER_IO's, while a poll runs */
    cs_op *arm;                   /* op of the wait whose yield is on its way */
    int arm_bare;                 /* that yield is the anchor alone (cs_wait) */
    cs_thread *spawn_request;     /* child a yielding spawn asks to start */
    cs_thread *spawn_parent;      /* the thread that asked for it */
    cs_handler *handlers;         /* every live handler but main */
    cs_timer *timers;             /* every timer not yet freed */
    cs_timer *fired, *fired_tail; /* fired, callbacks not yet started */
    struct cs_queue shutdown_waiters; /* threads waiting in shutdown() */
    unsigned seq; /* orders ready threads and fired timers */
    /* the first thread an event of the running poll readied, and the
     * sequence number of the poll's first event (sched.c, polled_push) */
    cs_thread *polled_first;
    unsigned polled_base;
    unsigned char polling;  /* inside ev_run */
    unsigned char timer_cb; /* in a timer's callback: it readies in order */
    /* what the running poll's timers readied or fired, set aside until
     * they are all seen, and the running timer's deadline and start */
    struct cs_due *dues;
    int ndues, duecap;
    double cb_due;
    unsigned cb_arm;
    unsigned arms; /* timers started: equal deadlines fire in this order */
    cs_defer *deferred_head, *deferred_tail; /* run between threads */
    void (*on_shutdown)(cs_sched *s); /* closes idle pooled connections */
    int premature_running;            /* premature callbacks not yet done */
    int threads_ref, traceback_ref, traced_ref;
    int chains_ref; /* coroutine -> its role in a waiting chain (weak) */
    int nthreads;   /* live light threads, all handlers */
    int pending_timers, oneshot_timers, running_timers, dropped_timers;
    int dropped_reported, exiting;
    int (*isyieldable)(lua_State *); /* LuaJIT's, looked up at load */
    cs_config cfg;
    unsigned cfg_gen;      /* bumped by configure: the resolver rereads */
    cs_resolver *resolver; /* created at the first lookup */
    cs_resolver *retired_resolvers; /* replaced, serving their last lookups */
    struct cs_pools *pools;         /* keepalive pools by key (pool.c) */
    struct cs_tls_state *tls;       /* libtls configurations (tls.c) */
    int pools_ref;
    int tcp_mt_ref[2]; /* tcp state metatables: [1] finalizes, [0] not */
    struct cs_buffer_cache *buffers; /* emptied receive buffers */
    struct cs_lookup *spare_lookup;  /* a literal's, for the next connect */
    int buffers_ref;
    struct iovec *iov; /* scratch of one send call */
    unsigned char *iov_isnum;
    int iovcap;
    char *udp_buf;         /* one datagram, read by a receive's results */
    struct iovec iov_flat; /* a UDP send of too many pieces, copied */
    char *nums;            /* the send call's numbers as text */
    size_t nums_cap;
    int wrap_depth, wrap_base;
    lua_State *wrap[CS_MAX_NESTING]; /* coroutines resumed by our resume */
};

/* sched.c */
cs_sched *cs_sched_get(lua_State *L); /* upvalue 1 */
/* Sets funcs into the table at mod, each with the scheduler (at mod + 1)
 * as upvalue 1: the cs_open_* functions all take (L, mod). */
void cs_register(lua_State *L, int mod, const luaL_Reg *funcs);
/* A socket class: objects are tables whose metatable mt has methods as
 * __index; their state is a userdata of metatable state_mt, gc as __gc and
 * __close. */
void cs_socket_class(lua_State *L, int mod, const char *mt,
                     const char *state_mt, lua_CFunction gc,
                     const luaL_Reg *methods);
int cs_fail(lua_State *L, const char *msg); /* nil, msg */
void cs_push_wait_sentinel(lua_State *L);
/* Whole milliseconds as op->timeout seconds; 0 (no timer) when too big. */
double cs_ms_to_seconds(lua_Number ms);
void cs_op_init(cs_op *op, cs_sched *s, void *self, cs_results_fn results);
int cs_wait(lua_State *L, cs_op *op); /* may raise; returns at once */
void cs_op_done(cs_op *op);           /* C only, from callbacks */
/* The same, but its thread runs before any ready one: the parent waiting
 * for a thread that ended (ngx resumes it at once).  C only. */
void cs_op_done_next(cs_op *op);
void cs_op_cancel(cs_op *op); /* C only */
/* An op record for an object that does not carry one inline (a socket's
 * connect, handshake or send, lent while it runs; a light thread's own):
 * from the scheduler's free list, else calloc. NULL: no memory. */
cs_op *cs_op_take(cs_sched *s);
/* Gives back a record of cs_op_take that nothing waits on any more. */
void cs_op_give(cs_sched *s, cs_op *op);
void cs_ops_free(cs_sched *s); /* lua_close: the free list goes */
/* A read op's watchers are left started (and unref'd: they keep no loop
 * alive) when its wait completes, so that the next wait on the same fd,
 * request after response, tells libev nothing: no ev_io_stop/start, no
 * epoll_ctl, no timer heap work (the timer, always repeating, fires early
 * at worst and is set again for what is left).  The io callback, woken
 * while nobody waits, calls this first: 1 means the io watcher lingered
 * and the op's watchers are now stopped. */
int cs_op_unlinger(cs_op *op);
/* op's io watcher watches fd for reading, started and unref'd as after a
 * read (lingering), for its callback to see what comes while nobody
 * waits; known: libev was told of fd already (see cs_io_set_known). */
void cs_op_linger_read(cs_op *op, int fd, int known);
/* The op's fd was closed: the next arm tells libev it is a new file. */
void cs_op_forget_fd(cs_op *op);
/* w is to watch fd, a descriptor libev was told of (by ev_io_set) and that
 * has stayed open since: set without EV__IOFDSET, which would make libev
 * re-add it to epoll (a failing epoll_ctl).  Never for a new descriptor. */
void cs_io_set_known(ev_io *w, int fd, int events);
/* From callbacks of an armed op: watch another fd, or restart the timer
 * (inactivity timeouts, a new phase). C only. */
void cs_op_watch(cs_op *op, int fd, int events);
void cs_op_retime(cs_op *op, double seconds);
int cs_can_yield(cs_sched *s, lua_State *L);
void cs_resume_thread(cs_sched *s, cs_thread *th, int nargs);
void cs_queue_push(struct cs_queue *q, cs_thread *th);
void cs_queue_remove(cs_thread *th);
void cs_run_ready(cs_sched *s);
void cs_ready_push(cs_sched *s, cs_thread *th); /* runs after earlier events */
/* Around the body of a timer's callback that may ready threads, with the
 * timer's deadline and its place among the timers started (s->arms++ when
 * it was): they are readied in that order, before the events of the same
 * poll (see poll_loop in sched.c). */
void cs_timer_cb_begin(cs_sched *s, double due, unsigned arm);
void cs_timer_cb_end(cs_sched *s);
/* A timer of timer.c fired in a poll: set aside as above (1), or not in a
 * poll (0: the caller appends it to s->fired at once). */
int cs_due_timer(cs_sched *s, cs_timer *t, double due, unsigned arm);
void cs_defer_push(cs_sched *s, cs_defer *d);
void cs_defer_remove(cs_sched *s, cs_defer *d);
void cs_poll_once(cs_sched *s); /* main's sleep(0): one pass, no block */
int cs_drive_until(lua_State *L, cs_sched *s, int (*cond)(void *), void *arg);
void cs_push_threads(lua_State *L, cs_sched *s);
/* 0: co is not in a waiting chain; 1: it resumed the next one; 2: it is
 * the innermost, waiting itself. */
int cs_chain_role(lua_State *L, cs_sched *s, int idx);
void cs_chain_forget(cs_sched *s, cs_thread *th); /* C and the aux state */
void cs_report_error(lua_State *co, cs_sched *s, const char *what);
void cs_push_traceback(lua_State *L, cs_sched *s, lua_State *co);

void cs_own(cs_handler *h, cs_owned *o); /* h owns o from now on */
void cs_disown(cs_owned *o);

/* thread.c */
/* th's own operation, made at its first use: a thread that only ever
 * waits on sockets holds none (DECISIONS.md 9).  NULL: no memory. */
cs_op *cs_thread_op(cs_thread *th);
cs_thread *cs_thread_new(lua_State *L, cs_sched *s, cs_handler *h,
                         int nargs); /* may raise */
void cs_thread_ended(cs_sched *s, cs_thread *th, int ok, int nres);
void cs_thread_kill(cs_thread *th);
cs_handler *cs_handler_new(cs_sched *s); /* NULL: no memory */
void cs_handler_unref(cs_handler *h);
void cs_handler_check(cs_handler *h);
void cs_start_thread(cs_sched *s, cs_thread *th);
void cs_open_thread(lua_State *L, int mod);

/* timer.c */
void cs_open_timer(lua_State *L, int mod);
void cs_timers_free(cs_sched *s);
/* The first fired timer, if it fell due before seq: starts its callback
 * and returns 1. */
int cs_timers_dispatch_before(cs_sched *s, int any, unsigned seq);
void cs_timer_append_fired(cs_sched *s, cs_timer *t); /* to s->fired */
void cs_shutdown_wake(cs_sched *s);

/* semaphore.c */
void cs_open_semaphore(lua_State *L, int mod);

/* coroutine.c */
void cs_open_coroutine(lua_State *L, int mod);

/* module.c */
CS_EXPORT int luaopen_cosocket(lua_State *L);

/* tcp.c, udp.c */
void cs_open_tcp(lua_State *L, int mod);
void cs_open_udp(lua_State *L, int mod);

/* config.c */
void cs_config_defaults(cs_config *cfg);
void cs_open_config(lua_State *L, int mod);

/* ngx_helpers.c, ngx_re.c: C helpers of the ngx layer */
void cs_open_ngx_helpers(lua_State *L, int mod); /* opens ngx_re.c too */
void cs_open_ngx_re(lua_State *L, int mod);

#endif
