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
 *            "OPTS"  the optimizer's kind, step count and moments
 *            "RNGS"  the shuffle generator's state and the epochs done
 *            "BEST"  early stopping: the best epoch, its loss and params
 *            "END "  empty, last
 *   S-8 8  FNV-1a 64 of bytes 0 .. S-9
 *
 * Sections make the format extensible without a new version: a reader skips
 * tags it does not know, so a runtime that predates OPTS, RNGS and BEST
 * still loads the params of a file that has them. The version changes only
 * when an old reader would misread a new file.
 *
 * OPTS, RNGS and BEST (a grt_state) are what `train --resume` needs to go on
 * exactly where `train --save` stopped: with them a run of 2 epochs resumed
 * for 2 more writes the same bytes as a run of 4.
 *
 * Files are written whole or not at all (grt_write_atomic).
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

/* Flags of OPTS: which moment arrays follow. */
enum { OPTS_M = 1, OPTS_V = 2 };
/* Flags of RNGS. */
enum { RNGS_STOPPED = 1 };
/* Fixed payload sizes. */
#define OPTS_FIXED 16 /* kind, flags, t */
#define RNGS_SIZE 48  /* 4 state words, epochs, flags, reserved */
#define BEST_FIXED 24 /* epoch, stale, loss */

static void put_u32(grt_buf *b, uint32_t v) { grt_put_le(grt_buf_room(b, 4), v, 4); }
static void put_u64(grt_buf *b, uint64_t v) { grt_put_le(grt_buf_room(b, 8), v, 8); }
#define get_le grt_get_le

static void put_f64(grt_buf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    put_u64(b, u);
}

static void put_reals(grt_buf *b, const grt_real *v, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
#ifdef GRT_DOUBLE
        put_f64(b, v[i]);
#else
        uint32_t u;
        memcpy(&u, &v[i], 4);
        put_u32(b, u);
#endif
    }
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

