/* libFuzzer target for the receive machinery (issue #9): src/buffer.c and
 * src/pattern.c driven the way src/tcp_io.c drives them (read_progress,
 * receive_results, until_iterate), over a stream that arrives in chunks,
 * then EOF; one read kind is called again and again until the read half
 * is closed.  Checked against model.c (whole stream, no streaming), and
 * against the same reads over the stream in one chunk (no result may depend
 * on the split, receiveany's aside).  Any difference: both sequences on
 * stderr, then abort().
 *
 * Input: 4 header bytes, then the pattern (receiveuntil), then the data.
 *   h0: bits 0-2 the kind: 0 "*l", 1 a count, 2 "*a", 3 receiveany, 4-7
 *       receiveuntil; bit 3 literal bytes (else the small alphabet); bit 4
 *       inclusive; bits 5-7 how much room a read asks for (want_mode): 0-3
 *       as tcp_io.c (0), 4-5 one byte (1), 6 a block less 64 bytes (2:
 *       compaction), 7 over a block while bytes are held (3: growth; not
 *       more often, a new 32k block is an mmap in ASan's allocator: slow)
 *   h1: count or receiveany's max 1 + h1 % 32; receiveuntil's size h1 % 17
 *   h2: pattern length - 1: bits 0-2 (alphabet), 0-3 (literal); bit 3 the
 *       alphabet: "ab" or "ab\r\n"; bits 4-7 all set: lua_close (no
 *       buffer cache, and the cache is emptied after; not more often, as
 *       LeakSanitizer then runs on the next input)
 *   h3: bits 0-5, literal data only: how it is split (0: one chunk; else
 *       chunks of 1 to 1 + (h3 & 15) bytes; bit 4 short reads, bit 5
 *       EAGAINs, drawn); bit 6 receiveuntil: each call passes its own size
 *       (0-16, fz_call_size), as iterator(size) may
 * Pattern byte (alphabet): bits 0-1 the letter.  Data byte (alphabet): bits
 * 0-1 the letter; bits 2-3 == 0: a chunk ends after it; bit 4: that read
 * was short (the kernel is empty: the reader waits and scans again before
 * it reads); bit 5: the next read fails with EAGAIN first.
 *
 * RECEIVE_FUZZ_PRINT=1 in the environment prints each input and its
 * results (./receive_fuzz -runs=0 FILE...: what a seed does). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/buffer.h"
#include "../src/pattern.h"
#include "fuzz.h"

/* While the scanner looks, POISON bytes on either side of the unread ones
 * are poisoned (the heap redzones only guard the whole 16k block; all of
 * it would cost a 2k shadow memset per scan). */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define FZ_ASAN 1
#endif
#endif
#ifndef FZ_ASAN
#define FZ_ASAN 0
#endif
#define POISON 256

#define READ_MIN   4096 /* as tcp_io.c */
#define READ_MAX   (1 << 20)
#define STREAM_MAX 4000 /* < CS_BUFFER_CHUNK: a read takes a whole chunk */
#define PAT_MAX    16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz_chunk {
    size_t len;
    int short_read; /* the reader waits after it, and scans again */
    int eagain;     /* the next read fails with EAGAIN */
} fz_chunk;

typedef struct fz_input {
    fz_read rd;
    int want_mode;
    int lua_close; /* no buffer cache; empty it after the input */
    char pat[PAT_MAX];
    char *stream;
    size_t len;
    fz_chunk *chunks;
    size_t nchunks;
} fz_input;

/* tcp_io.c's cs_tcp, as far as reading goes, and the peer */
typedef struct fz_sock {
    const fz_input *in;
    cs_buffer buf;
    cs_buffer_cache *cache;
    cs_scan scan;
    unsigned read_gen;
    int eof, may_read;
    size_t rd_want;
    /* the peer: chunks[chunk] is next, chunk_off bytes of it were read */
    const fz_chunk *chunks;
    size_t nchunks, chunk, chunk_off;
    int eagain;
    size_t sent;     /* stream bytes the reads returned */
    size_t consumed; /* ... of which the calls consumed: the buffer holds
                        stream[consumed, sent) */
    size_t *recvs;   /* what each read returned, for receiveany's model */
    size_t nrecv;
} fz_sock;

static const fz_input *cur; /* for fail() */
/* The scheduler's cache outlives sockets (and inputs: fresh 16k blocks from
 * ASan's allocator cost more than the rest of a run); "lua_close" empties
 * it. */
