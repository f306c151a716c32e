/* A trusted CA file as a hashed CA directory (tls.c, DECISIONS.md 7).
 *
 * libtls parses a CA file given to tls_config_set_ca_file into a new
 * certificate store at every handshake: about 1.5 million instructions per
 * certificate; with Debian's bundle of 144, 44.6 ms of CPU per handshake
 * (measured). A directory in OpenSSL's hashed layout (what `openssl
 * rehash` makes; /etc/ssl/certs is one) is looked up by subject instead,
 * so a handshake reads only the certificates its chain needs. */
#ifndef COSOCKET_CA_DIR_H
#define COSOCKET_CA_DIR_H

struct cs_ca_dir;

/* The path of a private hashed directory holding the certificates of the
 * PEM file `file`: made at the first call for the file's current contents
 * (its size, time and inode), reused after that. NULL when it cannot be
 * made (the file unreadable, a block that does not parse, no certificate,
 * no temporary directory): the caller then gives libtls the file itself,
 * which reports what is wrong with it as before. */
const char *cs_ca_dir_for(struct cs_ca_dir **dirs, const char *file);

/* Removes every directory of the list (only in the process that made it:
 * a forked child leaves its parent's alone) and frees the list. The
 * directories of a process that exits without closing its Lua state are
 * removed at exit. */
void cs_ca_dirs_free(struct cs_ca_dir **dirs);

#endif
