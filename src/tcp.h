/* The tcp object shared by tcp.c (connect, close, timeouts, options) and
 * tcp_io.c (send, receive, receiveany, receiveuntil). */
#ifndef COSOCKET_TCP_H
#define COSOCKET_TCP_H

#include <sys/socket.h>

#include "cosocket.h"
#include "buffer.h"
#include "pattern.h"

#define CS_TCP_MAGIC 0x74637073u

/* the C state, a userdata in slot 1 of the socket table (DECISIONS.md 4) */
typedef struct cs_tcp {
    /* what every read and send looks at, first: with a thousand sockets
     * busy, each cache line a request touches is a miss (see cs_op) */
    cs_sched *s;
    int fd; /* -1: no connection */
    unsigned magic;
    unsigned char connected; /* connect succeeded on fd */
    unsigned char ever;      /* connect was called once */
    unsigned char read_closed, write_closed;
    unsigned char may_read; /* recv may find bytes (DECISIONS.md 9) */
    unsigned char eof;      /* the peer's FIN is in, after the bytes */
    unsigned char nodelay;  /* TCP_NODELAY_*: switched on, or due */
    unsigned char is_unix;
    unsigned char rd_status;     /* TCP_RD_* of the last read */
    unsigned char rd_want_write; /* a TLS read waits to write */
    unsigned char wr_connecting; /* wr is a connect or a handshake */
    unsigned char finalized;     /* its metatable has __gc */
    unsigned read_gen;           /* bumped by every read call */
    int read_ms;                 /* settimeout(s); 0: the default */
    int rd_errno;
    size_t rd_want;           /* next recv size: grows on full reads */
    struct tls *tls;          /* TLS (tls.c): the context, once handshaked */
    struct pool_item *parked; /* while its connection idles in a pool */
    cs_op *wr; /* a connect, sslhandshake or send: lent while in use */
    cs_buffer buf;
    cs_scan scan; /* what the pending read waits for */
    cs_op rd;
    cs_owned owned;          /* the handler that last connected it closes it */
    int connect_ms, send_ms; /* settimeout(s); 0: the default */
    int wr_errno, conn_errno;
    int ffi_errno; /* a send of tcp_ffi.c failed: the C method reports it */
    /* connect in progress */
    struct cs_lookup *lookup;
    int next_addr, conn_port;
    char *host; /* for "<host> could not be resolved" */
    /* send in progress: the bytes not yet written, owned */
    char *pending;
    size_t pending_off, pending_len, send_total;
    struct sockaddr_storage *bind_addr; /* bind(): used by connect */
    socklen_t bind_len;
    int reused;            /* getreusedtimes() */
    struct cs_pool *pool;  /* the pool its connection counts against */
    unsigned char counted; /* counted in pool->count */
    unsigned char queued;  /* its connect waits in the pool's backlog */
    char *key;             /* pool key, while no pool counts the connection */
    size_t klen;
    /* TLS: its callbacks' record */
    struct cs_tls_io *tls_io;
    unsigned char tls_dead; /* EOF seen: libtls is not called again */
    unsigned char tls_want_session, tls_want_write; /* handshake */
    unsigned char wr_want_read;     /* a TLS write waits to read */
    int tls_status;                 /* 0 or -1: how the handshake ended */
    char *client_cert, *client_key; /* setclientcert's PEM strings */
    size_t client_cert_len, client_key_len;
} cs_tcp;

enum { TCP_RD_OK = 0, TCP_RD_EOF, TCP_RD_ERRNO };

/* t->nodelay: ngx switches TCP_NODELAY on at a connection's first send.
 * Nagle's algorithm holds a segment back only while data sent before it
 * is unacknowledged, so a first send that fits in one segment leaves at
 * once without it, and the switch can wait for the next send (a
 * connection that sends once makes one syscall fewer), or for getoption,
 * which must find it on: DUE, then DONE. */
enum { TCP_NODELAY_NONE = 0, TCP_NODELAY_DONE, TCP_NODELAY_DUE };
/* a plain first send up to this many bytes leaves TCP_NODELAY due: one
 * segment on any path (IPv4's minimum MSS is 536) */
