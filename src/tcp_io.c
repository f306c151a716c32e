/* tcp send, receive, receiveany, receiveuntil (SPEC.md 4-6).  Reads share
 * one receive buffer and read as much as the kernel has; sends gather a
 * table's pieces in one sendmsg and copy only what the kernel refused. */
#include <errno.h>
#include <limits.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "tcp.h"
#include "compat.h"
#include "tls.h"
#include "gather.h"
#include "pool.h"
#include "ngx_int.h"

#define SEND_IOV_MAX 1024 /* Linux UIO_MAXIOV */
#define READ_MIN     4096
#define READ_MAX     (1 << 20)

/* May t start a read?  0, or the count of nil, err pushed ("closed",
 * "socket busy ..."), which the caller returns. */
static int tcp_read_refused(lua_State *L, cs_tcp *t)
{
    if (t != NULL && cs_tcp_can_read(t))
        return 0;
    if (t == NULL || t->fd < 0 || t->read_closed)
        return cs_fail(L, "closed");
    if (cs_tcp_connecting(t))
        return cs_fail(L, "socket busy connecting");
    if (t->rd.pending)
        return cs_fail(L, "socket busy reading");
    return 0;
}

/* ---- send -------------------------------------------------------------- */

/* what one send call gathered in the scheduler's iovec scratch */
typedef struct send_ctx {
    cs_sched *s;
    int n;
    size_t total;
} send_ctx;

/* Writes what it can; 1 when all is written, 0 to wait, -1 on error. */
static int send_flush(cs_tcp *t)
{
    while (t->pending_off < t->pending_len) {
        int want_write = 1;
        ssize_t n =
            t->tls != NULL
                ? cs_tls_send(t, t->pending + t->pending_off,
                              t->pending_len - t->pending_off, &want_write)
                : send(t->fd, t->pending + t->pending_off,
                       t->pending_len - t->pending_off, MSG_NOSIGNAL);
        if (n > 0) {
            t->pending_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            t->wr_want_read = !want_write; /* TLS may need to read first */
            return 0;
        }
        t->wr_errno = n < 0 ? errno : EPIPE;
        return -1;
    }
    return 1;
}

static void tcp_on_writable(EV_P_ ev_io *w, int revents)
{
    cs_op *op = cs_container_of(w, cs_op, io);
    cs_tcp *t = op->self;
    size_t before = t->pending_off;
    int rc = send_flush(t);

    (void)loop;
    (void)revents;
    if (rc == 0) {
        if (t->pending_off != before) /* progress: inactivity timeout */
            cs_op_retime(op, op->timeout);
        if ((t->wr_want_read ? EV_READ : EV_WRITE) != op->events)
            cs_op_watch(op, t->fd, t->wr_want_read ? EV_READ : EV_WRITE);
        return;
    }
    cs_op_done(op);
}

/* err: the wait's outcome ("timeout", "closed"), NULL for none */
static int send_outcome(lua_State *L, cs_tcp *t, const char *err)
{
    free(t->pending);
    t->pending = NULL;
    if (err == NULL && t->wr_errno == 0) {
        lua_pushinteger(L, (lua_Integer)t->send_total);
        return 1;
    }
    t->write_closed = 1; /* any send failure, timeout too (SPEC.md 4) */
    lua_pushnil(L);
    if (err != NULL)
        lua_pushstring(L, err);
    else
        cs_push_errno(L, t->wr_errno);
    return 2;
}

static int send_results(lua_State *L, cs_op *op)
{
    cs_tcp *t = op->self;
    int n = send_outcome(L, t, op->err);

    cs_tcp_wr_return(t);
    return n;
}

/* Sends the gathered pieces from iovec entry `from`, in IOV_MAX batches:
 * the index of the first entry not fully sent (its sent part in *part). */
static int send_gathered(cs_tcp *t, send_ctx *c, size_t *part)
{
    int i = 0;

    *part = 0;
    while (i < c->n) {
        struct msghdr msg;
        ssize_t n;
        int cnt = c->n - i > SEND_IOV_MAX ? SEND_IOV_MAX : c->n - i;

        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = c->s->iov + i;
        msg.msg_iovlen = (size_t)cnt;
        n = sendmsg(t->fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                t->wr_errno = errno;
            return i;
        }
        while (i < c->n && (size_t)n >= c->s->iov[i].iov_len)
            n -= (ssize_t)c->s->iov[i++].iov_len;
        if (n > 0) { /* a piece half sent: the kernel is full */
            *part = (size_t)n;
            return i;
        }
    }
    return i;
}

