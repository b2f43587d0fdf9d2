/*
 * rt_train.c: the loops around the generated functions: the gradient of a
 * batch, the epochs of training, scoring a data set, writing predictions.
 *
 * The generated functions take at most max_batch examples per call (the
 * batch they were generated for), so every loop here goes chunk by chunk. A
 * training step of S examples is then the mean over its chunks' mean
 * gradients weighted by chunk size / S: exactly the mean gradient over the S
 * examples, whatever max_batch is. That is how `batch all` trains
 * full-batch without building the data set's size into the code.
 *
 * Data is kept in double (grt_data) and converted to grt_real one chunk at a
 * time, into buffers allocated once (grt_ctx).
 *
 * Training is deterministic: the same data, settings and seed give the same
 * bytes. Everything a run depends on between epochs (the shuffle generator,
 * the optimizer's moments and step count, early stopping's best) is a
 * grt_state that parameter files carry, so a run resumed from one goes on
 * exactly as if it had not stopped.
 */
#include "rt_internal.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void grt_ctx_init(grt_ctx *c, const grt_model *m)
{
    size_t b = m->max_batch;
    c->m = m;
    c->work = grt_xaligned(m->workspace_bytes);
    /* Sizes are checked by grt_model_check; the products by grt_xaligned's
     * callers here. */
    c->x = grt_xaligned(b * m->input_size * sizeof(grt_real));
    c->y = grt_xaligned(b * m->target_size * sizeof(grt_real));
    c->out = grt_xaligned(b * m->output_size * sizeof(grt_real));
    c->cgrad = grt_xaligned(m->param_count * sizeof(grt_real));
    c->acc = grt_xaligned((m->param_count + 1) * sizeof(double));
    c->rows = NULL;
    c->rows_cap = 0;
    c->tally = NULL;
    c->state = NULL;
    c->nthreads = 1;
    c->twork = NULL;
    c->tgrad = NULL;
    c->tloss = NULL;
    if (m->parallel && m->max_threads && m->split_batch && !m->state_count && b >= 2) {
        int t, T = m->max_threads();
        if (T > 64)
            T = 64; /* split_sum's weights */
        if (T > 1) {
            c->nthreads = T;
            c->twork = grt_xcalloc((size_t)T, sizeof *c->twork);
            c->tgrad = grt_xcalloc((size_t)T, sizeof *c->tgrad);
            c->tloss = grt_xcalloc((size_t)T, sizeof *c->tloss);
            for (t = 1; t < T; t++) {
                c->twork[t] = grt_xaligned(m->workspace_bytes);
                c->tgrad[t] = grt_xaligned(m->param_count * sizeof(grt_real));
            }
        }
    }
    if (m->state_count) {
        c->state = grt_xaligned(m->state_count * sizeof(grt_real));
        memset(c->state, 0, m->state_count * sizeof(grt_real));
        if (m->init_state)
            m->init_state(c->state);
    }
}

void grt_ctx_take_state(grt_ctx *c, const grt_stats *s)
{
    if (c->state && s && s->state && s->nstate == c->m->state_count)
        memcpy(c->state, s->state, s->nstate * sizeof(grt_real));
}

grt_stats grt_ctx_stats(const grt_ctx *c, const grt_stats *s)
{
    grt_stats r;
    if (s)
        r = *s;
    else
        memset(&r, 0, sizeof r);
    if (c->state) {
        r.state = c->state;
        r.nstate = c->m->state_count;
    }
    return r;
}

void grt_ctx_share_state(grt_ctx *c)
{
    size_t i, n = c->m->state_count;
    int P = grt_comm_size();
    double *v;
    if (!n || P == 1)
        return;
    v = grt_xmalloc(n, sizeof(double));
    for (i = 0; i < n; i++)
        v[i] = (double)c->state[i];
    grt_comm_sum(v, n);
    for (i = 0; i < n; i++)
        c->state[i] = (grt_real)(v[i] / P);
    free(v);
}

void grt_ctx_free(grt_ctx *c)
{
    free(c->work);
    free(c->x);
    free(c->y);
    free(c->out);
    free(c->cgrad);
    free(c->acc);
    free(c->rows);
    free(c->state);
    for (int t = 1; t < c->nthreads; t++) {
        free(c->twork[t]);
        free(c->tgrad[t]);
    }
    free(c->twork);
    free(c->tgrad);
    free(c->tloss);
    memset(c, 0, sizeof *c);
}

/* Converts n examples of d into the chunk buffers: rows rows[0..n) when
 * rows is given (rows held here), else rows first .. first+n-1. */
