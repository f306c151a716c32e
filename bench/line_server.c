/*
 * bench/line_server.c: the bench's own peer server.
 *
 *     line_server [PORT]
 *
 * Listens on 127.0.0.1:PORT (default 0: any free port), prints exactly
 * "PORT <n>\n" on stdout, then serves until SIGTERM or SIGINT. One thread,
 * one level-triggered epoll loop, every socket nonblocking. It raises its
 * own RLIMIT_NOFILE to the hard limit (W3 holds 10,000 connections).
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
 *   anything else         echoed back, "\n" included (echo-lines mode)
 * <total> is rounded down to a multiple of <len>.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* the receiveuntil separator of W4 (bench/clients/common.lua: SEP) */
#define SEP     "\r\n--cosocket-bench-boundary\r\n"
#define SEP_LEN (sizeof(SEP) - 1)

#define INBUF     512 /* longest command; echoed lines may be longer */
#define BLOCK_MAX (1 << 16)

typedef struct conn {
    int fd;
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

/* Writes what it can of the pending echo output: 0 ok, -1 to close. */
static int out_flush(conn *c)
{
    while (c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
                         MSG_NOSIGNAL);
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
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
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
        n = send(c->fd, c->block + c->blockoff, len, MSG_NOSIGNAL);
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
        else {
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
        ssize_t n = recv(c->fd, c->in + c->inlen, INBUF - c->inlen, 0);
        int rc;

        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                       errno != EINTR)) {
            conn_close(c);
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        c->inlen += (size_t)n;
        rc = run_lines(c);
        if (rc < 0) {
            conn_close(c);
            return;
        }
        if (rc > 0 || c->inlen < INBUF)
            return; /* level-triggered: more input wakes us again */
    }
}

static void on_accept(int lfd)
{
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
    int lfd, one = 1;
    static int listener_tag;

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
    sa.sin_port = htons((unsigned short)(argc > 1 ? atoi(argv[1]) : 0));
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
                if (c->outlen == 0)
                    conn_watch(c, EPOLLIN);
            }
            if (e & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(c);
        }
    }
    while (conns != NULL)
        conn_close(conns);
    close(lfd);
    close(epfd);
    return 0;
}
