/* Addresses: nginx's host parsing for connect and setpeername, literal
 * and localhost addresses (never through DNS, DECISIONS.md 6), unix paths. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "addr.h"

cs_lookup *cs_lookup_literal(cs_sched *home)
{
    cs_lookup *lk = home != NULL ? home->spare_lookup : NULL;

    if (lk != NULL) { /* a connect to a literal per request: no calloc */
        home->spare_lookup = NULL;
        memset(lk, 0, sizeof(*lk)); /* not the addresses: added whole */
        lk->cap = 2;
    } else {
        lk = cs_lookup_alloc(2); /* an IP, or localhost's two */
    }
    if (lk != NULL) {
        lk->finished = 1;
        lk->home = home;
    }
    return lk;
}

/* inet_pton(AF_INET)'s answer for a plain dotted quad, the literal connect
 * sees most, without its general loop: 1 with the address; 0 for anything
 * else, a quad inet_pton refuses too (a leading zero, say), left to it. */
static int dotted_quad(const char *p, unsigned char *addr)
{
    int i;

    for (i = 0; i < 4; i++) {
        const char *start = p;
        unsigned n = 0;

        while (*p >= '0' && *p <= '9' && p - start < 3)
            n = n * 10 + (unsigned)(*p++ - '0');
        if (p == start || n > 255 || (p - start > 1 && *start == '0'))
            return 0;
        addr[i] = (unsigned char)n;
        if (*p++ != (i < 3 ? '.' : '\0'))
            return 0;
    }
    return 1;
}

void cs_lookup_add(cs_lookup *lk, int family, const void *addr, int port)
{
    struct sockaddr_storage *ss = &lk->addrs[lk->naddrs];

    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((unsigned short)port);
        memcpy(&sin->sin_addr, addr, 4);
        lk->lens[lk->naddrs++] = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((unsigned short)port);
        memcpy(&sin6->sin6_addr, addr, 16);
        lk->lens[lk->naddrs++] = sizeof(*sin6);
    }
}

void cs_lookup_set_port(cs_lookup *lk, int port)
{
    int i;

    for (i = 0; i < lk->naddrs; i++) {
        struct sockaddr *sa = (struct sockaddr *)&lk->addrs[i];
        if (sa->sa_family == AF_INET)
            ((struct sockaddr_in *)sa)->sin_port = htons((unsigned short)port);
        else if (sa->sa_family == AF_INET6)
            ((struct sockaddr_in6 *)sa)->sin6_port =
                htons((unsigned short)port);
    }
}

int cs_is_localhost(const char *h, size_t len)
{
    static const char suffix[] = ".localhost";
    size_t sl = sizeof(suffix) - 1;

    if (len == 9 && strncasecmp(h, "localhost", 9) == 0)
        return 1;
    return len > sl && strncasecmp(h + len - sl, suffix, sl) == 0;
}

/* nginx's URL parser for "host", "host:port", "[v6]" and "[v6]:port".
 * Returns NULL and sets host, hlen and port, or nginx's error reason. */
const char *cs_parse_host(const char *url, size_t len, const char **host,
                          size_t *hlen, int *port)
{
    const char *last = url + len, *colon;

    if (len > 0 && url[0] == '[') {
        const char *end = memchr(url, ']', len);
        if (end == NULL)
            return "invalid host";
        *host = url + 1;
        *hlen = (size_t)(end - url - 1);
        if (*hlen == 0)
            return "no host";
        if (end + 1 == last)
            return NULL;
        if (end[1] != ':')
            return "invalid host";
        colon = end + 1;
    } else {
        colon = memchr(url, ':', len);
        *host = url;
        *hlen = colon != NULL ? (size_t)(colon - url) : len;
        if (colon == NULL)
            return *hlen == 0 ? "no host" : NULL;
    }
    {
        const char *p = colon + 1;
        long n = 0;
        if (p == last)
            return "invalid port";
        for (; p < last; p++) {
            if (*p < '0' || *p > '9' || n > 65535)
                return "invalid port";
            n = n * 10 + (*p - '0');
        }
        if (n < 1 || n > 65535)
            return "invalid port";
        *port = (int)n;
    }
    return *hlen == 0 ? "no host" : NULL;
}