static void gather(grt_ctx *c, const grt_data *d, const size_t *rows, size_t first, size_t n)
{
    size_t k, j, nx = d->nx, ny = d->ny;
    for (k = 0; k < n; k++) {
        size_t r = rows ? rows[k] : first + k;
        const double *x = d->x + r * nx;
        const double *y = d->y + r * ny;
        for (j = 0; j < nx; j++)
            c->x[k * nx + j] = (grt_real)x[j];
        for (j = 0; j < ny; j++)
            c->y[k * ny + j] = (grt_real)y[j];
    }
}

static void score_chunk(grt_ctx *c, size_t n, grt_score *s);

/* A chunk split among threads: the examples of thread t of T (the first
 * of them example n t / T), the chunk itself and, for loss_grad, its
 * gradient (NULL: loss alone). */
typedef struct split_job {
    grt_ctx *c;
    const grt_real *params;
    size_t n;
    grt_real *grad;
    int T; /* the threads that took a part */
} split_job;

/* where part t of T of n things starts */
static size_t part_at(size_t n, int t, int T)
{
    return n * (size_t)t / (size_t)T;
}

/* thread t's part of the chunk: its mean loss into tloss[t], and with a
 * gradient, loss_grad's into the caller's (t = 0) or tgrad[t] */
static void split_part(void *arg, int t, int T)
{
    split_job *j = arg;
    grt_ctx *c = j->c;
    const grt_model *m = c->m;
    if (T > c->nthreads)
        T = c->nthreads; /* never more parts than buffers */
    if (t == 0)
        j->T = T;
    if (t >= T)
        return;
    size_t lo = part_at(j->n, t, T), k = part_at(j->n, t + 1, T) - lo;
    const grt_real *x = c->x + lo * m->input_size, *y = c->y + lo * m->target_size;
    void *w = t ? c->twork[t] : c->work;
    grt_real *g = t ? c->tgrad[t] : j->grad;
    if (!k)
        c->tloss[t] = 0;
    else if (!j->grad)
        c->tloss[t] = (double)m->loss(j->params, NULL, x, y, k, w);
    else {
        memset(g, 0, m->param_count * sizeof(grt_real));
        c->tloss[t] = (double)m->loss_grad(j->params, NULL, x, y, k, g, w);
    }
}

/* grad = the parts' gradients weighted by their share of the chunk, each
 * thread a range of the params */
static void split_sum(void *arg, int t, int T)
{
    split_job *j = arg;
    grt_ctx *c = j->c;
    size_t np = c->m->param_count, lo = part_at(np, t, T), hi = part_at(np, t + 1, T), i;
    int u, P = j->T;
    grt_real *restrict g = j->grad;
    for (u = 0; u < P; u++) {
        const grt_real w = (grt_real)((double)(part_at(j->n, u + 1, P) - part_at(j->n, u, P)) / (double)j->n);
        const grt_real *restrict gu = c->tgrad[u];
        if (u == 0)
            for (i = lo; i < hi; i++)
                g[i] *= w;
        else
            for (i = lo; i < hi; i++)
                g[i] += w * gu[i];
    }
}

/* the parts' mean losses weighted by their sizes */
static double split_mean(const grt_ctx *c, size_t n, int T)
{
    double l = 0;
    for (int u = 0; u < T; u++)
        l += (double)(part_at(n, u + 1, T) - part_at(n, u, T)) * c->tloss[u];
    return l / (double)n;
}

double grt_chunk_loss(grt_ctx *c, const grt_real *params, size_t n)
{
    if (c->nthreads > 1 && n >= 2) {
        split_job j = {c, params, n, NULL, 1};
        c->m->parallel(split_part, &j);
        return split_mean(c, n, j.T);
    }
    return (double)c->m->loss(params, c->state, c->x, c->y, n, c->work);
}

/* The generated loss_grad writes the whole gradient; zeroing it first also
 * makes one that accumulates (+=) correct. With threads (and no state) the
 * chunk is split among them: the gradient of the mean loss is the mean of
 * the parts' gradients weighted by their sizes. With a tally, the chunk's
 * predictions are scored too (a forward pass more, as Keras' running
 * accuracy costs; at the params before the step, as its loss is). */
double grt_chunk_grad(grt_ctx *c, const grt_real *params, size_t n, grt_real *grad)
{
    double l;
    if (c->nthreads > 1 && n >= 2) {
        split_job j = {c, params, n, grad, 1};
        c->m->parallel(split_part, &j);
        c->m->parallel(split_sum, &j);
        l = split_mean(c, n, j.T);
    } else {
        memset(grad, 0, c->m->param_count * sizeof(grt_real));
        l = (double)c->m->loss_grad(params, c->state, c->x, c->y, n, grad, c->work);
    }
    if (c->tally) {
        c->m->predict(params, c->state, c->x, n, c->out, c->work);
        score_chunk(c, n, c->tally);
    }
    return l;
}