#define TCP_NODELAY_LATER_MAX 512

/* the busy rules: a connect (or handshake) or a send holds wr */
static inline int cs_tcp_connecting(const cs_tcp *t)
{
    return t->wr != NULL && t->wr->pending && t->wr_connecting;
}

static inline int cs_tcp_writing(const cs_tcp *t)
{
    return t->wr != NULL && t->wr->pending && !t->wr_connecting;
}

/* may a read start now?  (tcp_io.c's tcp_read_refused says why not) */
static inline int cs_tcp_can_read(const cs_tcp *t)
{
    return t->fd >= 0 && !t->read_closed && !t->rd.pending &&
           !cs_tcp_connecting(t);
}

/* The state of self (at 1), a table: NULL when it has none (never
 * connected, or its connection parked with its state) or slot 1 holds
 * something else.  Raises when self is not a table. */
cs_tcp *cs_tcp_self(lua_State *L);
/* The state of self, made if it has none (see tcp_new); NULL only for
 * something else in slot 1.  May raise (memory). */
cs_tcp *cs_tcp_state(lua_State *L);
/* connect took t, a pooled connection's state, for a new object: it is
 * the running handler's (the object's timeouts are set apart). */
void cs_tcp_adopt(cs_tcp *t);
/* setkeepalive's look at a plain connection: 0 nothing to read; 1 bytes
 * are waiting; -1 the peer closed. */
int cs_tcp_peek_dubious(cs_tcp *t);
/* host .. ":" .. port into buf (room for hlen + 6): the default pool
 * name, as Lua would concatenate an integer port.  Returns its length. */
size_t cs_pool_key(char *buf, const char *host, size_t hlen, int port);
/* connect was called on self once (t: cs_tcp_self's) */
int cs_tcp_ever(lua_State *L, cs_tcp *t);
void cs_tcp_close_fd(cs_tcp *t); /* C only: ends the connection */
/* setkeepalive's parking: t lets go of its connection, whose fd and TLS
 * stay in t for the pool, as a closed object would.  C only. */
void cs_tcp_detach(cs_tcp *t);
void cs_push_errno(lua_State *L, int err);
double cs_tcp_timeout(cs_tcp *t, int ms, double dflt_ms); /* seconds */
/* Before t takes anything a finalizer must give back: __gc from now on.
 * Methods only: self (whose slot 1 is t) at index 1. */
void cs_tcp_finalized(lua_State *L, cs_tcp *t);
/* t->wr for a connect, handshake or send: taken from the scheduler's
 * free list unless t has it already. NULL: no memory. */
cs_op *cs_tcp_wr(cs_tcp *t);
/* Its results are delivered: t->wr goes back (an idle connection holds
 * no write record). Results functions of t->wr call it last. */
void cs_tcp_wr_return(cs_tcp *t);
/* A queued connect got a slot: start connecting (C only, op armed). */
void cs_tcp_connect_go(cs_tcp *t);

/* tcp_io.c */
/* Before a send of len bytes on t: TCP_NODELAY switched on, or left due
 * (TCP_NODELAY_DUE).  0, or -1 with errno. */
int cs_tcp_nodelay_before_send(cs_tcp *t, size_t len);
/* TCP_NODELAY on now if it is due (getoption, setoption).  0, or -1. */
int cs_tcp_nodelay_due_now(cs_tcp *t);
int cs_tcp_send(lua_State *L);
int cs_tcp_receive(lua_State *L);
int cs_tcp_receive_wait(lua_State *L, cs_tcp *t, int kind, size_t n);
int cs_tcp_receiveany(lua_State *L);
int cs_tcp_receiveuntil(lua_State *L);
void cs_tcp_io_init(cs_tcp *t);
void cs_open_tcp_io(lua_State *L, int mod);

/* tcp_ffi.c: LuaJIT's fast receive, receiveany and send, over the C methods */
void cs_open_tcp_ffi(lua_State *L, int mod, const char *mt,
                     const char *state_mt);

#endif
