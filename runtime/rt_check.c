/*
 * rt_check.c: `./model gradcheck`, the gradient the generated loss_grad
 * computes against central differences of the generated loss, per param, as
 * KANN's kad_check_grad and PyTorch's gradcheck do.
 *
 * For each element p_i checked, with h = STEP * max(1, |p_i|):
 *
 *   D(h)  = (L(p_i + h) - L(p_i - h)) / 2h
 *   num   = (4 D(h) - D(2h)) / 3            Richardson: error O(h^4)
 *
 * (or D(h) itself when it agrees better: it does not reach as far, past a
 * kink that 2h meets)
 * each L the mean loss over the examples, its chunks summed in double, and
 * each 2h the difference of the perturbed values as actually stored (a
 * float cannot hold p_i + h exactly). The relative error of an element is
 *
 *   |analytic - num| / max(|analytic|, |num|, FLOOR)
 *
 * FLOOR keeps gradients that are zero up to rounding from counting as
 * large relative errors. A float model's loss carries only 7 digits, so it
 * gets a large step and a loose threshold; a double model a small one:
 *
 *             STEP    FLOOR   threshold (--tol)
 *   float     2^-6    1e-3    1e-2
 *   double    2^-12   1e-5    1e-6
 *
 * FLOOR is multiplied by max(1, |L|): the rounding of the loss, and so the
 * noise of a difference quotient, grows with the loss.
 *
 * An element whose error exceeds a hundredth of the threshold is tried
 * again with the step / 4 and / 16 and keeps its smallest error: a ReLU kink
 * within 2h of the point spoils one step size, not all three, while a
 * wrong gradient is wrong at every step.
 *
 * An element still above a tenth of the threshold gets a last test meant
 * for kinks
 * (points where the loss is not differentiable, as relu at 0), at each of
 * the three steps: the analytic gradient at p_i - h, p_i and p_i + h must
 * show a kink inside (an abrupt change, not the gentle one of a smooth
 * function), and the plain central difference over [p_i - h, p_i + h],
 * which is the mean of the derivative over that interval, must lie between
 * those three values, as it does when the analytic gradient is right. Such
 * an element is counted as "at a kink" and not as an error; a wrong
 * gradient of a smooth function shows no kink, and one that is wrong at
 * all three points fails the second condition.
 */
#include "rt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef GRT_DOUBLE
#define STEP 0x1p-12
#define FLOOR 1e-5
#define NOISE 1e-12 /* relative rounding of a gradient, well above eps */
#else
#define STEP 0x1p-6
#define FLOOR 1e-3
#define NOISE 1e-4
#endif

/* Token inputs (int(V)) get random ids in 0..V-1, never values a gather
 * would read out of bounds with. */
void grt_random_data(const grt_model *m, size_t n, uint64_t seed, grt_data *d)
{
    grt_rng r;
    size_t i, j;
    int t, *vocab;
    grt_rng_seed(&r, seed ^ UINT64_C(0x67726164636865)); /* "gradche" */
    memset(d, 0, sizeof *d);
    d->n = d->cap = n;
    d->nx = m->input_size;
    d->ny = m->target_size;
    d->x = grt_xmalloc(n * d->nx, sizeof(double));
    d->y = grt_xmalloc(n * d->ny, sizeof(double));
    vocab = grt_input_vocab(m);
    for (i = 0; i < n; i++) {
        double *x = d->x + i * d->nx, *y = d->y + i * d->ny;
        for (j = 0; j < d->nx; j++)
            x[j] = vocab[j] > 0 ? (double)grt_rng_below(&r, (uint64_t)vocab[j]) /* token ids */
                                : (double)(grt_rng_next(&r) >> 11) * 0x1p-52 - 1;
        for (t = 0, j = 0; t < m->ntargets; t++) {
            size_t k;
            for (k = 0; k < m->targets[t].size && j < d->ny; k++, j++) {
                if (m->targets[t].nclasses > 0)
                    y[j] = (double)grt_rng_below(&r, (uint64_t)m->targets[t].nclasses);
                else if (m->binary)
                    y[j] = (double)grt_rng_below(&r, 2);
                else
                    y[j] = (double)(grt_rng_next(&r) >> 11) * 0x1p-52 - 1;
            }
        }
    }
    free(vocab);
}