/* The rows of d held here among the global rows idx[0..s), in the batch's
 * order, into c->rows; returns how many. */
static size_t held_rows(grt_ctx *c, const grt_data *d, const size_t *idx, size_t s)
{
    size_t k, mine = 0;
    if (c->rows_cap < s) {
        free(c->rows);
        c->rows_cap = s;
        c->rows = grt_xmalloc(s, sizeof(size_t));
    }
    for (k = 0; k < s; k++) {
        size_t r = grt_data_local(d, idx[k]);
        if (r != SIZE_MAX)
            c->rows[mine++] = r;
    }
    return mine;
}

double grt_batch_grad(grt_ctx *c, const grt_real *params, const grt_data *d,
                      const size_t *idx, size_t s, grt_real *grad)
{
    const grt_model *m = c->m;
    size_t done, n, i, np = m->param_count, mine;
    double *acc = c->acc;

    if (!d->global && s <= m->max_batch && grt_comm_size() == 1) {
        /* one chunk of one process: straight into grad (the sums below
         * would give the same bits, one pass over the params later) */
        gather(c, d, idx, 0, s);
        return grt_chunk_grad(c, params, s, grad);
    }
    mine = held_rows(c, d, idx, s);
    /* Sum n * (chunk mean) in double over every rank's chunks, divide by s
     * once: the mean over s examples, with no rounding of the weights n / s. */
    memset(acc, 0, (np + 1) * sizeof(double));
    for (done = 0; done < mine; done += n) {
        n = mine - done < m->max_batch ? mine - done : m->max_batch;
        gather(c, d, c->rows + done, 0, n);
        acc[np] += (double)n * grt_chunk_grad(c, params, n, c->cgrad);
        for (i = 0; i < np; i++)
            acc[i] += (double)n * c->cgrad[i];
    }
    grt_comm_sum(acc, np + 1);
    for (i = 0; i < np; i++)
        grad[i] = (grt_real)(acc[i] / (double)s);
    return acc[np] / (double)s;
}

/* ------------------------------------------------------------------ scoring */

int grt_has_accuracy(const grt_model *m) { return m->nclasses > 0 || m->binary; }

/* Offset in a target row of the first class target's indices; *count gets
 * how many it holds (class(n)[T]: T, one per row of n outputs). */
static size_t class_column(const grt_model *m, size_t *count)
{
    size_t off = 0;
    int t;
    *count = 1;
    for (t = 0; t < m->ntargets; t++) {
        if (m->targets[t].nclasses > 0) {
            *count = m->targets[t].size;
            return off;
        }
        off += m->targets[t].size;
    }
    return 0;
}

/* The first largest of the nclasses outputs at o. */
static size_t argmax(const grt_real *o, size_t nclasses)
{
    size_t j, best = 0;
    for (j = 1; j < nclasses; j++)
        if (o[j] > o[best])
            best = j;
    return best;
}

/* Adds the chunk's n examples to s: argmax over the classes for a class
 * target, output > threshold against target = 1 per value for binary. */
static void score_chunk(grt_ctx *c, size_t n, grt_score *s)
{
    const grt_model *m = c->m;
    size_t k, j, no = m->output_size, ny = m->target_size;
    if (m->nclasses > 0) {
        /* per position for class(n)[T]: T rows of n outputs, T indices */
        size_t T, col = class_column(m, &T), V = (size_t)m->nclasses;
        for (k = 0; k < n; k++)
            for (j = 0; j < T; j++) {
                size_t best = argmax(c->out + k * no + j * V, V);
                s->correct += (double)best == (double)c->y[k * ny + col + j];
                s->total++;
            }
    } else if (m->binary) {
        size_t nb = no < ny ? no : ny;
        for (k = 0; k < n; k++)
            for (j = 0; j < nb; j++) {
                int p = (double)c->out[k * no + j] > m->threshold;
                int t = (double)c->y[k * ny + j] == 1; /* 0 or 1 (the readers check) */
                s->correct += p == t;
                s->total++;
            }
    }
}

double grt_data_loss(grt_ctx *c, const grt_real *params, const grt_data *d)
{
    const grt_model *m = c->m;
    size_t first, n;
    double loss = 0;
    for (first = 0; first < d->n; first += n) {
        n = d->n - first < m->max_batch ? d->n - first : m->max_batch;
        gather(c, d, NULL, first, n);
        loss += (double)n * grt_chunk_loss(c, params, n);
    }
    return d->n ? loss / (double)d->n : 0;
}

