/* cosocket.tcp(): the object, connect (SPEC.md 2), close, timeouts and
 * socket options (SPEC.md 7).  Reads and writes are in tcp_io.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <unistd.h>

#include "tcp.h"
#include "compat.h"
#include "resolver.h"
#include "pool.h"
#include "tls.h"
#include "addr.h"
#include "ngx_int.h"

#define TCP_MT       "cosocket.tcp"       /* the socket table's metatable */
#define TCP_STATE_MT "cosocket.tcp.state" /* slot 1's userdata */

void cs_push_errno(lua_State *L, int err)
{
    char buf[128];
    const char *msg = err != 0 ? strerror(err) : "error";
    size_t i, n = strlen(msg);

    if (n >= sizeof(buf))
        n = sizeof(buf) - 1;
    for (i = 0; i < n; i++) /* lower case, as ngx_lua (LuaSocket's way) */
        buf[i] = (char)(msg[i] >= 'A' && msg[i] <= 'Z' ? msg[i] + 32 : msg[i]);
    lua_pushlstring(L, buf, n);
}

double cs_tcp_timeout(cs_tcp *t, int ms, double dflt_ms)
{
    (void)t;
    return cs_ms_to_seconds(ms > 0 ? ms : dflt_ms);
}

/* What slot 1 of self says when it holds no state: TCP_NEVER (nil: never
 * connected), TCP_PARKED (false: its connection went to a pool, with the
 * state that held it) or TCP_FOREIGN (something else). */
enum { TCP_NEVER, TCP_PARKED, TCP_FOREIGN };

/* The state in slot 1 of self (a table, or it raises); NULL and what the
 * slot holds instead in *was. */
static cs_tcp *tcp_slot(lua_State *L, int *was)
{
    cs_tcp *t;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_rawgeti(L, 1, 1);
    t = lua_touserdata(L, -1);
    if (t != NULL &&
        (cs_rawlen(L, -1) != sizeof(*t) || t->magic != CS_TCP_MAGIC))
        t = NULL; /* someone else's userdata in slot 1 */
    if (t == NULL)
        *was = lua_isnil(L, -1) ? TCP_NEVER
               : lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)
                   ? TCP_PARKED
                   : TCP_FOREIGN;
    lua_pop(L, 1);
    return t;
}

cs_tcp *cs_tcp_self(lua_State *L)
{
    int was;

    return tcp_slot(L, &was);
}

/* Where settimeout(s) keeps the timeouts in the socket table, the slots of
 * ngx's: a state is made at the first connect, and a parked one carries
 * another object's. */
enum { SLOT_CONNECT_MS = 2, SLOT_SEND_MS = 4, SLOT_READ_MS = 5 };

/* connect_ms, send_ms, read_ms from their slots of self */
static void tcp_load_timeouts(lua_State *L, cs_tcp *t)
{
    lua_rawgeti(L, 1, SLOT_CONNECT_MS);
    if (lua_isnil(L, -1)) { /* settimeout(s) sets all three or none */
        lua_pop(L, 1);
        t->connect_ms = t->send_ms = t->read_ms = 0;
        return;
    }
    lua_rawgeti(L, 1, SLOT_SEND_MS);
    lua_rawgeti(L, 1, SLOT_READ_MS);
    t->connect_ms = (int)lua_tointeger(L, -3);
    t->send_ms = (int)lua_tointeger(L, -2);
    t->read_ms = (int)lua_tointeger(L, -1);
    lua_pop(L, 3);
}

/* The object lets go of its connection: closed flags, the buffer, a
 * lookup, the pool name and count, its owner.  C only. */
static void tcp_let_go(cs_tcp *t)
{
    t->connected = 0;
    t->ffi_errno = 0;
    t->read_closed = t->write_closed = 1;
    t->eof = 0;
    t->may_read = 0;
    cs_buffer_release(&t->buf, t->s->loop != NULL ? t->s->buffers : NULL);
    cs_lookup_drop(t->lookup);
    t->lookup = NULL;
    free(t->host);
    t->host = NULL;
    free(t->pending);
    t->pending = NULL;
    free(t->key); /* only setkeepalive of this connection needed it */
    t->key = NULL;
    cs_pool_release(t);
    cs_disown(&t->owned);
}

/* Ends the connection: pending operations complete with "closed" (a
 * thread blocked in them resumes), the buffer goes back. C only. */
void cs_tcp_close_fd(cs_tcp *t)
{
    cs_op *ops[2];
    int i;

    ops[0] = t->wr;
    ops[1] = &t->rd;
    for (i = 0; i < 2; i++) {
        if (ops[i] != NULL && ops[i]->pending && !ops[i]->done) {
            ops[i]->err = "closed";
            cs_op_done(ops[i]);
        }
    }
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    if (t->wr != NULL)
        cs_op_forget_fd(t->wr);
    cs_op_forget_fd(&t->rd);
    cs_tls_free(t->tls, t->tls_io); /* either may be NULL (a failed setup) */
    t->tls = NULL;
    t->tls_io = NULL;
    t->tls_dead = 0;
    tcp_let_go(t);
}

void cs_tcp_detach(cs_tcp *t)
{
    if (t->wr != NULL) /* the read watcher watches it for the pool */
        cs_op_forget_fd(t->wr);
    tcp_let_go(t);
}

/* A thread blocked in one of its operations was killed: the whole
 * connection goes (SPEC.md 10.4). */
