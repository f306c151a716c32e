/*
 * bench/raw_client.c: the floor of the bench, a plain C epoll client doing
 * the workloads with as few syscalls as it can.
 *
 *     raw_client rt    PORT C N KIND   C connections, N roundtrips in all
 *                                      (N / C each), KIND: ping | get100 |
 *                                      get16k (redis) or line (line_server)
 *     raw_client churn PORT C N        C at a time: connect, redis PING,
 *                                      close; N in all
 *     raw_client idle  PORT N          N idle connections to line_server;
 *                                      RSS growth; then BCAST ends them
 *     raw_client lines PORT TOTAL LEN  line_server LINES: count the lines
 *     raw_client parts PORT TOTAL LEN  line_server PARTS: count the parts
 *     raw_client tls-rt PORT C N CA    TLS (W5): C connections to line_server
 *                                      -tls, handshakes before the timed
 *                                      section, N "PING\n" line roundtrips
 *     raw_client tls-churn PORT C N CA C at a time: connect, TLS handshake,
 *                                      one line roundtrip, close; N in all
 *
 * TLS is OpenSSL's, one SSL_CTX made before the timed section (as nginx
 * makes its own at start-up): TLS 1.2 or 1.3, the peer's chain verified
 * against the PEM file CA and its name against "localhost" (SNI the same),
 * no session reuse, closed without close_notify (as cosocket and ngx_lua).
 *
 * Connects to 127.0.0.1:PORT. Prints one line on stdout:
 *     RESULT ops=<n> cpu=<s> wall=<s> [rss_per_conn=<bytes>]
 * cpu is the process's user+sys time (CLOCK_PROCESS_CPUTIME_ID) over the
 * timed section only (connections are made before it, but in churn,
 * tls-churn and idle).
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SEP     "\r\n--cosocket-bench-boundary\r\n"
#define SEP_LEN (sizeof(SEP) - 1)

typedef struct conn {
    int fd, state; /* churn: 0 connecting, 1 reading; tls-churn: 0
                      connecting, 1 handshaking, 2 reading */
    SSL *ssl;      /* TLS */
    long left;     /* roundtrips to go */
    size_t have, need;
    char *buf;
} conn;

static struct sockaddr_in peer;
static const char *req;
static size_t req_len, bufsize = 256;
static int epfd;
static struct epoll_event evs[1024];

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* epoll_wait that dies when nothing happens for WAIT_MS: a stalled
 * server ends the run with a message instead of hanging it */
#define WAIT_MS 10000
static int wait_events(int max)
{
    int n;

    do
        n = epoll_wait(epfd, evs, max, WAIT_MS);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        die("epoll_wait");
    if (n == 0) {
        fprintf(stderr, "raw_client: no event in %d ms\n", WAIT_MS);
        exit(1);
    }
    return n;
}

/* A connect that epoll reported failed: dies with its own error. */
static void die_connect(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0)
        errno = err;
    die("connect");
}

static double clock_s(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu0, wall0;

static void timer_start(void)
{
    cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    wall0 = clock_s(CLOCK_MONOTONIC);
}

static void result(long ops, const char *extra)
{
    double cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    double wall = clock_s(CLOCK_MONOTONIC) - wall0;

    printf("RESULT ops=%ld cpu=%.6f wall=%.6f%s\n", ops, cpu, wall, extra);
}

static long rss_bytes(void)
{
    long size = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (f == NULL || fscanf(f, "%ld %ld", &size, &res) != 2)
        die("statm");
    fclose(f);
    return res * sysconf(_SC_PAGESIZE);
}

static int connect_blocking(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        die("socket");
    if (connect(fd, (struct sockaddr *)&peer, sizeof(peer)) != 0)
        die("connect");
    return fd;
}

static void set_nonblock(int fd)
{
    if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0)
        die("fcntl");
}

static void watch(conn *c, int op, unsigned events)
{
    struct epoll_event ev;

    ev.events = events;
    ev.data.ptr = c;
    if (epoll_ctl(epfd, op, c->fd, &ev) != 0)
        die("epoll_ctl");
}

static void send_all(int fd, const char *p, size_t len)
{
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

    if (n != (ssize_t)len) /* a small request: the kernel takes it whole */
        die("send");
}

/* 1 when c->buf holds a whole reply (redis, or a line with "line") */
static int reply_done(conn *c, int line)
{
    const char *p = c->buf;

    if (c->need)
        return c->have >= c->need;
    if (line)
        return c->have > 0 && p[c->have - 1] == '\n';
    if (c->have < 3)
        return 0;
    if (p[0] == '-' || (p[0] == '$' && p[1] == '-')) { /* error, nil */
        fprintf(stderr, "raw_client: unexpected reply %.*s", (int)c->have, p);
        exit(1);
    }
    if (p[0] == '$') {
        const char *crlf = memchr(p, '\n', c->have);
        if (crlf == NULL)
            return 0;
        c->need = (size_t)(crlf + 1 - p) + (size_t)atol(p + 1) + 2;
        return c->have >= c->need;
    }
    return p[c->have - 1] == '\n';
}

