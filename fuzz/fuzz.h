/* fuzz/: what receive_fuzz.c (buffer.c and pattern.c driven the way
 * tcp_io.c drives them) and model.c (whole-stream reference) share: the
 * read being made, and the sequence of results it gave. */
#ifndef COSOCKET_FUZZ_H
#define COSOCKET_FUZZ_H

#include <stddef.h>

/* One read kind, called again and again until the stream is used up. */
typedef struct fz_read {
    int kind;        /* CS_PAT_* */
    size_t n;        /* count, receiveany's max, or until's size (0: none) */
    const char *pat; /* until: the pattern */
    size_t plen;
    int inclusive;
    int vary; /* until: each call passes its own size (fz_call_size) */
} fz_read;

/* The size until's call number i (from 0, nil, nil, nil included) passes */
static inline size_t fz_call_size(const fz_read *rd, size_t i)
{
    unsigned x;

    if (!rd->vary)
        return rd->n;
    x = (unsigned)(rd->n + 1) * 2654435761u ^ (unsigned)i * 40503u;
    x ^= x >> 13;
    return (x * 2246822519u >> 16) % 17;
}

/* What one call returned (the Lua values it stands for). */
enum {
    FZ_OK = 'o',     /* data */
    FZ_CLOSED = 'c', /* nil, "closed", partial */
    FZ_NILS = 'n'    /* nil, nil, nil: an until part is complete */
};

/* A sequence of results, as bytes: a type, a length, the data. Equal
 * sequences are equal logs (memcmp). */
typedef struct fz_log {
    char *p;
    size_t len, cap;
    size_t count; /* results in it */
} fz_log;

void fz_log_add(fz_log *l, int type, const char *d, size_t n);
int fz_log_eq(const fz_log *a, const fz_log *b);
void fz_log_print(const char *title, const fz_log *l);
void fz_log_free(fz_log *l);
/* The i-th result from offset *at: its type, data and length; 0 at the end */
int fz_log_next(const fz_log *l, size_t *at, int *type, const char **d,
                size_t *n);
void fz_print_bytes(const char *d, size_t n); /* quoted, escaped, stderr */

/* The reference: the results of calling rd again and again on stream
 * s[0, len) followed by EOF.  receiveany depends on how the bytes arrived:
 * recvs[0, nrecv) are the sizes the reads from the kernel returned. */
void model_run(const fz_read *rd, const char *s, size_t len,
               const size_t *recvs, size_t nrecv, fz_log *out);

#endif