void grt_evaluate(grt_ctx *c, const grt_real *params, const grt_data *d, grt_score *s)
{
    const grt_model *m = c->m;
    size_t first, n;
    int acc = grt_has_accuracy(m);

    s->loss = 0;
    s->correct = s->total = 0;
    for (first = 0; first < d->n; first += n) {
        n = d->n - first < m->max_batch ? d->n - first : m->max_batch;
        gather(c, d, NULL, first, n);
        s->loss += (double)n * m->loss(params, c->state, c->x, c->y, n, c->work);
        if (acc) {
            m->predict(params, c->state, c->x, n, c->out, c->work);
            score_chunk(c, n, s);
        }
    }
    {
        /* every rank's sums; the counts are exact in double up to 2^53 */
        double v[3];
        size_t N = grt_data_total(d);
        v[0] = s->loss;
        v[1] = (double)s->correct;
        v[2] = (double)s->total;
        grt_comm_sum(v, 3);
        s->loss = N ? v[0] / (double)N : 0;
        s->correct = (size_t)v[1];
        s->total = (size_t)v[2];
    }
}

int grt_predict_write(grt_ctx *c, const grt_real *params, const grt_data *d, int labels,
                      FILE *out, const char *outname, grt_err *e)
{
    const grt_model *m = c->m;
    size_t first, n, k, j, no = m->output_size;
    for (first = 0; first < d->n; first += n) {
        n = d->n - first < m->max_batch ? d->n - first : m->max_batch;
        gather(c, d, NULL, first, n);
        m->predict(params, c->state, c->x, n, c->out, c->work);
        for (k = 0; k < n; k++) {
            const grt_real *o = c->out + k * no;
            if (labels && m->nclasses > 0) {
                /* the class scored as accuracy scores it: the first maximum
                 * (of each position's row, for class(n)[T]) */
                size_t T, V = (size_t)m->nclasses;
                class_column(m, &T);
                for (j = 0; j < T; j++)
                    fprintf(out, j ? " %zu" : "%zu", argmax(o + j * V, V));
                putc('\n', out);
                continue;
            }
            for (j = 0; j < no; j++) {
                if (j)
                    putc(' ', out);
                if (labels) /* binary: each value against the threshold */
                    putc((double)o[j] > m->threshold ? '1' : '0', out);
                else
                    fprintf(out, GRT_REAL_FMT, (double)o[j]);
            }
            putc('\n', out);
        }
        if (ferror(out))
            break;
    }
    if (fflush(out) != 0 || ferror(out))
        return grt_fail(e, GRT_EXIT_USAGE, GRT_E_IO, "%s: error: cannot write predictions",
                        outname);
    return 0;
}

/* ----------------------------------------------------------------- training */

void grt_param_at(const grt_model *m, size_t i, const char **name, char *index, size_t cap)
{
    grt_param_where(m->params, m->nparams, i, name, index, cap);
}

/* "4s", "3m12s", "2h05m". */
static void duration(char *dst, size_t cap, double sec)
{
    long s = sec > 0 && sec < 1e9 ? (long)(sec + 0.5) : 0;
    if (s < 60)
        snprintf(dst, cap, "%lds", s);
    else if (s < 3600)
        snprintf(dst, cap, "%ldm%02lds", s / 60, s % 60);
    else
        snprintf(dst, cap, "%ldh%02ldm", s / 3600, s / 60 % 60);
}

/* A loss or accuracy as Keras prints it: 4 decimals, or 4 significant
 * digits in e-notation where decimals say little (below 1e-3, from 1e5). */
void grt_figure(char *dst, size_t cap, double v)
{
    double a = fabs(v);
    snprintf(dst, cap, v == 0 || (a >= 1e-3 && a < 1e5) ? "%.4f" : "%.4e", v);
}

/* A rate with an SI prefix: "870", "12.3k", "5.4M". */
void grt_rate(char *dst, size_t cap, double v)
{
    if (!(v < 1e3))
        snprintf(dst, cap, !(v < 1e6) ? !(v < 1e9) ? "%.1fG" : "%.1fM" : "%.1fk",
                 !(v < 1e6) ? !(v < 1e9) ? v / 1e9 : v / 1e6 : v / 1e3);
    else
        snprintf(dst, cap, "%.0f", v > 0 ? v : 0);
}

/* An epoch's time: "0.21s", "12.5s", then as duration(). */
void grt_seconds(char *dst, size_t cap, double sec)
{
    if (sec < 9.995)
        snprintf(dst, cap, "%.2fs", sec > 0 ? sec : 0);
    else if (sec < 59.95)
        snprintf(dst, cap, "%.1fs", sec);
    else
        duration(dst, cap, sec);
}

