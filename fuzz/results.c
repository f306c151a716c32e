/* Result sequences: see fuzz.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static void log_put(fz_log *l, const void *d, size_t n)
{
    if (l->cap - l->len < n) {
        size_t cap = l->cap ? l->cap : 256;
        while (cap - l->len < n)
            cap *= 2;
        l->p = realloc(l->p, cap);
        if (l->p == NULL)
            abort();
        l->cap = cap;
    }
    if (n > 0)
        memcpy(l->p + l->len, d, n);
    l->len += n;
}

void fz_log_add(fz_log *l, int type, const char *d, size_t n)
{
    char t = (char)type;

    log_put(l, &t, 1);
    log_put(l, &n, sizeof(n));
    log_put(l, d, n);
    l->count++;
}

int fz_log_eq(const fz_log *a, const fz_log *b)
{
    return a->len == b->len && (a->len == 0 || !memcmp(a->p, b->p, a->len));
}

int fz_log_next(const fz_log *l, size_t *at, int *type, const char **d,
                size_t *n)
{
    if (*at >= l->len)
        return 0;
    *type = l->p[*at];
    memcpy(n, l->p + *at + 1, sizeof(*n));
    *d = l->p + *at + 1 + sizeof(*n);
    *at += 1 + sizeof(*n) + *n;
    return 1;
}

void fz_print_bytes(const char *d, size_t n)
{
    size_t i;

    fputc('"', stderr);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '\r')
            fputs("\\r", stderr);
        else if (c == '\n')
            fputs("\\n", stderr);
        else if (c == '"' || c == '\\')
            fprintf(stderr, "\\%c", c);
        else if (c < 32 || c > 126)
            fprintf(stderr, "\\x%02x", c);
        else
            fputc(c, stderr);
    }
    fputc('"', stderr);
}

void fz_log_print(const char *title, const fz_log *l)
{
    size_t at = 0, n;
    const char *d;
    int type;

    fprintf(stderr, "%s (%zu results):\n", title, l->count);
    while (fz_log_next(l, &at, &type, &d, &n)) {
        if (type == FZ_NILS) {
            fputs("  nil, nil, nil\n", stderr);
            continue;
        }
        fputs(type == FZ_OK ? "  " : "  nil, \"closed\", ", stderr);
        fz_print_bytes(d, n);
        fputc('\n', stderr);
    }
}

void fz_log_free(fz_log *l)
{
    free(l->p);
    memset(l, 0, sizeof(*l));
}
