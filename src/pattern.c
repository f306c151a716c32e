/* Read patterns: see pattern.h. */
#include <string.h>

#include "pattern.h"

size_t cs_until_size(size_t plen)
{
    return offsetof(cs_until, fail) + (plen + 1) * sizeof(int);
}

void cs_until_init(cs_until *u, const char *pat, size_t plen, int inclusive)
{
    size_t k;
    int b = 0;

    u->pat = pat;
    u->plen = plen;
    u->state = 0;
    u->gen = 0;
    u->inclusive = inclusive;
    u->fail[0] = 0;
    if (plen >= 1)
        u->fail[1] = 0;
    for (k = 1; k < plen; k++) {
        while (b > 0 && pat[k] != pat[b])
            b = u->fail[b];
        if (pat[k] == pat[b])
            b++;
        u->fail[k + 1] = b;
    }
}

/* Next state from `state` (>= 1) on a byte c that does not extend it. */
static int until_delta(const cs_until *u, int state, char c)
{
    int k = u->fail[state];

    while (k > 0 && u->pat[k] != c)
        k = u->fail[k];
    return u->pat[k] == c ? k + 1 : 0;
}

void cs_scan_init(cs_scan *sc, int kind, size_t size, cs_until *until)
{
    sc->kind = kind;
    sc->size = size;
    sc->scanned = 0;
    sc->out = 0;
    sc->rest = size;
    sc->matched = 0;
    sc->until = until;
}

/* The receiveuntil step.  Bytes before the position are either released
 * (out) or held as a matched pattern prefix (state): pos == out + state.
 * Held bytes are released the way ngx_lua releases them, and in size mode
 * a chunk ends where ngx_lua's does: after `size` released bytes, or after
 * a release that reaches it (which may pass it). */
static int until_step(cs_scan *sc, const char *d, size_t len)
{
    cs_until *u = sc->until;
    const char *pat = u->pat;
    int chunked = sc->size > 0, state = u->state;
    size_t out = sc->out, rest = sc->rest, pos = out + (size_t)state;

    while (pos < len) {
        char c = d[pos];

        /* a whole pattern at a possible start: one memcmp instead of a
         * turn of this loop per byte; any other case goes byte by byte */
        if (state == 0 && c == pat[0] && len - pos >= u->plen &&
            memcmp(d + pos, pat, u->plen) == 0) {
            sc->matched = 1;
            sc->out = out;
            u->state = chunked ? -1 : 0;
            return 1;
        }
        if (c == pat[state]) {
            pos++;
            if ((size_t)++state == u->plen) {
                sc->matched = 1;
                sc->out = out;
                u->state = chunked ? -1 : 0;
                return 1;
            }
            continue;
        }
        if (state == 0) {
            /* plain data up to the next possible pattern start */
            size_t lim = chunked && len - pos > rest ? pos + rest : len;
            const char *q = memchr(d + pos + 1, pat[0], lim - pos - 1);
            size_t n = q != NULL ? (size_t)(q - (d + pos)) : lim - pos;

            pos += n;
            out += n;
            if (chunked && (rest -= n) == 0) {
                sc->out = out;
                u->state = 0;
                return 1;
            }
            continue;
        }
        {
            int next = until_delta(u, state, c);
            size_t released;

            if (next >= 2) { /* a shorter prefix still matches */
                released = (size_t)(state + 1 - next);
                pos++;
                out += released;
                state = next;
            } else { /* release all held bytes; c is looked at again */
                released = (size_t)state;
                out += released;
                state = 0;
            }
            if (chunked) {
                if (rest <= released) {
                    sc->out = out;
                    u->state = state;
                    return 1;
                }
                rest -= released;
            }
        }
    }
    sc->out = out;
    sc->rest = rest;
    u->state = state;
    return 0;
}

int cs_scan_step(cs_scan *sc, const char *d, size_t len)
{
    const char *lf;

    switch (sc->kind) {
    case CS_PAT_LINE:
        if (sc->scanned >= len)
            return 0;
        lf = memchr(d + sc->scanned, '\n', len - sc->scanned);
        if (lf == NULL) {
            sc->scanned = len;
            return 0;
        }
        sc->scanned = (size_t)(lf - d);
        return 1;
    case CS_PAT_SIZE:
        return len >= sc->size;
    case CS_PAT_ANY:
        return len > 0;
    case CS_PAT_UNTIL:
        return until_step(sc, d, len);
    default:
        return 0; /* "*a" completes at EOF only */
    }
}

void cs_scan_result(const cs_scan *sc, const char *d, size_t len, size_t *take,
                    size_t *drop)
{
    (void)d;
    switch (sc->kind) {
    case CS_PAT_LINE:
        *take = sc->scanned;
        *drop = sc->scanned + 1;
        return;
    case CS_PAT_SIZE:
        *take = *drop = sc->size;
        return;
    case CS_PAT_ANY:
        *take = *drop = len < sc->size ? len : sc->size;
        return;
    case CS_PAT_UNTIL:
        *drop = sc->out + (sc->matched ? sc->until->plen : 0);
        *take = sc->until->inclusive ? *drop : sc->out;
        return;
    default:
        *take = *drop = len;
        return;
    }
}

size_t cs_scan_partial(const cs_scan *sc, size_t len)
{
    switch (sc->kind) {
    case CS_PAT_UNTIL:
        return sc->out;
    case CS_PAT_ANY:
        return 0;
    case CS_PAT_SIZE:
        return len < sc->size ? len : sc->size;
    default:
        return len;
    }
}
