/*
 * rt_params.c: parameter files in this runtime's precision: written by
 * `train --save` and checkpoints, read by eval, predict, export and
 * `train --resume`. The format and its checks are rt_pfile.c's (one reader
 * for gradc and both runtimes); this file turns a run's params, scaling and
 * training state into sections and back.
 *
 * OPTS, RNGS and BEST (a grt_state) are what `train --resume` needs to go on
 * exactly where `train --save` stopped: with them a run of 2 epochs resumed
 * for 2 more writes the same bytes as a run of 4.
 *
 * Files are written whole or not at all (grt_write_atomic). In a
 * data-parallel run rank 0 alone writes and reads; every rank learns how
 * it went, and gets the bytes read.
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

/* ------------------------------------------------------------------ encoding */

/* Flags of OPTS: which moment arrays follow. */
enum { OPTS_M = 1, OPTS_V = 2 };
/* Flags of RNGS. */
enum { RNGS_STOPPED = 1 };

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

/* A real of the file, whose width is this build's (grt_pfile_decode checks). */
static grt_real get_real(const unsigned char *p) { return (grt_real)grt_pfile_real(GRT_REAL_BYTES, p); }

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

    if (stats && stats->state && stats->nstate && stats->nstate == m->state_count) {
        at = begin_section(&b, "STAT");
        put_reals(&b, stats->state, stats->nstate);
        end_section(&b, at);
    }

    if (stats && stats->nvocab > 0) {
        at = begin_section(&b, "VOCB");
        grt_buf_put(&b, stats->vocab, (size_t)stats->nvocab);
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
        if (st->step > 0) {
            at = begin_section(&b, "STEP");
            put_u64(&b, (uint64_t)st->step);
            end_section(&b, at);
        }
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

/* Rank 0's status and error, sent to every rank: the error becomes theirs,
 * and one every rank has (rank 0 alone reports it). */
static int share_status(int status, grt_err *e)
{
    grt_err mine;
    if (grt_comm_size() == 1)
        return status;
    memset(&mine, 0, sizeof mine);
    if (grt_comm_rank() == 0 && status)
        mine = *e;
    mine.status = status;
    grt_comm_bcast(&mine, sizeof mine);
    if (mine.status) {
        if (grt_comm_rank() != 0)
            grt_fail(e, mine.status, mine.code, "%s", mine.msg);
        e->shared = 1;
    }
    return mine.status;
}

int grt_params_save(const char *path, const grt_model *m, const grt_real *params,
                    const grt_stats *stats, const grt_state *st, grt_err *e)
{
    int status = 0;
    if (grt_comm_rank() == 0) {
        size_t size;
        unsigned char *buf = grt_params_encode(m, params, stats, st, &size);
        status = grt_write_atomic(path, buf, size, e);
        free(buf);
    }
    return share_status(status, e);
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

/* Empties what a load fills, so that a failed load leaves nothing to use. */
static void clear_outputs(grt_stats *stats, grt_state *st)
{
    if (stats)
        memset(stats, 0, sizeof *stats);
    if (st) {
        memset(st, 0, sizeof *st);
        st->opt_kind = -1;
    }
}

int grt_params_load(const char *path, const grt_model *m, grt_real *params, grt_stats *stats,
                    grt_state *st, grt_err *e)
{
    unsigned char *buf = NULL;
    uint64_t size;
    size_t n = 0;
    int status = 0;

    clear_outputs(stats, st);
    if (grt_comm_rank() == 0)
        status = grt_read_file(path, &buf, &n, e);
    if ((status = share_status(status, e))) {
        free(buf);
        return status;
    }
    /* rank 0's bytes, decoded alike by every rank */
    size = n;
    grt_comm_bcast(&size, sizeof size);
    if (grt_comm_rank() != 0)
        buf = grt_xmalloc((size_t)size, 1);
    grt_comm_bcast(buf, (size_t)size);
    status = grt_params_decode(buf, (size_t)size, path, m, params, stats, st, e);
    if (status && grt_comm_size() > 1)
        e->shared = 1; /* the same bytes give the same error on every rank */
    free(buf);
    return status;
}

void grt_pfile_want_of(const grt_model *m, grt_pfile_want *w)
{
    memset(w, 0, sizeof *w);
    w->name = m->name;
    w->hash = m->hash;
    w->param_count = m->param_count;
    w->input_size = m->input_size;
    w->real = GRT_REAL_BYTES;
    w->params = m->params;
    w->nparams = m->nparams;
    w->state_count = m->state_count;
}

int grt_params_decode(const unsigned char *buf, size_t size, const char *name,
                      const grt_model *m, grt_real *params, grt_stats *stats, grt_state *st,
                      grt_err *e)
{
    size_t i, np = m->param_count, real = GRT_REAL_BYTES, k;
    const unsigned char *p, *opts, *rngs, *best;
    grt_pfile f;
    grt_pfile_want w;
    int status;

    clear_outputs(stats, st);
    grt_pfile_want_of(m, &w);
    if ((status = grt_pfile_decode(buf, size, name, &w, &f, e)))
        return status;
    for (i = 0, p = f.sec[GRT_PF_PARM]; i < np; i++)
        params[i] = get_real(p + i * real);
    if (stats && (p = grt_pfile_stdz(&f, &k))) {
        stats->n = k;
        stats->mean = grt_xmalloc(k, sizeof(double));
        stats->std = grt_xmalloc(k, sizeof(double));
        for (i = 0; i < k; i++) {
            stats->mean[i] = grt_pfile_real(8, p + 8 * i);
            stats->std[i] = grt_pfile_real(8, p + 8 * (k + i));
        }
    }
    if (stats && (p = f.sec[GRT_PF_STAT]) && m->state_count) {
        stats->nstate = m->state_count;
        stats->state = get_reals(p, m->state_count);
    }
    if (stats && (p = f.sec[GRT_PF_VOCB])) {
        stats->nvocab = (int)f.len[GRT_PF_VOCB];
        memcpy(stats->vocab, p, f.len[GRT_PF_VOCB]);
    }
    /* The training state counts only with RNGS: OPTS or BEST alone cannot
     * say where the run stood. */
    opts = f.sec[GRT_PF_OPTS];
    rngs = f.sec[GRT_PF_RNGS];
    best = f.sec[GRT_PF_BEST];
    if (st && rngs) {
        st->valid = 1;
        for (i = 0; i < 4; i++)
            st->rng.s[i] = get_le(rngs + 8 * i, 8);
        st->epoch = (long)get_le(rngs + 32, 8);
        st->stopped = (get_le(rngs + 40, 4) & RNGS_STOPPED) != 0;
        if (opts) {
            uint64_t flags = get_le(opts + 4, 4);
            p = opts + GRT_OPTS_FIXED;
            st->opt_kind = (int)get_le(opts, 4);
            st->t = (long)get_le(opts + 8, 8);
            if (flags & OPTS_M) {
                st->m = get_reals(p, np);
                p += np * real;
            }
            if (flags & OPTS_V)
                st->v = get_reals(p, np);
        }
        if ((p = f.sec[GRT_PF_STEP]))
            st->step = (long)get_le(p, 8);
        if (best) {
            st->best_epoch = (long)get_le(best, 8);
            st->stale = (long)get_le(best + 8, 8);
            st->best_loss = get_f64(best + 16);
            st->best = get_reals(best + GRT_BEST_FIXED, np);
        }
    }
    return 0;
}
