/* cosocket.udp(): ngx.socket.udp (SPEC.md 12).  Half duplex: any call while
 * a receive waits gets "socket busy".  Sends are one datagram, at once;
 * receive waits for one.  Errors other than setup ones keep the socket. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "cosocket.h"
#include "compat.h"
#include "addr.h"
#include "gather.h"
#include "tcp.h"

#define UDP_MT           "cosocket.udp"
#define UDP_STATE_MT     "cosocket.udp.state"
#define UDP_MAGIC        0x75647073u
#define UDP_MAX_DATAGRAM 65536
#define UDP_IOV_MAX      1024 /* Linux UIO_MAXIOV */

typedef struct cs_udp {
    cs_owned owned; /* the handler that set its peer closes it */
    unsigned magic;
    cs_sched *s;
    int fd;
    int read_ms;  /* settimeout: receive only; 0: the default */
    cs_op rd;     /* receive, and setpeername while it resolves */
    size_t rsize; /* the pending receive's size */
    int rd_errno; /* what the socket reported to the readiness check */
    cs_lookup *lookup;
    char *host; /* a name being resolved */
    int port;
    struct sockaddr_storage *bind_addr;
    socklen_t bind_len;
} cs_udp;

/* May u be used (send, receive, close)?  0, or the count of nil, err
 * pushed, which the caller returns: half duplex, one call at a time. */
static int udp_refused(lua_State *L, cs_udp *u)
{
    if (u->fd < 0)
        return cs_fail(L, "closed");
    if (u->rd.pending)
        return cs_fail(L, "socket busy");
    return 0;
}

static cs_udp *udp_self(lua_State *L)
{
    cs_udp *u;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_rawgeti(L, 1, 1);
    u = lua_touserdata(L, -1);
    if (u != NULL && (cs_rawlen(L, -1) != sizeof(*u) || u->magic != UDP_MAGIC))
        u = NULL;
    lua_pop(L, 1);
    if (u == NULL)
        luaL_error(L, "bad socket object");
    return u;
}

static void udp_close_fd(cs_udp *u)
{
    if (u->rd.pending && !u->rd.done) {
        u->rd.err = "closed";
        cs_op_done(&u->rd);
    }
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
    cs_op_forget_fd(&u->rd);
    cs_lookup_drop(u->lookup);
    u->lookup = NULL;
    free(u->host);
    u->host = NULL;
    cs_disown(&u->owned);
}

static void udp_owned_close(cs_owned *o)
{
    udp_close_fd(cs_container_of(o, cs_udp, owned));
}

static void udp_on_cancel(cs_op *op) /* a killed thread: socket closed */
{
    op->pending = 0;
    udp_close_fd(op->self);
}

static int udp_state_gc(lua_State *L)
{
    cs_udp *u = lua_touserdata(L, 1);

    if (u->rd.pending) { /* lua_close only: C only, nothing resumed */
        u->rd.on_cancel = NULL;
        cs_op_cancel(&u->rd);
    }
    udp_close_fd(u);
    free(u->bind_addr);
    u->bind_addr = NULL;
    return 0;
}

static int udp_new(lua_State *L)
{
    cs_sched *s = cs_sched_get(L);
    int n = lua_gettop(L);
    cs_udp *u;

    if (n != 0)
        return luaL_error(L, "expecting zero arguments, but got %d", n);
    lua_createtable(L, 2, 0);
    u = lua_newuserdata(L, sizeof(*u));
    memset(u, 0, sizeof(*u));
    u->magic = UDP_MAGIC;
    u->s = s;
    u->fd = -1;
    u->owned.close = udp_owned_close;
    cs_op_init(&u->rd, s, u, NULL);
    luaL_getmetatable(L, UDP_STATE_MT);
    lua_setmetatable(L, -2);
    lua_rawseti(L, -2, 1);
    luaL_getmetatable(L, UDP_MT);
    lua_setmetatable(L, -2);
    return 1;
}

