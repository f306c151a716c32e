/* The reference model of the read calls (fuzz.h): whole-stream and
 * non-streaming, written from SPEC.md 5 and 6 and from ngx_lua's
 * ngx_http_lua_socket_read_until (how a size cuts a part into chunks),
 * never from src/pattern.c.  Slow and plain on purpose: naive searches,
 * every matcher state found by trying every length. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/pattern.h"
#include "fuzz.h"

static void model_fail(const char *what)
{
    fprintf(stderr, "model.c: %s\n", what);
    abort();
}

/* "*l": every LF ends a line; all CRs are dropped (SPEC 5.1); what
 * follows the last LF is the partial of "closed" (maybe ""). */
static void model_lines(const char *s, size_t len, fz_log *out)
{
    char *line = malloc(len + 1);
    size_t pos = 0, i, n;

    if (line == NULL)
        abort();
    for (;;) {
        for (n = 0, i = pos; i < len && s[i] != '\n'; i++)
            if (s[i] != '\r')
                line[n++] = s[i];
        fz_log_add(out, i < len ? FZ_OK : FZ_CLOSED, line, n);
        if (i == len)
            break;
        pos = i + 1;
    }
    free(line);
}

/* a count: whole counts, then "closed" with what is left (maybe "") */
static void model_count(size_t count, const char *s, size_t len, fz_log *out)
{
    size_t pos = 0;

    for (; len - pos >= count; pos += count)
        fz_log_add(out, FZ_OK, s + pos, count);
    fz_log_add(out, FZ_CLOSED, s + pos, len - pos);
}

/* receiveany: what is buffered, at most max; with nothing buffered, what
 * the next read from the kernel brought (SPEC 5.2); "closed", "" at EOF */
static void model_any(size_t max, const char *s, const size_t *recvs,
                      size_t nrecv, fz_log *out)
{
    size_t pos = 0, buffered = 0, r = 0, n;

    for (;;) {
        if (buffered == 0) {
            if (r == nrecv) {
                fz_log_add(out, FZ_CLOSED, "", 0);
                return;
            }
            buffered = recvs[r++];
        }
        n = buffered < max ? buffered : max;
        fz_log_add(out, FZ_OK, s + pos, n);
        pos += n;
        buffered -= n;
    }
}

/* The first occurrence of pat in s[from, len): naive search; len if none */
static size_t find(const char *s, size_t from, size_t len, const char *pat,
                   size_t plen)
{
    size_t j;

    for (j = from; j + plen <= len; j++)
        if (memcmp(s + j, pat, plen) == 0)
            return j;
    return len;
}

/* The matcher's state after t[0, i): the longest k <= plen such that
 * t[i - k, i) is pat[0, k), found by trying every k (plen: a match). */
static size_t held(const char *t, size_t i, const char *pat, size_t plen)
{
    size_t k = i < plen ? i : plen;

    for (; k > 0; k--)
        if (memcmp(t + i - k, pat, k) == 0)
            return k;
    return 0;
}

/* receiveuntil with a size: the part t[0, tl) the matcher reads, ending
 * with the pattern if found.  ngx_lua moves bytes from the pattern prefix
 * it holds to the caller ("releases" them) in steps; a call returns its
 * chunk after a step that makes it reach its size (SPEC 6.4: it may pass
 * it), or when the pattern completes (then, if that call had a size, the
 * next call returns nil, nil, nil).  The steps, for byte c after state s:
 *   c extends the prefix: none;
 *   s == 0 and c starts nothing: c alone;
 *   a shorter prefix of length s' >= 2 (a border) takes c: s + 1 - s'
 *     (ngx_lua's "recovering" edges; patterns of 1 or 2 bytes have none);
 *   else: all s held bytes, then c is looked at again from state 0: c alone
 *     if it does not start the pattern either.
 * At EOF the call returns "closed" with the bytes released in that call:
 * the held prefix is not part of it (SPEC 6.6).  A call without a size
 * (0) returns at the pattern or EOF only. */
