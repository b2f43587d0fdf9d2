/*
 * rt_train.c: the loops around the generated functions: the gradient of a
 * batch, the epochs of training, scoring a data set, writing predictions.
 *
 * The generated functions take at most max_batch examples per call (the
 * compiled batch), so every loop here goes chunk by chunk. A training step
 * of S examples is then the mean over its chunks' mean gradients weighted by
 * chunk size / S: exactly the mean gradient over the S examples, whatever
 * max_batch is. That is how `batch all` trains full-batch without compiling
 * the data set's size into the code (LANGUAGE.md section 4).
 *
 * Data is kept in double (grt_data) and converted to grt_real one chunk at a
 * time, into buffers allocated once (grt_ctx).
 */
#include "rt_internal.h"

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
    c->acc = grt_xaligned(m->param_count * sizeof(double));
}

void grt_ctx_free(grt_ctx *c)
{
    free(c->work);
    free(c->x);
    free(c->y);
    free(c->out);
    free(c->cgrad);
    free(c->acc);
    memset(c, 0, sizeof *c);
}

/* Converts n examples of d into the chunk buffers: rows idx[0..n) when idx is
 * given, else rows first .. first+n-1. */
static void gather(grt_ctx *c, const grt_data *d, const size_t *idx, size_t first, size_t n)
{
    size_t k, j, nx = d->nx, ny = d->ny;
    for (k = 0; k < n; k++) {
        size_t r = idx ? idx[k] : first + k;
        const double *x = d->x + r * nx;
        const double *y = d->y + r * ny;
        for (j = 0; j < nx; j++)
            c->x[k * nx + j] = (grt_real)x[j];
        for (j = 0; j < ny; j++)
            c->y[k * ny + j] = (grt_real)y[j];
    }
}

/* The generated loss_grad writes the whole gradient; zeroing it first also
 * makes one that accumulates (+=) correct. */
static double chunk_grad(grt_ctx *c, const grt_real *params, size_t n, grt_real *grad)
{
    memset(grad, 0, c->m->param_count * sizeof(grt_real));
    return (double)c->m->loss_grad(params, c->x, c->y, n, grad, c->work);
}

double grt_batch_grad(grt_ctx *c, const grt_real *params, const grt_data *d,
                      const size_t *idx, size_t s, grt_real *grad)
{
    const grt_model *m = c->m;
    size_t done, n, i, np = m->param_count;
    double loss = 0;

    if (s <= m->max_batch) {
        gather(c, d, idx, 0, s);
        return chunk_grad(c, params, s, grad);
    }
    /* Sum n * (chunk mean) in double, divide by s once: the mean over s
     * examples, with no rounding of the weights n / s. */
    memset(c->acc, 0, np * sizeof(double));
    for (done = 0; done < s; done += n) {
        n = s - done < m->max_batch ? s - done : m->max_batch;
        gather(c, d, idx + done, 0, n);
        loss += (double)n * chunk_grad(c, params, n, c->cgrad);
        for (i = 0; i < np; i++)
            c->acc[i] += (double)n * c->cgrad[i];
    }
    for (i = 0; i < np; i++)
        grad[i] = (grt_real)(c->acc[i] / (double)s);
    return loss / (double)s;
}

/* ------------------------------------------------------------------ scoring */

int grt_has_accuracy(const grt_model *m) { return m->nclasses > 0 || m->binary; }

/* Offset in a target row of the first class target's index. */
static size_t class_column(const grt_model *m)
{
    size_t off = 0;
    int t;
    for (t = 0; t < m->ntargets; t++) {
        if (m->targets[t].nclasses > 0)
            return off;
        off += m->targets[t].size;
    }
    return 0;
}

/* Adds the chunk's n examples to s: argmax over the classes for a class
 * target, output > threshold against target > 0.5 per value for binary. */
static void score_chunk(grt_ctx *c, size_t n, grt_score *s)
{
    const grt_model *m = c->m;
    size_t k, j, no = m->output_size, ny = m->target_size;
    if (m->nclasses > 0) {
        size_t col = class_column(m);
        for (k = 0; k < n; k++) {
            const grt_real *o = c->out + k * no;
            size_t best = 0;
            for (j = 1; j < (size_t)m->nclasses; j++)
                if (o[j] > o[best])
                    best = j;
            s->correct += (double)best == (double)c->y[k * ny + col];
            s->total++;
        }
    } else if (m->binary) {
        size_t nb = no < ny ? no : ny;
        for (k = 0; k < n; k++)
            for (j = 0; j < nb; j++) {
                int p = (double)c->out[k * no + j] > m->threshold;
                int t = (double)c->y[k * ny + j] > 0.5;
                s->correct += p == t;
                s->total++;
            }
    }
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
        s->loss += (double)n * m->loss(params, c->x, c->y, n, c->work);
        if (acc) {
            m->predict(params, c->x, n, c->out, c->work);
            score_chunk(c, n, s);
        }
    }
    if (d->n)
        s->loss /= (double)d->n;
}

