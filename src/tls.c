/* TLS on libtls: see tls.h.  libtls reads and writes ciphertext through
 * our callbacks on the nonblocking socket (tls_connect_cbs), so nothing
 * here ever blocks and SIGPIPE never fires. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <tls.h>
#include <unistd.h>
#include <openssl/x509.h>

#include "tls.h"
#include "ca_dir.h"
#include "compat.h"

#define SESSION_MT "cosocket.tls.session"
#define CA_DIR     "/etc/ssl/certs"

/* What the callbacks saw: libtls' own text after a reset says "unexpected
 * eof", ours say what the socket said (DECISIONS.md 7). */
struct cs_tls_io {
    int fd;
    int err;        /* first errno the callbacks saw */
    int eof;        /* the peer closed (with or without close_notify) */
    int saw_eagain; /* the read callback met an empty socket */
};

/* the state's configurations, by verification mode (libtls sets that on
 * the configuration), remade when configure{} changed something */
enum { VERIFY_NONE, VERIFY_CHAIN, VERIFY_FULL, VERIFY_MODES };

struct cs_tls_state {
    struct tls_config *cfg[VERIFY_MODES];
    unsigned cfg_gen;
    struct cs_ca_dir *ca_dirs; /* kept while the state lives: handshakes of
                                * an earlier configuration may still look
                                * in theirs */
};

