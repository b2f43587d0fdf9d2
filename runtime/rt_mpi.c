/*
 * rt_mpi.c: data-parallel training over MPI, for executables built with
 * `gradc --mpi` (libgradcrt_mpi.a, compiled with -DGRT_MPI). Nothing here
 * is compiled into the other runtime libraries. docs/mpi.md is the user's
 * side of it.
 *
 * `mpirun -np P ./model train DATA ...` runs the same command on P ranks.
 * The rule that makes one global step equal the single-process step for any
 * P, so that the runs of 1, 2 and 4 ranks reach the same params:
 *
 *   - Rows are numbered 0..N-1 in file order (blank lines and the header
 *     not counted). Rank r reads the rows i with i % P == r and parses
 *     nothing else: no rank holds the whole set, and a bad field is
 *     reported by the rank that owns its row, with the file's line number.
 *   - Every rank knows N (it counts every row it skips), so every rank draws
 *     the same shuffle of 0..N-1 from the same seed, exactly as the
 *     single-process run does, and cuts it into the same global batches.
 *   - A global batch is split by ownership: each rank sums the gradient and
 *     loss over the rows of the batch it holds (in chunks of the compiled
 *     batch, in double), one MPI_Allreduce adds the P sums, and every rank
 *     divides by the batch size and takes the same optimizer step. The
 *     optimizer state, the shuffle generator and early stopping are
 *     therefore identical on every rank and independent of P; only the
 *     order of the floating-point additions changes with P.
 *   - --validate F holds out the same rows as one process does (the same
 *     shuffle of 0..N-1), and the rows left are renumbered in file order as
 *     there; validation loss, accuracy and --standardize's means and
 *     standard deviations are summed over the ranks' shards.
 *
 * Only rank 0 prints progress and results and writes files (logs, plots,
 * parameter files); it also reads --resume's file and broadcasts its bytes,
 * so checkpoints need not be on a shared file system and a run resumes with
 * any number of ranks (the state a file carries is global).
 *
 * Errors: an error that every rank meets alike (a bad command line, a
 * diverged run, a parameter file that rank 0 cannot write or read) is
 * printed once by rank 0 and every rank exits with its status. An error of
 * one rank (its shard holds a bad row, the file cannot be opened there) is
 * printed by that rank, "rank 1 of 4: data.csv:57:3: error: ...", and ends
 * the whole job with MPI_Abort: no rank is left waiting in a collective.
 * A rank that dies is noticed by mpirun, which ends the others.
 */
#include "rt_internal.h"

#ifdef GRT_MPI

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A data set read as a shard: which rows of the whole set this rank holds. */
typedef struct shard {
    const grt_data *d; /* the rank's rows, as grt_data */
    size_t N;          /* rows of the whole set, over all ranks */
    size_t *g;         /* d->n global row numbers of the local rows, ascending */
    size_t *loc;       /* N entries: local row of global row i, SIZE_MAX when
                          another rank holds it; built on first use */
} shard;

#define MAX_SHARDS 4

/* The process's MPI state: one per process, as MPI's own is. */
static struct {
    int init;           /* MPI_Init done */
    int rank, size;     /* in MPI_COMM_WORLD */
    int active;         /* this process runs `train` data-parallel */
    int collective;     /* the error at hand is the same on every rank */
    int reading;        /* grt_csv_read is reading a shard */
    size_t rows;        /* data rows that read has passed, every rank's */
    shard sh[MAX_SHARDS]; /* the registered shards */
    double *buf;        /* the allreduce buffer: param_count + 1 doubles */
    size_t bufn;        /* its size */
    size_t *sub;        /* one batch's local rows */
    size_t subn;        /* its size */
    double t_reduce;    /* seconds in the gradient allreduce */
    double t_grad;      /* seconds computing the local gradient sums */
    long steps;         /* allreduces of gradients */
} G;

/* ------------------------------------------------------------- the process */

static void finalize_at_exit(void)
{
    int done = 0;
    if (G.init && (MPI_Finalized(&done), !done))
        MPI_Finalize();
}

