/* c-ares channel per Lua state: see resolver.h. */
#include <ares.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resolver.h"

#define RESOLVER_MAX_FDS 16

struct cs_resolver {
    cs_sched *s;
    ares_channel channel;
    unsigned cfg_gen; /* configuration last found to match the channel */
    /* what the channel was made with: another configure{} of these remakes
     * it (and fails the lookups in flight), one of other keys does not */
    char *servers; /* the resolver setting, NULL: the system's */
    double timeout;
    ev_timer timer; /* c-ares' own retries: unref'd, repeating */
    /* lookups not answered yet; a channel replaced while some are (retired)
     * goes on serving them, off s->resolver, and ends after the last */
    int pending;
    unsigned char retired, processing;
    cs_resolver *next_retired;
    int nfds;
    ev_io io[RESOLVER_MAX_FDS];
};

/* Watchers serving only the resolver never keep the loop alive: they are
 * unref'd after start and ref'd before stop (STYLE.md 3). */
static void watcher_start_io(struct ev_loop *loop, ev_io *w)
{
    ev_io_start(loop, w);
    ev_unref(loop);
}

static void watcher_stop_io(struct ev_loop *loop, ev_io *w)
{
    ev_ref(loop);
    ev_io_stop(loop, w);
}

static void resolver_arm_timer(cs_resolver *r)
{
    struct ev_loop *loop = r->s->loop;
    struct timeval tv, *tvp;

    ev_now_update(loop); /* or the timer fires at once, over and over */
    tvp = ares_timeout(r->channel, NULL, &tv);
    if (ev_is_active(&r->timer)) {
        ev_ref(loop);
        ev_timer_stop(loop, &r->timer);
    }
    if (tvp == NULL)
        return;
    r->timer.repeat = (double)tvp->tv_sec + tvp->tv_usec / 1e6 + 0.001;
    ev_timer_again(loop, &r->timer);
    ev_unref(loop);
}

static void resolver_destroy(cs_resolver *r);

/* After c-ares ran its callbacks: a retired channel whose last lookup
 * ended goes, a channel still serving has its timer set again.  Never
 * destroyed from inside ares_process_fd (resolver_get retires instead). */
static void resolver_processed(cs_resolver *r)
{
    r->processing = 0;
    if (r->retired && r->pending == 0)
        resolver_destroy(r);
    else if (r->retired || r->s->resolver == r)
        resolver_arm_timer(r);
}

static void resolver_on_timer(EV_P_ ev_timer *w, int revents)
{
    cs_resolver *r = cs_container_of(w, cs_resolver, timer);
    cs_sched *s = r->s;

    (void)revents;
    /* a lookup that timed out readies its connect */
    cs_timer_cb_begin(s, ev_now(loop), s->arms++);
    r->processing = 1;
    ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    cs_timer_cb_end(s);
    resolver_processed(r);
}

static void resolver_on_io(EV_P_ ev_io *w, int revents)
{
    cs_resolver *r = w->data;

    (void)loop;
    r->processing = 1;
    ares_process_fd(r->channel, revents & EV_READ ? w->fd : ARES_SOCKET_BAD,
                    revents & EV_WRITE ? w->fd : ARES_SOCKET_BAD);
    resolver_processed(r);
}

static void resolver_on_sock_state(void *data, ares_socket_t fd, int readable,
                                   int writable)
{
    cs_resolver *r = data;
    struct ev_loop *loop = r->s->loop;
    int i, events = (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);

    for (i = 0; i < r->nfds && r->io[i].fd != fd; i++)
        ;
    if (i < r->nfds)
        watcher_stop_io(loop, &r->io[i]);
    if (events == 0) {
        if (i < r->nfds)
            r->io[i] = r->io[--r->nfds];
        return;
    }
    if (i == r->nfds) {
        if (r->nfds == RESOLVER_MAX_FDS)
            return; /* c-ares then times the query out */
        r->nfds++;
    }
    ev_io_init(&r->io[i], resolver_on_io, fd, events);
    r->io[i].data = r;
    watcher_start_io(loop, &r->io[i]);
}