/* Parses the host: a literal or localhost fills t->lookup, a name waits in
 * t->host for the resolver.  0 with an error message pushed. */
int cs_target(lua_State *L, cs_sched *s, const char *url, size_t len, int port,
              cs_lookup **out, char **hostname, int *out_port)
{
    size_t i;
    const char *host, *why;
    size_t hlen;
    int family;
    char name[256];
    unsigned char addr[16];
    cs_lookup *lk;

    why = cs_parse_host(url, len, &host, &hlen, &port);
    *out_port = port;
    if (why != NULL || hlen >= sizeof(name)) {
        lua_pushfstring(L, "failed to parse host name \"%s\": %s", url,
                        why != NULL ? why : "host name too long");
        return 0;
    }
    memcpy(name, host, hlen);
    name[hlen] = '\0';
    family = dotted_quad(name, addr) || inet_pton(AF_INET, name, addr) == 1
                 ? AF_INET
             : inet_pton(AF_INET6, name, addr) == 1 ? AF_INET6
                                                    : AF_UNSPEC;
    if (family != AF_UNSPEC || cs_is_localhost(name, hlen)) {
        lk = cs_lookup_literal(s);
        if (lk == NULL) {
            lua_pushliteral(L, "no memory");
            return 0;
        }
        if (family != AF_UNSPEC) {
            cs_lookup_add(lk, family, addr, port);
        } else { /* localhost never reaches DNS (DECISIONS.md 6) */
            static const unsigned char v4[4] = {127, 0, 0, 1};
            static const unsigned char v6[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                                 0, 0, 0, 0, 0, 0, 0, 1};
            int v6first = s->cfg.prefer_ipv6;
            cs_lookup_add(lk, v6first ? AF_INET6 : AF_INET, v6first ? v6 : v4,
                          port);
            cs_lookup_add(lk, v6first ? AF_INET : AF_INET6, v6first ? v4 : v6,
                          port);
        }
        *out = lk;
        return 1;
    }
    *hostname = malloc(hlen + 1); /* resolved when connecting starts */
    if (*hostname == NULL) {
        lua_pushliteral(L, "no memory");
        return 0;
    }
    for (i = 0; i <= hlen; i++) /* nginx resolves (and reports) lower case */
        (*hostname)[i] = (char)tolower((unsigned char)name[i]);
    *out_port = port;
    return 1;
}

int cs_unix_target(lua_State *L, const char *path, cs_lookup **out)
{
    cs_lookup *lk = cs_lookup_literal(NULL);
    struct sockaddr_un *sun;
    size_t len = strlen(path);

    if (lk == NULL) {
        lua_pushliteral(L, "no memory");
        return 0;
    }
    if (len == 0) {
        free(lk);
        lua_pushliteral(L, "failed to parse host name \"unix:\": no path in "
                           "the unix domain socket");
        return 0;
    }
    sun = (struct sockaddr_un *)&lk->addrs[0];
    if (len >= sizeof(sun->sun_path)) {
        free(lk);
        lua_pushfstring(L, "failed to parse host name \"unix:%s\": too long",
                        path);
        return 0;
    }
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, len + 1);
    lk->lens[0] = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    lk->naddrs = 1;
    *out = lk;
    return 1;
}

const char *cs_bind_address(const char *ip, int port,
                            struct sockaddr_storage **addr, socklen_t *len)
{
    unsigned char bytes[16];
    cs_lookup *tmp = cs_lookup_literal(NULL);
    const char *err = NULL;

    if (tmp == NULL)
        return "no memory";
    if (ip != NULL && inet_pton(AF_INET, ip, bytes) == 1)
        cs_lookup_add(tmp, AF_INET, bytes, port);
    else if (ip != NULL && inet_pton(AF_INET6, ip, bytes) == 1)
        cs_lookup_add(tmp, AF_INET6, bytes, port);
    else
        err = "bad address";
    if (err == NULL && *addr == NULL) {
        *addr = malloc(sizeof(**addr));
        if (*addr == NULL)
            err = "no memory";
    }
    if (err == NULL) {
        memcpy(*addr, &tmp->addrs[0], sizeof(**addr));
        *len = tmp->lens[0];
    }
    free(tmp);
    return err;
}
