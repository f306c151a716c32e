/*
 * bench/line_server.c: the bench's own peer server.
 *
 *     line_server [PORT]
 *     line_server -tls CERT KEY [PORT]
 *
 * Listens on 127.0.0.1:PORT (default 0: any free port), prints exactly
 * "PORT <n>\n" on stdout, then serves until SIGTERM or SIGINT. One thread,
 * one level-triggered epoll loop, every socket nonblocking. It raises its
 * own RLIMIT_NOFILE to the hard limit (W3 holds 10,000 connections).
 *
 * With -tls (W5), every connection is TLS (libtls, TLS 1.2 and 1.3, the
 * certificate chain and key from the PEM files CERT and KEY): the handshake
 * runs inside the first read, the commands below are the same, and a
 * connection is closed without close_notify.
 *
 * Per connection, each line received ("\n"-terminated) is a command:
 *   LINES <total> <len>   stream <total> bytes of <len>-byte lines
 *                         (<len> - 1 bytes of 'x' and "\n"), then close
 *   PARTS <total> <len>   stream <total> bytes of <len>-byte records, each
 *                         ending with SEP (below), then close
 *   BCAST                 write "bye\n" to every other connection that is
 *                         not streaming and half-close it (the server closes
 *                         first: the clients' ports get no TIME_WAIT), then
 *                         "ok\n" to this one
 *   TLSVER                (with -tls) the protocol version, e.g. "TLSv1.3\n"
 *   anything else         echoed back, "\n" included (echo-lines mode)
 * <total> is rounded down to a multiple of <len>.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <tls.h>
#include <unistd.h>

/* the receiveuntil separator of W4 (bench/clients/common.lua: SEP) */
#define SEP     "\r\n--cosocket-bench-boundary\r\n"
#define SEP_LEN (sizeof(SEP) - 1)

#define INBUF     512 /* longest command; echoed lines may be longer */
#define BLOCK_MAX (1 << 16)

typedef struct conn {
    int fd;
    struct tls *tls;    /* -tls: the connection's context */
    int read_wants_out; /* -tls: the last read wanted the socket writable */
    struct conn *next, *prev; /* all connections, for BCAST */
    size_t inlen;
    char in[INBUF];
    char *out; /* echo output the kernel refused */
    size_t outlen, outoff;
    int fin; /* half-close once the output is flushed */
    /* streaming */
    char *block; /* one period of the stream, repeated */
    size_t blocklen, blockoff;
    unsigned long long remain;
} conn;

static int epfd;
static conn *conns;
static volatile sig_atomic_t stop;
static struct tls *tls_server_ctx; /* -tls */
static int tls_errors;             /* reported on stderr: the first few */

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void conn_close(conn *c)
{
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->tls != NULL)
        tls_free(c->tls); /* no tls_close: no close_notify, as cosocket */
    close(c->fd);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    free(c->out);
    free(c->block);
    free(c);
}

static void conn_watch(conn *c, unsigned events)
{
    struct epoll_event ev;

    ev.events = events;
    ev.data.ptr = c;
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        die("epoll_ctl");
}

static void tls_report(conn *c, const char *what)
{
    if (tls_errors++ < 10)
        fprintf(stderr, "line_server: %s: %s\n", what,
                tls_error(c->tls) != NULL ? tls_error(c->tls) : "failed");
}

/* send(2), or tls_write: n >= 0 bytes, or -1 with errno (EAGAIN: retry
 * when the socket is writable; a TLS 1.2/1.3 write without renegotiation
 * never waits for input) */
static ssize_t conn_send(conn *c, const void *p, size_t len)
{
    ssize_t n;

    if (c->tls == NULL)
        return send(c->fd, p, len, MSG_NOSIGNAL);
    n = tls_write(c->tls, p, len);
    if (n >= 0)
        return n;
    if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT) {
        errno = EAGAIN;
        return -1;
    }
    tls_report(c, "tls_write");
    errno = EPIPE;
    return -1;
}

/* recv(2), or tls_read (the handshake first): n > 0 bytes, 0 at the end,
 * or -1 with errno (EAGAIN: wait; *want_out: for the socket writable) */
static ssize_t conn_recv(conn *c, void *p, size_t len, int *want_out)
{
    ssize_t n;

    *want_out = 0;
    if (c->tls == NULL)
        return recv(c->fd, p, len, 0);
    n = tls_read(c->tls, p, len);
    if (n >= 0)
        return n;
    if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT) {
        *want_out = n == TLS_WANT_POLLOUT;
        errno = EAGAIN;
        return -1;
    }
    /* a client closing without close_notify (or after a failed
     * verification) lands here: an end, not worth a report, unless the
     * handshake never finished */
    if (tls_conn_version(c->tls) == NULL)
        tls_report(c, "tls handshake");
    errno = ECONNRESET;
    return -1;
}