/* The live bar within a long epoch, on a terminal only: the step of the
 * epoch, the loss so far and the time the epoch has left, as Keras draws
 * it. */
static void bar(FILE *f, int epoch, int E, size_t step, size_t steps, double loss, double left)
{
    char b[31], l[32], eta[32];
    int k, fill = steps ? (int)(30.0 * (double)step / (double)steps) : 30;
    for (k = 0; k < 30; k++)
        b[k] = k < fill ? '#' : '.';
    b[30] = '\0';
    grt_figure(l, sizeof l, loss);
    duration(eta, sizeof eta, left);
    fprintf(f, "\repoch %d/%d  %zu/%zu [%s]  loss %s  eta %s ", epoch, E, step, steps, b, l, eta);
    fflush(f);
}

/* Index of the first NaN or infinite value of v[0..n), n when none. */
static size_t first_bad(const grt_real *v, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return i;
    return n;
}

/* Index of the value of v[0..n) largest in magnitude (n >= 1). */
static size_t largest(const grt_real *v, size_t n)
{
    size_t i, k = 0;
    for (i = 1; i < n; i++)
        if (fabs((double)v[i]) > fabs((double)v[k]))
            k = i;
    return k;
}

/* Everything a training run keeps from epoch to epoch. */
typedef struct loop {
    grt_optimizer opt;  /* kind, moments, step count */
    grt_rng rng;        /* the shuffle generator */
    int stopped;        /* early stopping ended the run */
    grt_real *best;     /* early stopping: params of the best epoch, or NULL */
    long best_epoch;    /* that epoch, 0: none yet */
    double best_loss;   /* its validation loss */
    long stale;         /* epochs since without a better one */
    double best_train;  /* its training loss and accuracy (NaN: none, or */
    double best_acc;    /*   the epoch ran before a --resume) */
} loop;

static grt_real *dup_reals(const grt_real *v, size_t n)
{
    grt_real *p;
    if (!v)
        return NULL;
    p = grt_xmalloc(n, sizeof(grt_real));
    memcpy(p, v, n * sizeof(grt_real));
    return p;
}

/* Fills s from the loop after `epochs` epochs. */
static void fill_state(grt_state *s, const loop *L, long epochs, size_t np)
{
    grt_state_free(s);
    s->valid = 1;
    s->epoch = epochs;
    s->stopped = L->stopped;
    s->rng = L->rng;
    s->opt_kind = L->opt.kind;
    s->t = L->opt.t;
    s->m = dup_reals(L->opt.m, np);
    s->v = dup_reals(L->opt.v, np);
    if (L->best && L->best_epoch > 0) {
        s->best = dup_reals(L->best, np);
        s->best_epoch = L->best_epoch;
        s->best_loss = L->best_loss;
        s->stale = L->stale;
    }
}

/* ", declared at digits.nn:13" for the param holding element k, when the
 * descriptor knows its line; else "". */
static void declared_at(char *dst, size_t cap, const grt_model *m, size_t k)
{
    int t;
    dst[0] = '\0';
    for (t = 0; t < m->nparams; t++) {
        const grt_param_info *p = &m->params[t];
        if (k >= p->offset && k - p->offset < p->size) {
            if (p->line > 0)
                snprintf(dst, cap, ", declared at %s:%d",
                         m->source && m->source[0] ? m->source : m->name, p->line);
            return;
        }
    }
}

/* Status 1: training diverged at a step; what says how. A diverged run
 * never replaces the file at run->save (it holds the result of an earlier
 * run, or this run's last checkpoint): the last good params (and the
 * scaling) go beside it, to SAVE.diverged, where --resume can start from
 * them. params NULL: the very first params had a non-finite loss, nothing
 * is good to save. */
static int diverged(grt_err *e, const grt_ctx *c, const grt_run *run, const grt_real *params,
                    int epoch, size_t step, const char *what)
{
    const grt_model *m = c->m;
    grt_stats sv = grt_ctx_stats(c, run->stats);
    char saved[900] = "";
    if (run->save && !params) {
        snprintf(saved, sizeof saved, "; the params it started from were no better, so nothing "
                 "is saved (%.300s is left as it was)", run->save);
    } else if (run->save && !run->save_diverged) {
        snprintf(saved, sizeof saved, "; %.300s is left as it was", run->save);
    } else if (run->save) {
        grt_err se;
        memset(&se, 0, sizeof se);
        if (grt_params_save(run->save_diverged, m, params, &sv, NULL, &se) == 0)
            snprintf(saved, sizeof saved, "; %.300s is left as it was, the last good params "
                     "are saved in %.300s", run->save, run->save_diverged);
        else
            snprintf(saved, sizeof saved, "; %.300s is left as it was, saving the last good "
                     "params failed (%.400s)", run->save, se.msg);
    }
    return grt_fail(e, GRT_EXIT_DATA, GRT_E_DIVERGED,
                    "%s: error: training diverged at epoch %d, batch %zu: %s%s; try a smaller "
                    "learning rate (--lr)%s",
                    m->name, epoch, step, what, saved,
                    run->stats && run->stats->n ? "" : " or --standardize");
}

