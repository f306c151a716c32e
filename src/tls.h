/* TLS on libtls (DECISIONS.md 7): the per-state configurations, the
 * transport used by tcp_io.c once a handshake is done, sslhandshake and
 * setclientcert. */
#ifndef COSOCKET_TLS_H
#define COSOCKET_TLS_H

#include <sys/types.h>

#include "tcp.h"

struct tls;

/* Reads or writes through TLS: bytes, or -1 with errno EAGAIN (and
 * *want_write when libtls needs the socket writable), or another errno;
 * 0 from cs_tls_recv is EOF. */
ssize_t cs_tls_recv(cs_tcp *t, void *p, size_t n, int *want_write);
ssize_t cs_tls_send(cs_tcp *t, const void *p, size_t n, int *want_write);
/* Drains TLS-only records (1.3 session tickets) of an idle connection:
 * 0 when nothing else came, 1 when application bytes or EOF did. */
int cs_tls_idle_check(struct tls *tls, int fd);
void cs_tls_free(struct tls *tls, struct cs_tls_io *io); /* no notify */
void cs_tls_state_free(cs_sched *s);
void cs_open_tls(lua_State *L, int mod);

#endif