/* n reals at p into a new array. */
static grt_real *get_reals(const unsigned char *p, size_t n)
{
    grt_real *v = grt_xmalloc(n, sizeof(grt_real));
    size_t i;
    for (i = 0; i < n; i++)
        v[i] = get_real(p + i * sizeof(grt_real));
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
static size_t begin_section(grt_buf *b, const char *tag)
{
    grt_buf_put(b, tag, 4);
    put_u64(b, 0);
    return b->n - 8;
}

static void end_section(grt_buf *b, size_t at) { grt_put_le(b->p + at, b->n - at - 8, 8); }

void grt_state_free(grt_state *s)
{
    free(s->m);
    free(s->v);
    free(s->best);
    memset(s, 0, sizeof *s);
    s->opt_kind = -1;
}

unsigned char *grt_params_encode(const grt_model *m, const grt_real *params,
                                 const grt_stats *stats, const grt_state *st, size_t *size)
{
    grt_buf b = {NULL, 0, 0};
    size_t name_len = strlen(m->name), i, at, np = m->param_count;

    grt_buf_put(&b, MAGIC, 8);
    put_u32(&b, GRT_PARAMS_VERSION);
    put_u32(&b, (uint32_t)GRT_REAL_BYTES);
    put_u64(&b, 0); /* file size, known at the end */
    put_u64(&b, m->hash);
    put_u64(&b, np);
    put_u64(&b, m->input_size);
    put_u32(&b, (uint32_t)name_len);
    grt_buf_put(&b, m->name, name_len);

    at = begin_section(&b, "PARM");
    put_reals(&b, params, np);
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

    if (st && st->valid) {
        if (st->opt_kind >= 0) {
            at = begin_section(&b, "OPTS");
            put_u32(&b, (uint32_t)st->opt_kind);
            put_u32(&b, (st->m ? OPTS_M : 0) | (st->v ? OPTS_V : 0));
            put_u64(&b, (uint64_t)st->t);
            if (st->m)
                put_reals(&b, st->m, np);
            if (st->v)
                put_reals(&b, st->v, np);
            end_section(&b, at);
        }
        at = begin_section(&b, "RNGS");
        for (i = 0; i < 4; i++)
            put_u64(&b, st->rng.s[i]);
        put_u64(&b, (uint64_t)st->epoch);
        put_u32(&b, st->stopped ? RNGS_STOPPED : 0);
        put_u32(&b, 0);
        end_section(&b, at);
        if (st->best && st->best_epoch > 0) {
            at = begin_section(&b, "BEST");
            put_u64(&b, (uint64_t)st->best_epoch);
            put_u64(&b, (uint64_t)st->stale);
            put_f64(&b, st->best_loss);
            put_reals(&b, st->best, np);
            end_section(&b, at);
        }
    }

    at = begin_section(&b, "END ");
    end_section(&b, at);

    grt_put_le(b.p + 16, b.n + 8, 8);
    put_u64(&b, grt_fnv1a64(GRT_FNV_INIT, b.p, b.n));
    *size = b.n;
    return b.p;
}

/* ------------------------------------------------------------------- writing */

int grt_params_save(const char *path, const grt_model *m, const grt_real *params,
                    const grt_stats *stats, const grt_state *st, grt_err *e)
{
    size_t size;
    unsigned char *buf;
    int status;
#ifdef GRT_MPI
    if (grt_mpi_active()) /* data-parallel: rank 0 writes, every rank learns how it went */
        return grt_mpi_params_save(path, m, params, stats, st, e);
#endif
    buf = grt_params_encode(m, params, stats, st, &size);
    status = grt_write_atomic(path, buf, size, e);
    free(buf);
    return status;
}

/* ------------------------------------------------------------------- reading */

/* A file opened for reading (not a folder): its descriptor, or -1 with
 * status 2 and "PATH: error: cannot open/read: why" in e. */
int grt_open_file(const char *path, grt_err *e)
{
    struct stat sb;
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        grt_fail(e, GRT_EXIT_USAGE, GRT_E_IO, "%s: error: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        close(fd);
        grt_fail(e, GRT_EXIT_USAGE, GRT_E_IO, "%s: error: cannot read: %s", path, strerror(EISDIR));
        return -1;
    }
    return fd;
}

/* The whole file into *buf (malloc'd, *n bytes; the caller frees it, also
 * after an error), or status 2 with "PATH: error: cannot open/read: why". */
int grt_read_file(const char *path, unsigned char **buf, size_t *n, grt_err *e)
{
    size_t cap = 0;
    int fd = grt_open_file(path, e);
    *buf = NULL;
    *n = 0;
    if (fd < 0)
        return GRT_EXIT_USAGE;
    for (;;) {
        ssize_t k;
        if (*n == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            *buf = grt_xrealloc(*buf, cap, 1);
        }
        k = read(fd, *buf + *n, cap - *n);
        if (k == 0)
            break;
        if (k < 0) {
            int err = errno;
            if (err == EINTR)
                continue;
            close(fd);
            return grt_fail(e, GRT_EXIT_USAGE, GRT_E_IO, "%s: error: cannot read: %s", path,
                            strerror(err));
        }
        *n += (size_t)k;
    }
    close(fd);
    return 0;
}

int grt_params_load(const char *path, const grt_model *m, grt_real *params, grt_stats *stats,
                    grt_state *st, grt_err *e)
{
    unsigned char *buf;
    size_t n;
    int status;

#ifdef GRT_MPI
    if (grt_mpi_active()) /* data-parallel: rank 0 reads, every rank decodes the bytes */
        return grt_mpi_params_load(path, m, params, stats, st, e);
#endif
    if (stats)
        memset(stats, 0, sizeof *stats);
    if (st) {
        memset(st, 0, sizeof *st);
        st->opt_kind = -1;
    }
    status = grt_read_file(path, &buf, &n, e);
    if (status == 0)
        status = grt_params_decode(buf, n, path, m, params, stats, st, e);
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

/* Status 1 for a section that passed the checksum but is malformed. */
static int bad_section(grt_err *e, const char *name, const char *tag)
{
    return grt_fail(e, GRT_EXIT_DATA, GRT_E_FORMAT,
                    "%s: error: malformed parameter file: bad %.4s section", name, tag);
}

int grt_params_decode(const unsigned char *buf, size_t size, const char *name,
                      const grt_model *m, grt_real *params, grt_stats *stats, grt_state *st,
                      grt_err *e)
{
    uint64_t version, real, fsize, hash, count, nin, sum, nlen;
    size_t pos, i, np = m->param_count;
    const unsigned char *parm = NULL, *opts = NULL, *rngs = NULL, *best = NULL;
    grt_stats got = {0, NULL, NULL};
    int status = 0;

    if (stats)
        memset(stats, 0, sizeof *stats);
    if (st) {
        memset(st, 0, sizeof *st);
        st->opt_kind = -1;
    }
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
            if (parm || len != np * real) {
                status = bad_section(e, name, "PARM");
                break;
            }
            parm = buf + pos;
        } else if (memcmp(tag, "OPTS", 4) == 0) {
            uint64_t flags = len >= OPTS_FIXED ? get_le(buf + pos + 4, 4) : 0;
            uint64_t k = (flags & OPTS_M ? 1 : 0) + (flags & OPTS_V ? 1 : 0);
            if (opts || len < OPTS_FIXED || flags > 3 || get_le(buf + pos, 4) > GRT_ADAMW ||
                len != OPTS_FIXED + k * np * real) {
                status = bad_section(e, name, "OPTS");
                break;
            }
            opts = buf + pos;
        } else if (memcmp(tag, "RNGS", 4) == 0) {
            if (rngs || len != RNGS_SIZE ||
                !(get_le(buf + pos, 8) | get_le(buf + pos + 8, 8) | get_le(buf + pos + 16, 8) |
                  get_le(buf + pos + 24, 8)) ||
                get_le(buf + pos + 32, 8) > 1000000000u) {
                status = bad_section(e, name, "RNGS");
                break;
            }
            rngs = buf + pos;
        } else if (memcmp(tag, "BEST", 4) == 0) {
            if (best || len != BEST_FIXED + np * real || get_le(buf + pos, 8) == 0 ||
                get_le(buf + pos, 8) > 1000000000u || get_le(buf + pos + 8, 8) > 1000000000u) {
                status = bad_section(e, name, "BEST");
                break;
            }
            best = buf + pos;
        } else if (memcmp(tag, "STDZ", 4) == 0) {
            uint64_t k = len >= 8 ? get_le(buf + pos, 8) : 0;
            if (got.n || k != m->input_size || len != 8 + 16 * k) {
                status = bad_section(e, name, "STDZ");
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
    for (i = 0; i < np; i++)
        params[i] = get_real(parm + i * (size_t)real);
    if (stats)
        *stats = got;
    else
        grt_stats_free(&got);
    /* The training state counts only with RNGS: OPTS or BEST alone cannot
     * say where the run stood. */
    if (st && rngs) {
        st->valid = 1;
        for (i = 0; i < 4; i++)
            st->rng.s[i] = get_le(rngs + 8 * i, 8);
        st->epoch = (long)get_le(rngs + 32, 8);
        st->stopped = (get_le(rngs + 40, 4) & RNGS_STOPPED) != 0;
        if (opts) {
            uint64_t flags = get_le(opts + 4, 4);
            const unsigned char *p = opts + OPTS_FIXED;
            st->opt_kind = (int)get_le(opts, 4);
            st->t = (long)get_le(opts + 8, 8);
            if (flags & OPTS_M) {
                st->m = get_reals(p, np);
                p += np * real;
            }
            if (flags & OPTS_V)
                st->v = get_reals(p, np);
        }
        if (best) {
            st->best_epoch = (long)get_le(best, 8);
            st->stale = (long)get_le(best + 8, 8);
            st->best_loss = get_f64(best + 16);
            st->best = get_reals(best + BEST_FIXED, np);
        }
    }
    return 0;
}