/* "the gradient of 'W2' is NaN (element [3, 1])" for value k of v, or with
 * update set "the update made 'W2' infinite (...)". */
static void describe_bad(char *dst, size_t cap, const grt_model *m, int update,
                         const grt_real *v, size_t k)
{
    const char *name;
    char index[128], at[300];
    grt_param_at(m, k, &name, index, sizeof index);
    declared_at(at, sizeof at, m, k);
    snprintf(dst, cap, "%s '%s' %s%s (element %s%s)",
             update ? "the update made" : "the gradient of", name, update ? "" : "is ",
             isnan(v[k]) ? "NaN" : "infinite", index, at);
}

/* Status 1 when the ranks' params differ after the same steps (they never
 * should: every rank adds the same sums and takes the same step). */
static int check_same(const grt_real *params, size_t n, grt_err *e)
{
    uint64_t mine, first;
    double same;
    if (grt_comm_size() == 1)
        return 0;
    mine = first = grt_fnv1a64(GRT_FNV_INIT, params, n * sizeof(grt_real));
    grt_comm_bcast(&first, sizeof first);
    same = mine == first;
    grt_comm_min(&same, 1);
    if (same == 1)
        return 0;
    grt_fail(e, GRT_EXIT_DATA, GRT_E_DIVERGED,
             "internal error: the ranks' params differ after the same steps (the "
             "transport's sums are not the same on every rank)");
    e->shared = 1; /* every rank learns it from the same collective */
    return e->status;
}