int grt_predict_write(grt_ctx *c, const grt_real *params, const grt_data *d, FILE *out,
                      const char *outname, grt_err *e)
{
    const grt_model *m = c->m;
    size_t first, n, k, j;
    for (first = 0; first < d->n; first += n) {
        n = d->n - first < m->max_batch ? d->n - first : m->max_batch;
        gather(c, d, NULL, first, n);
        m->predict(params, c->x, n, c->out, c->work);
        for (k = 0; k < n; k++) {
            for (j = 0; j < m->output_size; j++) {
                if (j)
                    putc(' ', out);
                fprintf(out, GRT_REAL_FMT, (double)c->out[k * m->output_size + j]);
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

/* The live bar within a long epoch, on a terminal only. */
static void bar(FILE *f, int epoch, int E, size_t done, size_t n, double loss)
{
    char b[31];
    int k, fill = n ? (int)(30.0 * (double)done / (double)n) : 30;
    for (k = 0; k < 30; k++)
        b[k] = k < fill ? '#' : '.';
    b[30] = '\0';
    fprintf(f, "\repoch %d/%d  [%s] %3.0f%%  loss %.6g ", epoch, E, b,
            n ? 100.0 * (double)done / (double)n : 100.0, loss);
    fflush(f);
}

int grt_train(grt_ctx *c, grt_real *params, const grt_data *train, const grt_data *valid,
              const grt_run *run, grt_trained *res, grt_err *e)
{
    const grt_model *m = c->m;
    const grt_train_config *cfg = &run->cfg;
    size_t N = train->n, S, i, np = m->param_count;
    size_t *idx = grt_xmalloc(N, sizeof(size_t));
    grt_real *grad = grt_xaligned(np * sizeof(grt_real));
    grt_real *best = NULL;
    grt_optimizer opt;
    grt_rng rng;
    int E = cfg->epochs, epoch, status = 0, stale = 0;
    int has_valid = valid && valid->n > 0;
    int early = has_valid && cfg->patience > 0;
    FILE *pf = run->progress ? run->progress : stderr;
    int live = !run->quiet && isatty(fileno(pf));
    double t0 = grt_now(), best_loss = INFINITY;

    memset(res, 0, sizeof *res);
    res->has_valid = has_valid;
    S = cfg->batch <= 0 || (size_t)cfg->batch > N ? N : (size_t)cfg->batch;
    for (i = 0; i < N; i++)
        idx[i] = i;
    grt_rng_seed(&rng, cfg->seed);
    grt_opt_init(&opt, cfg, np, m->maximize);
    if (early)
        best = grt_xmalloc(np, sizeof(grt_real));

    for (epoch = 0; epoch < E; epoch++) {
        double lr = grt_sched_lr(cfg, cfg->lr, epoch, E);
        double sum = 0, te = grt_now(), drawn = 0;
        size_t done, s, step = 0;
        grt_score sc = {0, 0, 0};
        char eta[32];

        if (cfg->shuffle)
            grt_shuffle(&rng, idx, N);
        for (done = 0; done < N; done += s, step++) {
            double l;
            s = N - done < S ? N - done : S;
            l = grt_batch_grad(c, params, train, idx + done, s, grad);
            if (!isfinite(l)) {
                if (drawn)
                    fputc('\n', pf);
                status = grt_fail(e, GRT_EXIT_DATA, GRT_E_DIVERGED,
                                  "%s: error: training diverged: the loss is %s at epoch %d, "
                                  "step %zu; try a smaller learning rate (--lr)",
                                  m->name, isnan(l) ? "NaN" : "infinite", epoch + 1, step + 1);
                goto out;
            }
            sum += l * (double)s;
            grt_opt_step(&opt, params, grad, lr);
            if (live) {
                double now = grt_now();
                if (now - te > 1 && now - drawn > 0.2) {
                    bar(pf, epoch + 1, E, done + s, N, sum / (double)(done + s));
                    drawn = now;
                }
            }
        }
        te = grt_now() - te;
        if (drawn)
            fprintf(pf, "\r%79s\r", "");

        res->epochs = epoch + 1;
        res->loss = sum / (double)N;
        if (has_valid)
            grt_evaluate(c, params, valid, &sc);
        if (!run->quiet) {
            double elapsed = grt_now() - t0;
            duration(eta, sizeof eta, elapsed / (epoch + 1) * (E - epoch - 1));
            fprintf(pf, "epoch %d/%d  loss %.6g", epoch + 1, E, res->loss);
            if (has_valid) {
                fprintf(pf, "  valid loss %.6g", sc.loss);
                if (sc.total)
                    fprintf(pf, " acc %.4f", (double)sc.correct / (double)sc.total);
            }
            fprintf(pf, "  %.0f ex/s  eta %s\n", te > 0 ? (double)N / te : 0.0, eta);
            fflush(pf);
        }
        if (!early) {
            res->valid = sc;
            continue;
        }
        if (sc.loss < best_loss) {
            best_loss = sc.loss;
            memcpy(best, params, np * sizeof(grt_real));
            res->best_epoch = epoch + 1;
            res->valid = sc;
            stale = 0;
        } else if (++stale >= cfg->patience) {
            if (!run->quiet)
                fprintf(pf,
                        "stopping early: no better validation loss in %d epochs; "
                        "keeping epoch %d\n",
                        cfg->patience, res->best_epoch);
            break;
        }
    }
    /* Early stopping returns the params of the best validation loss. */
    if (early && res->best_epoch > 0)
        memcpy(params, best, np * sizeof(grt_real));
    /* No epochs (--epochs 0, to save or score initial params): the losses of
     * the params as they are. */
    if (E <= 0) {
        grt_score sc;
        grt_evaluate(c, params, train, &sc);
        res->loss = sc.loss;
        if (has_valid)
            grt_evaluate(c, params, valid, &res->valid);
    }

out:
    grt_opt_free(&opt);
    free(best);
    free(grad);
    free(idx);
    return status;
}