static cs_buffer_cache sched_cache;

static void print_input(const fz_input *in)
{
    static const char *kinds[] = {"\"*l\"", "\"*a\"", "count", "receiveany",
                                  "receiveuntil"};
    size_t i;

    fprintf(stderr, "read: %s n=%zu", kinds[in->rd.kind], in->rd.n);
    if (in->rd.kind == CS_PAT_UNTIL) {
        fputs(" pattern=", stderr);
        fz_print_bytes(in->rd.pat, in->rd.plen);
        fprintf(stderr, " inclusive=%d", in->rd.inclusive);
        if (in->rd.vary) {
            fputs(" vary: sizes", stderr);
            for (i = 0; i < 12; i++)
                fprintf(stderr, " %zu", fz_call_size(&in->rd, i));
            fputs(" ...", stderr);
        }
    }
    fprintf(stderr, " want_mode=%d\nstream (%zu bytes): ", in->want_mode,
            in->len);
    fz_print_bytes(in->stream, in->len);
    fputs("\nchunks (s: a short read, e: then EAGAIN):", stderr);
    for (i = 0; i < in->nchunks; i++)
        fprintf(stderr, " %zu%s%s", in->chunks[i].len,
                in->chunks[i].short_read ? "s" : "",
                in->chunks[i].eagain ? "e" : "");
    fputs("\n", stderr);
}

static void fail(const char *what)
{
    fprintf(stderr, "\nreceive_fuzz: %s\n", what);
    if (cur != NULL)
        print_input(cur);
    abort();
}

static void mismatch(const char *what, const char *na, const fz_log *a,
                     const char *nb, const fz_log *b)
{
    fprintf(stderr, "\nreceive_fuzz: %s\n", what);
    print_input(cur);
    fz_log_print(na, a);
    fz_log_print(nb, b);
    abort();
}

/* ---- the socket ------------------------------------------------------- */

static void check_buffer(const fz_sock *k)
{
    const cs_buffer *b = &k->buf;
    size_t len = k->sent - k->consumed;

    if (cs_buffer_len(b) != len)
        fail("buffer holds the wrong number of bytes");
    if (b->data == NULL ? b->start != 0 || b->end != 0 : b->end > b->cap)
        fail("buffer bounds");
    if (len > 0 &&
        memcmp(cs_buffer_peek(b), k->in->stream + k->consumed, len) != 0)
        fail("buffer holds the wrong bytes");
}

static void poison(const fz_sock *k)
{
#if FZ_ASAN
    const cs_buffer *b = &k->buf;
    size_t lo = b->start < POISON ? 0 : b->start - POISON;
    size_t hi = b->cap - b->end < POISON ? b->cap : b->end + POISON;

    if (b->data == NULL)
        return;
    if (b->start > lo)
        __asan_poison_memory_region(b->data + lo, b->start - lo);
    if (hi > b->end)
        __asan_poison_memory_region(b->data + b->end, hi - b->end);
#else
    (void)k;
#endif
}

static void unpoison(const fz_sock *k)
{
#if FZ_ASAN
    const cs_buffer *b = &k->buf;
    size_t lo = b->start < POISON ? 0 : b->start - POISON;
    size_t hi = b->cap - b->end < POISON ? b->cap : b->end + POISON;

    if (b->data != NULL)
        __asan_unpoison_memory_region(b->data + lo, hi - lo);
#else
    (void)k;
#endif
}

static int scan_step(fz_sock *k, const char *d, size_t len)
{
    int r;

    poison(k);
    r = cs_scan_step(&k->scan, d, len);
    unpoison(k);
    return r;
}

/* recv(2) on the peer: a chunk (as much as fits), 0 at EOF, -1 EAGAIN */
static long peer_recv(fz_sock *k, char *p, size_t room, int *short_read)
{
    const fz_chunk *c;
    size_t n;

    *short_read = 0;
    if (k->eagain) {
        k->eagain = 0;
        return -1;
    }
    if (k->chunk == k->nchunks)
        return 0;
    c = &k->chunks[k->chunk];
    n = c->len - k->chunk_off < room ? c->len - k->chunk_off : room;
    memcpy(p, k->in->stream + k->sent, n);
    k->sent += n;
    k->chunk_off += n;
    if (k->chunk_off == c->len) {
        k->chunk++;
        k->chunk_off = 0;
        k->eagain = c->eagain;
        *short_read = c->short_read;
    }
    k->recvs[k->nrecv++] = n;
    return (long)n;
}