static void tcp_on_cancel(cs_op *op)
{
    cs_tcp *t = op->self;

    op->pending = 0; /* this one is cancelled, not completed */
    cs_tcp_close_fd(t);
}

cs_op *cs_tcp_wr(cs_tcp *t)
{
    if (t->wr == NULL)
        t->wr = cs_op_take(t->s);
    return t->wr;
}

void cs_tcp_wr_return(cs_tcp *t)
{
    if (t->wr == NULL || t->wr->pending)
        return;
    cs_op_give(t->s, t->wr);
    t->wr = NULL;
}

/* The state's metatable has __gc only while the state holds something a
 * finalizer must give back.  A socket made per request and parked again
 * (the pool's common case) is then freed by the GC without a finalizer,
 * which in LuaJIT costs more than the rest of its work (W2).  Lua 5.2+
 * keeps finalizing a state once marked: correct, only not faster. */
static void tcp_set_finalized(lua_State *L, cs_tcp *t, int on)
{
    lua_rawgeti(L, 1, 1); /* the state of self */
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->s->tcp_mt_ref[on]);
    lua_setmetatable(L, -2);
    lua_pop(L, 1);
    t->finalized = (unsigned char)on;
}

void cs_tcp_finalized(lua_State *L, cs_tcp *t)
{
    if (!t->finalized)
        tcp_set_finalized(L, t, 1);
}

/* no descriptor, memory, pool place, owner, waiter or started watcher */
static int tcp_holds_nothing(const cs_tcp *t)
{
    return t->fd < 0 && t->wr == NULL && !t->rd.pending &&
           !ev_is_active(&t->rd.io) && !ev_is_active(&t->rd.timer) &&
           t->buf.data == NULL && t->lookup == NULL && t->host == NULL &&
           t->pending == NULL && t->bind_addr == NULL && t->key == NULL &&
           t->pool == NULL && !t->queued && t->tls == NULL &&
           t->tls_io == NULL && t->client_cert == NULL &&
           t->client_key == NULL && t->owned.handler == NULL;
}

/* After close or setkeepalive (self at 1): drop __gc if nothing is held. */
static void tcp_maybe_unfinalized(lua_State *L, cs_tcp *t)
{
    if (t->finalized && tcp_holds_nothing(t))
        tcp_set_finalized(L, t, 0);
}

static void tcp_owned_close(cs_owned *o)
{
    cs_tcp_close_fd(cs_container_of(o, cs_tcp, owned));
}

static int tcp_state_gc(lua_State *L)
{
    cs_tcp *t = lua_touserdata(L, 1);
    int i;
    cs_op *ops[2];

    ops[0] = t->wr;
    ops[1] = &t->rd;
    /* pending only inside lua_close: cancel, C only, nothing resumed */
    for (i = 0; i < 2; i++)
        if (ops[i] != NULL && ops[i]->pending) {
            ops[i]->on_cancel = NULL;
            cs_op_cancel(ops[i]);
        }
    cs_tcp_close_fd(t);
    cs_tcp_wr_return(t);
    free(t->bind_addr);
    t->bind_addr = NULL;
    free(t->key);
    t->key = NULL;
    free(t->client_cert);
    free(t->client_key);
    t->client_cert = t->client_key = NULL;
    return 0;
}

/* A new state on the stack, holding nothing: no __gc yet. */
static cs_tcp *tcp_new_state(lua_State *L, cs_sched *s)
{
    cs_tcp *t = lua_newuserdata(L, sizeof(*t));

    memset(t, 0, sizeof(*t));
    t->magic = CS_TCP_MAGIC;
    t->s = s;
    t->fd = -1;
    t->read_closed = t->write_closed = 1;
    t->owned.close = tcp_owned_close;
    cs_tcp_io_init(t);
    t->rd.on_cancel = tcp_on_cancel;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->tcp_mt_ref[0]);
    lua_setmetatable(L, -2);
    return t;
}

void cs_tcp_adopt(cs_tcp *t)
{
    cs_sched *s = t->s;

    t->ever = 1;
    t->rd_want = 0;
    cs_own(s->current != NULL ? s->current->handler : &s->main_handler,
           &t->owned);
}

int cs_tcp_ever(lua_State *L, cs_tcp *t)
{
    int was;

    if (t != NULL)
        return t->ever;
    tcp_slot(L, &was);
    return was == TCP_PARKED;
}

/* A new state in slot 1 of self, which held none (was: tcp_slot's) */
static cs_tcp *tcp_install_state(lua_State *L, cs_sched *s, int was)
{
    cs_tcp *t = tcp_new_state(L, s);

    lua_rawseti(L, 1, 1);
    t->ever = was == TCP_PARKED;
    tcp_load_timeouts(L, t);
    return t;
}

cs_tcp *cs_tcp_state(lua_State *L)
{
    int was;
    cs_tcp *t = tcp_slot(L, &was);

    if (t != NULL || was == TCP_FOREIGN)
        return t;
    return tcp_install_state(L, cs_sched_get(L), was);
}

/* tcp(): the socket table.  Its state is made by the first method that
 * needs one (connect, bind, setclientcert), or is a pooled connection's
 * (connect, see pool.h): a request that takes its connection from a pool
 * and parks it again allocates no state (DECISIONS.md 4: slot 1 holds the
 * state; slots 2, 4 and 5 the timeouts, as in ngx's table). */
