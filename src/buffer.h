/* The receive buffer of a socket: one contiguous run of unread bytes.
 * No Lua, no libev: tested and fuzzed byte by byte. */
#ifndef COSOCKET_BUFFER_H
#define COSOCKET_BUFFER_H

#include <stddef.h>

/* Memory of emptied buffers, kept per scheduler for the next socket that
 * receives (DECISIONS.md 9: an idle socket holds no buffer).  A NULL cache
 * means plain malloc and free (lua_close). */
typedef struct cs_buffer_cache {
    char *free[8];
    size_t cap[8];
    int nfree;
} cs_buffer_cache;

typedef struct cs_buffer {
    char *data;        /* NULL while the socket holds no bytes */
    size_t start, end; /* unread bytes are data[start, end) */
    size_t cap;
} cs_buffer;

#define CS_BUFFER_CHUNK     16384
#define CS_BUFFER_CACHE_MAX 65536 /* larger ones are one-offs: freed */

static inline size_t cs_buffer_len(const cs_buffer *b)
{
    return b->end - b->start;
}

static inline const char *cs_buffer_peek(const cs_buffer *b)
{
    return b->data + b->start;
}

/* Makes room for at least `want` more bytes after the unread ones and
 * returns where they go; *room gets how many fit.  NULL: no memory. */
char *cs_buffer_reserve(cs_buffer *b, cs_buffer_cache *c, size_t want,
                        size_t *room);
void cs_buffer_commit(cs_buffer *b, size_t n); /* n bytes were written */
/* Drops n unread bytes; an emptied buffer goes back to the cache. */
void cs_buffer_consume(cs_buffer *b, cs_buffer_cache *c, size_t n);
void cs_buffer_release(cs_buffer *b, cs_buffer_cache *c); /* drop all */
void cs_buffer_cache_free(cs_buffer_cache *c);

#endif