static size_t read_want(const fz_sock *k)
{
    size_t want, len = cs_buffer_len(&k->buf);

    switch (k->in->want_mode) {
    case 1:
        return 1;
    case 2: /* fits in a block, but maybe only once compacted */
        if (len <= 64)
            return CS_BUFFER_CHUNK - 64;
        break;
    case 3: /* bytes are held (a long line, say): grows the buffer */
        if (len > 0)
            return CS_BUFFER_CHUNK + 1;
        break;
    }
    want = k->rd_want < READ_MIN ? READ_MIN : k->rd_want;
    if (k->scan.kind == CS_PAT_SIZE && k->scan.size > len &&
        k->scan.size - len > want)
        want = k->scan.size - len;
    return want > READ_MAX ? READ_MAX : want;
}

/* tcp_io.c's read_progress: 1 the scanner is done, 0 EOF.  Where it
 * returns 0 to wait for the socket, this goes on (may_read = 1): being
 * woken up, it would call read_progress again, which scans first. */
static int read_progress(fz_sock *k)
{
    cs_buffer *b = &k->buf;

    for (;;) {
        size_t room, want;
        long n;
        char *p;
        int short_read;

        if (b->data != NULL &&
            scan_step(k, cs_buffer_peek(b), cs_buffer_len(b)))
            return 1;
        if (b->data == NULL && scan_step(k, "", 0))
            return 1;
        if (k->eof)
            return 0;
        if (!k->may_read) { /* waits; readable: read_progress again */
            k->may_read = 1;
            continue;
        }
        want = read_want(k);
        p = cs_buffer_reserve(b, k->cache, want, &room);
        if (p == NULL)
            fail("cs_buffer_reserve: no memory");
        if (room < want)
            fail("cs_buffer_reserve: less room than asked for");
        if (p != b->data + b->end || room > b->cap - b->end)
            fail("cs_buffer_reserve: room is not after the unread bytes");
#if FZ_ASAN /* recv(2) may fill all the room: is it memory? */
        if (__asan_region_is_poisoned(p, room) != NULL)
            fail("cs_buffer_reserve: room is not all in the block");
#endif
        n = peer_recv(k, p, room, &short_read);
        if (n > 0) {
            cs_buffer_commit(b, (size_t)n);
            check_buffer(k);
            if ((size_t)n < room) {
                /* the kernel had less: it is empty now, the reader waits;
                   or (no short_read) more came at once: it reads again */
                if (short_read)
                    k->may_read = 0;
            } else if (k->rd_want < READ_MAX) {
                k->rd_want = k->rd_want ? k->rd_want * 2 : READ_MIN * 2;
            }
            continue;
        }
        if (b->start == b->end)
            cs_buffer_release(b, k->cache); /* idle: hold no memory */
        check_buffer(k);
        if (n == 0) {
            k->eof = 1;
            continue;
        }
        k->may_read = 0; /* EAGAIN */
    }
}

/* tcp_io.c's push_data: a line loses its CRs */
static void push_data(fz_sock *k, int type, size_t n, fz_log *out)
{
    const char *p = k->buf.data != NULL ? cs_buffer_peek(&k->buf) : "";
    char *line;
    size_t i, m = 0;

    if (k->scan.kind != CS_PAT_LINE) {
        fz_log_add(out, type, p, n);
        return;
    }
    line = malloc(n + 1);
    if (line == NULL)
        abort();
    for (i = 0; i < n; i++)
        if (p[i] != '\r')
            line[m++] = p[i];
    fz_log_add(out, type, line, m);
    free(line);
}

static void consume(fz_sock *k, size_t n)
{
    cs_buffer_consume(&k->buf, k->cache, n);
    k->consumed += n;
    check_buffer(k);
}

/* read_start + receive_results: one call's result; 0 once the read half
 * is closed ("closed" was returned) */
static int read_call(fz_sock *k, fz_log *out)
{
    cs_buffer *b = &k->buf;
    int done = read_progress(k);
    size_t len = cs_buffer_len(b), take, drop;

    if (done || k->scan.kind == CS_PAT_ALL) {
        poison(k);
        cs_scan_result(&k->scan, b->data != NULL ? cs_buffer_peek(b) : "", len,
                       &take, &drop);
        unpoison(k);
        if (take > drop || drop > len)
            fail("cs_scan_result: take > drop or drop > buffered");
        push_data(k, FZ_OK, take, out);
        consume(k, drop);
        return 1;
    }
    take = cs_scan_partial(&k->scan, len);
    if (take > len)
        fail("cs_scan_partial: more than buffered");
    push_data(k, FZ_CLOSED, take, out);
    consume(k, take);
    return 0;
}