static ssize_t tls_io_read(struct tls *ctx, void *buf, size_t len, void *arg)
{
    struct cs_tls_io *io = arg;
    ssize_t n;

    (void)ctx;
    do
        n = recv(io->fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        return n;
    if (n == 0) {
        io->eof = 1;
        return 0;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        io->saw_eagain = 1;
        return TLS_WANT_POLLIN;
    }
    if (io->err == 0)
        io->err = errno;
    return -1;
}

static ssize_t tls_io_write(struct tls *ctx, const void *buf, size_t len,
                            void *arg)
{
    struct cs_tls_io *io = arg;
    ssize_t n;

    (void)ctx;
    do
        n = send(io->fd, buf, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return TLS_WANT_POLLOUT;
    if (io->err == 0)
        io->err = errno;
    return -1;
}

/* nginx's protocol names to libtls' bits; unknown or SSLv* names are
 * ignored (libtls has no SSL 3) */
static uint32_t tls_protocols(const char *spec)
{
    static const struct {
        const char *name;
        uint32_t bits;
    } names[] = {{"TLSv1", TLS_PROTOCOL_TLSv1_0},
                 {"TLSv1.1", TLS_PROTOCOL_TLSv1_1},
                 {"TLSv1.2", TLS_PROTOCOL_TLSv1_2},
                 {"TLSv1.3", TLS_PROTOCOL_TLSv1_3}};
    uint32_t bits = 0;
    size_t i, len;

    while (spec != NULL && *spec != '\0') {
        spec += strspn(spec, " \t");
        len = strcspn(spec, " \t");
        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            if (strlen(names[i].name) == len &&
                memcmp(names[i].name, spec, len) == 0)
                bits |= names[i].bits;
        spec += len;
    }
    return bits;
}

static const char *cfg_string(cs_sched *s, int ref)
{
    const char *str;

    lua_rawgeti(s->aux, LUA_REGISTRYINDEX, ref);
    str = lua_tostring(s->aux, -1); /* anchored by the registry */
    lua_pop(s->aux, 1);
    return str;
}

/* A fresh configuration of the state's settings for one mode.  libtls
 * parses a CA file whole at every handshake, but looks a CA directory up
 * for the CAs a chain needs: so a configured file is given to it as a
 * directory made from the file once (ca_dir.h), or as the file when that
 * cannot be made. */
static struct tls_config *tls_config_make(cs_sched *s, int mode)
{
    /* tls_init here, not at require: OpenSSL's set-up costs ~2 ms that a
     * script without TLS never pays (libtls runs it once per process) */
    struct tls_config *cfg = tls_init() == 0 ? tls_config_new() : NULL;
    const char *ca = cfg_string(s, s->cfg.trusted_ref);
    const char *protocols = cfg_string(s, s->cfg.protocols_ref);
    const char *ciphers = cfg_string(s, s->cfg.ciphers_ref);
    uint32_t bits = protocols != NULL
                        ? tls_protocols(protocols)
                        : TLS_PROTOCOL_TLSv1_2 | TLS_PROTOCOL_TLSv1_3;
    const char *ca_dir;

    if (cfg == NULL)
        return NULL;
    ca_dir = ca != NULL ? cs_ca_dir_for(&s->tls->ca_dirs, ca) : CA_DIR;
    if ((ca_dir != NULL ? tls_config_set_ca_path(cfg, ca_dir)
                        : tls_config_set_ca_file(cfg, ca)) != 0 ||
        tls_config_set_verify_depth(cfg, s->cfg.ssl_verify_depth) != 0 ||
        tls_config_set_protocols(cfg, bits != 0 ? bits
                                                : TLS_PROTOCOLS_DEFAULT) != 0 ||
        (ciphers != NULL && tls_config_set_ciphers(cfg, ciphers) != 0)) {
        tls_config_free(cfg);
        return NULL;
    }
    if (mode == VERIFY_NONE) {
        tls_config_insecure_noverifycert(cfg);
        tls_config_insecure_noverifyname(cfg);
    } else if (mode == VERIFY_CHAIN) {
        tls_config_insecure_noverifyname(cfg);
    }
    return cfg;
}

static struct cs_tls_state *tls_state(cs_sched *s)
{
    struct cs_tls_state *st = s->tls;
    int i;

    if (st == NULL) {
        st = calloc(1, sizeof(*st));
        if (st == NULL)
            return NULL;
        s->tls = st;
        st->cfg_gen = s->cfg_gen - 1;
    }
    if (st->cfg_gen != s->cfg_gen) {
        for (i = 0; i < VERIFY_MODES; i++) {
            tls_config_free(st->cfg[i]); /* handshakes keep their own ref */
            st->cfg[i] = NULL;
        }
        st->cfg_gen = s->cfg_gen;
    }
    return st;
}

void cs_tls_state_free(cs_sched *s)
{
    struct cs_tls_state *st = s->tls;
    int i;

    if (st == NULL)
        return;
    for (i = 0; i < VERIFY_MODES; i++)
        tls_config_free(st->cfg[i]);
    cs_ca_dirs_free(&st->ca_dirs);
    free(st);
    s->tls = NULL;
}

void cs_tls_free(struct tls *tls, struct cs_tls_io *io)
{
    tls_free(tls); /* no tls_close: no close_notify, as ngx_lua */
    free(io);
}

/* ---- transport ---------------------------------------------------------- */

ssize_t cs_tls_recv(cs_tcp *t, void *p, size_t n, int *want_write)
{
    struct cs_tls_io *io = t->tls_io;

    *want_write = 0;
    for (;;) {
        ssize_t r;

        if (io->eof && io->err == 0 && t->tls_dead)
            return 0; /* libtls is not called again after an EOF */
        io->saw_eagain = 0;
        r = tls_read(t->tls, p, n);
        if (r >= 0)
            return r; /* 0: close_notify */
        if (r == TLS_WANT_POLLIN) {
            if (!io->saw_eagain && !io->eof)
                continue; /* a record without data (1.3 ticket): again */
            if (io->eof) {
                t->tls_dead = 1;
                return 0;
            }
            errno = EAGAIN;
            return -1;
        }
        if (r == TLS_WANT_POLLOUT) {
            *want_write = 1;
            errno = EAGAIN;
            return -1;
        }
        if (io->eof && io->err == 0) { /* EOF without close_notify */
            t->tls_dead = 1;
            return 0;
        }
        errno = io->err != 0 ? io->err : EPROTO;
        return -1;
    }
}

ssize_t cs_tls_send(cs_tcp *t, const void *p, size_t n, int *want_write)
{
    struct cs_tls_io *io = t->tls_io;
    ssize_t r = tls_write(t->tls, p, n);

    *want_write = 1;
    if (r >= 0)
        return r;
    if (r == TLS_WANT_POLLIN || r == TLS_WANT_POLLOUT) {
        *want_write = r == TLS_WANT_POLLOUT;
        errno = EAGAIN;
        return -1;
    }
    errno = io->err != 0 ? io->err : (io->eof ? EPIPE : EPROTO);
    return -1;
}

int cs_tls_idle_check(struct tls *tls, int fd)
{
    char buf[256];
    ssize_t r;

    (void)fd;
    for (;;) {
        r = tls_read(tls, buf, sizeof(buf));
        if (r == TLS_WANT_POLLIN) {
            /* only protocol records came: still a sound connection,
             * unless the socket itself had nothing (then it was EOF) */
            char c;
            ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return 0;
            if (n > 0)
                continue;
            return 1;
        }
        return 1; /* data, EOF, or an error */
    }
}

/* ---- sslhandshake ------------------------------------------------------- */

/* The verify code of a libtls error text, found by matching OpenSSL's own
 * texts; -1 when it is not a verification failure. */
static int tls_verify_code(const char *msg, const char **text)
{
    int code, best = -1;
    size_t best_len = 0;

    if (msg == NULL || strstr(msg, "verif") == NULL)
        return -1;
    /* the longest text that matches: "self-signed certificate" is part of
     * "self-signed certificate in certificate chain" */
    for (code = 1; code < 100; code++) {
        const char *s = X509_verify_cert_error_string(code);
        if (s != NULL &&
            strncmp(s, "unknown certificate verification", 32) != 0 &&
            strlen(s) > best_len && strstr(msg, s) != NULL) {
            best = code;
            best_len = strlen(s);
            *text = s;
        }
    }
    return best;
}

static int handshake_outcome(lua_State *L, cs_tcp *t, const char *err)
{
    const char *msg, *text = NULL;
    int code;

    if (err == NULL && t->tls_status == 0) {
        if (t->tls_want_session)
            lua_newuserdata(L, 1);
        else
            lua_pushboolean(L, 1);
        if (t->tls_want_session) {
            luaL_getmetatable(L, SESSION_MT);
            lua_setmetatable(L, -2);
        }
        return 1;
    }
    lua_pushnil(L);
    if (err != NULL) {
        lua_pushstring(L, err); /* "timeout", "closed" */
    } else {
        msg = t->tls != NULL ? tls_error(t->tls) : NULL;
        if (msg != NULL && strstr(msg, "not present in server certificate"))
            lua_pushliteral(L, "certificate host mismatch");
        else if ((code = tls_verify_code(msg, &text)) > 0)
            lua_pushfstring(L, "%d: %s", code, text);
        else
            lua_pushliteral(L, "handshake failed");
    }
    cs_tcp_close_fd(t); /* any handshake failure closes (SPEC.md 3.2) */
    return 2;
}

static int handshake_results(lua_State *L, cs_op *op)
{
    cs_tcp *t = op->self;
    int n = handshake_outcome(L, t, op->err);

    cs_tcp_wr_return(t);
    return n;
}

/* 1: the handshake ended (t->tls_status says how); 0: it waits. */
static int handshake_step(cs_tcp *t)
{
    int r = tls_handshake(t->tls);

    if (r == 0) {
        t->tls_status = 0;
        return 1;
    }
    if (r == TLS_WANT_POLLIN || r == TLS_WANT_POLLOUT) {
        t->tls_want_write = r == TLS_WANT_POLLOUT;
        return 0;
    }
    t->tls_status = -1;
    return 1;
}

static void handshake_on_io(EV_P_ ev_io *w, int revents)
{
    cs_op *op = cs_container_of(w, cs_op, io);
    cs_tcp *t = op->self;

    (void)loop;
    (void)revents;
    if (handshake_step(t)) {
        cs_op_done(op);
        return;
    }
    cs_op_watch(op, t->fd, t->tls_want_write ? EV_WRITE : EV_READ);
}

static int tls_handshake_lua(lua_State *L)
{
    int n = lua_gettop(L), verify, mode;
    cs_tcp *t;
    const char *name = NULL;
    struct cs_tls_state *st;
    struct tls_config *cfg;
    cs_op *op;

    if (n < 1 || n > 5)
        return luaL_error(L,
                          "ngx.socket sslhandshake: expecting 1 ~ 5 "
                          "arguments (including the object), but seen %d",
                          n);
    t = cs_tcp_self(L);
    if (!cs_tcp_ever(L, t))
        return luaL_error(L, "socket is never created nor connected");
    if (t == NULL || t->fd < 0 || t->read_closed || t->write_closed)
        return cs_fail(L, "closed");
    if (cs_tcp_connecting(t))
        return cs_fail(L, "socket busy connecting");
    if (t->rd.pending)
        return cs_fail(L, "socket busy reading");
    if (cs_tcp_writing(t))
        return cs_fail(L, "socket busy writing");
    t->tls_want_session =
        !(lua_type(L, 2) == LUA_TBOOLEAN && !lua_toboolean(L, 2));
    if (t->tls != NULL) { /* already TLS (a pooled connection): done */
        if (!t->tls_want_session)
            lua_pushboolean(L, 1);
        else if (!lua_isnoneornil(L, 2))
            lua_pushvalue(L, 2);
        else
            return handshake_outcome(L, t, NULL);
        return 1;
    }
    if (n >= 3 && lua_toboolean(L, 3)) {
        if (lua_type(L, 3) != LUA_TSTRING) /* lua-resty-core's FFI text */
            return luaL_error(L,
                              "cannot convert '%s' to 'const unsigned "
                              "char *'",
                              luaL_typename(L, 3));
        name = lua_tostring(L, 3);
    }
    verify = n >= 4 && lua_toboolean(L, 4);
    if (n >= 5 && lua_toboolean(L, 5))
        return cs_fail(L, "no OCSP support");
    mode = !verify ? VERIFY_NONE : name == NULL ? VERIFY_CHAIN : VERIFY_FULL;
    st = tls_state(t->s);
    if (st == NULL)
        return cs_fail(L, "no memory");
    if (st->cfg[mode] == NULL)
        st->cfg[mode] = tls_config_make(t->s, mode);
    cfg = st->cfg[mode];
    if (cfg == NULL)
        return cs_fail(L, "failed to create ssl connection");
    if (t->client_cert != NULL) { /* a client certificate: its own config */
        cfg = tls_config_make(t->s, mode);
        if (cfg == NULL ||
            tls_config_set_keypair_mem(
                cfg, (const uint8_t *)t->client_cert, t->client_cert_len,
                (const uint8_t *)t->client_key, t->client_key_len) != 0) {
            tls_config_free(cfg);
            return cs_fail(L, "ssl set client certificate failed");
        }
    }
    t->tls_io = calloc(1, sizeof(*t->tls_io));
    t->tls = tls_client();
    if (t->tls_io == NULL || t->tls == NULL ||
        tls_configure(t->tls, cfg) != 0) {
        if (cfg != st->cfg[mode])
            tls_config_free(cfg);
        cs_tcp_close_fd(t); /* no half-made TLS left to look handshaked */
        return cs_fail(L, "failed to create ssl connection");
    }
    if (cfg != st->cfg[mode])
        tls_config_free(cfg); /* the context keeps its own reference */
    t->tls_io->fd = t->fd;
    if (tls_connect_cbs(t->tls, tls_io_read, tls_io_write, t->tls_io, name) !=
        0) {
        cs_tcp_close_fd(t);
        return cs_fail(L, "failed to create ssl connection");
    }
    op = cs_tcp_wr(t);
    if (op == NULL) {
        cs_tcp_close_fd(t); /* as above: t->tls would pass for handshaked */
        return cs_fail(L, "no memory");
    }
    cs_op_init(op, t->s, t, handshake_results);
    t->wr_connecting = 1;
    op->on_cancel = t->rd.on_cancel;
    ev_init(&op->io, handshake_on_io);
    if (handshake_step(t))
        return handshake_results(L, op);
    op->fd = t->fd;
    op->events = t->tls_want_write ? EV_WRITE : EV_READ;
    /* the handshake is bounded by the connect timeout (SPEC.md 7.2) */
    op->timeout = cs_tcp_timeout(t, t->connect_ms, t->s->cfg.connect_timeout);
    lua_settop(L, 1);
    return cs_wait(L, op);
}

/* setclientcert(pem_cert, pem_key): PEM strings (DECISIONS.md 4) */
static int tls_setclientcert(lua_State *L)
{
    cs_tcp *t = cs_tcp_state(L);
    size_t clen, klen;
    const char *cert, *key;

    if (t == NULL)
        return luaL_error(L, "bad socket object");
    if (!lua_toboolean(L, 2) && !lua_toboolean(L, 3)) {
        free(t->client_cert);
        free(t->client_key);
        t->client_cert = t->client_key = NULL;
        lua_pushboolean(L, 1);
        return 1;
    }
    if (!lua_toboolean(L, 2) || !lua_toboolean(L, 3))
        return cs_fail(L, "client certificate must be supplied with "
                          "corresponding private key");
    if (lua_type(L, 2) != LUA_TSTRING) {
        lua_pushnil(L);
        lua_pushfstring(L, "bad cert arg: string expected, got %s",
                        luaL_typename(L, 2));
        return 2;
    }
    if (lua_type(L, 3) != LUA_TSTRING) {
        lua_pushnil(L);
        lua_pushfstring(L, "bad pkey arg: string expected, got %s",
                        luaL_typename(L, 3));
        return 2;
    }
    cert = lua_tolstring(L, 2, &clen);
    key = lua_tolstring(L, 3, &klen);
    free(t->client_cert);
    free(t->client_key);
    cs_tcp_finalized(L, t);
    t->client_cert = malloc(clen + 1);
    t->client_key = malloc(klen + 1);
    if (t->client_cert == NULL || t->client_key == NULL) {
        free(t->client_cert);
        free(t->client_key);
        t->client_cert = t->client_key = NULL;
        return cs_fail(L, "no memory");
    }
    memcpy(t->client_cert, cert, clen + 1);
    memcpy(t->client_key, key, klen + 1);
    t->client_cert_len = clen;
    t->client_key_len = klen;
    lua_pushboolean(L, 1);
    return 1;
}

void cs_open_tls(lua_State *L, int mod)
{
    static const luaL_Reg methods[] = {{"sslhandshake", tls_handshake_lua},
                                       {"setclientcert", tls_setclientcert},
                                       {NULL, NULL}};

    luaL_newmetatable(L, SESSION_MT);
    lua_pop(L, 1);
    luaL_getmetatable(L, "cosocket.tcp");
    lua_getfield(L, -1, "__index");
    lua_pushvalue(L, mod + 1);
    cs_setfuncs(L, methods, 1);
    lua_pop(L, 2);
}
