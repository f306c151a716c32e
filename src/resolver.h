/* Asynchronous name resolution on c-ares, driven by the state's libev loop
 * (DECISIONS.md 6).  A lookup is owned by c-ares until its callback ran;
 * cancelling only orphans it (c-ares 1.18 cannot cancel one query). */
#ifndef COSOCKET_RESOLVER_H
#define COSOCKET_RESOLVER_H

#include <sys/socket.h>

#include "cosocket.h"

#define CS_MAX_ADDRS 16

typedef struct cs_lookup cs_lookup;

struct cs_lookup {
    /* Called when the answer arrives after cs_resolve returned; never from
     * inside cs_resolve itself, and never for an orphan. C only. */
    void (*done)(cs_lookup *lk);
    void *data;
    cs_sched *s;
    cs_resolver *r; /* the channel that asked, while it is not answered */
    cs_sched *home; /* a literal's: its memory goes back to home's spare */
    int finished, orphan;
    int code;         /* 0, or nginx's resolver code (SPEC.md 2.4) */
    const char *text; /* nginx's text for code */
    int naddrs, cap;  /* addresses held, and room for */
    socklen_t lens[CS_MAX_ADDRS];
    struct sockaddr_storage addrs[]; /* cap of them: literals take 1 or 2 */
};

/* A lookup with room for cap addresses (calloc'd; free() frees it). */
cs_lookup *cs_lookup_alloc(int cap);

/* Starts resolving host; *out is finished already when the answer came
 * at once (hosts file).  NULL: the resolver could not start. */
cs_lookup *cs_resolve(cs_sched *s, const char *host, void (*done)(cs_lookup *),
                      void *data);
/* The caller loses interest: frees a finished lookup, orphans a pending. */
void cs_lookup_drop(cs_lookup *lk);
void cs_resolver_free(cs_sched *s); /* lua_close: fails every lookup */

#endif