static int send_wait(lua_State *L, cs_tcp *t)
{
    cs_op *op = cs_tcp_wr(t);

    if (op == NULL)
        return send_outcome(L, t, "no memory"); /* the text of the others */
    cs_op_init(op, t->s, t, send_results);
    ev_init(&op->io, tcp_on_writable);
    op->on_cancel = t->rd.on_cancel;
    t->wr_connecting = 0;
    op->fd = t->fd;
    op->events = t->wr_want_read ? EV_READ : EV_WRITE;
    op->timeout = cs_tcp_timeout(t, t->send_ms, t->s->cfg.send_timeout);
    lua_settop(L, 1);
    return cs_wait(L, op);
}

/* TLS: the pieces are copied into one owned buffer, then written. */
static int send_tls(lua_State *L, cs_tcp *t, send_ctx *c)
{
    size_t off = 0;
    int i, rc;

    t->pending = malloc(c->total);
    if (t->pending == NULL)
        return cs_fail(L, "no memory");
    for (i = 0; i < c->n; i++) {
        memcpy(t->pending + off, t->s->iov[i].iov_base, t->s->iov[i].iov_len);
        off += t->s->iov[i].iov_len;
    }
    t->pending_len = c->total;
    t->pending_off = 0;
    rc = send_flush(t);
    if (rc != 0)
        return send_outcome(L, t, NULL);
    return send_wait(L, t);
}