/* One kind of call, again and again, as a Lua caller would until "closed"
 * ("*a": until it returned "" once more).  receiveuntil: one iterator (one
 * cs_until), each call as until_iterate makes it. */
static void run_reads(const fz_input *in, const fz_chunk *chunks,
                      size_t nchunks, fz_log *out, size_t **recvs,
                      size_t *nrecv)
{
    fz_sock k;
    cs_until *u = NULL;
    const fz_read *rd = &in->rd;
    size_t calls, limit = 2 * in->len + 8;

    memset(&k, 0, sizeof(k));
    k.in = in;
    k.cache = in->lua_close ? NULL : &sched_cache; /* NULL: plain malloc */
    k.may_read = 1;
    k.chunks = chunks;
    k.nchunks = nchunks;
    k.recvs = malloc((in->len + 1) * sizeof(size_t));
    if (k.recvs == NULL)
        abort();
    if (rd->kind == CS_PAT_UNTIL) {
        u = malloc(cs_until_size(rd->plen));
        if (u == NULL)
            abort();
        cs_until_init(u, rd->pat, rd->plen, rd->inclusive);
        u->gen = (unsigned)-1; /* not the socket's generation yet */
    }
    for (calls = 0;; calls++) {
        if (calls > limit)
            fail("no progress: too many calls");
        if (rd->kind == CS_PAT_UNTIL) {
            if (u->state == -1) { /* the part ended: say so once */
                u->state = 0;
                fz_log_add(out, FZ_NILS, "", 0);
                continue;
            }
            if (u->gen != k.read_gen)
                u->state = 0;
            k.read_gen++;
            u->gen = k.read_gen;
            cs_scan_init(&k.scan, CS_PAT_UNTIL, fz_call_size(rd, calls), u);
        } else {
            k.read_gen++; /* read_begin */
            cs_scan_init(&k.scan, rd->kind, rd->n, NULL);
        }
        if (!read_call(&k, out))
            break;
        if (rd->kind == CS_PAT_ALL && calls == 1)
            break; /* "" again and again */
    }
    if (k.sent != in->len || k.chunk != nchunks)
        fail("the stream was not read to its end");
    if (in->len - k.consumed != (u != NULL ? (size_t)u->state : 0))
        fail("bytes left unconsumed (until: other than its held prefix)");
    cs_buffer_release(&k.buf, k.cache);
    free(u);
    if (recvs != NULL) {
        *recvs = k.recvs;
        *nrecv = k.nrecv;
    } else {
        free(k.recvs);
    }
}

/* ---- the input -------------------------------------------------------- */

static const char ALPHA[] = "ab\r\n";