/* Reads into c->buf: 1 when the reply is complete. */
static int read_reply(conn *c, int line)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->have, bufsize - c->have, 0);

        if (n > 0) {
            c->have += (size_t)n;
            if (reply_done(c, line))
                return 1;
            if (c->have == bufsize) {
                fprintf(stderr, "raw_client: reply too long\n");
                exit(1);
            }
            continue; /* a big reply may be in the kernel already */
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        die(n == 0 ? "recv: closed" : "recv");
    }
}

static conn *conn_new(int fd)
{
    conn *c = calloc(1, sizeof(*c));

    if (c == NULL || (c->buf = malloc(bufsize)) == NULL)
        die("malloc");
    c->fd = fd;
    return c;
}

static conn **conns_new(int nconn)
{
    conn **cs = calloc((size_t)nconn, sizeof(*cs));

    if (cs == NULL)
        die("calloc");
    return cs;
}

/* The event loop of every workload with roundtrips: step moves a connection
 * on (1 when one of its roundtrips ended), next starts its following one
 * while it has some left. Returns once target roundtrips ended. */
static long drive(long target, int (*step)(conn *c, unsigned events),
                  void (*next)(conn *c))
{
    long done = 0;

    while (done < target) {
        int i, n = wait_events(1024);

        for (i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (!step(c, evs[i].events))
                continue;
            done++;
            if (--c->left > 0)
                next(c);
        }
    }
    return done;
}

static void set_kind(const char *kind)
{
    if (strcmp(kind, "ping") == 0) {
        req = "*1\r\n$4\r\nPING\r\n";
    } else if (strcmp(kind, "get100") == 0) {
        req = "*2\r\n$3\r\nGET\r\n$4\r\nk100\r\n";
    } else if (strcmp(kind, "get16k") == 0) {
        req = "*2\r\n$3\r\nGET\r\n$4\r\nk16k\r\n";
        bufsize = 32768;
    } else if (strcmp(kind, "line") == 0) {
        req = "PING\n";
    } else {
        fprintf(stderr, "raw_client: unknown kind %s\n", kind);
        exit(2);
    }
    req_len = strlen(req);
}

static int line_replies; /* rt: replies are lines (line_server) */

static int rt_step(conn *c, unsigned events)
{
    (void)events;
    if (!read_reply(c, line_replies))
        return 0;
    c->have = c->need = 0;
    return 1;
}

static void rt_next(conn *c)
{
    send_all(c->fd, req, req_len);
}

static void run_rt(int nconn, long total, const char *kind)
{
    long per = total / nconn;
    int i;
    conn **cs = conns_new(nconn);

    line_replies = strcmp(kind, "line") == 0;
    for (i = 0; i < nconn; i++) {
        cs[i] = conn_new(connect_blocking());
        set_nonblock(cs[i]->fd);
        cs[i]->left = per;
        watch(cs[i], EPOLL_CTL_ADD, EPOLLIN);
    }
    timer_start();
    for (i = 0; i < nconn; i++)
        rt_next(cs[i]);
    result(drive(per * nconn, rt_step, rt_next), "");
}

static void churn_start(conn *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        die("socket");
    if (connect(fd, (struct sockaddr *)&peer, sizeof(peer)) != 0 &&
        errno != EINPROGRESS)
        die("connect");
    c->fd = fd;
    c->state = 0;
    c->have = c->need = 0;
    /* edge-triggered, both ways, once: no epoll_ctl MOD per connection */
    watch(c, EPOLL_CTL_ADD, EPOLLIN | EPOLLOUT | EPOLLET);
}

/* churn: connect, send once writable, read the reply, close */
static int churn_step(conn *c, unsigned events)
{
    if (events & (EPOLLERR | EPOLLHUP) && c->state == 0)
        die_connect(c->fd);
    if (c->state == 0) {
        if (!(events & EPOLLOUT))
            return 0;
        send_all(c->fd, req, req_len);
        c->state = 1;
    }
    if (!read_reply(c, 0))
        return 0;
    close(c->fd);
    return 1;
}

/* nconn connections made in the timed section, churn_start's way, each to
 * do per connects (epoll's data holds them) */
static void churn_conns(int nconn, long per)
{
    int i;

    for (i = 0; i < nconn; i++) {
        conn *c = conn_new(-1);

        c->left = per;
        churn_start(c);
    }
}