/* Dropout. loss is the model without its masks (as eval and predict see
 * it) and loss_grad draws masks from a hash of the batch, so the two are
 * not the same function and cannot be compared. A model with dropout gives
 * seeded variants of both; gradcheck calls them one example per call with
 * that example's own seed, so the loss and its gradient see the same masks
 * and differ only where the gradient is wrong. */

/* The masks' seed of example i: fixed, so every call draws the same. */
static uint64_t mask_seed(size_t i)
{
    uint64_t s = UINT64_C(0x6d61736b73) ^ (uint64_t)i; /* "masks" */
    return grt_splitmix64(&s);
}

/* Example i of d into the chunk buffers, as one example. */
static void one_example(grt_ctx *c, const grt_data *d, size_t i)
{
    size_t j;
    for (j = 0; j < d->nx; j++)
        c->x[j] = (grt_real)d->x[i * d->nx + j];
    for (j = 0; j < d->ny; j++)
        c->y[j] = (grt_real)d->y[i * d->ny + j];
}

/* A model with state (batch_norm) has two losses: loss (eval's and
 * predict's) normalizes with the running statistics, loss_grad with the
 * batch's. The check differentiates the one loss_grad returns, over the
 * same examples in the same chunks as its gradient (grt_batch_grad), the
 * state put back after each call. */
static double training_loss(grt_ctx *c, const grt_real *p, const grt_data *d)
{
    const grt_model *m = c->m;
    size_t i, *idx = grt_xmalloc(d->n, sizeof(size_t));
    grt_real *g = grt_xaligned(m->param_count * sizeof(grt_real));
    grt_real *kept = grt_xmalloc(m->state_count, sizeof(grt_real));
    double l;
    memcpy(kept, c->state, m->state_count * sizeof(grt_real));
    for (i = 0; i < d->n; i++)
        idx[i] = i;
    l = grt_batch_grad(c, p, d, idx, d->n, g);
    memcpy(c->state, kept, m->state_count * sizeof(grt_real));
    free(kept);
    free(g);
    free(idx);
    return l;
}

/* The mean loss over d, one example per call: each call rounds only its own
 * example's loss, and the sum is in double, so the loss a float model
 * gives is as precise as it can be (a chunk's mean accumulates the
 * rounding of all its examples in float). A model with state: its
 * training loss. */
static double precise_loss(grt_ctx *c, const grt_real *p, const grt_data *d)
{
    const grt_model *m = c->m;
    grt_data one = *d;
    double sum = 0;
    size_t i;
    if (m->state_count && !(m->loss_seeded && m->loss_grad_seeded))
        return training_loss(c, p, d);
    one.n = 1;
    for (i = 0; i < d->n; i++) {
        if (m->loss_seeded && m->loss_grad_seeded) {
            one_example(c, d, i);
            sum += (double)m->loss_seeded(p, c->state, c->x, c->y, 1, c->work, mask_seed(i));
            continue;
        }
        one.x = d->x + i * d->nx;
        one.y = d->y + i * d->ny;
        sum += grt_data_loss(c, p, &one);
    }
    return sum / (double)d->n;
}

/* The analytic gradient over the examples idx[0..d->n) of d into g: the
 * mean of one-example calls with their masks under dropout, else
 * grt_batch_grad. */
static void analytic(grt_ctx *c, const grt_real *p, const grt_data *d, const size_t *idx,
                     grt_real *g)
{
    const grt_model *m = c->m;
    size_t i, k, np = m->param_count;
    grt_real *kept = NULL;
    if (m->state_count) {
        /* loss_grad updates the running statistics; the check leaves them
         * as they were, so every loss it computes sees the same state */
        kept = grt_xmalloc(m->state_count, sizeof(grt_real));
        memcpy(kept, c->state, m->state_count * sizeof(grt_real));
    }
    if (!(m->loss_seeded && m->loss_grad_seeded)) {
        grt_batch_grad(c, p, d, idx, d->n, g);
        goto done;
    }
    memset(c->acc, 0, np * sizeof(double));
    for (i = 0; i < d->n; i++) {
        one_example(c, d, idx[i]);
        memset(c->cgrad, 0, np * sizeof(grt_real));
        m->loss_grad_seeded(p, c->state, c->x, c->y, 1, c->cgrad, c->work, mask_seed(idx[i]));
        for (k = 0; k < np; k++)
            c->acc[k] += (double)c->cgrad[k];
    }
    for (k = 0; k < np; k++)
        g[k] = (grt_real)(c->acc[k] / (double)d->n);
done:
    if (kept) {
        memcpy(c->state, kept, m->state_count * sizeof(grt_real));
        free(kept);
    }
}