int grt_mpi_init(int *argc, char ***argv)
{
    int ok = 0;
    MPI_Initialized(&ok);
    if (!ok && MPI_Init(argc, argv) != MPI_SUCCESS) {
        fprintf(stderr, "error: MPI_Init failed\n");
        exit(GRT_EXIT_USAGE);
    }
    G.init = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &G.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &G.size);
    /* A failed MPI call ends the job, which is what we would do anyway. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    atexit(finalize_at_exit);
    G.active = *argc > 1 && strcmp((*argv)[1], "train") == 0;
    /* The other commands (eval, predict, ...) run on rank 0 alone. */
    return G.active || G.rank == 0;
}

int grt_mpi_rank(void) { return G.rank; }
int grt_mpi_size(void) { return G.size > 0 ? G.size : 1; }
int grt_mpi_active(void) { return G.active; }

int grt_mpi_finish(int status, const grt_err *e)
{
    const char *t = getenv("GRADC_MPI_TIMES");
    if (t && *t && G.active && G.rank == 0 && G.steps > 0)
        fprintf(stderr, "mpi: %d ranks, %ld allreduces of gradients, %.6f s in them, %.6f s "
                        "computing the gradient sums (rank 0)\n",
                G.size, G.steps, G.t_reduce, G.t_grad);
    if (status == 0 || !e || !e->msg[0])
        return status;
    if (!G.active || G.size == 1 || G.collective || e->code == GRT_E_USAGE ||
        e->code == GRT_E_DIVERGED) {
        /* every rank has it: said once */
        if (G.rank == 0)
            grt_report(e);
        return status;
    }
    fflush(stdout);
    fprintf(stderr, "rank %d of %d: %s; ending all ranks\n", G.rank, G.size, e->msg);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, status);
    return status;
}

/* --------------------------------------------------------------- shards */

static shard *find(const grt_data *d)
{
    int k;
    if (!G.active || !d)
        return NULL;
    for (k = 0; k < MAX_SHARDS; k++)
        if (G.sh[k].d == d)
            return &G.sh[k];
    return NULL;
}

/* Registers d as a shard of N rows whose local rows are the global rows g
 * (malloc'd, taken over). */
static void enroll(const grt_data *d, size_t N, size_t *g)
{
    shard *s = find(d);
    int k;
    for (k = 0; !s && k < MAX_SHARDS; k++)
        if (!G.sh[k].d)
            s = &G.sh[k];
    if (!s) {
        fprintf(stderr, "internal error: too many data shards\n");
        MPI_Abort(MPI_COMM_WORLD, GRT_EXIT_USAGE);
    }
    free(s->g);
    free(s->loc);
    s->d = d;
    s->N = N;
    s->g = g;
    s->loc = NULL;
}

int grt_mpi_sharded(const grt_data *d) { return find(d) != NULL; }

size_t grt_mpi_count(const grt_data *d)
{
    shard *s = find(d);
    return s ? s->N : d ? d->n : 0;
}

int grt_mpi_skip_row(void)
{
    size_t i;
    if (!G.reading)
        return 0;
    i = G.rows++;
    return (int)(i % (size_t)G.size) != G.rank;
}

size_t grt_mpi_rows(void) { return G.reading ? G.rows : 0; }

/* Keeps the rows i % P == rank of d (read whole), in order. */
static void keep_own(grt_data *d)
{
    size_t i, k = 0, P = (size_t)G.size;
    for (i = (size_t)G.rank; i < d->n; i += P, k++) {
        memmove(d->x + k * d->nx, d->x + i * d->nx, d->nx * sizeof(double));
        if (d->ny)
            memmove(d->y + k * d->ny, d->y + i * d->ny, d->ny * sizeof(double));
    }
    d->n = k;
}