static void run_churn(int nconn, long total)
{
    long per = total / nconn;

    set_kind("ping");
    timer_start();
    churn_conns(nconn, per);
    result(drive(per * nconn, churn_step, churn_start), "");
}

static void run_idle(int nconn)
{
    long rss0, rss1, done = 0;
    int i, ctl;
    conn **cs = conns_new(nconn);
    char extra[64], ok[8];

    timer_start();
    rss0 = rss_bytes();
    bufsize = 16;
    for (i = 0; i < nconn; i++) {
        cs[i] = conn_new(connect_blocking());
        set_nonblock(cs[i]->fd);
        watch(cs[i], EPOLL_CTL_ADD, EPOLLIN);
    }
    rss1 = rss_bytes();
    ctl = connect_blocking();
    send_all(ctl, "BCAST\n", 6);
    if (recv(ctl, ok, sizeof(ok), 0) <= 0)
        die("recv BCAST");
    while (done < nconn) {
        int n = wait_events(1024);

        for (i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (!read_reply(c, 1))
                continue;
            close(c->fd);
            done++;
        }
    }
    close(ctl);
    snprintf(extra, sizeof(extra), " rss_per_conn=%.1f",
             (double)(rss1 - rss0) / nconn);
    result(done, extra);
}

static void run_stream(int parts, long long total, long len)
{
    static char buf[1 << 16];
    char cmd[64];
    size_t have = 0, keep = parts ? SEP_LEN - 1 : 0;
    long count = 0, expect = (long)(total / len);
    int fd = connect_blocking();
    conn *c = conn_new(fd);

    set_nonblock(fd);
    watch(c, EPOLL_CTL_ADD, EPOLLIN);
    timer_start();
    snprintf(cmd, sizeof(cmd), "%s %lld %ld\n", parts ? "PARTS" : "LINES",
             total, len);
    send_all(fd, cmd, strlen(cmd));
    for (;;) {
        ssize_t n = recv(fd, buf + have, sizeof(buf) - have, 0);
        const char *p, *end, *hit;

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            wait_events(1);
            continue;
        }
        if (n < 0)
            die("recv");
        if (n == 0)
            break;
        end = buf + have + n;
        p = buf;
        if (parts) {
            while ((hit = memmem(p, (size_t)(end - p), SEP, SEP_LEN))) {
                count++;
                p = hit + SEP_LEN;
            }
            if ((size_t)(end - p) > keep) /* a separator may straddle */
                p = end - keep;
        } else {
            while ((hit = memchr(p, '\n', (size_t)(end - p)))) {
                count++;
                p = hit + 1;
            }
        }
        have = (size_t)(end - p);
        memmove(buf, p, have);
    }
    if (count != expect) {
        fprintf(stderr, "raw_client: %ld records, expected %ld\n", count,
                expect);
        exit(1);
    }
    result(count, "");
}

/* ---- TLS (W5) ----------------------------------------------------------- */

static SSL_CTX *ssl_ctx;

static void tls_die(const char *what)
{
    fprintf(stderr, "raw_client: %s failed\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static void tls_setup(const char *ca)
{
    ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (ssl_ctx == NULL ||
        SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_load_verify_locations(ssl_ctx, ca, NULL) != 1)
        tls_die("SSL_CTX setup");
    SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_OFF);
    set_kind("line");
}

static SSL *tls_new(int fd)
{
    SSL *ssl = SSL_new(ssl_ctx);

    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 ||
        SSL_set_tlsext_host_name(ssl, "localhost") != 1 ||
        SSL_set1_host(ssl, "localhost") != 1)
        tls_die("SSL_new");
    SSL_set_connect_state(ssl);
    return ssl;
}

/* r from an SSL call: 0 to wait for the socket, else dies */
static int tls_wait(SSL *ssl, int r, const char *what)
{
    int e = SSL_get_error(ssl, r);

    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    if (e == SSL_ERROR_SSL && SSL_get_verify_result(ssl) != X509_V_OK)
        fprintf(stderr, "raw_client: verify: %s\n",
                X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && r == 0))
        fprintf(stderr, "raw_client: %s: closed\n", what);
    tls_die(what);
    return 0;
}

static void tls_send_req(conn *c)
{
    int r = SSL_write(c->ssl, req, (int)req_len);

    /* a small request on a fresh socket: the kernel takes it whole */
    if (r != (int)req_len)
        tls_die("SSL_write");
}