/* Writes what it can of the pending echo output: 0 ok, -1 to close. */
static int out_flush(conn *c)
{
    while (c->outoff < c->outlen) {
        ssize_t n = conn_send(c, c->out + c->outoff, c->outlen - c->outoff);
        if (n > 0) {
            c->outoff += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn_watch(c, EPOLLIN | EPOLLOUT);
            return 0;
        }
        return -1;
    }
    c->outlen = c->outoff = 0;
    if (c->fin)
        shutdown(c->fd, SHUT_WR);
    return 0;
}

/* Queues bytes for the client, sending at once when nothing is pending. */
static int out_write(conn *c, const char *p, size_t len)
{
    char *np;

    if (c->outlen == 0) {
        ssize_t n = conn_send(c, p, len);
        if (n == (ssize_t)len)
            return 0;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        }
        c->outoff = 0;
    }
    np = realloc(c->out, c->outlen + len);
    if (np == NULL)
        return -1;
    c->out = np;
    memcpy(c->out + c->outlen, p, len);
    c->outlen += len;
    conn_watch(c, EPOLLIN | EPOLLOUT);
    return 0;
}

/* Streams from c->block: 0 while going on, -1 when done or failed. */
static int stream_flush(conn *c)
{
    while (c->remain > 0) {
        size_t len = c->blocklen - c->blockoff;
        ssize_t n;

        if (len > c->remain)
            len = (size_t)c->remain;
        n = conn_send(c, c->block + c->blockoff, len);
        if (n > 0) {
            c->remain -= (unsigned long long)n;
            c->blockoff = (c->blockoff + (size_t)n) % c->blocklen;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        return -1;
    }
    return -1; /* all sent: close */
}

static int stream_start(conn *c, const char *args, int parts)
{
    unsigned long long total;
    unsigned long len;
    size_t per, i;

    if (sscanf(args, "%llu %lu", &total, &len) != 2 || len < 2 ||
        len > BLOCK_MAX || (parts && len <= SEP_LEN))
        return out_write(c, "bad stream\n", 11);
    per = BLOCK_MAX / len;
    c->blocklen = per * len;
    c->block = malloc(c->blocklen);
    if (c->block == NULL)
        return -1;
    for (i = 0; i < per; i++) {
        char *r = c->block + i * len;
        if (parts) {
            memset(r, 'y', len - SEP_LEN);
            memcpy(r + len - SEP_LEN, SEP, SEP_LEN);
        } else {
            memset(r, 'x', len - 1);
            r[len - 1] = '\n';
        }
    }
    c->blockoff = 0;
    c->remain = total - total % len;
    conn_watch(c, EPOLLOUT);
    return stream_flush(c);
}

static int broadcast(conn *self)
{
    conn *c;

    /* a failed write is left for that connection's own EPOLLHUP: closing
     * here could free a conn that this epoll batch still names */
    for (c = conns; c != NULL; c = c->next) {
        if (c == self || c->block != NULL || c->fin)
            continue;
        (void)out_write(c, "bye\n", 4);
        c->fin = 1;
        if (c->outlen == 0)
            shutdown(c->fd, SHUT_WR);
    }
    return out_write(self, "ok\n", 3);
}

/* Runs the complete lines in c->in: 0 ok, 1 streaming, -1 to close. */
static int run_lines(conn *c)
{
    size_t start = 0;
    char *nl;

    while (c->block == NULL &&
           (nl = memchr(c->in + start, '\n', c->inlen - start)) != NULL) {
        size_t len = (size_t)(nl - (c->in + start)) + 1;
        char *line = c->in + start;
        int rc;

        line[len - 1] = '\0';
        if (strncmp(line, "LINES ", 6) == 0)
            rc = stream_start(c, line + 6, 0);
        else if (strncmp(line, "PARTS ", 6) == 0)
            rc = stream_start(c, line + 6, 1);
        else if (strncmp(line, "BCAST", 5) == 0)
            rc = broadcast(c);
        else if (c->tls != NULL && strcmp(line, "TLSVER") == 0) {
            const char *v = tls_conn_version(c->tls);
            char reply[64];
            int rlen =
                snprintf(reply, sizeof(reply), "%s\n", v != NULL ? v : "none");
            rc = out_write(c, reply, (size_t)rlen);
        } else {
            line[len - 1] = '\n';
            rc = out_write(c, line, len);
        }
        if (rc != 0)
            return -1;
        start += len;
    }
    if (c->block != NULL)
        return 1;
    memmove(c->in, c->in + start, c->inlen - start);
    c->inlen -= start;
    if (c->inlen == INBUF) { /* a long line: echo what we have */
        if (out_write(c, c->in, c->inlen) != 0)
            return -1;
        c->inlen = 0;
    }
    return 0;
}

static void on_readable(conn *c)
{
    for (;;) {
        int rc, want_out;
        ssize_t n = conn_recv(c, c->in + c->inlen, INBUF - c->inlen, &want_out);

        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                       errno != EINTR)) {
            conn_close(c);
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (want_out) { /* a TLS read (the handshake) must write */
                c->read_wants_out = 1;
                conn_watch(c, EPOLLIN | EPOLLOUT);
            }
            return;
        }
        c->inlen += (size_t)n;
        rc = run_lines(c);
        if (rc < 0) {
            conn_close(c);
            return;
        }
        /* level-triggered: more input wakes us again, but what libtls
         * has read from the socket already does not: TLS reads on */
        if (rc > 0 || (c->inlen < INBUF && c->tls == NULL))
            return;
    }
}