int grt_mpi_load(const char *csv, const char *images, const char *labels, const grt_model *m,
                 int mode, grt_data *d, grt_err *e)
{
    uint64_t n[2], got[2];
    size_t N, i, *g;
    int status;

    if (images) {
        /* IDX files are read whole, then cut to the shard (docs/mpi.md) */
        status = grt_idx_load(images, mode == GRT_CSV_TARGETS ? labels : NULL, m, d, e);
        N = d->n;
        if (!status)
            keep_own(d);
    } else {
        G.reading = 1;
        G.rows = 0;
        status = grt_csv_load(csv, m, mode, d, e);
        N = G.rows;
        G.reading = 0;
    }
    if (status)
        return status; /* this rank's error: grt_mpi_finish aborts the job */
    /* Every rank must have seen the same file. */
    n[0] = N;
    n[1] = ~(uint64_t)N;
    MPI_Allreduce(n, got, 2, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    if (got[0] != N || ~got[1] != N) {
        G.collective = 1;
        return grt_fail(e, GRT_EXIT_DATA, GRT_E_FIELDS,
                        "%s: error: the ranks read different numbers of examples (%llu to %llu); "
                        "every rank must see the same file",
                        images ? images : csv, (unsigned long long)~got[1],
                        (unsigned long long)got[0]);
    }
    g = grt_xmalloc(d->n, sizeof(size_t));
    for (i = 0; i < d->n; i++)
        g[i] = (size_t)G.rank + i * (size_t)G.size;
    enroll(d, N, g);
    return 0;
}

int grt_mpi_hold_out(grt_data *d, grt_data *v, double fraction, uint64_t seed)
{
    shard *s = find(d);
    size_t N, k, i, j, *idx, *before, *gt, *gv, nt = 0, nv = 0;
    char *out;
    grt_data keep;
    grt_rng r;

    if (!s)
        return 0;
    N = s->N;
    memset(v, 0, sizeof *v);
    v->nx = d->nx;
    v->ny = d->ny;
    if (N < 2) {
        enroll(v, 0, NULL);
        return 1;
    }
    /* The same rows as hold_out in rt_main.c picks: keep the two alike. */
    k = (size_t)(fraction * (double)N + 0.5);
    k = k < 1 ? 1 : k > N - 1 ? N - 1 : k;
    idx = grt_xmalloc(N, sizeof(size_t));
    out = grt_xcalloc(N, 1);
    for (i = 0; i < N; i++)
        idx[i] = i;
    grt_rng_seed(&r, seed ^ UINT64_C(0x76616c6964617465)); /* "validate" */
    grt_shuffle(&r, idx, N);
    for (i = 0; i < k; i++)
        out[idx[i]] = 1;
    /* before[i]: rows held out among 0..i-1, so that the rows left keep
     * their file order, renumbered, in both sets */
    before = idx;
    for (i = 0, j = 0; i < N; i++) {
        before[i] = j;
        j += (size_t)out[i];
    }
    memset(&keep, 0, sizeof keep);
    keep.nx = d->nx;
    keep.ny = d->ny;
    gt = grt_xmalloc(d->n, sizeof(size_t));
    gv = grt_xmalloc(d->n, sizeof(size_t));
    for (i = 0; i < d->n; i++) {
        size_t g = s->g[i];
        if (out[g]) {
            gv[nv++] = before[g];
            grt_data_push(v, d, i);
        } else {
            gt[nt++] = g - before[g];
            grt_data_push(&keep, d, i);
        }
    }
    grt_data_free(d);
    *d = keep;
    enroll(d, N - k, gt);
    enroll(v, k, gv);
    free(idx);
    free(out);
    return 1;
}

int grt_mpi_stats(const grt_data *d, grt_stats *s)
{
    shard *sh = find(d);
    size_t i, j, nx = d->nx;
    double *a, *b, N;

    if (!sh)
        return 0;
    N = sh->N ? (double)sh->N : 1.0;
    s->n = nx;
    s->mean = grt_xcalloc(nx, sizeof(double));
    s->std = grt_xcalloc(nx, sizeof(double));
    a = grt_xmalloc(nx, sizeof(double)); /* lows, then highs negated */
    b = grt_xmalloc(nx, sizeof(double));
    for (j = 0; j < nx; j++)
        a[j] = b[j] = INFINITY;
    for (i = 0; i < d->n; i++)
        for (j = 0; j < nx; j++) {
            double x = d->x[i * nx + j];
            s->mean[j] += x;
            a[j] = x < a[j] ? x : a[j];
            b[j] = -x < b[j] ? -x : b[j];
        }
    MPI_Allreduce(MPI_IN_PLACE, s->mean, (int)nx, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, a, (int)nx, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, b, (int)nx, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
    for (j = 0; j < nx; j++)
        s->mean[j] /= N;
    /* two passes, as grt_stats_compute */
    for (i = 0; i < d->n; i++)
        for (j = 0; j < nx; j++) {
            double dv = d->x[i * nx + j] - s->mean[j];
            s->std[j] += dv * dv;
        }
    MPI_Allreduce(MPI_IN_PLACE, s->std, (int)nx, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    for (j = 0; j < nx; j++) {
        double sd = sqrt(s->std[j] / N);
        s->std[j] = (a[j] == -b[j] || !(sd > 0) || !isfinite(sd)) ? 1.0 : sd;
    }
    free(a);
    free(b);
    return 1;
}

/* ------------------------------------------------------------- gradients */

/* The model's inputs and targets of local rows rows[0..n) into c's buffers. */
static void gather(grt_ctx *c, const grt_data *d, const size_t *rows, size_t n)
{
    size_t k, j, nx = d->nx, ny = d->ny;
    for (k = 0; k < n; k++) {
        const double *x = d->x + rows[k] * nx;
        const double *y = d->y + rows[k] * ny;
        for (j = 0; j < nx; j++)
            c->x[k * nx + j] = (grt_real)x[j];
        for (j = 0; j < ny; j++)
            c->y[k * ny + j] = (grt_real)y[j];
    }
}

double grt_mpi_batch_grad(grt_ctx *c, const grt_real *params, const grt_data *d,
                          const size_t *idx, size_t s, grt_real *grad)
{
    const grt_model *m = c->m;
    shard *sh = find(d);
    size_t i, k, n, done, np = m->param_count, mine = 0;
    double t0 = grt_now(), t1, *acc;

    if (!sh->loc) {
        sh->loc = grt_xmalloc(sh->N ? sh->N : 1, sizeof(size_t));
        for (i = 0; i < sh->N; i++)
            sh->loc[i] = SIZE_MAX;
        for (i = 0; i < d->n; i++)
            sh->loc[sh->g[i]] = i;
    }
    if (G.bufn < np + 1) {
        free(G.buf);
        G.bufn = np + 1;
        G.buf = grt_xmalloc(G.bufn, sizeof(double));
    }
    if (G.subn < s) {
        free(G.sub);
        G.subn = s;
        G.sub = grt_xmalloc(s, sizeof(size_t));
    }
    /* this rank's rows of the batch, in the batch's order */
    for (k = 0; k < s; k++)
        if (idx[k] < sh->N && sh->loc[idx[k]] != SIZE_MAX)
            G.sub[mine++] = sh->loc[idx[k]];
    /* n * (chunk mean) summed in double, as grt_batch_grad does */
    acc = G.buf;
    memset(acc, 0, (np + 1) * sizeof(double));
    for (done = 0; done < mine; done += n) {
        grt_real l;
        n = mine - done < m->max_batch ? mine - done : m->max_batch;
        gather(c, d, G.sub + done, n);
        memset(c->cgrad, 0, np * sizeof(grt_real));
        l = m->loss_grad(params, c->x, c->y, n, c->cgrad, c->work);
        for (i = 0; i < np; i++)
            acc[i] += (double)n * c->cgrad[i];
        acc[np] += (double)n * (double)l;
    }
    t1 = grt_now();
    if (G.size > 1)
        MPI_Allreduce(MPI_IN_PLACE, acc, (int)(np + 1), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    G.t_grad += t1 - t0;
    G.t_reduce += grt_now() - t1;
    G.steps++;
    for (i = 0; i < np; i++)
        grad[i] = (grt_real)(acc[i] / (double)s);
    return acc[np] / (double)s;
}

int grt_mpi_reduce_score(const grt_data *d, grt_score *s)
{
    shard *sh = find(d);
    double v[3];
    if (!sh)
        return 0;
    /* s->loss is still the sum of n * chunk mean; the counts are exact in
     * double up to 2^53 */
    v[0] = s->loss;
    v[1] = (double)s->correct;
    v[2] = (double)s->total;
    if (G.size > 1)
        MPI_Allreduce(MPI_IN_PLACE, v, 3, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    s->loss = sh->N ? v[0] / (double)sh->N : 0;
    s->correct = (size_t)v[1];
    s->total = (size_t)v[2];
    return 1;
}

int grt_mpi_check_same(const grt_real *params, size_t n, grt_err *e)
{
    uint64_t h[2], got[2];
    if (!G.active || G.size == 1)
        return 0;
    h[0] = grt_fnv1a64(GRT_FNV_INIT, params, n * sizeof(grt_real));
    h[1] = ~h[0];
    MPI_Allreduce(h, got, 2, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    if (got[0] == h[0] && ~got[1] == h[0])
        return 0;
    /* every rank learns it from the same allreduce */
    G.collective = 1;
    return grt_fail(e, GRT_EXIT_DATA, GRT_E_DIVERGED,
                    "internal error: the ranks' params differ after the same steps (the MPI "
                    "library's sums are not the same on every rank)");
}

/* ------------------------------------------------------- parameter files */

/* Sends rank 0's status and error to every rank; the error becomes theirs. */
static int share_status(int status, grt_err *e)
{
    grt_err mine;
    if (G.size == 1)
        return status;
    memset(&mine, 0, sizeof mine);
    if (G.rank == 0 && status)
        mine = *e;
    mine.status = status;
    MPI_Bcast(&mine, (int)sizeof mine, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (mine.status) {
        G.collective = 1;
        if (G.rank != 0)
            grt_fail(e, mine.status, mine.code, "%s", mine.msg);
    }
    return mine.status;
}

int grt_mpi_params_save(const char *path, const grt_model *m, const grt_real *params,
                        const grt_stats *stats, const grt_state *st, grt_err *e)
{
    int status = 0;
    if (G.rank == 0) {
        size_t size;
        unsigned char *buf = grt_params_encode(m, params, stats, st, &size);
        status = grt_write_atomic(path, buf, size, e);
        free(buf);
    }
    return share_status(status, e);
}

/* grt_params_load under mpirun: rank 0 reads the file, every rank decodes its bytes. */
int grt_mpi_params_load(const char *path, const grt_model *m, grt_real *params,
                        grt_stats *stats, grt_state *st, grt_err *e)
{
    unsigned char *buf = NULL;
    uint64_t size = 0;
    size_t n = 0, at;
    int status = 0;

    if (G.rank == 0)
        status = grt_read_file(path, &buf, &n, e);
    status = share_status(status, e);
    if (status) {
        free(buf);
        if (stats)
            memset(stats, 0, sizeof *stats);
        if (st) {
            memset(st, 0, sizeof *st);
            st->opt_kind = -1;
        }
        return status;
    }
    size = n;
    MPI_Bcast(&size, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    if (G.rank != 0)
        buf = grt_xmalloc((size_t)size, 1);
    for (at = 0; at < (size_t)size; at += 1 << 30) {
        size_t part = (size_t)size - at < (size_t)1 << 30 ? (size_t)size - at : (size_t)1 << 30;
        MPI_Bcast(buf + at, (int)part, MPI_BYTE, 0, MPI_COMM_WORLD);
    }
    /* the same bytes decode to the same error on every rank */
    status = grt_params_decode(buf, (size_t)size, path, m, params, stats, st, e);
    if (status)
        G.collective = 1;
    free(buf);
    return status;
}

#else

/* The other builds have no MPI: an empty translation unit is not ISO C. */
typedef int grt_mpi_not_built;

#endif