static void resolver_destroy(cs_resolver *r)
{
    struct ev_loop *loop = r->s->loop;
    cs_resolver **p = &r->s->retired_resolvers;

    if (r->s->resolver == r)
        r->s->resolver = NULL;
    while (*p != NULL && *p != r)
        p = &(*p)->next_retired;
    if (*p == r)
        *p = r->next_retired;
    ares_destroy(r->channel); /* fails the pending lookups: EDESTRUCTION */
    while (r->nfds > 0)
        watcher_stop_io(loop, &r->io[--r->nfds]);
    if (ev_is_active(&r->timer)) {
        ev_ref(loop);
        ev_timer_stop(loop, &r->timer);
    }
    free(r->servers);
    free(r);
}

/* Whether r was made with the resolver settings in force now. */
static int resolver_matches(cs_resolver *r, const char *servers)
{
    if (servers == NULL || r->servers == NULL)
        return servers == r->servers;
    return strcmp(servers, r->servers) == 0 &&
           r->timeout == r->s->cfg.resolver_timeout;
}

/* "ip[:port] [ipv6]:port ..." (nginx) to c-ares' comma list. */
static int resolver_set_servers(cs_resolver *r, const char *spec)
{
    char csv[1024];
    size_t n = 0;

    for (; *spec != '\0' && n + 2 < sizeof(csv); spec++) {
        if (*spec == ' ' || *spec == '\t') {
            if (n > 0 && csv[n - 1] != ',')
                csv[n++] = ',';
            continue;
        }
        csv[n++] = *spec;
    }
    while (n > 0 && csv[n - 1] == ',')
        n--;
    csv[n] = '\0';
    return ares_set_servers_ports_csv(r->channel, csv) == ARES_SUCCESS;
}

static cs_resolver *resolver_get(cs_sched *s)
{
    cs_resolver *r = s->resolver;
    struct ares_options opts;
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_FLAGS;
    const char *servers = NULL;
    lua_State *L = s->aux;

    if (r != NULL && r->cfg_gen == s->cfg_gen)
        return r;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->cfg.resolver_ref);
    if (lua_isstring(L, -1))
        servers = lua_tostring(L, -1);
    if (r != NULL && resolver_matches(r, servers)) {
        lua_pop(L, 1);
        r->cfg_gen = s->cfg_gen;
        return r;
    }
    if (r != NULL && (r->pending > 0 || r->processing)) {
        s->resolver = NULL; /* retired: it ends after its last lookup */
        r->retired = 1;
        r->next_retired = s->retired_resolvers;
        s->retired_resolvers = r;
    } else if (r != NULL) {
        resolver_destroy(r);
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL ||
        (servers != NULL && (r->servers = strdup(servers)) == NULL)) {
        lua_pop(L, 1);
        free(r);
        return NULL;
    }
    r->s = s;
    r->cfg_gen = s->cfg_gen;
    r->timeout = s->cfg.resolver_timeout;
    ev_init(&r->timer, resolver_on_timer);
    memset(&opts, 0, sizeof(opts));
    opts.sock_state_cb = resolver_on_sock_state;
    opts.sock_state_cb_data = r;
    /* tell SERVFAIL from REFUSED instead of retrying them (DECISIONS 6) */
    opts.flags = ARES_FLAG_NOCHECKRESP;
    if (servers != NULL) {
        opts.timeout = (int)s->cfg.resolver_timeout;
        opts.tries = 1;
        mask |= ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    }
    if (ares_init_options(&r->channel, &opts, mask) != ARES_SUCCESS) {
        lua_pop(L, 1);
        free(r->servers);
        free(r);
        return NULL;
    }
    lua_pop(L, 1);
    if (servers != NULL && !resolver_set_servers(r, r->servers)) {
        ares_destroy(r->channel);
        free(r->servers);
        free(r);
        return NULL;
    }
    s->resolver = r;
    return r;
}

