/* Address parsing shared by tcp.c and udp.c (addr.c). */
#ifndef COSOCKET_ADDR_H
#define COSOCKET_ADDR_H

#include <strings.h>

#include "resolver.h"

/* A finished, empty lookup; NULL: no memory.  With home, cs_lookup_drop
 * keeps its memory for home's next one. */
cs_lookup *cs_lookup_literal(cs_sched *home);
void cs_lookup_add(cs_lookup *lk, int family, const void *addr, int port);
void cs_lookup_set_port(cs_lookup *lk, int port);
int cs_is_localhost(const char *h, size_t len);
/* nginx's URL parser: NULL and the host and port, or its error reason */
const char *cs_parse_host(const char *url, size_t len, const char **host,
                          size_t *hlen, int *port);
/* A literal or localhost fills *out; a name is copied to *hostname (to
 * resolve); *out_port is the port to use.  0 with an error message pushed. */
int cs_target(lua_State *L, cs_sched *s, const char *url, size_t len, int port,
              cs_lookup **out, char **hostname, int *out_port);
/* host names a unix socket: "unix:" (any case) + path.  The first byte
 * first: a connect per request to an address pays no strncasecmp. */
static inline int cs_is_unix_host(const char *host, size_t len)
{
    return len >= 5 && (host[0] | 0x20) == 'u' &&
           strncasecmp(host, "unix:", 5) == 0;
}
/* "unix:" + path: 0 with an error message pushed. */
int cs_unix_target(lua_State *L, const char *path, cs_lookup **out);

/* bind(): ip (a literal) and port into *addr (allocated once); NULL, or
 * the error text ("bad address", "no memory"). */
const char *cs_bind_address(const char *ip, int port,
                            struct sockaddr_storage **addr, socklen_t *len);

#endif