static int decode(const uint8_t *d, size_t size, fz_input *in)
{
    static const int kinds[] = {CS_PAT_LINE, CS_PAT_SIZE, CS_PAT_ALL,
                                CS_PAT_ANY};
    static const int wants[] = {0, 0, 0, 0, 1, 1, 2, 3};
    unsigned h0, h1, h2, h3, letters, rng;
    size_t i, len, start;

    if (size < 4)
        return 0;
    h0 = d[0];
    h1 = d[1];
    h2 = d[2];
    h3 = d[3];
    d += 4;
    size -= 4;
    memset(in, 0, sizeof(*in));
    in->rd.kind = (h0 & 7) < 4 ? kinds[h0 & 7] : CS_PAT_UNTIL;
    in->rd.inclusive = (h0 >> 4) & 1;
    in->want_mode = wants[h0 >> 5];
    letters = h2 & 8 ? 4 : 2;
    in->lua_close = h2 >> 4 == 15;
    if (in->rd.kind == CS_PAT_SIZE || in->rd.kind == CS_PAT_ANY)
        in->rd.n = 1 + h1 % 32;
    if (in->rd.kind == CS_PAT_UNTIL) {
        in->rd.n = h1 % 17;
        in->rd.vary = (h3 >> 6) & 1;
        in->rd.plen = 1 + (h2 & (h0 & 8 ? 15 : 7));
        if (size < in->rd.plen)
            return 0;
        for (i = 0; i < in->rd.plen; i++)
            in->pat[i] = h0 & 8 ? (char)d[i] : ALPHA[(d[i] & 3) % letters];
        in->rd.pat = in->pat;
        d += in->rd.plen;
        size -= in->rd.plen;
    }
    len = size < STREAM_MAX ? size : STREAM_MAX;
    in->stream = malloc(len + 1);
    in->chunks = malloc((len + 1) * sizeof(fz_chunk));
    if (in->stream == NULL || in->chunks == NULL)
        abort();
    in->len = len;
    if (h0 & 8) { /* literal: the split comes from h3 */
        memcpy(in->stream, d, len);
        rng = h3 * 2654435761u + 1;
        for (i = 0; i < len; i += in->chunks[in->nchunks++].len) {
            fz_chunk *c = &in->chunks[in->nchunks];
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            c->len = (h3 & 63) == 0 ? len : 1 + (rng >> 8) % (1 + (h3 & 15));
            if (c->len > len - i)
                c->len = len - i;
            c->short_read = (h3 & 0x10) && (rng & 1);
            c->eagain = (h3 & 0x20) && (rng & 2);
        }
        return 1;
    }
    for (i = 0, start = 0; i < len; i++) {
        in->stream[i] = ALPHA[(d[i] & 3) % letters];
        if (((d[i] >> 2) & 3) == 0 || i + 1 == len) {
            fz_chunk *c = &in->chunks[in->nchunks++];
            c->len = i + 1 - start;
            c->short_read = (d[i] >> 4) & 1;
            c->eagain = (d[i] >> 5) & 1;
            start = i + 1;
        }
    }
    return 1;
}

/* ---- the checks ------------------------------------------------------- */

/* The chunks of each part (receiveuntil with a size) joined: what the same
 * iterator returns without a size. */
static void join_parts(const fz_log *l, fz_log *out)
{
    char *part = malloc(l->len + 1); /* the data is less than the log */
    size_t at = 0, n, plen = 0;
    const char *d;
    int type;

    if (part == NULL)
        abort();
    while (fz_log_next(l, &at, &type, &d, &n)) {
        memcpy(part + plen, d, n);
        plen += n;
        if (type != FZ_OK) {
            fz_log_add(out, type == FZ_NILS ? FZ_OK : FZ_CLOSED, part, plen);
            plen = 0;
        }
    }
    free(part);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input in;
    fz_log got, want, one, joined;
    fz_chunk whole = {0, 0, 0};
    size_t *recvs, nrecv;

    if (!decode(data, size, &in))
        return 0;
    cur = &in;
    memset(&got, 0, sizeof(got));
    memset(&want, 0, sizeof(want));
    memset(&one, 0, sizeof(one));
    memset(&joined, 0, sizeof(joined));

    run_reads(&in, in.chunks, in.nchunks, &got, &recvs, &nrecv);
    model_run(&in.rd, in.stream, in.len, recvs, nrecv, &want);
    if (getenv("RECEIVE_FUZZ_PRINT") != NULL) { /* see a run */
        print_input(&in);
        fz_log_print("pattern.c", &got);
    }
    if (!fz_log_eq(&got, &want))
        mismatch("pattern.c and the model disagree", "pattern.c", &got, "model",
                 &want);

    /* (a) the split must not matter (receiveany's results depend on it) */
    if (in.rd.kind != CS_PAT_ANY) {
        whole.len = in.len;
        run_reads(&in, &whole, in.len > 0, &one, NULL, NULL);
        if (!fz_log_eq(&got, &one))
            mismatch("the result depends on the split", "in chunks", &got,
                     "in one chunk", &one);
    }

    /* (b) the chunks of a part, joined, are the part */
    if (in.rd.kind == CS_PAT_UNTIL && in.rd.n > 0 && !in.rd.vary) {
        fz_read nosize = in.rd;
        nosize.n = 0;
        fz_log_free(&want);
        model_run(&nosize, in.stream, in.len, NULL, 0, &want);
        join_parts(&got, &joined);
        if (!fz_log_eq(&joined, &want))
            mismatch("the chunks joined are not the parts", "joined", &joined,
                     "model without a size", &want);
    }

    fz_log_free(&got);
    fz_log_free(&want);
    fz_log_free(&one);
    fz_log_free(&joined);
    free(recvs);
    if (in.lua_close)
        cs_buffer_cache_free(&sched_cache);
    free(in.stream);
    free(in.chunks);
    cur = NULL;
    return 0;
}