int grt_train(grt_ctx *c, grt_real *params, const grt_data *train, const grt_data *valid,
              const grt_run *run, grt_trained *res, grt_err *e)
{
    const grt_model *m = c->m;
    const grt_train_config *cfg = &run->cfg;
    grt_state *st = run->state;
    size_t N = grt_data_total(train), S, i, np = m->param_count;
    size_t *idx = grt_xmalloc(N, sizeof(size_t));
    grt_real *grad = grt_xaligned(np * sizeof(grt_real));
    grt_real *prev = grt_xaligned(np * sizeof(grt_real));
    loop L;
    int E = cfg->epochs, start = 0, last, epoch, status = 0;
    int have_prev = 0, no_good = 0; /* prev holds params of a finite loss; none are */
    int has_valid = valid && grt_data_total(valid) > 0;
    int early = has_valid && cfg->patience > 0;
    FILE *pf = run->progress ? run->progress : stderr;
    int live = !run->quiet && isatty(fileno(pf));
    double t0 = grt_now();
    double first = NAN; /* the loss of the run's first step */
    int acc = grt_has_accuracy(m);
    grt_score sc = {0, 0, 0}, tally = {0, 0, 0};

    memset(res, 0, sizeof *res);
    memset(&L, 0, sizeof L);
    res->has_valid = has_valid;
    res->acc = NAN;
    L.best_train = L.best_acc = NAN;
    S = cfg->batch <= 0 || (size_t)cfg->batch > N ? N : (size_t)cfg->batch;
    grt_rng_seed(&L.rng, cfg->seed);
    grt_opt_init(&L.opt, cfg, np, m->maximize);
    grt_opt_flags(&L.opt, m);
    grt_opt_threads(&L.opt, m);
    L.best_loss = INFINITY;
    if (early)
        L.best = grt_xmalloc(np, sizeof(grt_real));
    if (st && st->valid) {
        /* go on where the state stands; moments of another kind are not ours */
        start = st->epoch > INT_MAX ? INT_MAX : (int)st->epoch;
        L.rng = st->rng;
        L.stopped = st->stopped;
        if (st->opt_kind == L.opt.kind) {
            L.opt.t = st->t;
            if (L.opt.m && st->m)
                memcpy(L.opt.m, st->m, np * sizeof(grt_real));
            if (L.opt.v && st->v)
                memcpy(L.opt.v, st->v, np * sizeof(grt_real));
        }
        if (early && st->best && st->best_epoch > 0) {
            memcpy(L.best, st->best, np * sizeof(grt_real));
            L.best_epoch = st->best_epoch;
            L.best_loss = st->best_loss;
            L.stale = st->stale;
        }
    }
    last = run->stop_after > 0 && run->stop_after < E ? run->stop_after : E;
    res->epochs = start;

    for (epoch = start; epoch < last && !L.stopped; epoch++) {
        double lr = grt_sched_lr(cfg, cfg->lr, epoch, E);
        double sum = 0, te = grt_now(), drawn = 0, elapsed, tacc = NAN;
        size_t done, s, step, steps = S ? (N + S - 1) / S : 0;

        /* the running training accuracy, scored by grt_batch_grad */
        tally.correct = tally.total = 0;
        c->tally = acc ? &tally : NULL;

        /* Each epoch shuffles the identity, so the order depends on the
         * generator alone: its state is all a resumed run needs. */
        for (i = 0; i < N; i++)
            idx[i] = i;
        if (cfg->shuffle)
            grt_shuffle(&L.rng, idx, N);
        for (done = 0, step = 1; done < N; done += s, step++) {
            char what[900] = "";
            size_t k;
            double l;
            s = N - done < S ? N - done : S;
            l = grt_batch_grad(c, params, train, idx + done, s, grad);
            grt_opt_ignore_frozen(&L.opt, grad);
            grt_ctx_share_state(c);
            /* The step is taken only from a finite loss and gradient, and
             * kept only when every param stays finite. Params whose loss is
             * not finite are no good: the last good ones are those before
             * the previous update, whose loss was finite (prev). */
            if (!isfinite(l)) {
                /* name a param: the first whose gradient went bad, else the
                 * one that grew most, which is what overflowed the loss */
                char which[600];
                if ((k = first_bad(grad, np)) < np) {
                    describe_bad(which, sizeof which, m, 0, grad, k);
                } else {
                    const char *name;
                    char index[128], at[300];
                    k = largest(params, np);
                    grt_param_at(m, k, &name, index, sizeof index);
                    declared_at(at, sizeof at, m, k);
                    snprintf(which, sizeof which, "the largest param is '%s' (element %s%s) = %.6g",
                             name, index, at, (double)params[k]);
                }
                snprintf(what, sizeof what, "the loss is %s; %s", isnan(l) ? "NaN" : "infinite",
                         which);
                if (have_prev)
                    memcpy(params, prev, np * sizeof(grt_real));
                else
                    no_good = 1;
            } else if ((k = first_bad(grad, np)) < np) {
                describe_bad(what, sizeof what, m, 0, grad, k);
            } else {
                memcpy(prev, params, np * sizeof(grt_real));
                have_prev = 1;
                grt_opt_step(&L.opt, params, grad, lr);
                if ((k = first_bad(params, np)) < np) {
                    describe_bad(what, sizeof what, m, 1, params, k);
                    memcpy(params, prev, np * sizeof(grt_real));
                }
            }
            if (what[0]) {
                if (drawn)
                    fputc('\n', pf);
                status = diverged(e, c, run, no_good ? NULL : params, epoch + 1, step, what);
                goto out;
            }
            sum += l * (double)s;
            if (step == 1 && epoch == start)
                first = l;
            if (live) {
                double now = grt_now();
                if (now - te > 1 && now - drawn > 0.2) {
                    bar(pf, epoch + 1, E, step, steps, sum / (double)(done + s),
                        (now - te) / (double)(done + s) * (double)(N - done - s));
                    drawn = now;
                }
            }
        }
        c->tally = NULL;
        te = grt_now() - te;
        if (drawn)
            fprintf(pf, "\r%99s\r", "");
        if (acc) {
            /* every rank's counts */
            double v[2];
            v[0] = (double)tally.correct;
            v[1] = (double)tally.total;
            grt_comm_sum(v, 2);
            tacc = v[1] > 0 ? v[0] / v[1] : NAN;
        }

        if ((status = check_same(params, np, e)))
            goto out;
        res->epochs = epoch + 1;
        res->ran++;
        res->loss = sum / (double)N;
        res->acc = tacc;
        if (has_valid)
            grt_evaluate(c, params, valid, &sc);
        elapsed = grt_now() - t0;
        if (!run->quiet) {
            /* epoch 3/10  loss 0.1590  acc 0.9421  val_loss 0.1770  val_acc 0.9390  5.4M ex/s  0.21s */
            char f[32], r[32], t[32];
            grt_figure(f, sizeof f, res->loss);
            fprintf(pf, "epoch %d/%d  loss %s", epoch + 1, E, f);
            if (acc && isfinite(tacc))
                fprintf(pf, "  acc %.4f", tacc);
            if (has_valid) {
                grt_figure(f, sizeof f, sc.loss);
                fprintf(pf, "  val_loss %s", f);
                if (sc.total)
                    fprintf(pf, "  val_acc %.4f", (double)sc.correct / (double)sc.total);
            }
            grt_rate(r, sizeof r, te > 0 ? (double)N / te : 0.0);
            grt_seconds(t, sizeof t, te);
            fprintf(pf, "  %s ex/s  %s\n", r, t);
            fflush(pf);
        }
        /* A first loss that explodes is a step too large for the inputs:
         * said once, in the first two epochs (the second for full batch,
         * whose first epoch is one step at the initial params). */
        if (!m->maximize && !res->exploded && res->ran <= 2 && first > 0 &&
            res->loss > 10 * first && isfinite(res->loss)) {
            res->exploded = 1;
            if (!run->quiet) {
                char a[32], b[32];
                grt_figure(a, sizeof a, first);
                grt_figure(b, sizeof b, res->loss);
                fprintf(pf, "%s: warning: the loss exploded in the first epochs (from %s to %s): "
                            "the steps are too large%s; try a smaller --lr%s\n",
                        m->name, a, b,
                        run->stats && run->stats->n ? "" : " for inputs of these scales",
                        run->stats && run->stats->n ? "" : " or --standardize");
                fflush(pf);
            }
        }
        {
            grt_hrow r;
            r.x = epoch + 1;
            r.loss = res->loss;
            r.acc = tacc;
            r.val_loss = has_valid ? sc.loss : NAN;
            r.val_acc = has_valid && sc.total ? (double)sc.correct / (double)sc.total : NAN;
            r.lr = lr;
            r.seconds = elapsed;
            if (run->log)
                grt_log_write(run->log, &r);
            if (run->history)
                grt_history_add(run->history, &r);
        }
        if (early) {
            if (sc.loss < L.best_loss) {
                L.best_loss = sc.loss;
                memcpy(L.best, params, np * sizeof(grt_real));
                L.best_epoch = epoch + 1;
                L.best_train = res->loss;
                L.best_acc = tacc;
                L.stale = 0;
            } else if (++L.stale >= cfg->patience) {
                L.stopped = 1;
                if (!run->quiet)
                    fprintf(pf,
                            "stopping early: no better validation loss in %d epochs; "
                            "keeping epoch %ld\n",
                            cfg->patience, L.best_epoch);
            }
        }
        /* A checkpoint, unless the run ends here: the caller saves that. */
        if (run->checkpoint > 0 && run->save && (epoch + 1) % run->checkpoint == 0 &&
            !L.stopped && epoch + 1 < last) {
            grt_state cs;
            memset(&cs, 0, sizeof cs);
            fill_state(&cs, &L, epoch + 1, np);
            grt_stats sv = grt_ctx_stats(c, run->stats);
            status = grt_params_save(run->save, m, params, &sv, &cs, e);
            grt_state_free(&cs);
            if (status)
                goto out;
        }
    }
    res->stopped = L.stopped;
    res->best_epoch = (int)L.best_epoch;
    /* At the end of the run, early stopping returns the params of the best
     * validation loss; an interrupted run (stop_after) keeps its own. */
    if (early && L.best_epoch > 0 && (L.stopped || res->epochs >= E)) {
        memcpy(params, L.best, np * sizeof(grt_real));
        grt_evaluate(c, params, valid, &res->valid);
        res->kept = 1;
        /* the kept epoch's own figures; an epoch of the run before a
         * --resume left none: the kept params' score on the training data */
        if (isfinite(L.best_train)) {
            res->loss = L.best_train;
            res->acc = L.best_acc;
        } else {
            grt_score ts;
            grt_evaluate(c, params, train, &ts);
            res->loss = ts.loss;
            res->acc = ts.total ? (double)ts.correct / (double)ts.total : NAN;
        }
    } else if (has_valid && res->ran > 0) {
        res->valid = sc;
    }
    /* No epoch run (--epochs 0, or a resumed run that is done): the losses
     * of the params as they are. */
    if (res->ran == 0) {
        grt_score ts;
        grt_evaluate(c, params, train, &ts);
        res->loss = ts.loss;
        res->acc = ts.total ? (double)ts.correct / (double)ts.total : NAN;
        if (has_valid)
            grt_evaluate(c, params, valid, &res->valid);
    }
    if (st)
        fill_state(st, &L, res->epochs, np);

out:
    c->tally = NULL;
    grt_opt_free(&L.opt);
    free(L.best);
    free(prev);
    free(grad);
    free(idx);
    return status;
}