/* Reads a "\n"-terminated line into c->buf: 1 when it is complete. */
static int tls_read_line(conn *c)
{
    for (;;) {
        int r = SSL_read(c->ssl, c->buf + c->have, (int)(bufsize - c->have));

        if (r > 0) {
            c->have += (size_t)r;
            if (reply_done(c, 1))
                return 1;
            if (c->have == bufsize) {
                fprintf(stderr, "raw_client: reply too long\n");
                exit(1);
            }
            continue;
        }
        return tls_wait(c->ssl, r, "SSL_read");
    }
}

static int tls_rt_step(conn *c, unsigned events)
{
    (void)events;
    if (!tls_read_line(c))
        return 0;
    c->have = 0;
    return 1;
}

static void run_tls_rt(int nconn, long total, const char *ca)
{
    long per = total / nconn;
    int i;
    conn **cs = conns_new(nconn);

    tls_setup(ca);
    for (i = 0; i < nconn; i++) { /* blocking handshakes, untimed */
        cs[i] = conn_new(connect_blocking());
        cs[i]->ssl = tls_new(cs[i]->fd);
        if (SSL_connect(cs[i]->ssl) != 1)
            tls_die("SSL_connect");
        set_nonblock(cs[i]->fd);
        cs[i]->left = per;
        watch(cs[i], EPOLL_CTL_ADD, EPOLLIN);
    }
    timer_start();
    for (i = 0; i < nconn; i++)
        tls_send_req(cs[i]);
    result(drive(per * nconn, tls_rt_step, tls_send_req), "");
}

/* tls-churn: moves one connection on; 1 when its roundtrip is done */
static int tls_churn_step(conn *c, unsigned events)
{
    int r;

    if (c->state == 0) {
        if (events & (EPOLLERR | EPOLLHUP))
            die_connect(c->fd);
        if (!(events & EPOLLOUT))
            return 0;
        c->ssl = tls_new(c->fd);
        c->state = 1;
    }
    if (c->state == 1) {
        r = SSL_do_handshake(c->ssl);
        if (r != 1)
            return tls_wait(c->ssl, r, "SSL_do_handshake");
        tls_send_req(c);
        c->state = 2;
    }
    if (!tls_read_line(c))
        return 0;
    SSL_free(c->ssl); /* no SSL_shutdown: no close_notify */
    c->ssl = NULL;
    close(c->fd);
    return 1;
}

static void run_tls_churn(int nconn, long total, const char *ca)
{
    long per = total / nconn;

    tls_setup(ca);
    timer_start();
    churn_conns(nconn, per);
    result(drive(per * nconn, tls_churn_step, churn_start), "");
}

/* A count argument: a whole number from 1 to max, else exits (usage). */
static long count_arg(const char *s, long max)
{
    char *end;
    long long v = strtoll(s, &end, 10);

    if (end == s || *end != '\0' || v < 1 || v > max) {
        fprintf(stderr, "raw_client: bad count %s\n", s);
        exit(2);
    }
    return (long)v;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: raw_client rt|churn|idle|lines|parts|tls-rt|"
                        "tls-churn PORT ...\n");
        return 2;
    }
    memset(&peer, 0, sizeof(peer));
    peer.sin_family = AF_INET;
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    peer.sin_port = htons((unsigned short)atoi(argv[2]));
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1");
    if (strcmp(argv[1], "rt") == 0 && argc == 6) {
        set_kind(argv[5]);
        run_rt((int)count_arg(argv[3], INT_MAX), count_arg(argv[4], LONG_MAX),
               argv[5]);
    } else if (strcmp(argv[1], "churn") == 0 && argc == 5) {
        run_churn((int)count_arg(argv[3], INT_MAX),
                  count_arg(argv[4], LONG_MAX));
    } else if (strcmp(argv[1], "idle") == 0 && argc == 4) {
        run_idle((int)count_arg(argv[3], INT_MAX));
    } else if (strcmp(argv[1], "lines") == 0 && argc == 5) {
        run_stream(0, count_arg(argv[3], LONG_MAX),
                   count_arg(argv[4], LONG_MAX));
    } else if (strcmp(argv[1], "parts") == 0 && argc == 5) {
        run_stream(1, count_arg(argv[3], LONG_MAX),
                   count_arg(argv[4], LONG_MAX));
    } else if (strcmp(argv[1], "tls-rt") == 0 && argc == 6) {
        run_tls_rt((int)count_arg(argv[3], INT_MAX),
                   count_arg(argv[4], LONG_MAX), argv[5]);
    } else if (strcmp(argv[1], "tls-churn") == 0 && argc == 6) {
        run_tls_churn((int)count_arg(argv[3], INT_MAX),
                      count_arg(argv[4], LONG_MAX), argv[5]);
    } else {
        fprintf(stderr, "raw_client: bad arguments\n");
        return 2;
    }
    return 0;
}
