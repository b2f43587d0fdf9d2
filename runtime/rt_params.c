/*
 * rt_params.c: parameter files, written by `train --save` and read by eval,
 * predict and `train --resume`.
 *
 * The layout, version 1 (docs/runtime.md has the table); integers unsigned
 * little-endian, reals IEEE-754 little-endian:
 *
 *   0   8  magic "GRADCPRM"
 *   8   4  format version (1)
 *   12  4  bytes per real: 4 float, 8 double
 *   16  8  file size in bytes, checksum included
 *   24  8  model hash (grt_model.hash)
 *   32  8  param_count
 *   40  8  input_size
 *   48  4  model name length L
 *   52  L  model name, no terminator
 *   ...    sections: 4-byte tag, 8-byte payload length, payload
 *            "PARM"  param_count reals (required, once)
 *            "STDZ"  n, n means, n stds as doubles (when standardized)
 *            "END "  empty, last
 *   S-8 8  FNV-1a 64 of bytes 0 .. S-9
 *
 * Sections make the format extensible without a new version: a reader skips
 * tags it does not know, so optimizer state ("OPTS") and the generator's
 * state ("RNGS") can be added later and old runtimes still load the params.
 * The version changes only when an old reader would misread a new file.
 *
 * Files are written whole or not at all: into PATH.tmp.XXXXXX in the same
 * directory (mkstemp), fsync'd, then renamed over PATH.
 */
#include "rt_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char MAGIC[8] = {'G', 'R', 'A', 'D', 'C', 'P', 'R', 'M'};