/* The Richardson-extrapolated central difference of the loss in p[i];
 * *plain gets the plain one over [p[i] - h, p[i] + h]. */
static double numeric(grt_ctx *c, grt_real *p, size_t i, const grt_data *d, double h,
                      double *plain)
{
    grt_real x = p[i];
    double D[2];
    int k;
    for (k = 0; k < 2; k++) {
        double s = h * (k + 1), lp, lm;
        grt_real up = (grt_real)((double)x + s), dn = (grt_real)((double)x - s);
        p[i] = up;
        lp = precise_loss(c, p, d);
        p[i] = dn;
        lm = precise_loss(c, p, d);
        D[k] = (lp - lm) / ((double)up - (double)dn);
    }
    p[i] = x;
    *plain = D[0];
    return (4 * D[0] - D[1]) / 3;
}

static double rel_error(double a, double n, double floor)
{
    double s = fabs(a) > fabs(n) ? fabs(a) : fabs(n);
    if (!isfinite(a) || !isfinite(n))
        return INFINITY;
    return fabs(a - n) / (s > floor ? s : floor);
}

/* The kink test above: whether the analytic gradient changes abruptly over
 * [x-h, x+h] (its second difference is at least a quarter of its largest
 * first difference, a ratio that for a smooth function is about h g''/g',
 * small; a kink on one side gives about 1, kinks on both sides less), and
 * that change is well above the gradient's own rounding) and the central
 * difference over the interval lies within its values there (with the
 * threshold's slack). */
static int at_kink(grt_ctx *c, grt_real *p, size_t i, const grt_data *d, const size_t *idx,
                   grt_real *g, double a, double h, double tol, double floor)
{
    grt_real x = p[i], up = (grt_real)((double)x + h), dn = (grt_real)((double)x - h);
    double lp, lm, cd, gp, gm, lo, hi, scale, slack, jump, bend;
    p[i] = up;
    lp = precise_loss(c, p, d);
    analytic(c, p, d, idx, g);
    gp = (double)g[i];
    p[i] = dn;
    lm = precise_loss(c, p, d);
    analytic(c, p, d, idx, g);
    gm = (double)g[i];
    p[i] = x;
    cd = (lp - lm) / ((double)up - (double)dn);
    lo = a < gp ? a : gp;
    lo = lo < gm ? lo : gm;
    hi = a > gp ? a : gp;
    hi = hi > gm ? hi : gm;
    scale = fabs(hi) > fabs(lo) ? fabs(hi) : fabs(lo);
    scale = scale > floor ? scale : floor;
    slack = tol * scale;
    jump = fabs(gp - a) > fabs(a - gm) ? fabs(gp - a) : fabs(a - gm);
    bend = fabs(gp - 2 * a + gm);
    return jump > slack && jump > NOISE * scale && bend >= jump / 4 && cd >= lo - slack &&
           cd <= hi + slack;
}