static int tcp_new(lua_State *L)
{
    int n = lua_gettop(L);

    if (n != 0)
        return luaL_error(L, "expecting zero arguments, but got %d", n);
    lua_createtable(L, SLOT_READ_MS, 0);
    lua_pushvalue(L, lua_upvalueindex(2)); /* TCP_MT */
    lua_setmetatable(L, -2);
    return 1;
}

/* ---- connect ----------------------------------------------------------- */

static const char *tcp_busy(cs_tcp *t, int reading, int writing)
{
    if (cs_tcp_connecting(t))
        return "socket busy connecting";
    if (reading && t->rd.pending)
        return "socket busy reading";
    if (writing && cs_tcp_writing(t))
        return "socket busy writing";
    return NULL;
}

static void tcp_queue_on_arm(cs_op *op)
{
    cs_pool_enqueue(op->self);
}

int cs_tcp_peek_dubious(cs_tcp *t)
{
    char c;
    ssize_t n = recv(t->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

    if (n > 0)
        return 1;
    if (n == 0)
        return -1;
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
}

static int connect_outcome(lua_State *L, cs_tcp *t, cs_op *op)
{
    struct cs_lookup *lk = t->lookup;

    if (op->err == NULL && t->conn_errno == 0 &&
        (lk == NULL || lk->code == 0)) {
        cs_lookup_drop(lk);
        t->lookup = NULL;
        free(t->host);
        t->host = NULL;
        t->connected = 1;
        t->read_closed = t->write_closed = 0;
        lua_pushinteger(L, 1);
        return 1;
    }
    lua_pushnil(L);
    if (lk != NULL && lk->code != 0)
        lua_pushfstring(L, "%s could not be resolved (%d: %s)", t->host,
                        lk->code, lk->text);
    else if (op->err != NULL)
        lua_pushstring(L, op->err);
    else
        cs_push_errno(L, t->conn_errno);
    cs_tcp_close_fd(t); /* every connect failure closes (SPEC.md 2.5) */
    return 2;
}

static int tcp_connect_results(lua_State *L, cs_op *op)
{
    cs_tcp *t = op->self;
    int n = connect_outcome(L, t, op);

    cs_tcp_wr_return(t);
    return n;
}

/* errors after which the next address is worth a try (DECISIONS.md 6) */
static int tcp_try_next(int err)
{
    return err == ECONNREFUSED || err == ENETUNREACH || err == EHOSTUNREACH ||
           err == EADDRNOTAVAIL || err == EAFNOSUPPORT || err == ETIMEDOUT;
}

/* CONN_LATE: connected, but only by the second connect() of a loopback
 * address (see connect_settled); CONN_LATE_FAIL: refused so (the last
 * address tried).  The connect still yields, as ngx's does: it learns
 * either from the event loop */
enum { CONN_OK, CONN_LATE, CONN_AGAIN, CONN_FAIL, CONN_LATE_FAIL };

/* A connect waits for both: a failed one is reported with EPOLLERR, which
 * libev passes on as both, so writable alone means connected and saves the
 * getsockopt(SO_ERROR) that tells them apart (a peer that speaks first
 * makes it readable too: then getsockopt decides). */
#define CONNECT_EVENTS (EV_READ | EV_WRITE)

static int is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a =
            &((const struct sockaddr_in6 *)sa)->sin6_addr;

        return IN6_IS_ADDR_LOOPBACK(a) ||
               (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

/* A connect to a loopback address that answered EINPROGRESS is most often
 * complete already: the kernel ran the whole handshake when the first call
 * released the socket.  A second connect() says so (0, or the refusal's
 * error) and spares the watcher, two epoll_ctl (one failing when the fd
 * number was just freed) and a loop pass; EALREADY: still on its way, the
 * watcher as for any address.  Elsewhere the handshake takes a round trip:
 * not worth the syscall. */
static int connect_settled(int fd, const struct sockaddr *sa, socklen_t len)
{
    if (!is_loopback(sa))
        return EALREADY;
    if (connect(fd, sa, len) == 0 || errno == EISCONN)
        return 0; /* Linux says 0 the first time it is asked again */
    return errno == EINPROGRESS ? EALREADY : errno;
}

/* Starts connecting to the next address; t->fd is the socket then. */
static int tcp_connect_next(cs_tcp *t)
{
    struct cs_lookup *lk = t->lookup;
    int late = 0;

    while (t->next_addr < lk->naddrs) {
        int i = t->next_addr++;
        struct sockaddr *sa = (struct sockaddr *)&lk->addrs[i];
        int fd = socket(sa->sa_family,
                        SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int err;

        if (fd < 0) {
            t->conn_errno = errno;
            return CONN_FAIL;
        }
        if (t->bind_addr != NULL &&
            bind(fd, (struct sockaddr *)t->bind_addr, t->bind_len) != 0) {
            t->conn_errno = errno;
            close(fd);
            return CONN_FAIL;
        }
        t->fd = fd;
        if (connect(fd, sa, lk->lens[i]) == 0) {
            t->conn_errno = 0;
            return CONN_OK;
        }
        err = errno;
        late = err == EINPROGRESS; /* a refusal now: connect_settled's */
        if (late)
            err = connect_settled(fd, sa, lk->lens[i]);
        if (err == 0 || err == EALREADY) {
            if (t->next_addr >= lk->naddrs) { /* nothing left to try */
                cs_lookup_drop(lk); /* its memory not held while waiting */
                t->lookup = NULL;
            }
            if (err == EALREADY)
                return CONN_AGAIN;
            t->conn_errno = 0;
            return CONN_LATE;
        }
        t->conn_errno = err;
        close(fd);
        t->fd = -1;
        if (!tcp_try_next(t->conn_errno))
            return late ? CONN_LATE_FAIL : CONN_FAIL;
    }
    if (t->conn_errno == 0)
        t->conn_errno = ECONNREFUSED;
    return late ? CONN_LATE_FAIL : CONN_FAIL;
}

static void tcp_on_resolved(cs_lookup *lk);

/* Starts the lookup or the connect.  CONN_AGAIN: the op waits (for the
 * resolver or the socket; armed says whether its watchers run already);
 * CONN_OK or CONN_LATE; CONN_FAIL or CONN_LATE_FAIL (op->err, t->conn_errno or
 * the lookup say why). */
static int tcp_start(cs_tcp *t, int armed)
{
    cs_op *op = t->wr;
    cs_sched *s = t->s;
    double secs;
    int rc;

    if (t->lookup == NULL) {
        t->lookup = cs_resolve(s, t->host, tcp_on_resolved, t);
        if (t->lookup == NULL) {
            op->err = "failed to start the resolver";
            return CONN_FAIL;
        }
        if (!t->lookup->finished) {
            secs = cs_ms_to_seconds(s->cfg.resolver_timeout);
            if (armed)
                cs_op_retime(op, secs);
            else
                op->timeout = secs;
            return CONN_AGAIN;
        }
    }
    if (t->lookup->code != 0)
        return CONN_FAIL;
    if (t->next_addr == 0)
        cs_lookup_set_port(t->lookup, t->conn_port);
    rc = tcp_connect_next(t);
    if (rc != CONN_AGAIN)
        return rc;
    /* the connect deadline starts after the lookup (SPEC.md 2.4) */
    secs = cs_tcp_timeout(t, t->connect_ms, s->cfg.connect_timeout);
    if (armed) {
        cs_op_watch(op, t->fd, CONNECT_EVENTS);
        cs_op_retime(op, secs);
    } else {
        op->fd = t->fd;
        op->events = CONNECT_EVENTS;
        op->timeout = secs;
    }
    return CONN_AGAIN;
}

void cs_tcp_connect_go(cs_tcp *t)
{
    if (tcp_start(t, 1) != CONN_AGAIN)
        cs_op_done(t->wr);
}

static void tcp_on_connected(EV_P_ ev_io *w, int revents)
{
    cs_op *op = cs_container_of(w, cs_op, io);
    cs_tcp *t = op->self;
    int err = 0;
    socklen_t len = sizeof(err);

    (void)loop;
    if (revents != EV_WRITE && /* writable alone: connected (see above) */
        getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err == 0) {
        t->conn_errno = 0;
        cs_op_done(op);
        return;
    }
    t->conn_errno = err;
    close(t->fd);
    t->fd = -1;
    if (!tcp_try_next(err) || t->lookup == NULL) { /* no address left */
        cs_op_done(op);
        return;
    }
    switch (tcp_connect_next(t)) { /* same deadline for every address */
    case CONN_AGAIN:
        cs_op_watch(op, t->fd, CONNECT_EVENTS);
        return;
    default:
        cs_op_done(op);
    }
}

static void tcp_on_resolved(cs_lookup *lk)
{
    cs_tcp_connect_go(lk->data);
}

static void tcp_on_conn_timeout(cs_op *op)
{
    cs_tcp *t = op->self;
    cs_lookup *lk = t->lookup;

    if (t->queued) { /* waited in the pool's backlog: "timeout" */
        cs_pool_dequeue(t);
        return;
    }
    if (lk != NULL && !lk->finished) { /* still resolving */
        cs_lookup *failed = cs_lookup_alloc(0);
        cs_lookup_drop(lk);
        t->lookup = failed;
        if (failed == NULL) {
            op->err = "no memory";
            return;
        }
        failed->finished = 1;
        failed->code = 110;
        failed->text = "Operation timed out";
    }
}

/* Parses the host for connect: see cs_target (addr.c). */
static int tcp_parse_target(lua_State *L, cs_tcp *t, const char *url,
                            size_t len, int port)
{
    return cs_target(L, t->s, url, len, port, &t->lookup, &t->host,
                     &t->conn_port);
}

static int tcp_unix_lookup(lua_State *L, cs_tcp *t, const char *path)
{
    if (!cs_unix_target(L, path, &t->lookup))
        return 0;
    t->is_unix = 1;
    return 1;
}

/* connect's options table (SPEC.md 2.1 step 4), checked in ngx's order;
 * the argument errors point at the table.  Leaves the pool name (a
 * string) or nil on the stack. */
static void tcp_pool_options(lua_State *L, int idx, int *size, int *backlog)
{
    cs_sched *s = cs_sched_get(L);

    lua_getfield(L, idx, "pool_size");
    if (lua_isnumber(L, -1)) {
        *size = (int)lua_tointeger(L, -1);
        if (*size <= 0)
            luaL_argerror(L, idx,
                          lua_pushfstring(
                              L, "bad \"pool_size\" option value: %d", *size));
    } else if (!lua_isnil(L, -1)) {
        luaL_argerror(L, idx,
                      lua_pushfstring(L, "bad \"pool_size\" option type: %s",
                                      luaL_typename(L, -1)));
    }
    lua_pop(L, 1);
    lua_getfield(L, idx, "backlog");
    if (lua_isnumber(L, -1)) {
        *backlog = (int)lua_tointeger(L, -1);
        if (*backlog < 0)
            luaL_argerror(L, idx,
                          lua_pushfstring(L, "bad \"backlog\" option value: %d",
                                          *backlog));
        if (*size == 0) /* a backlog alone: the default size */
            *size = s->cfg.pool_size;
    }
    lua_pop(L, 1);
    lua_getfield(L, idx, "pool");
    if (lua_type(L, -1) == LUA_TNUMBER)
        lua_tostring(L, -1); /* its string form is the key */
    else if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
        luaL_argerror(L, idx,
                      lua_pushfstring(L, "bad \"pool\" option type: %s",
                                      luaL_typename(L, -1)));
}

/* Keeps the pool name of this connection (SPEC.md 2.1 step 6) for a later
 * setkeepalive, only when there is no pool yet to hold it (an existing one
 * outlives the connection: it counts it).  A connect follows a close,
 * which freed any earlier name. */
static int tcp_set_key(cs_tcp *t, cs_pool *pool, const char *key, size_t klen)
{
    char *k;

    if (pool != NULL) {
        free(t->key);
        t->key = NULL;
        return 1;
    }
    k = malloc(klen + 1);

    if (k == NULL)
        return 0;
    memcpy(k, key, klen);
    k[klen] = '\0';
    free(t->key);
    t->key = k;
    t->klen = klen;
    return 1;
}

size_t cs_pool_key(char *buf, const char *host, size_t hlen, int port)
{
    char digits[8];
    int n = 0;

    memcpy(buf, host, hlen);
    buf[hlen++] = ':';
    do
        digits[n++] = (char)('0' + port % 10);
    while ((port /= 10) > 0);
    while (n > 0)
        buf[hlen++] = digits[--n];
    return hlen;
}

static int tcp_connect(lua_State *L)
{
    cs_sched *s = cs_sched_get(L);
    int n = lua_gettop(L), port = 0, is_unix, size = 0, backlog = -1, turn;
    int pool_idx = 0, rc, was;
    size_t hlen, klen = 0;
    const char *host, *busy, *key = NULL;
    char kbuf[256];
    cs_tcp *t;
    cs_op *op;
    cs_pool *pool;
    int no_pool = 0; /* key had no pool before the new state was made */

    if (n < 2 || n > 4)
        return luaL_error(L,
                          "ngx.socket connect: expecting 2, 3, or 4 "
                          "arguments (including the object), but seen %d",
                          n);
    luaL_checktype(L, 1, LUA_TTABLE);
    host = luaL_checklstring(L, 2, &hlen);
    if (lua_type(L, n) == LUA_TTABLE) {
        tcp_pool_options(L, n, &size, &backlog);
        if (!lua_isnil(L, -1))
            pool_idx = lua_gettop(L);
        n--;
    }
    if (n == 4)
        n--;
    is_unix = cs_is_unix_host(host, hlen);
    if (n == 3 && lua_isnumber(L, 3)) {
        port = cs_ngx_int(lua_tonumber(L, 3)); /* NaN: 0, as ngx */
        if (port < 0 || port > 65535) {
            lua_pushnil(L);
            lua_pushfstring(L, "bad port number: %d", port);
            return 2;
        }
        if (pool_idx == 0 && port > 0 && hlen < sizeof(kbuf) - 6 &&
            (lua_Number)port == lua_tonumber(L, 3) && /* not 2^32 + 80 */
            cs_shows_as_integer(L, 3)) {
            klen = cs_pool_key(kbuf, host, hlen, port); /* no Lua string */
            key = kbuf;
        } else if (pool_idx == 0) { /* host .. ":" .. port as Lua shows it */
            lua_pushvalue(L, 2);
            lua_pushliteral(L, ":");
            lua_pushvalue(L, 3);
            lua_concat(L, 3);
            pool_idx = lua_gettop(L);
        }
    } else if (!is_unix) {
        return cs_fail(L, "missing the port number");
    }
    if (pool_idx != 0)
        key = lua_tolstring(L, pool_idx, &klen);
    else if (key == NULL) {
        key = host; /* a unix socket's path */
        klen = hlen;
    }
    t = tcp_slot(L, &was);
    if (t == NULL) {
        if (was == TCP_FOREIGN)
            return luaL_error(L, "bad socket object");
        /* a pooled connection comes with the state that parked it: no
         * new one, no hand-over (the pool is looked up by key only,
         * before any DNS: SPEC.md 2.3) */
        pool = cs_pool_get(s, key, klen, size, backlog);
        no_pool = pool == NULL;
        t = pool != NULL ? cs_pool_take(L, pool) : NULL;
        if (t != NULL) {
            lua_rawseti(L, 1, 1);
            tcp_load_timeouts(L, t);
            cs_tcp_adopt(t);
            lua_pushinteger(L, 1);
            return 1;
        }
        t = tcp_install_state(L, s, was);
    }
    busy = tcp_busy(t, 1, 1);
    if (busy != NULL)
        return cs_fail(L, busy);
    if (t->fd >= 0 || t->pool != NULL)
        cs_tcp_close_fd(t); /* outright, not pooled (SPEC.md 2.2) */
    cs_tcp_finalized(L, t);
    t->ever = 1;
    t->conn_errno = 0;
    t->next_addr = 0;
    t->is_unix = 0;
    t->reused = 0;
    t->nodelay = TCP_NODELAY_NONE;
    t->rd_want = 0;
    /* both halves open while connecting: other calls see "busy connecting"
     * once there is a socket, "closed" while resolving (as ngx) */
    t->read_closed = t->write_closed = 0;
    cs_own(s->current != NULL ? s->current->handler : &s->main_handler,
           &t->owned);
    /* the pool is looked up by key only, before any DNS (SPEC.md 2.3);
     * again unless there was none: the finalizers that may have run since
     * (the state's allocation) close connections and may free a pool, but
     * never make one */
    pool = no_pool ? NULL : cs_pool_get(s, key, klen, size, backlog);
    if (!tcp_set_key(t, pool, key, klen)) {
        cs_tcp_close_fd(t);
        return cs_fail(L, "no memory");
    }
    turn = pool != NULL ? cs_pool_connect(pool, t) : CS_POOL_NEW;
    if (turn == CS_POOL_REUSED) { /* no wait: no write record either */
        t->read_closed = t->write_closed = 0;
        lua_pushinteger(L, 1);
        return 1;
    }
    if (turn == CS_POOL_FULL) {
        cs_tcp_close_fd(t);
        return cs_fail(L, "too many waiting connect operations");
    }
    op = cs_tcp_wr(t);
    if (op == NULL) {
        cs_tcp_close_fd(t);
        return cs_fail(L, "no memory");
    }
    cs_op_init(op, s, t, tcp_connect_results);
    t->wr_connecting = 1;
    op->on_cancel = tcp_on_cancel;
    op->on_timeout = tcp_on_conn_timeout;
    ev_init(&op->io, tcp_on_connected);
    if (!(is_unix ? tcp_unix_lookup(L, t, host + 5)
                  : tcp_parse_target(L, t, host, hlen, port))) {
        lua_pushnil(L);
        lua_insert(L, -2);
        cs_tcp_close_fd(t);
        cs_tcp_wr_return(t);
        return 2;
    }
    lua_settop(L, 1);
    if (turn == CS_POOL_QUEUE) { /* wait for a slot: connect timeout */
        op->timeout = cs_tcp_timeout(t, t->connect_ms, s->cfg.connect_timeout);
        op->on_arm = tcp_queue_on_arm;
        return cs_wait(L, op);
    }
    rc = tcp_start(t, 0);
    if (rc == CONN_AGAIN)
        return cs_wait(L, op);
    if ((rc == CONN_LATE || rc == CONN_LATE_FAIL) && s->current != NULL) {
        /* a light thread still yields: ngx resumes it from the event loop,
         * after what was ready before; here after one poll's events */
        op->kind = CS_OP_DEFER_IO;
        return cs_wait(L, op);
    }
    return tcp_connect_results(L, op);
}

/* The object (self at 1) lets its state t go with the parked connection:
 * slot 1 says so (false), or holds a new state with what the object keeps
 * across connects besides its timeouts (bind's address, the client
 * certificate). */
static void tcp_leave_parked(lua_State *L, cs_tcp *t)
{
    cs_tcp *n;

    if (t->bind_addr == NULL && t->client_cert == NULL &&
        t->client_key == NULL) {
        lua_pushboolean(L, 0);
        lua_rawseti(L, 1, 1);
        return;
    }
    n = tcp_new_state(L, t->s);
    lua_rawseti(L, 1, 1);
    n->ever = 1;
    n->connect_ms = t->connect_ms;
    n->send_ms = t->send_ms;
    n->read_ms = t->read_ms;
    cs_tcp_finalized(L, n);
    n->bind_addr = t->bind_addr;
    n->bind_len = t->bind_len;
    n->client_cert = t->client_cert;
    n->client_cert_len = t->client_cert_len;
    n->client_key = t->client_key;
    n->client_key_len = t->client_key_len;
    t->bind_addr = NULL;
    t->client_cert = t->client_key = NULL;
}

/* setkeepalive(timeout?, size?) in 0.10.23's order (SPEC.md 8.2) */
static int tcp_setkeepalive(lua_State *L)
{
    int n = lua_gettop(L), dubious;
    cs_tcp *t;
    const char *busy;
    double timeout;

    if (n < 1 || n > 3)
        return luaL_error(L,
                          "expecting 1 to 3 arguments (including the "
                          "object), but got %d",
                          n);
    t = cs_tcp_self(L);
    if (t == NULL || t->fd < 0 || t->read_closed || t->write_closed || t->eof)
        return cs_fail(L, "closed");
    /* TLS: records without data (1.3 tickets) are read, not unread data.
     * Plain: always peek; ngx knows a FIN that came with the last bytes
     * from epoll (EPOLLRDHUP), which libev does not give us */
    dubious = t->tls != NULL ? cs_tls_idle_check(t->tls, t->fd)
                             : cs_tcp_peek_dubious(t);
    if (dubious < 0) /* the peer closed: ngx saw the EOF too */
        return cs_fail(L, "closed");
    busy = tcp_busy(t, 1, 1);
    if (busy != NULL)
        return cs_fail(L, busy);
    if (cs_buffer_len(&t->buf) > 0)
        return cs_fail(L, "unread data in buffer");
    if (t->s->exiting) {
        cs_tcp_close_fd(t);
        lua_pushinteger(L, 1);
        return 1;
    }
    if (dubious > 0) {
        cs_tcp_close_fd(t);
        return cs_fail(L, "connection in dubious state");
    }
    timeout = t->s->cfg.keepalive_timeout;
    if (n >= 2 && lua_isnumber(L, 2))
        timeout = (double)lua_tointeger(L, 2);
    if (!cs_pool_park(L, t, n >= 3 ? 3 : 0, timeout < 0 ? 0 : timeout)) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    tcp_leave_parked(L, t);
    if (n >= 2 && !lua_isnil(L, 2))
        luaL_checkinteger(L, 2); /* 0.10.23 checks it only after parking */
    lua_pushinteger(L, 1);
    return 1;
}

/* ---- close, timeouts, reuse -------------------------------------------- */

static int tcp_close(lua_State *L)
{
    int n = lua_gettop(L);
    cs_tcp *t;
    const char *busy;

    if (n != 1)
        return luaL_error(L,
                          "expecting 1 argument (including the object) "
                          "but seen %d",
                          n);
    t = cs_tcp_self(L);
    if (t == NULL || t->fd < 0 || (t->read_closed && t->write_closed))
        return cs_fail(L, "closed");
    busy = tcp_busy(t, 1, 1);
    if (busy != NULL)
        return cs_fail(L, busy);
    cs_tcp_close_fd(t);
    tcp_maybe_unfinalized(L, t);
    lua_pushinteger(L, 1);
    return 1;
}

static int tcp_check_timeout(lua_State *L, int idx)
{
    /* truncated first, as ngx's (ngx_int_t) cast: -0.5 is 0, the default;
     * non-numbers are 0 too */
    lua_Number v = lua_tonumber(L, idx);

    if (v > -1 && v < 2147483648.0)
        v = (lua_Number)(long long)v;
    if (!(v >= 0 && v < 2147483648.0)) /* NaN too */
        luaL_error(L, "bad timeout value");
    return (int)v;
}

/* into their slots of self (tcp_load_timeouts) and its state */
static void tcp_store_timeouts(lua_State *L, int c, int w, int r)
{
    cs_tcp *t = cs_tcp_self(L);

    lua_pushinteger(L, c);
    lua_rawseti(L, 1, SLOT_CONNECT_MS);
    lua_pushinteger(L, w);
    lua_rawseti(L, 1, SLOT_SEND_MS);
    lua_pushinteger(L, r);
    lua_rawseti(L, 1, SLOT_READ_MS);
    if (t != NULL) {
        t->connect_ms = c;
        t->send_ms = w;
        t->read_ms = r;
    }
}

static int tcp_settimeout(lua_State *L)
{
    int n = lua_gettop(L), ms;

    if (n != 2)
        return luaL_error(L,
                          "ngx.socket settimeout: expecting 2 arguments "
                          "(including the object) but seen %d",
                          n);
    ms = tcp_check_timeout(L, 2);
    tcp_store_timeouts(L, ms, ms, ms);
    return 0;
}

static int tcp_settimeouts(lua_State *L)
{
    int n = lua_gettop(L), c, w, r;

    if (n != 4) /* 0.10.23 says "settimeout:" here too: the oracle's text */
        return luaL_error(L,
                          "ngx.socket settimeout: expecting 4 arguments "
                          "(including the object) but seen %d",
                          n);
    c = tcp_check_timeout(L, 2);
    w = tcp_check_timeout(L, 3);
    r = tcp_check_timeout(L, 4);
    tcp_store_timeouts(L, c, w, r);
    return 0;
}

static int tcp_getreusedtimes(lua_State *L)
{
    int n = lua_gettop(L);
    cs_tcp *t;

    if (n != 1)
        return luaL_error(L,
                          "expecting 1 argument (including the object), "
                          "but got %d",
                          n);
    t = cs_tcp_self(L);
    if (t == NULL || t->fd < 0 || (t->read_closed && t->write_closed))
        return cs_fail(L, "closed");
    lua_pushinteger(L, t->reused);
    return 1;
}

/* ---- setoption / getoption / bind --------------------------------------- */

static const struct {
    const char *name;
    int level, opt;
} tcp_options[] = {{"keepalive", SOL_SOCKET, SO_KEEPALIVE},
                   {"reuseaddr", SOL_SOCKET, SO_REUSEADDR},
                   {"tcp-nodelay", IPPROTO_TCP, TCP_NODELAY},
                   {"sndbuf", SOL_SOCKET, SO_SNDBUF}, /* 0.10.23 swaps: (D) */
                   {"rcvbuf", SOL_SOCKET, SO_RCVBUF},
                   {"keepintvl", IPPROTO_TCP, TCP_KEEPINTVL},
                   {"keepcnt", IPPROTO_TCP, TCP_KEEPCNT},
                   {NULL, 0, 0}};

static int tcp_option(lua_State *L, int set)
{
    cs_tcp *t = cs_tcp_self(L);
    const char *name;
    int i, value = 0;
    socklen_t len = sizeof(value);

    if (!cs_tcp_ever(L, t))
        return luaL_error(L, "socket is never created nor connected");
    if (lua_isnoneornil(L, 2))
        return cs_fail(L, "missing the \"option\" argument");
    if (set && lua_isnone(L, 3))
        return cs_fail(L, "missing the \"value\" argument");
    name = lua_tostring(L, 2);
    for (i = 0; name != NULL && tcp_options[i].name != NULL; i++)
        if (strcmp(tcp_options[i].name, name) == 0)
            break;
    if (name == NULL || tcp_options[i].name == NULL) {
        lua_pushnil(L);
        lua_getglobal(L, "tostring");
        lua_pushvalue(L, 2);
        lua_call(L, 1, 1);
        lua_pushfstring(L, "unsupported option %s", lua_tostring(L, -1));
        lua_replace(L, -2);
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    if (t == NULL || t->fd < 0) /* NULL: parked */
        return cs_fail(L, "closed");
    /* as ngx's after its first send: on, whatever comes next */
    if (tcp_options[i].opt == TCP_NODELAY &&
        tcp_options[i].level == IPPROTO_TCP && cs_tcp_nodelay_due_now(t) != 0)
        return cs_fail(L, strerror(errno));
    if (set) {
        value = lua_isboolean(L, 3) ? lua_toboolean(L, 3)
                                    : (int)lua_tointeger(L, 3);
        if (setsockopt(t->fd, tcp_options[i].level, tcp_options[i].opt, &value,
                       sizeof(value)) != 0)
            return cs_fail(L, strerror(errno));
        lua_pushboolean(L, 1);
        return 1;
    }
    if (getsockopt(t->fd, tcp_options[i].level, tcp_options[i].opt, &value,
                   &len) != 0)
        return cs_fail(L, strerror(errno));
    lua_pushinteger(L, value);
    return 1;
}

static int tcp_setoption(lua_State *L)
{
    return tcp_option(L, 1);
}

static int tcp_getoption(lua_State *L)
{
    return tcp_option(L, 0);
}

static int tcp_bind(lua_State *L)
{
    int n = lua_gettop(L);
    cs_tcp *t;
    const char *ip;
    const char *err;
    int port = 0;

    /* the port argument is HEAD's; 0.10.23's message for other counts */
    if (n != 2 && n != 3)
        return luaL_error(L, "expecting 2 arguments, but got %d", n);
    luaL_checkstring(L, 2);
    t = cs_tcp_state(L);
    if (t == NULL)
        return luaL_error(L, "bad socket object");
    if (n == 3) {
        if (!lua_isnumber(L, 3)) {
            lua_pushnil(L);
            lua_pushfstring(L, "expecting port to be anumber but got type: %s",
                            luaL_typename(L, 3));
            return 2;
        }
        port = cs_ngx_int(lua_tonumber(L, 3));
        if (port < 0 || port > 65535) {
            lua_pushnil(L);
            lua_pushfstring(L, "bad port number: %d", port);
            return 2;
        }
    }
    ip = lua_tostring(L, 2);
    cs_tcp_finalized(L, t);
    err = cs_bind_address(ip, port, &t->bind_addr, &t->bind_len);
    if (err != NULL)
        return cs_fail(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- module ------------------------------------------------------------ */

static const char tcp_lua[] = "local tcp = ...\n"
                              "return function(...)\n"
                              "  local sock = tcp()\n"
                              "  local ok, err = sock:connect(...)\n"
                              "  if ok then return sock end\n"
                              "  return nil, err\n"
                              "end\n";

/* The state's two metatables (tcp_set_finalized): the one cs_socket_class
 * made, with __gc, and a copy without it. */
static void tcp_state_metatables(lua_State *L, cs_sched *s)
{
    luaL_getmetatable(L, TCP_STATE_MT);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, -3) != 0) { /* mt, copy, key, value */
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4); /* the key stays for lua_next */
    }
    lua_pushnil(L);
    lua_setfield(L, -2, "__gc");
    s->tcp_mt_ref[0] = luaL_ref(L, LUA_REGISTRYINDEX); /* the copy */
    s->tcp_mt_ref[1] = luaL_ref(L, LUA_REGISTRYINDEX);
}

void cs_open_tcp(lua_State *L, int mod)
{
    cs_sched *s;
    static const luaL_Reg methods[] = {{"connect", tcp_connect},
                                       {"close", tcp_close},
                                       {"settimeout", tcp_settimeout},
                                       {"settimeouts", tcp_settimeouts},
                                       {"getreusedtimes", tcp_getreusedtimes},
                                       {"setoption", tcp_setoption},
                                       {"getoption", tcp_getoption},
                                       {"bind", tcp_bind},
                                       {"setkeepalive", tcp_setkeepalive},
                                       {"send", cs_tcp_send},
                                       {"receive", cs_tcp_receive},
                                       {"receiveany", cs_tcp_receiveany},
                                       {"receiveuntil", cs_tcp_receiveuntil},
                                       {NULL, NULL}};

    cs_socket_class(L, mod, TCP_MT, TCP_STATE_MT, tcp_state_gc, methods);
    s = lua_touserdata(L, mod + 1);
    tcp_state_metatables(L, s);
    /* tcp(): the scheduler and the metatable as upvalues, so making a
     * socket looks nothing up by name */
    lua_pushvalue(L, mod + 1);
    luaL_getmetatable(L, TCP_MT);
    lua_pushcclosure(L, tcp_new, 2);
    lua_pushvalue(L, -1);
    lua_setfield(L, mod, "tcp");
    lua_setfield(L, mod, "stream");
    cs_open_tcp_ffi(L, mod, TCP_MT, TCP_STATE_MT); /* may replace them */
    if (luaL_loadbuffer(L, tcp_lua, sizeof(tcp_lua) - 1, "=cosocket.connect") !=
        LUA_OK)
        lua_error(L);
    lua_getfield(L, mod, "tcp");
    lua_call(L, 1, 1);
    lua_setfield(L, mod, "connect");
}