static int nodelay_on(cs_tcp *t)
{
    int on = 1;

    if (setsockopt(t->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0)
        return -1;
    t->nodelay = TCP_NODELAY_DONE;
    return 0;
}

int cs_tcp_nodelay_before_send(cs_tcp *t, size_t len)
{
    if (t->nodelay == TCP_NODELAY_DONE || t->is_unix)
        return 0;
    /* TLS: the handshake's last flight may still be unacknowledged */
    if (t->nodelay == TCP_NODELAY_NONE && t->tls == NULL &&
        len <= TCP_NODELAY_LATER_MAX) {
        t->nodelay = TCP_NODELAY_DUE;
        return 0;
    }
    return nodelay_on(t);
}

int cs_tcp_nodelay_due_now(cs_tcp *t)
{
    return t->nodelay == TCP_NODELAY_DUE ? nodelay_on(t) : 0;
}

int cs_tcp_send(lua_State *L)
{
    int n = lua_gettop(L), i;
    cs_tcp *t;
    send_ctx c;
    size_t part, len;

    if (n != 2)
        return luaL_error(L,
                          "expecting 2 arguments (including the object), "
                          "but got %d",
                          n);
    t = cs_tcp_self(L);
    if (t == NULL || t->fd < 0 || t->write_closed)
        return cs_fail(L, "closed");
    if (cs_tcp_connecting(t))
        return cs_fail(L, "socket busy connecting");
    if (cs_tcp_writing(t))
        return cs_fail(L, "socket busy writing");
    c.s = t->s;
    c.n = cs_gather(L, t->s, 2, &c.total); /* may raise */
    if (c.total == 0) {
        lua_pushinteger(L, 0);
        return 1;
    }
    if (cs_tcp_nodelay_before_send(t, c.total) != 0)
        return cs_fail(L, "setsocketopt tcp_nodelay failed");
    t->wr_errno = 0;
    t->send_total = c.total;
    t->wr_want_read = 0;
    if (t->ffi_errno != 0) { /* tcp_ffi.c's send met it just now */
        t->wr_errno = t->ffi_errno;
        t->ffi_errno = 0;
        return send_outcome(L, t, NULL);
    }
    if (t->tls != NULL) /* one buffer for libtls: one record per write */
        return send_tls(L, t, &c);
    i = send_gathered(t, &c, &part);
    if (i == c.n || t->wr_errno != 0)
        return send_outcome(L, t, NULL);
    /* the kernel took part of it: keep the rest, then wait */
    for (len = 0, n = i; n < c.n; n++)
        len += t->s->iov[n].iov_len - (n == i ? part : 0);
    t->pending = len <= c.total ? malloc(len) : NULL;
    if (t->pending == NULL) {
        t->wr_errno = ENOMEM;
        return cs_fail(L, "no memory");
    }
    t->pending_len = len;
    t->pending_off = 0;
    for (len = 0, n = i; n < c.n; n++) {
        size_t skip = n == i ? part : 0;
        memcpy(t->pending + len, (char *)t->s->iov[n].iov_base + skip,
               t->s->iov[n].iov_len - skip);
        len += t->s->iov[n].iov_len - skip;
    }
    return send_wait(L, t);
}

/* ---- receive ----------------------------------------------------------- */

/* Moves the pending read on: 1 when it is over (t->rd_status says how),
 * 0 when it must wait for the socket. */
static int read_progress(cs_tcp *t)
{
    cs_buffer *b = &t->buf;

    for (;;) {
        size_t room, want;
        ssize_t n;
        char *p;

        if (b->data != NULL &&
            cs_scan_step(&t->scan, cs_buffer_peek(b), cs_buffer_len(b))) {
            t->rd_status = TCP_RD_OK;
            return 1;
        }
        /* no bytes: only receiveuntil may be done (a held prefix was
         * enough); the other patterns need bytes */
        if (b->data == NULL && t->scan.kind == CS_PAT_UNTIL &&
            cs_scan_step(&t->scan, "", 0)) {
            t->rd_status = TCP_RD_OK;
            return 1;
        }
        if (t->eof) {
            t->rd_status = TCP_RD_EOF;
            return 1;
        }
        if (!t->may_read)
            return 0;
        want = t->rd_want < READ_MIN ? READ_MIN : t->rd_want;
        if (t->scan.kind == CS_PAT_SIZE && t->scan.size > cs_buffer_len(b) &&
            t->scan.size - cs_buffer_len(b) > want)
            want = t->scan.size - cs_buffer_len(b);
        if (want > READ_MAX)
            want = READ_MAX;
        p = cs_buffer_reserve(b, t->s->buffers, want, &room);
        if (p == NULL) {
            t->rd_errno = ENOMEM;
            t->rd_status = TCP_RD_ERRNO;
            return 1;
        }
        if (t->tls != NULL) {
            int want_write = 0;
            n = cs_tls_recv(t, p, room, &want_write);
            t->rd_want_write = (unsigned char)want_write;
        } else {
            n = recv(t->fd, p, room, 0);
        }
        if (n > 0) {
            cs_buffer_commit(b, (size_t)n);
            if ((size_t)n < room && t->tls == NULL) {
                t->may_read = 0; /* the kernel had less: it is empty now */
            } else if (t->rd_want < READ_MAX) {
                t->rd_want = t->rd_want ? t->rd_want * 2 : READ_MIN * 2;
            }
            continue;
        }
        if (b->start == b->end)
            cs_buffer_release(b, t->s->buffers); /* idle: hold no memory */
        if (n == 0) {
            t->eof = 1;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            t->may_read = 0;
            return 0;
        }
        t->rd_errno = errno;
        t->rd_status = TCP_RD_ERRNO;
        return 1;
    }
}

/* Readable: the thread reads when it runs (receive_ready), so only the
 * socket being read holds a buffer, not every socket that woke up. */
static void tcp_on_readable(EV_P_ ev_io *w, int revents)
{
    cs_op *op = cs_container_of(w, cs_op, io);
    cs_tcp *t = op->self;

    (void)loop;
    (void)revents;
    if (t->parked != NULL) { /* idle in a pool: the pool's to close */
        cs_pool_idle_readable(t);
        return;
    }
    t->may_read = 1;
    /* a pending read's watchers never linger: no call on the way to it */
    if ((op->lingering || op->timer_lingering) && cs_op_unlinger(op))
        return; /* bytes came while nobody read: the next read takes them */
    cs_op_done(op);
}

/* Pushes n bytes of line data without its CR bytes (ngx drops them all). */
static void push_line(lua_State *L, const char *p, size_t n)
{
    luaL_Buffer lb;
    const char *cr = memchr(p, '\r', n), *end = p + n;

    if (cr == NULL || cr == end - 1) { /* none, or just the one of "\r\n" */
        lua_pushlstring(L, p, cr == NULL ? n : n - 1);
        return;
    }
    luaL_buffinit(L, &lb);
    while (cr != NULL) {
        luaL_addlstring(&lb, p, (size_t)(cr - p));
        p = cr + 1;
        cr = memchr(p, '\r', (size_t)(end - p));
    }
    luaL_addlstring(&lb, p, (size_t)(end - p));
    luaL_pushresult(&lb);
}

static void push_data(lua_State *L, cs_tcp *t, size_t n)
{
    const char *p = t->buf.data != NULL ? cs_buffer_peek(&t->buf) : "";

    if (t->scan.kind == CS_PAT_LINE)
        push_line(L, p, n);
    else
        lua_pushlstring(L, p, n);
}

static int receive_results(lua_State *L, cs_op *op)
{
    cs_tcp *t = op->self;
    cs_buffer *b = &t->buf;
    size_t len = cs_buffer_len(b), take, drop;

    if (op->err == NULL &&
        (t->rd_status == TCP_RD_OK ||
         (t->rd_status == TCP_RD_EOF && t->scan.kind == CS_PAT_ALL))) {
        cs_scan_result(&t->scan, b->data != NULL ? cs_buffer_peek(b) : "", len,
                       &take, &drop);
        push_data(L, t, take);
        cs_buffer_consume(b, t->s->buffers, drop);
        return 1;
    }
    lua_pushnil(L);
    if (op->err != NULL) {
        lua_pushstring(L, op->err); /* "timeout": nothing is closed */
    } else if (t->rd_status == TCP_RD_EOF) {
        lua_pushliteral(L, "closed");
        t->read_closed = 1;
    } else {
        cs_push_errno(L, t->rd_errno);
        t->read_closed = 1;
    }
    if (t->fd < 0) { /* closed under us (a kill elsewhere) */
        lua_pushliteral(L, "");
        return 3;
    }
    take = cs_scan_partial(&t->scan, len);
    push_data(L, t, take);
    cs_buffer_consume(b, t->s->buffers, take);
    return 3;
}

/* Sets the read op up to wait for the socket (again). */
static void read_arm(cs_tcp *t)
{
    cs_op *op = &t->rd;

    op->fd = t->fd;
    op->events = t->rd_want_write ? EV_WRITE : EV_READ;
    /* the whole timeout again at every wake-up, as ngx re-adds its timer */
    op->timeout = cs_tcp_timeout(t, t->read_ms, t->s->cfg.read_timeout);
}

/* The thread of a waiting read runs: read now, or wait again. */
static int receive_ready(lua_State *L, cs_op *op)
{
    cs_tcp *t = op->self;

    if (op->err == NULL && t->fd >= 0 && !read_progress(t)) {
        read_arm(t);
        return CS_AGAIN;
    }
    return receive_results(L, op);
}

/* Starts the read set up in t->scan: at once, or waits. */
static int read_start(lua_State *L, cs_tcp *t)
{
    cs_op *op = &t->rd;

    t->rd_errno = 0;
    op->err = NULL; /* a timeout of the last read is not this one's */
    if (read_progress(t))
        return receive_results(L, op);
    read_arm(t);
    return cs_wait(L, op);
}

/* Another read call: a receiveuntil iterator's held prefix is released
 * to whoever reads next (HEAD's fix of lua-nginx-module #2131). */
static void read_begin(cs_tcp *t)
{
    t->read_gen++;
}

/* x for a "*x" string argument at idx, else 0.  Looked at before
 * lua_isnumber, which would try "*l" as a number on every call. */
static int pattern_star(lua_State *L, int idx)
{
    size_t len;
    const char *p;

    if (lua_type(L, idx) != LUA_TSTRING)
        return 0;
    p = lua_tolstring(L, idx, &len);
    if (len != 2 || p[0] != '*')
        return 0;
    return p[1] != '\0' ? (unsigned char)p[1] : '*'; /* "*\0": not 0 */
}

/* receive(size): sets t->scan up; 0 with "" pushed for a size under 1
 * (raises for a negative one) */
static int receive_size(lua_State *L, cs_tcp *t)
{
    lua_Number v = lua_tonumber(L, 2);

    /* ngx's lua_tointeger: -0.5 is 0; NaN and infinities are negative */
    if (cs_ngx_int64(v) < 0)
        return luaL_argerror(L, 2, "bad pattern argument");
    if (v < 1) {
        lua_pushliteral(L, "");
        return 0;
    }
    cs_scan_init(&t->scan, CS_PAT_SIZE,
                 v > (lua_Number)((size_t)-1 / 2) ? (size_t)-1 / 2 : (size_t)v,
                 NULL);
    return 1;
}

/* tcp_ffi.c's read of a line, of n bytes or of up to n bytes (kind
 * CS_PAT_LINE, _SIZE or _ANY), on a socket its FFI call found free to
 * read: as receive() or receiveany() with those arguments. */
int cs_tcp_receive_wait(lua_State *L, cs_tcp *t, int kind, size_t n)
{
    int refused;

    if ((refused = tcp_read_refused(L, t)) != 0)
        return refused;
    cs_scan_init(&t->scan, kind, n, NULL);
    read_begin(t);
    return read_start(L, t);
}

int cs_tcp_receive(lua_State *L)
{
    int n = lua_gettop(L), refused, star;
    cs_tcp *t;

    if (n != 1 && n != 2)
        return luaL_error(L,
                          "expecting 1 or 2 arguments (including the "
                          "object), but got %d",
                          n);
    t = cs_tcp_self(L);
    if ((refused = tcp_read_refused(L, t)) != 0)
        return refused;
    star = n == 1 ? 'l' : pattern_star(L, 2);
    if (star == 'l') {
        cs_scan_init(&t->scan, CS_PAT_LINE, 0, NULL);
    } else if (star == 'a') {
        cs_scan_init(&t->scan, CS_PAT_ALL, 0, NULL);
    } else if (lua_isnumber(L, 2)) { /* 10 or "10": a size */
        if (!receive_size(L, t))
            return 1;
    } else if (lua_type(L, 2) == LUA_TSTRING && star == 0) {
        return luaL_argerror(
            L, 2,
            lua_pushfstring(L, "bad pattern argument: %s", lua_tostring(L, 2)));
    } else {
        return luaL_argerror(L, 2, "bad pattern argument");
    }
    read_begin(t);
    return read_start(L, t);
}

int cs_tcp_receiveany(lua_State *L)
{
    int n = lua_gettop(L);
    cs_tcp *t;
    int refused;
    lua_Number max;

    if (n != 2)
        return luaL_error(L,
                          "expecting 2 arguments (including the object), "
                          "but got %d",
                          n);
    t = cs_tcp_self(L);
    if ((refused = tcp_read_refused(L, t)) != 0)
        return refused;
    if (!lua_isnumber(L, 2) || cs_ngx_int64(max = lua_tonumber(L, 2)) <= 0)
        return luaL_argerror(L, 2, "bad max argument"); /* as receive's */
    cs_scan_init(&t->scan, CS_PAT_ANY,
                 max > (lua_Number)((size_t)-1 / 2) ? (size_t)-1 / 2
                                                    : (size_t)max,
                 NULL);
    read_begin(t);
    return read_start(L, t);
}

/* ---- receiveuntil ------------------------------------------------------ */

static int until_iterate(lua_State *L)
{
    int n = lua_gettop(L);
    lua_Integer size = 0;
    cs_until *u = lua_touserdata(L, lua_upvalueindex(3));
    cs_tcp *t;
    int refused;

    if (n > 1)
        return luaL_error(L, "expecting 0 or 1 arguments, but seen %d", n);
    if (n == 1) {
        size = luaL_checkinteger(L, 1);
        if (size < 0)
            size = 0;
    }
    lua_settop(L, 0);
    lua_pushvalue(L, lua_upvalueindex(1)); /* the socket, as self */
    t = cs_tcp_self(L);
    if ((refused = tcp_read_refused(L, t)) != 0)
        return refused;
    if (u->state == -1) { /* the part ended: say so once */
        u->state = 0;
        lua_pushnil(L);
        lua_pushnil(L);
        lua_pushnil(L);
        return 3;
    }
    if (u->gen != t->read_gen)
        u->state = 0; /* another reader took over: its bytes are unread */
    t->read_gen++;
    u->gen = t->read_gen;
    cs_scan_init(&t->scan, CS_PAT_UNTIL, (size_t)size, u);
    return read_start(L, t);
}

int cs_tcp_receiveuntil(lua_State *L)
{
    int n = lua_gettop(L), inclusive = 0;
    size_t len;
    const char *pat;
    cs_until *u;

    if (n != 2 && n != 3)
        return luaL_error(L,
                          "expecting 2 or 3 arguments (including the "
                          "object), but got %d",
                          n);
    if (n == 3) {
        luaL_checktype(L, 3, LUA_TTABLE);
        lua_getfield(L, 3, "inclusive");
        if (lua_type(L, -1) == LUA_TBOOLEAN)
            inclusive = lua_toboolean(L, -1);
        else if (!lua_isnil(L, -1))
            return luaL_error(L, "bad \"inclusive\" option value type: %s",
                              luaL_typename(L, -1));
        lua_pop(L, 2);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    pat = luaL_checklstring(L, 2, &len);
    if (len == 0)
        return cs_fail(L, "pattern is empty");
    if (len > INT_MAX / 2)
        return cs_fail(L, "failed to compile pattern");
    u = lua_newuserdata(L, cs_until_size(len));
    cs_until_init(u, pat, len, inclusive);
    u->gen = (unsigned)-1; /* not the socket's generation yet */
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2); /* keeps u->pat alive */
    lua_pushvalue(L, -3);
    lua_pushcclosure(L, until_iterate, 3);
    return 1;
}

void cs_tcp_io_init(cs_tcp *t)
{
    cs_op_init(&t->rd, t->s, t, receive_ready);
    ev_init(&t->rd.io, tcp_on_readable);
    t->rd.may_linger = 1;
}
