/* A trusted CA file as a hashed CA directory: see ca_dir.h. */
#define _GNU_SOURCE /* secure_getenv: a set-user-ID program ignores TMPDIR */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ca_dir.h"

#define DIR_NAME "/cosocket-ca-XXXXXX"

/* What the exit handler of one directory needs (on_exit takes a pointer,
 * so no process-wide list is kept): the handler frees it, so it outlives
 * the cs_ca_dir, whose release only marks it. */
struct ca_exit {
    pid_t pid; /* who made the directory: only that process removes it */
    int live;  /* not removed yet */
    char path[];
};

struct cs_ca_dir {
    struct cs_ca_dir *next; /* the state's list */
    char *file;             /* what it was made from... */
    dev_t dev;              /* ... and that file's contents then */
    ino_t ino;
    off_t size;
    struct timespec mtime;
    struct ca_exit *exit;
};

static void ca_dir_remove(const char *path)
{
    DIR *dir = opendir(path);
    struct dirent *e;

    if (dir != NULL) {
        while ((e = readdir(dir)) != NULL)
            if (e->d_name[0] != '.') /* ours never start with one */
                unlinkat(dirfd(dir), e->d_name, 0);
        closedir(dir);
    }
    rmdir(path);
}

/* exit() without lua_close (os.exit in a script) removes it too */
static void ca_dir_on_exit(int status, void *arg)
{
    struct ca_exit *x = arg;

    (void)status;
    if (x->live && x->pid == getpid())
        ca_dir_remove(x->path);
    free(x);
}

static unsigned long ca_subject_hash(X509 *x, int *ok)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    return X509_NAME_hash_ex(X509_get_subject_name(x), NULL, NULL, ok);
#else
    *ok = 1;
    return X509_NAME_hash(X509_get_subject_name(x));
#endif
}

/* One PEM block of the file: a certificate goes in as <hash>.<n>, the
 * name OpenSSL's directory lookup tries (n counts up from 0 among the
 * certificates whose subjects share the hash), written as it was read.
 * Other blocks are skipped, as libtls skips them. 0: it does not parse. */
static int ca_dir_add(const char *dir, const char *name, const char *header,
                      const unsigned char *data, long len, int *certs)
{
    const unsigned char *p = data;
    int trusted = strcmp(name, PEM_STRING_X509_TRUSTED) == 0;
    char path[4096];
    unsigned long hash;
    X509 *x;
    BIO *out;
    int ok, i, fd = -1;

    if (!trusted && strcmp(name, PEM_STRING_X509) != 0 &&
        strcmp(name, PEM_STRING_X509_OLD) != 0)
        return 1;
    x = trusted ? d2i_X509_AUX(NULL, &p, len) : d2i_X509(NULL, &p, len);
    if (x == NULL)
        return 0;
    hash = ca_subject_hash(x, &ok);
    X509_free(x);
    if (!ok)
        return 0;
    for (i = 0; fd < 0 && i < 1000; i++) {
        if (snprintf(path, sizeof(path), "%s/%08lx.%d", dir, hash, i) >=
            (int)sizeof(path))
            return 0;
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST)
            return 0;
    }
    if (fd < 0)
        return 0;
    out = BIO_new_fd(fd, BIO_CLOSE);
    if (out == NULL) {
        close(fd);
        return 0;
    }
    ok = PEM_write_bio(out, name, header, data, len) > 0 && BIO_flush(out) == 1;
    BIO_free(out);
    *certs += ok;
    return ok;
}

/* 1: every block of the file parsed and at least one was a certificate */
static int ca_dir_fill(const char *dir, const char *file)
{
    BIO *in = BIO_new_file(file, "r");
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long len;
    int ok = in != NULL, certs = 0;
    unsigned long e;

    while (ok && PEM_read_bio(in, &name, &header, &data, &len)) {
        ok = ca_dir_add(dir, name, header, data, len, &certs);
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        name = header = NULL;
        data = NULL;
    }
    if (ok) { /* PEM_read_bio fails at the end too, with "no start line" */
        e = ERR_peek_last_error();
        ok = ERR_GET_LIB(e) == ERR_LIB_PEM &&
             ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
    }
    ERR_clear_error(); /* not left for libtls to find */
    BIO_free(in);
    return ok && certs > 0;
}

static void ca_dir_release(struct cs_ca_dir *d)
{
    if (d->exit->live && d->exit->pid == getpid())
        ca_dir_remove(d->exit->path);
    d->exit->live = 0; /* the exit handler frees it */
    free(d->file);
    free(d);
}

static struct cs_ca_dir *ca_dir_make(const char *file, const struct stat *st)
{
    const char *tmp = secure_getenv("TMPDIR");
    struct cs_ca_dir *d = calloc(1, sizeof(*d));
    struct ca_exit *x;
    size_t n;

    if (tmp == NULL || *tmp == '\0')
        tmp = "/tmp";
    n = strlen(tmp);
    x = malloc(sizeof(*x) + n + sizeof(DIR_NAME));
    if (d == NULL || x == NULL || (d->file = strdup(file)) == NULL)
        goto fail;
    memcpy(x->path, tmp, n);
    memcpy(x->path + n, DIR_NAME, sizeof(DIR_NAME));
    x->pid = getpid();
    x->live = 0;
    if (mkdtemp(x->path) == NULL)
        goto fail;
    if (on_exit(ca_dir_on_exit, x) != 0) {
        rmdir(x->path); /* no handler would remove it */
        goto fail;
    }
    x->live = 1; /* from here on the exit handler owns x */
    d->exit = x;
    d->dev = st->st_dev;
    d->ino = st->st_ino;
    d->size = st->st_size;
    d->mtime = st->st_mtim;
    if (!ca_dir_fill(x->path, file)) {
        ca_dir_release(d);
        return NULL;
    }
    return d;
fail:
    if (d != NULL)
        free(d->file);
    free(d);
    free(x);
    return NULL;
}

const char *cs_ca_dir_for(struct cs_ca_dir **dirs, const char *file)
{
    struct stat st;
    struct cs_ca_dir *d;

    if (stat(file, &st) != 0)
        return NULL;
    for (d = *dirs; d != NULL; d = d->next)
        if (d->exit->pid == getpid() && strcmp(d->file, file) == 0 &&
            d->dev == st.st_dev && d->ino == st.st_ino &&
            d->size == st.st_size && d->mtime.tv_sec == st.st_mtim.tv_sec &&
            d->mtime.tv_nsec == st.st_mtim.tv_nsec)
            return d->exit->path;
    d = ca_dir_make(file, &st);
    if (d == NULL)
        return NULL;
    d->next = *dirs;
    *dirs = d;
    return d->exit->path;
}

void cs_ca_dirs_free(struct cs_ca_dir **dirs)
{
    struct cs_ca_dir *d = *dirs, *next;

    for (; d != NULL; d = next) {
        next = d->next;
        ca_dir_release(d);
    }
    *dirs = NULL;
}