/* ---- setpeername -------------------------------------------------------- */

/* A socket connected to the first address: 0 and errno on failure. */
static int udp_connect(cs_udp *u)
{
    struct sockaddr *sa = (struct sockaddr *)&u->lookup->addrs[0];
    int fd =
        socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return 0;
    if (u->bind_addr != NULL && sa->sa_family != AF_UNIX &&
        bind(fd, (struct sockaddr *)u->bind_addr, u->bind_len) != 0)
        goto fail;
    if (sa->sa_family == AF_UNIX) { /* autobind: the peer can answer */
        struct sockaddr_un me;
        memset(&me, 0, sizeof(me));
        me.sun_family = AF_UNIX;
        if (bind(fd, (struct sockaddr *)&me, sizeof(sa_family_t)) != 0)
            goto fail;
    }
    if (connect(fd, sa, u->lookup->lens[0]) != 0)
        goto fail;
    u->fd = fd;
    return 1;
fail : {
    int e = errno;
    close(fd);
    errno = e;
}
    return 0;
}

static int udp_peer_results(lua_State *L, cs_op *op)
{
    cs_udp *u = op->self;
    cs_lookup *lk = u->lookup;
    int err;

    if (op->err != NULL && (lk == NULL || !lk->finished)) {
        lua_pushnil(L);
        lua_pushfstring(
            L, "%s could not be resolved (110: Operation timed out)", u->host);
        udp_close_fd(u);
        return 2;
    }
    if (lk == NULL || lk->code != 0) {
        lua_pushnil(L);
        if (lk != NULL)
            lua_pushfstring(L, "%s could not be resolved (%d: %s)", u->host,
                            lk->code, lk->text);
        else
            lua_pushstring(L, op->err != NULL ? op->err : "closed");
        udp_close_fd(u);
        return 2;
    }
    cs_lookup_set_port(lk, u->port);
    if (!udp_connect(u)) {
        err = errno;
        lua_pushnil(L);
        cs_push_errno(L, err);
        udp_close_fd(u);
        return 2;
    }
    cs_lookup_drop(u->lookup);
    u->lookup = NULL;
    free(u->host);
    u->host = NULL;
    lua_pushinteger(L, 1);
    return 1;
}

static void udp_on_resolved(cs_lookup *lk)
{
    cs_udp *u = lk->data;

    cs_op_done(&u->rd);
}

static int udp_setpeername(lua_State *L)
{
    int n = lua_gettop(L), port = 0;
    size_t len;
    const char *host;
    cs_udp *u;
    cs_sched *s;
    cs_op *op;

    if (n != 2 && n != 3)
        return luaL_error(L,
                          "ngx.socket.udp setpeername: expecting 2 or 3 "
                          "arguments (including the object), but seen %d",
                          n);
    luaL_checktype(L, 1, LUA_TTABLE);
    host = luaL_checklstring(L, 2, &len);
    if (n == 3) {
        lua_Integer p = luaL_checkinteger(L, 3);
        if (p < 0 || p > 65535) {
            lua_pushnil(L);
            lua_pushfstring(L, "bad port number: %d", (int)p);
            return 2;
        }
        port = (int)p;
    }
    u = udp_self(L);
    s = u->s;
    if (u->rd.pending)
        return cs_fail(L, "socket busy");
    if (u->fd >= 0 || u->lookup != NULL)
        udp_close_fd(u);
    if (cs_is_unix_host(host, len)) {
        if (!cs_unix_target(L, host + 5, &u->lookup)) {
            lua_pushnil(L);
            lua_insert(L, -2);
            return 2;
        }
    } else if (!cs_target(L, s, host, len, port, &u->lookup, &u->host,
                          &u->port)) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    cs_own(s->current != NULL ? s->current->handler : &s->main_handler,
           &u->owned);
    op = &u->rd;
    cs_op_init(op, s, u, udp_peer_results);
    op->on_cancel = udp_on_cancel;
    if (u->lookup == NULL) { /* a name: resolved on the state's resolver */
        u->lookup = cs_resolve(s, u->host, udp_on_resolved, u);
        if (u->lookup == NULL) {
            udp_close_fd(u);
            return cs_fail(L, "failed to start the resolver");
        }
        if (!u->lookup->finished) {
            op->timeout = cs_ms_to_seconds(s->cfg.resolver_timeout);
            lua_settop(L, 1);
            return cs_wait(L, op);
        }
    }
    return udp_peer_results(L, op);
}

