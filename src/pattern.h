/* What a read call waits for: "*l", "*a", a byte count, receiveany's
 * "whatever is there", or a receiveuntil pattern.  Pure functions over the
 * unread bytes: no Lua, no libev (fuzzed against a reference model). */
#ifndef COSOCKET_PATTERN_H
#define COSOCKET_PATTERN_H

#include <stddef.h>

enum { CS_PAT_LINE, CS_PAT_ALL, CS_PAT_SIZE, CS_PAT_ANY, CS_PAT_UNTIL };

/* A receiveuntil matcher: the KMP automaton of the pattern, stepped the
 * way ngx_lua steps its own (same chunk boundaries in size mode). */
typedef struct cs_until {
    const char *pat; /* the pattern string, kept alive by the iterator */
    size_t plen;
    int state;    /* pattern bytes held (they stay unread); -1: part done */
    unsigned gen; /* socket's read generation when it last ran */
    int inclusive;
    int fail[1]; /* fail[k]: longest proper border of pat[0, k); plen + 1 */
} cs_until;

/* Bytes a matcher needs for a pattern of plen bytes. */
size_t cs_until_size(size_t plen);
void cs_until_init(cs_until *u, const char *pat, size_t plen, int inclusive);

typedef struct cs_scan {
    int kind;       /* CS_PAT_* */
    size_t size;    /* count, receiveany's max, or the until chunk size */
    size_t scanned; /* line: bytes known to hold no LF */
    size_t out;     /* until: bytes released to the caller so far */
    size_t rest;    /* until with a size: bytes still wanted */
    int matched;    /* until: the pattern was found */
    cs_until *until;
} cs_scan;

void cs_scan_init(cs_scan *sc, int kind, size_t size, cs_until *until);

/* Looks at the unread bytes d[0, len).  1: the call is complete; 0: it
 * needs more bytes (at EOF the caller reports "closed", except "*a"). */
int cs_scan_step(cs_scan *sc, const char *d, size_t len);

/* For a complete call: *take bytes of d are the result and *drop bytes
 * are consumed (drop >= take; a line drops its LF). */
void cs_scan_result(const cs_scan *sc, const char *d, size_t len, size_t *take,
                    size_t *drop);
/* For a call that failed: the partial result (excluding an unfinished
 * pattern prefix, as ngx_lua does), consumed as it is returned. */
size_t cs_scan_partial(const cs_scan *sc, size_t len);

#endif