int grt_gradcheck(grt_ctx *c, grt_real *params, const grt_data *d, const grt_gc_opts *o,
                  double *worst, grt_err *e)
{
    const grt_model *m = c->m;
    size_t np = m->param_count, i;
    grt_real *grad = grt_xaligned(np * sizeof(grt_real));
    grt_real *g2 = grt_xaligned(np * sizeof(grt_real));
    size_t *idx = grt_xmalloc(d->n, sizeof(size_t));
    double all = 0, all_a = 0, all_n = 0, floor;
    size_t all_at = 0, kinks = 0;
    int t;
    grt_rng r;

    for (i = 0; i < d->n; i++)
        idx[i] = i;
    analytic(c, params, d, idx, grad);
    floor = precise_loss(c, params, d);
    floor = FLOOR * (isfinite(floor) && fabs(floor) > 1 ? fabs(floor) : 1);
    grt_rng_seed(&r, o->seed ^ UINT64_C(0x73616d706c65)); /* "sample" */

    for (t = 0; t < m->nparams; t++) {
        const grt_param_info *p = &m->params[t];
        size_t k, count = o->per_tensor && p->size > o->per_tensor ? o->per_tensor : p->size;
        size_t *pick = NULL, at = p->offset;
        double w = 0, wa = 0, wn = 0;
        size_t tk = 0;
        char shape[128], index[128];
        const char *name;
        int dd;
        size_t len = 0;

        if (count < p->size) {
            /* a seeded sample without repeats: a partial Fisher-Yates */
            pick = grt_xmalloc(p->size, sizeof(size_t));
            for (k = 0; k < p->size; k++)
                pick[k] = k;
            for (k = 0; k < count; k++) {
                size_t j = k + (size_t)grt_rng_below(&r, p->size - k), tmp = pick[k];
                pick[k] = pick[j];
                pick[j] = tmp;
            }
        }
        for (k = 0; k < count; k++) {
            size_t el = p->offset + (pick ? pick[k] : k);
            double a = (double)grad[el], best = INFINITY, bestn = 0;
            double h = STEP * (fabs((double)params[el]) > 1 ? fabs((double)params[el]) : 1);
            int tries;
            for (tries = 0; tries < 3; tries++, h /= 4) {
                double plain, n = numeric(c, params, el, d, h, &plain);
                double err = rel_error(a, n, floor), perr = rel_error(a, plain, floor);
                if (err < best || tries == 0)
                    best = err, bestn = n;
                /* the plain difference reaches half as far: past a kink
                 * that the extrapolation's 2h meets */
                if (perr < best)
                    best = perr, bestn = plain;
                if (best <= o->tol / 100)
                    break;
            }
            if (!(best <= o->tol / 10) && isfinite(a)) {
                int kink = 0;
                for (h *= 64; !kink && tries-- > 0; h /= 4)
                    kink = at_kink(c, params, el, d, idx, g2, a, h, o->tol, floor);
                if (kink) {
                    tk++;
                    continue;
                }
            }
            if (best > w || k == 0) {
                w = best;
                wa = a;
                wn = bestn;
                at = el;
            }
        }
        free(pick);
        if (w > all || t == 0) {
            all = w;
            all_a = wa;
            all_n = wn;
            all_at = at;
        }
        if (o->out) {
            /* "W1[16,30]", as the params command names a tensor */
            len = (size_t)snprintf(shape, sizeof shape, "%s[", p->name ? p->name : "?");
            for (dd = 0; dd < p->rank && len < sizeof shape; dd++)
                len += (size_t)snprintf(shape + len, sizeof shape - len, dd ? ",%d" : "%d",
                                        p->dim[dd]);
            if (len < sizeof shape)
                snprintf(shape + len, sizeof shape - len, "]");
            grt_param_at(m, at, &name, index, sizeof index);
            fprintf(o->out, "  %-16s %6zu of %-6zu worst %.2e at %-9s analytic %-13.6g "
                            "numeric %.6g",
                    shape, count, p->size, w, index, wa, wn);
            if (tk)
                fprintf(o->out, "  (%zu at a kink)", tk);
            fputc('\n', o->out);
        }
        kinks += tk;
    }
    *worst = all;
    free(grad);
    free(g2);
    free(idx);
    if (m->nparams > 0) {
        const char *name;
        char index[128];
        grt_param_at(m, all_at, &name, index, sizeof index);
        if (o->out && kinks)
            fprintf(o->out, "%zu element%s next to a kink (a point where the loss is not "
                            "differentiable) passed by the range of the gradient instead\n",
                    kinks, kinks == 1 ? "" : "s");
        if (o->out)
            fprintf(o->out, "worst relative error %.2e at %s%s; threshold %.0e: %s\n", all, name,
                    index, o->tol, all <= o->tol ? "ok" : "FAILED");
        if (!(all <= o->tol))
            return grt_fail(e, GRT_EXIT_DATA, GRT_E_GRADCHECK,
                            "%s: error: gradcheck failed: the gradient of '%s' at %s is %.9g, "
                            "central differences say %.9g (relative error %.2e, threshold %.0e)",
                            m->name, name, index, all_a, all_n, all, o->tol);
    }
    return 0;
}