static void lookup_fail(cs_lookup *lk, int status)
{
    switch (status) {
    case ARES_ENOTFOUND:
    case ARES_ENODATA:
    case ARES_ENONAME:
        lk->code = 3;
        lk->text = "Host not found";
        break;
    case ARES_ESERVFAIL:
        lk->code = 2;
        lk->text = "Server failure";
        break;
    case ARES_EREFUSED:
        lk->code = 5;
        lk->text = "Operation refused";
        break;
    case ARES_EFORMERR:
        lk->code = 1;
        lk->text = "Format error";
        break;
    case ARES_ENOTIMP:
        lk->code = 4;
        lk->text = "Unimplemented";
        break;
    case ARES_ETIMEOUT:
    case ARES_ECONNREFUSED: /* a server that cannot be reached: timeout */
        lk->code = 110;
        lk->text = "Operation timed out";
        break;
    default:
        lk->code = status;
        lk->text = "Unknown error";
        break;
    }
}

/* Keeps the addresses, IPv4 first unless prefer_ipv6 (stable order). */
static void lookup_store(cs_lookup *lk, struct ares_addrinfo *res)
{
    int pass, first = lk->s->cfg.prefer_ipv6 ? AF_INET6 : AF_INET;
    struct ares_addrinfo_node *n;

    for (pass = 0; pass < 2; pass++) {
        for (n = res->nodes; n != NULL; n = n->ai_next) {
            if ((n->ai_family == first) != (pass == 0))
                continue;
            if (lk->naddrs == lk->cap || n->ai_addrlen > sizeof(lk->addrs[0]))
                continue;
            memcpy(&lk->addrs[lk->naddrs], n->ai_addr, n->ai_addrlen);
            lk->lens[lk->naddrs++] = n->ai_addrlen;
        }
    }
}

static void resolver_on_addrinfo(void *arg, int status, int timeouts,
                                 struct ares_addrinfo *res)
{
    cs_lookup *lk = arg;

    (void)timeouts;
    lk->r->pending--;
    if (lk->orphan) {
        if (res != NULL)
            ares_freeaddrinfo(res);
        free(lk);
        return;
    }
    if (status == ARES_SUCCESS && res != NULL)
        lookup_store(lk, res);
    if (res != NULL)
        ares_freeaddrinfo(res);
    if (lk->naddrs == 0 && lk->code == 0)
        lookup_fail(lk, status == ARES_SUCCESS ? ARES_ENODATA : status);
    lk->finished = 1;
    if (status == ARES_EDESTRUCTION)
        return; /* lua_close or a new configuration: nobody to tell */
    if (lk->done != NULL)
        lk->done(lk);
}

cs_lookup *cs_lookup_alloc(int cap)
{
    cs_lookup *lk =
        calloc(1, sizeof(*lk) + (size_t)cap * sizeof(struct sockaddr_storage));

    if (lk != NULL)
        lk->cap = cap;
    return lk;
}

cs_lookup *cs_resolve(cs_sched *s, const char *host, void (*done)(cs_lookup *),
                      void *data)
{
    cs_resolver *r = resolver_get(s);
    struct ares_addrinfo_hints hints;
    cs_lookup *lk;

    if (r == NULL)
        return NULL;
    lk = cs_lookup_alloc(CS_MAX_ADDRS);
    if (lk == NULL)
        return NULL;
    lk->s = s;
    lk->data = data;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    lk->r = r;
    r->pending++;
    /* done stays NULL while c-ares may answer from inside the call */
    ares_getaddrinfo(r->channel, host, NULL, &hints, resolver_on_addrinfo, lk);
    lk->done = done;
    if (s->resolver == r)
        resolver_arm_timer(r);
    return lk;
}

void cs_lookup_drop(cs_lookup *lk)
{
    if (lk == NULL)
        return;
    if (!lk->finished)
        lk->orphan = 1;
    else if (lk->home != NULL && lk->home->loop != NULL &&
             lk->home->spare_lookup == NULL)
        lk->home->spare_lookup = lk; /* cs_lookup_literal's next */
    else
        free(lk);
}

void cs_resolver_free(cs_sched *s)
{
    if (s->resolver != NULL)
        resolver_destroy(s->resolver);
    while (s->retired_resolvers != NULL)
        resolver_destroy(s->retired_resolvers);
}
