/* Receive buffer: see buffer.h. */
#include <stdlib.h>
#include <string.h>

#include "buffer.h"

static char *cache_take(cs_buffer_cache *c, size_t *cap)
{
    if (c != NULL && c->nfree > 0) {
        c->nfree--;
        *cap = c->cap[c->nfree];
        return c->free[c->nfree];
    }
    *cap = CS_BUFFER_CHUNK;
    return malloc(CS_BUFFER_CHUNK);
}

/* Grown buffers are kept too (up to a limit): a socket whose replies need
 * 32 KiB takes one that size again next time instead of growing anew. */
static void cache_give(cs_buffer_cache *c, char *data, size_t cap)
{
    if (c != NULL && cap <= CS_BUFFER_CACHE_MAX &&
        c->nfree < (int)(sizeof(c->free) / sizeof(c->free[0]))) {
        c->free[c->nfree] = data;
        c->cap[c->nfree++] = cap;
        return;
    }
    free(data);
}

char *cs_buffer_reserve(cs_buffer *b, cs_buffer_cache *c, size_t want,
                        size_t *room)
{
    size_t len = cs_buffer_len(b), cap;
    char *data;

    if (b->data == NULL) {
        b->data = cache_take(c, &b->cap);
        if (b->data == NULL)
            return NULL;
        b->start = b->end = 0;
    }
    if (b->cap - b->end >= want) {
        *room = b->cap - b->end;
        return b->data + b->end;
    }
    if (b->cap - len >= want && b->start >= len) {
        /* compacting copies less than what is already there: cheap */
        memcpy(b->data, b->data + b->start, len);
        b->start = 0;
        b->end = len;
        *room = b->cap - b->end;
        return b->data + b->end;
    }
    cap = b->cap;
    while (cap - len < want) {
        if (cap > ((size_t)-1) / 2)
            return NULL;
        cap *= 2; /* doubling: a long read costs linear time overall */
    }
    data = malloc(cap);
    if (data == NULL)
        return NULL;
    memcpy(data, b->data + b->start, len);
    cache_give(c, b->data, b->cap);
    b->data = data;
    b->cap = cap;
    b->start = 0;
    b->end = len;
    *room = cap - len;
    return data + len;
}

void cs_buffer_commit(cs_buffer *b, size_t n)
{
    b->end += n;
}

void cs_buffer_consume(cs_buffer *b, cs_buffer_cache *c, size_t n)
{
    b->start += n;
    if (b->start == b->end)
        cs_buffer_release(b, c);
}

void cs_buffer_release(cs_buffer *b, cs_buffer_cache *c)
{
    if (b->data != NULL)
        cache_give(c, b->data, b->cap);
    b->data = NULL;
    b->start = b->end = b->cap = 0;
}

void cs_buffer_cache_free(cs_buffer_cache *c)
{
    while (c->nfree > 0)
        free(c->free[--c->nfree]);
}