static void on_accept(int lfd)
{
    static const int one = 1;

    for (;;) {
        struct epoll_event ev;
        conn *c;
        int fd = accept(lfd, NULL, NULL);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE)
                perror("line_server: accept");
            return;
        }
        c = calloc(1, sizeof(*c));
        if (c == NULL || fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        /* TLS: TCP_NODELAY, or the reply after the two TLS 1.3 session
         * tickets (two writes) waits for the client's delayed ACK */
        if (tls_server_ctx != NULL &&
            (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
             tls_accept_socket(tls_server_ctx, &c->tls, fd) != 0)) {
            fprintf(stderr, "line_server: TLS accept: %s\n",
                    c->tls == NULL && tls_error(tls_server_ctx) != NULL
                        ? tls_error(tls_server_ctx)
                        : strerror(errno));
            if (c->tls != NULL)
                tls_free(c->tls);
            free(c);
            close(fd);
            continue;
        }
        c->next = conns;
        if (conns != NULL)
            conns->prev = c;
        conns = c;
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
            die("epoll_ctl");
    }
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa;
    socklen_t salen = sizeof(sa);
    struct epoll_event ev, evs[256];
    struct rlimit rl;
    struct sigaction act;
    int lfd, one = 1, argi = 1;
    static int listener_tag;

    if (argc >= 4 && strcmp(argv[1], "-tls") == 0) {
        struct tls_config *cfg = tls_config_new();

        if (cfg == NULL ||
            tls_config_set_protocols(cfg, TLS_PROTOCOL_TLSv1_2 |
                                              TLS_PROTOCOL_TLSv1_3) != 0 ||
            tls_config_set_keypair_file(cfg, argv[2], argv[3]) != 0 ||
            (tls_server_ctx = tls_server()) == NULL ||
            tls_configure(tls_server_ctx, cfg) != 0) {
            fprintf(stderr, "line_server: tls setup: %s\n",
                    tls_server_ctx != NULL ? tls_error(tls_server_ctx)
                    : cfg != NULL          ? tls_config_error(cfg)
                                           : "out of memory");
            return 1;
        }
        tls_config_free(cfg);
        argi = 4;
    }

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    memset(&act, 0, sizeof(act));
    act.sa_handler = on_signal;
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);
    signal(SIGPIPE, SIG_IGN);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((unsigned short)(argc > argi ? atoi(argv[argi]) : 0));
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        die("socket");
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        die("bind");
    if (listen(lfd, 65535) != 0)
        die("listen");
    if (getsockname(lfd, (struct sockaddr *)&sa, &salen) != 0)
        die("getsockname");
    printf("PORT %d\n", ntohs(sa.sin_port));
    fflush(stdout);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1");
    ev.events = EPOLLIN;
    ev.data.ptr = &listener_tag;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) != 0)
        die("epoll_ctl");

    while (!stop) {
        int i, n = epoll_wait(epfd, evs, 256, -1);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            unsigned e = evs[i].events;

            if (evs[i].data.ptr == &listener_tag) {
                on_accept(lfd);
                continue;
            }
            if (c->block != NULL) { /* streaming: output only */
                if (stream_flush(c) != 0)
                    conn_close(c);
                continue;
            }
            if ((e & EPOLLOUT) && c->outlen > 0) {
                if (out_flush(c) != 0) {
                    conn_close(c);
                    continue;
                }
                if (c->outlen == 0 && !c->read_wants_out)
                    conn_watch(c, EPOLLIN);
            }
            if ((e & EPOLLOUT) && c->read_wants_out) {
                c->read_wants_out = 0;
                conn_watch(c, c->outlen > 0 ? EPOLLIN | EPOLLOUT : EPOLLIN);
                e |= EPOLLIN; /* retry the read */
            }
            if (e & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(c);
        }
    }
    while (conns != NULL)
        conn_close(conns);
    close(lfd);
    close(epfd);
    tls_free(tls_server_ctx);
    return 0;
}