/* ---- send, receive ------------------------------------------------------ */

/* More pieces than one sendmsg takes: one datagram from one copy (as
 * nginx, which always copies). 0: no memory. */
static int udp_flatten(cs_sched *s, struct msghdr *msg, size_t total)
{
    char *p = malloc(total > 0 ? total : 1);
    size_t i, off = 0;

    if (p == NULL)
        return 0;
    for (i = 0; i < msg->msg_iovlen; i++) {
        memcpy(p + off, s->iov[i].iov_base, s->iov[i].iov_len);
        off += s->iov[i].iov_len;
    }
    s->iov_flat.iov_base = p;
    s->iov_flat.iov_len = total;
    msg->msg_iov = &s->iov_flat;
    msg->msg_iovlen = 1;
    return 1;
}

static int udp_send(lua_State *L)
{
    int n = lua_gettop(L), refused;
    cs_udp *u;
    struct msghdr msg;
    size_t total;
    ssize_t sent;

    if (n != 2)
        return luaL_error(L,
                          "expecting 2 arguments (including the object), "
                          "but got %d",
                          n);
    u = udp_self(L);
    if ((refused = udp_refused(L, u)) != 0)
        return refused;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iovlen = (size_t)cs_gather(L, u->s, 2, &total); /* may raise */
    msg.msg_iov = u->s->iov;
    if (msg.msg_iovlen > UDP_IOV_MAX && !udp_flatten(u->s, &msg, total))
        return cs_fail(L, "no memory");
    do
        sent = sendmsg(u->fd, &msg, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    if (msg.msg_iov != u->s->iov)
        free(msg.msg_iov[0].iov_base);
    if (sent < 0) {
        lua_pushnil(L);
        cs_push_errno(L, errno);
        return 2;
    }
    if ((size_t)sent < total)
        return cs_fail(L, "partial write");
    lua_pushinteger(L, 1);
    return 1;
}

/* The readiness check leaves the datagram (or the error) in the kernel:
 * results read it then, into the state's scratch buffer. */
static void udp_on_readable(EV_P_ ev_io *w, int revents)
{
    cs_op *op = cs_container_of(w, cs_op, io);
    cs_udp *u = op->self;
    char c;

    (void)loop;
    (void)revents;
    if (recv(u->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;          /* woke early: keep waiting */
        u->rd_errno = errno; /* an ICMP error, reported once */
    }
    cs_op_done(op);
}

static int udp_receive_results(lua_State *L, cs_op *op)
{
    cs_udp *u = op->self;
    cs_sched *s = u->s;
    ssize_t n;

    if (op->err != NULL) { /* "timeout" keeps the socket (not fatal) */
        lua_pushnil(L);
        lua_pushstring(L, op->err);
        return 2;
    }
    if (u->rd_errno != 0) {
        lua_pushnil(L);
        cs_push_errno(L, u->rd_errno);
        return 2;
    }
    if (s->udp_buf == NULL) {
        s->udp_buf = malloc(UDP_MAX_DATAGRAM);
        if (s->udp_buf == NULL)
            return cs_fail(L, "no memory");
    }
    do
        n = recv(u->fd, s->udp_buf, u->rsize, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        lua_pushnil(L);
        cs_push_errno(L, errno);
        return 2;
    }
    lua_pushlstring(L, s->udp_buf, (size_t)n); /* a longer one is cut */
    return 1;
}

static int udp_receive(lua_State *L)
{
    int n = lua_gettop(L), refused;
    cs_udp *u;
    lua_Number size;
    cs_op *op;
    char c;

    if (n != 1 && n != 2)
        return luaL_error(L,
                          "expecting 1 or 2 arguments (including the "
                          "object), but got %d",
                          n);
    u = udp_self(L);
    if ((refused = udp_refused(L, u)) != 0)
        return refused;
    size = luaL_optnumber(L, 2, UDP_MAX_DATAGRAM);
    /* as ngx's (size_t) cast: negative sizes become the maximum; so does
     * NaN, which no conversion to size_t may see (the buffer holds
     * UDP_MAX_DATAGRAM bytes, and a unix datagram can be longer) */
    u->rsize = !(size >= 0 && size <= UDP_MAX_DATAGRAM) ? UDP_MAX_DATAGRAM
                                                        : (size_t)size;
    u->rd_errno = 0;
    op = &u->rd;
    cs_op_init(op, u->s, u, udp_receive_results);
    op->on_cancel = udp_on_cancel;
    if (recv(u->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) >= 0)
        return udp_receive_results(L, op); /* already there */
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
        u->rd_errno = errno; /* an ICMP error waiting to be told */
        return udp_receive_results(L, op);
    }
    ev_init(&op->io, udp_on_readable);
    op->fd = u->fd;
    op->events = EV_READ;
    op->timeout =
        cs_ms_to_seconds(u->read_ms > 0 ? u->read_ms : u->s->cfg.read_timeout);
    lua_settop(L, 1);
    return cs_wait(L, op);
}

/* ---- settimeout, close, bind -------------------------------------------- */

static int udp_settimeout(lua_State *L)
{
    int n = lua_gettop(L);
    cs_udp *u;
    lua_Number v;

    if (n != 2)
        return luaL_error(L,
                          "ngx.socket settimeout: expecting at least 2 "
                          "arguments (including the object) but seen %d",
                          n);
    u = udp_self(L);
    v = lua_tonumber(L, 2);
    u->read_ms = v > 0 && v < 2147483648.0 ? (int)v : 0;
    return 0;
}

static int udp_close(lua_State *L)
{
    int n = lua_gettop(L), refused;
    cs_udp *u;

    if (n != 1)
        return luaL_error(L,
                          "expecting 1 argument (including the object) "
                          "but seen %d",
                          n);
    u = udp_self(L);
    if ((refused = udp_refused(L, u)) != 0)
        return refused;
    udp_close_fd(u);
    lua_pushinteger(L, 1);
    return 1;
}

/* bind(ip): HEAD's, for the next setpeername */
static int udp_bind(lua_State *L)
{
    int n = lua_gettop(L);
    cs_udp *u;
    const char *ip;
    const char *err;

    if (n != 2)
        return luaL_error(L, "expecting 2 arguments, but got %d", n);
    u = udp_self(L);
    ip = lua_tostring(L, 2);
    err = cs_bind_address(ip, 0, &u->bind_addr, &u->bind_len);
    if (err != NULL)
        return cs_fail(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

void cs_open_udp(lua_State *L, int mod)
{
    static const luaL_Reg methods[] = {{"setpeername", udp_setpeername},
                                       {"send", udp_send},
                                       {"receive", udp_receive},
                                       {"settimeout", udp_settimeout},
                                       {"close", udp_close},
                                       {"bind", udp_bind},
                                       {NULL, NULL}};
    static const luaL_Reg funcs[] = {{"udp", udp_new}, {NULL, NULL}};

    cs_socket_class(L, mod, UDP_MT, UDP_STATE_MT, udp_state_gc, methods);
    cs_register(L, mod, funcs);
}