uint64_t grt_fnv1a64(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t i;
    for (i = 0; i < n; i++) {
        h ^= b[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

/* ------------------------------------------------------------------ encoding */

/* A growing byte buffer. */
typedef struct bytes {
    unsigned char *p; /* the bytes */
    size_t n;         /* used */
    size_t cap;       /* allocated */
} bytes;

static unsigned char *room(bytes *b, size_t n)
{
    if (b->n + n > b->cap) {
        while (b->n + n > b->cap)
            b->cap = b->cap ? 2 * b->cap : 256;
        b->p = grt_xrealloc(b->p, b->cap, 1);
    }
    b->n += n;
    return b->p + b->n - n;
}

static void put_le(unsigned char *p, uint64_t v, int n)
{
    int i;
    for (i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    int i;
    for (i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put_u32(bytes *b, uint32_t v) { put_le(room(b, 4), v, 4); }
static void put_u64(bytes *b, uint64_t v) { put_le(room(b, 8), v, 8); }

static void put_f64(bytes *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    put_u64(b, u);
}

static void put_real(bytes *b, grt_real v)
{
#ifdef GRT_DOUBLE
    put_f64(b, v);
#else
    uint32_t u;
    memcpy(&u, &v, 4);
    put_u32(b, u);
#endif
}

static grt_real get_real(const unsigned char *p)
{
    grt_real v;
#ifdef GRT_DOUBLE
    uint64_t u = get_le(p, 8);
#else
    uint32_t u = (uint32_t)get_le(p, 4);
#endif
    memcpy(&v, &u, sizeof v);
    return v;
}

static double get_f64(const unsigned char *p)
{
    uint64_t u = get_le(p, 8);
    double v;
    memcpy(&v, &u, 8);
    return v;
}

/* Starts a section; returns where its length goes, filled by end_section. */
static size_t begin_section(bytes *b, const char *tag)
{
    memcpy(room(b, 4), tag, 4);
    put_u64(b, 0);
    return b->n - 8;
}

static void end_section(bytes *b, size_t at) { put_le(b->p + at, b->n - at - 8, 8); }

unsigned char *grt_params_encode(const grt_model *m, const grt_real *params,
                                 const grt_stats *stats, size_t *size)
{
    bytes b = {NULL, 0, 0};
    size_t name_len = strlen(m->name), i, at;

    memcpy(room(&b, 8), MAGIC, 8);
    put_u32(&b, GRT_PARAMS_VERSION);
    put_u32(&b, (uint32_t)GRT_REAL_BYTES);
    put_u64(&b, 0); /* file size, known at the end */
    put_u64(&b, m->hash);
    put_u64(&b, m->param_count);
    put_u64(&b, m->input_size);
    put_u32(&b, (uint32_t)name_len);
    memcpy(room(&b, name_len), m->name, name_len);

    at = begin_section(&b, "PARM");
    for (i = 0; i < m->param_count; i++)
        put_real(&b, params[i]);
    end_section(&b, at);

    if (stats && stats->n) {
        at = begin_section(&b, "STDZ");
        put_u64(&b, stats->n);
        for (i = 0; i < stats->n; i++)
            put_f64(&b, stats->mean[i]);
        for (i = 0; i < stats->n; i++)
            put_f64(&b, stats->std[i]);
        end_section(&b, at);
    }

    at = begin_section(&b, "END ");
    end_section(&b, at);

    put_le(b.p + 16, b.n + 8, 8);
    put_u64(&b, grt_fnv1a64(GRT_FNV_INIT, b.p, b.n));
    *size = b.n;
    return b.p;
}

/* ------------------------------------------------------------------- writing */

/* Writes all of p[0..n) to fd, through short writes and signals. */
static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Makes the rename itself durable; failure here loses nothing, so it is not
 * reported. */
static void sync_dir(const char *path)
{
    char *dir = grt_xstrdup(path);
    char *slash = strrchr(dir, '/');
    int fd;
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

int grt_params_save(const char *path, const grt_model *m, const grt_real *params,
                    const grt_stats *stats, grt_err *e)
{
    size_t size, plen = strlen(path);
    unsigned char *buf = grt_params_encode(m, params, stats, &size);
    char *tmp = grt_xmalloc(plen + 12, 1);
    const char *step = "create a temporary file for";
    mode_t mask;
    int fd, err = 0;

    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    fd = mkstemp(tmp);
    if (fd < 0) {
        err = errno;
    } else {
        /* mkstemp makes the file 0600; give it the mode fopen would. */
        mask = umask(0);
        umask(mask);
        fchmod(fd, 0666 & ~mask);
        step = "write";
        if (write_all(fd, buf, size) != 0 || fsync(fd) != 0)
            err = errno;
        if (close(fd) != 0 && !err)
            err = errno;
        if (!err) {
            step = "rename the temporary file to";
            if (rename(tmp, path) != 0)
                err = errno;
        }
        if (err)
            unlink(tmp);
        else
            sync_dir(path);
    }
    free(tmp);
    free(buf);
    if (err)
        return grt_fail(e, GRT_EXIT_USAGE, GRT_E_IO, "%s: error: cannot %s it: %s", path, step,
                        strerror(err));
    return 0;
}

/* ------------------------------------------------------------------- reading */

int grt_params_load(const char *path, const grt_model *m, grt_real *params, grt_stats *stats,
                    grt_err *e)
{
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0;
    int fd = open(path, O_RDONLY), status;
    struct stat st;

    if (stats)
        memset(stats, 0, sizeof *stats);
    if (fd < 0)
        return grt_fail(e, GRT_EXIT_USAGE, GRT_E_IO, "%s: error: cannot open: %s", path,
                        strerror(errno));
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        return grt_fail(e, GRT_EXIT_USAGE, GRT_E_IO, "%s: error: cannot read: %s", path,
                        strerror(EISDIR));
    }
    for (;;) {
        ssize_t k;
        if (n == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            buf = grt_xrealloc(buf, cap, 1);
        }
        k = read(fd, buf + n, cap - n);
        if (k == 0)
            break;
        if (k < 0) {
            int err = errno;
            if (err == EINTR)
                continue;
            close(fd);
            free(buf);
            return grt_fail(e, GRT_EXIT_USAGE, GRT_E_IO, "%s: error: cannot read: %s", path,
                            strerror(err));
        }
        n += (size_t)k;
    }
    close(fd);
    status = grt_params_decode(buf, n, path, m, params, stats, e);
    free(buf);
    return status;
}

/* Status 1 with "NAME: error: " and the formatted rest. */
static int damaged(grt_err *e, int code, const char *name, const char *fmt, ...)
    GRT_PRINTF(4, 5);
static int damaged(grt_err *e, int code, const char *name, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return grt_fail(e, GRT_EXIT_DATA, code, "%s: error: %s", name, what);
}

int grt_params_decode(const unsigned char *buf, size_t size, const char *name,
                      const grt_model *m, grt_real *params, grt_stats *stats, grt_err *e)
{
    uint64_t version, real, fsize, hash, count, nin, sum, nlen;
    size_t pos, i;
    const unsigned char *parm = NULL;
    grt_stats got = {0, NULL, NULL};
    int status = 0;

    if (stats)
        memset(stats, 0, sizeof *stats);
    if (size == 0)
        return grt_fail(e, GRT_EXIT_DATA, GRT_E_EMPTY,
                        "%s: error: empty file, not a parameter file", name);
    if (memcmp(buf, MAGIC, size < 8 ? size : 8) != 0)
        return grt_fail(e, GRT_EXIT_DATA, GRT_E_MAGIC,
                        "%s: error: not a gradc parameter file (no GRADCPRM magic)", name);
    if (size < 12)
        return damaged(e, GRT_E_TRUNCATED, name,
                       "truncated parameter file: %zu bytes", size);
    version = get_le(buf + 8, 4);
    if (version != GRT_PARAMS_VERSION)
        return damaged(e, GRT_E_VERSION, name,
                       "parameter file format version %" PRIu64
                       " is not supported; this runtime reads version %d",
                       version, GRT_PARAMS_VERSION);
    if (size < GRT_PARAMS_HEADER + 8)
        return damaged(e, GRT_E_TRUNCATED, name,
                       "truncated parameter file: %zu bytes", size);
    fsize = get_le(buf + 16, 8);
    if (fsize > size)
        return damaged(e, GRT_E_TRUNCATED, name,
                       "truncated parameter file: %zu bytes, its header says %" PRIu64, size,
                       fsize);
    if (fsize < size)
        return damaged(e, GRT_E_CHECKSUM, name,
                       "damaged parameter file: %zu bytes, its header says %" PRIu64, size,
                       fsize);
    sum = grt_fnv1a64(GRT_FNV_INIT, buf, size - 8);
    if (sum != get_le(buf + size - 8, 8))
        return damaged(e, GRT_E_CHECKSUM, name,
                       "damaged parameter file: checksum %016" PRIx64
                       " does not match its contents (%016" PRIx64 ")",
                       get_le(buf + size - 8, 8), sum);

    real = get_le(buf + 12, 4);
    hash = get_le(buf + 24, 8);
    count = get_le(buf + 32, 8);
    nin = get_le(buf + 40, 8);
    nlen = get_le(buf + 48, 4);
    if (nlen > size - 8 - GRT_PARAMS_HEADER)
        return grt_fail(e, GRT_EXIT_DATA, GRT_E_FORMAT,
                        "%s: error: malformed parameter file: model name runs past the end",
                        name);
    if (real != 4 && real != 8)
        return damaged(e, GRT_E_FORMAT, name,
                       "malformed parameter file: %" PRIu64 "-byte reals", real);
    if (real != (uint64_t)GRT_REAL_BYTES)
        return grt_fail(e, GRT_EXIT_DATA, GRT_E_PRECISION,
                        "%s: error: the file holds %s parameters, but this executable of "
                        "model '%s' is %s",
                        name, real == 8 ? "double" : "float", m->name, GRT_REAL_NAME);
    if (hash != m->hash || count != m->param_count || nin != m->input_size ||
        nlen != strlen(m->name) || memcmp(buf + GRT_PARAMS_HEADER, m->name, nlen) != 0) {
        char fname[80];
        size_t k = nlen < 64 ? (size_t)nlen : 64;
        for (i = 0; i < k; i++) {
            unsigned char c = buf[GRT_PARAMS_HEADER + i];
            fname[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
        }
        fname[k] = '\0';
        return grt_fail(e, GRT_EXIT_DATA, GRT_E_MISMATCH,
                        "%s: error: parameters of model '%s' (hash %016" PRIx64 ", %" PRIu64
                        " params, %" PRIu64 " inputs), not of this model '%s' (hash %016" PRIx64
                        ", %zu params, %zu inputs)",
                        name, fname, hash, count, nin, m->name, m->hash, m->param_count,
                        m->input_size);
    }

    /* Sections, up to "END ". */
    pos = GRT_PARAMS_HEADER + (size_t)nlen;
    for (;;) {
        uint64_t len;
        const unsigned char *tag = buf + pos;
        if (size - 8 - pos < GRT_PARAMS_SECTION) {
            status = grt_fail(e, GRT_EXIT_DATA, GRT_E_FORMAT,
                              "%s: error: malformed parameter file: no END section", name);
            break;
        }
        len = get_le(buf + pos + 4, 8);
        pos += GRT_PARAMS_SECTION;
        if (len > size - 8 - pos) {
            status = grt_fail(e, GRT_EXIT_DATA, GRT_E_FORMAT,
                              "%s: error: malformed parameter file: section '%.4s' runs past "
                              "the end",
                              name, (const char *)tag);
            break;
        }
        if (memcmp(tag, "END ", 4) == 0)
            break;
        if (memcmp(tag, "PARM", 4) == 0) {
            if (parm || len != m->param_count * real) {
                status = grt_fail(e, GRT_EXIT_DATA, GRT_E_FORMAT,
                                  "%s: error: malformed parameter file: bad PARM section",
                                  name);
                break;
            }
            parm = buf + pos;
        } else if (memcmp(tag, "STDZ", 4) == 0) {
            uint64_t k = len >= 8 ? get_le(buf + pos, 8) : 0;
            if (got.n || k != m->input_size || len != 8 + 16 * k) {
                status = grt_fail(e, GRT_EXIT_DATA, GRT_E_FORMAT,
                                  "%s: error: malformed parameter file: bad STDZ section",
                                  name);
                break;
            }
            got.n = (size_t)k;
            got.mean = grt_xmalloc(got.n, sizeof(double));
            got.std = grt_xmalloc(got.n, sizeof(double));
            for (i = 0; i < got.n; i++) {
                got.mean[i] = get_f64(buf + pos + 8 + 8 * i);
                got.std[i] = get_f64(buf + pos + 8 + 8 * (got.n + i));
            }
        }
        /* any other tag: a later addition this runtime does not need */
        pos += (size_t)len;
    }
    if (!status && !parm)
        status = grt_fail(e, GRT_EXIT_DATA, GRT_E_FORMAT,
                          "%s: error: malformed parameter file: no PARM section", name);
    if (status) {
        grt_stats_free(&got);
        return status;
    }
    for (i = 0; i < m->param_count; i++)
        params[i] = get_real(parm + i * (size_t)real);
    if (stats)
        *stats = got;
    else
        grt_stats_free(&got);
    return 0;
}