typedef struct until_part {
    const fz_read *rd;
    const char *t;
    size_t released; /* t[0, released) went to callers */
    size_t acc;      /* ... of which this call's chunk holds the last acc */
    size_t base;     /* results before the iterator's first call */
    fz_log *out;
} until_part;

static size_t call_size(const until_part *p)
{
    return fz_call_size(p->rd, p->out->count - p->base);
}

static void release(until_part *p, size_t n)
{
    size_t size = call_size(p);

    p->released += n;
    p->acc += n;
    if (size > 0 && p->acc >= size) {
        fz_log_add(p->out, FZ_OK, p->t + p->released - p->acc, p->acc);
        p->acc = 0;
    }
}

static void model_until_chunks(const fz_read *rd, const char *t, size_t tl,
                               int found, size_t base, fz_log *out)
{
    until_part p;
    size_t i, s = 0, next;
    char *last;
    int sized;

    p.rd = rd;
    p.t = t;
    p.released = p.acc = 0;
    p.base = base;
    p.out = out;
    for (i = 0; i < tl; i++) {
        next = held(t, i + 1, rd->pat, rd->plen);
        if (next == rd->plen) {
            if (!found || i + 1 != tl)
                model_fail("a match before the first occurrence");
            last = malloc(p.acc + rd->plen);
            if (last == NULL)
                abort();
            memcpy(last, t + p.released - p.acc, p.acc);
            memcpy(last + p.acc, rd->pat, rd->plen);
            sized = call_size(&p) > 0;
            fz_log_add(out, FZ_OK, last,
                       p.acc + (rd->inclusive ? rd->plen : 0));
            free(last);
            if (sized)
                fz_log_add(out, FZ_NILS, "", 0);
            return;
        }
        if (next == s + 1) {
            s = next;
            continue;
        }
        if (s > 0 && next >= 2) {
            release(&p, s + 1 - next);
        } else {
            if (s > 0)
                release(&p, s);
            if (next == 0)
                release(&p, 1);
        }
        s = next;
        if (p.released != i + 1 - s)
            model_fail("released bytes and state disagree");
    }
    if (found)
        model_fail("the pattern was not matched at its occurrence");
    fz_log_add(out, FZ_CLOSED, t + p.released - p.acc, p.acc);
}

/* receiveuntil: without a size, each call returns the bytes before the next
 * occurrence (SPEC 6.3); at EOF, "closed" with what is left, minus the tail
 * that is a prefix of the pattern (SPEC 6.6).  With a size: chunks, above. */
static void model_until(const fz_read *rd, const char *s, size_t len,
                        fz_log *out)
{
    size_t from = 0, occ, end, h, base = out->count;

    for (;;) {
        occ = find(s, from, len, rd->pat, rd->plen);
        end = occ < len ? occ + rd->plen : len;
        if (rd->n > 0 || rd->vary) {
            model_until_chunks(rd, s + from, end - from, occ < len, base, out);
        } else if (occ < len) {
            size_t n = occ - from + (rd->inclusive ? rd->plen : 0);
            fz_log_add(out, FZ_OK, s + from, n);
        } else {
            h = held(s + from, len - from, rd->pat, rd->plen);
            if (h == rd->plen)
                model_fail("held the whole pattern at EOF");
            fz_log_add(out, FZ_CLOSED, s + from, len - from - h);
        }
        if (occ == len)
            return;
        from = end;
    }
}

void model_run(const fz_read *rd, const char *s, size_t len,
               const size_t *recvs, size_t nrecv, fz_log *out)
{
    switch (rd->kind) {
    case CS_PAT_LINE:
        model_lines(s, len, out);
        return;
    case CS_PAT_SIZE:
        model_count(rd->n, s, len, out);
        return;
    case CS_PAT_ALL: /* everything; EOF is no error, so "" after that */
        fz_log_add(out, FZ_OK, s, len);
        fz_log_add(out, FZ_OK, "", 0);
        return;
    case CS_PAT_ANY:
        model_any(rd->n, s, recvs, nrecv, out);
        return;
    default:
        model_until(rd, s, len, out);
        return;
    }
}
