/*
 * driver.c: the finite-difference gradient check of one generated model.
 *
 * Built by tests/gradcheck.sh against the pair `gradc -c` writes for a model
 * named gc in double precision. For several batch sizes n (1, 7 and the
 * compiled batch) it draws random params, inputs and targets, compares
 * gc_loss_grad's gradient with central differences of gc_loss, and prints
 * the worst relative error |a - d| / max(|a| + |d|, 1e-3) (the floor keeps
 * rounding noise on gradients that are zero from counting as error). Exit 1
 * when it exceeds the tolerance.
 *
 *   -DNCLASS=k  the target is a class index in 0..k-1 (else uniform in (0,1))
 *   -DVOCAB=V   the inputs are integer ids in 0..V-1, and with -DBADIDS one in
 *               five is not (NaN, -1, V, 1e30): such ids read zero rows
 *
 * A model with dropout (gc.h defines GC_DROPOUT) is checked in training
 * mode: gc_loss_grad_seeded against differences of gc_loss_seeded, both with
 * the same seed, so both see the same masks.
 *
 * A model with state (batch_norm: gc.h defines GC_STATE_COUNT) is checked in
 * training mode too, where the batch's statistics stand: its loss is the one
 * gc_loss_grad returns (or gc_loss_seeded's, with dropout), which the
 * running statistics it updates do not change; n = 1, 2, 7 and the batch.
 */
#include "gc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef NCLASS
#define NCLASS 0
#endif
#ifndef VOCAB
#define VOCAB 0
#endif
#ifndef TOL
#define TOL 1e-6
#endif
/* the central differences' step, relative to 1 + |param| */
#ifndef STEP
#define STEP 1e-5
#endif
/* one-sided slopes further apart than this (relative): a kink in the step */
#ifndef KINK
#define KINK 1e-3
#endif

#if defined GC_STATE_COUNT
static double state[GC_STATE_COUNT];
#ifdef GC_DROPOUT
#define LOSS(p, x, y, n, w) gc_loss_seeded(p, state, x, y, n, w, 0x5EEDu + (uint64_t)t)
#define LOSS_GRAD(p, x, y, n, g, w) gc_loss_grad_seeded(p, state, x, y, n, g, w, 0x5EEDu + (uint64_t)t)
#else
static double scratch_grad[GC_PARAM_COUNT + 1];
#define LOSS(p, x, y, n, w) gc_loss_grad(p, state, x, y, n, scratch_grad, w)
#define LOSS_GRAD(p, x, y, n, g, w) gc_loss_grad(p, state, x, y, n, g, w)
#endif
#define NSIZES 4
#elif defined GC_DROPOUT
#define LOSS(p, x, y, n, w) gc_loss_seeded(p, x, y, n, w, 0x5EEDu + (uint64_t)t)
#define LOSS_GRAD(p, x, y, n, g, w) gc_loss_grad_seeded(p, x, y, n, g, w, 0x5EEDu + (uint64_t)t)
#else
#define LOSS(p, x, y, n, w) gc_loss(p, x, y, n, w)
#define LOSS_GRAD(p, x, y, n, g, w) gc_loss_grad(p, x, y, n, g, w)
#endif

#ifndef NSIZES
#define NSIZES 3
#endif

static uint64_t rng = 0x1234567;

static double uni(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}

int main(void)
{
    static double params[GC_PARAM_COUNT + 1], grad[GC_PARAM_COUNT + 1];
    static double x[GC_MAX_BATCH * GC_INPUT_SIZE + 1], y[GC_MAX_BATCH * GC_TARGET_SIZE + 1];
    static unsigned char work[GC_WORKSPACE_BYTES + 64];
#if NSIZES == 4
    size_t ns[4] = {1, 2, 7, GC_MAX_BATCH};
    gc_init_state(state);
#else
    size_t ns[3] = {1, 7, GC_MAX_BATCH};
#endif
    double worst = 0;
    const char *worst_at = "";
    int kinks = 0; /* params whose step crossed a kink, checked one-sided */
    for (int t = 0; t < NSIZES; t++) {
        size_t n = ns[t] > GC_MAX_BATCH ? GC_MAX_BATCH : ns[t];
        gc_init(params, 42 + (uint64_t)t);
        for (size_t i = 0; i < GC_PARAM_COUNT; i++)
            params[i] += 0.5 * (2 * uni() - 1); /* away from zero-initialised symmetry */
        for (size_t i = 0; i < n * GC_INPUT_SIZE; i++)
            x[i] = VOCAB ? (double)(int)(uni() * VOCAB) : 2 * uni() - 1;
#ifdef BADIDS
        static const double bad[4] = {NAN, -1, VOCAB, 1e30};
        for (size_t i = 0; i < n * GC_INPUT_SIZE; i += 5)
            x[i] = bad[(i / 5) % 4];
#endif
        for (size_t i = 0; i < n * GC_TARGET_SIZE; i++)
            y[i] = NCLASS ? (double)(int)(uni() * NCLASS) : 0.05 + 0.9 * uni();
        double l = LOSS_GRAD(params, x, y, n, grad, work);
        double l2 = LOSS(params, x, y, n, work);
        if (!(fabs(l - l2) <= 1e-12 * (1 + fabs(l)))) {
            printf("FAIL: loss %.17g and loss_grad's loss %.17g differ (n=%zu)\n", l2, l, n);
            return 1;
        }
        for (size_t i = 0; i < GC_PARAM_COUNT; i++) {
            double p = params[i], h = STEP * (1 + fabs(p));
            params[i] = p + h;
            double lp = LOSS(params, x, y, n, work);
            params[i] = p - h;
            double lm = LOSS(params, x, y, n, work);
            params[i] = p;
            double num = (lp - lm) / (2 * h);
            double err = fabs(num - grad[i]) / fmax(1e-3, fabs(num) + fabs(grad[i]));
            /* A kink within the step (a relu input or the two largest
             * values of a max-pool window closer than h moves them): the
             * slopes on either side differ, and the central difference is
             * neither. The gradient must then be a one-sided slope, or
             * between them. */
            double right = (lp - l2) / h, left = (l2 - lm) / h;
            double bend = fabs(right - left) / fmax(1e-3, fabs(right) + fabs(left));
            if (!(err <= TOL) && bend > KINK) {
                double lo = fmin(left, right), hi = fmax(left, right);
                double out = grad[i] < lo ? lo - grad[i] : grad[i] > hi ? grad[i] - hi : 0;
                err = out / fmax(1e-3, fabs(lo) + fabs(hi)) > 1e-4 ? err : 0;
                kinks += err == 0;
            }
            if (!(err <= worst)) {
                worst = err;
                worst_at = t == NSIZES - 1 ? "n=batch" : ns[t] == 1 ? "n=1" : ns[t] == 2 ? "n=2" : "n=7";
            }
            if (!(err <= TOL))
                printf("  param %zu (n=%zu): analytic %.12g numeric %.12g rel %.3g\n", i, n, grad[i], num, err);
        }
    }
    if (kinks)
        printf("worst relative error %.3g (%s) over %d params, %d of them at a kink\n", worst, worst_at,
               GC_PARAM_COUNT, kinks);
    else
        printf("worst relative error %.3g (%s) over %d params\n", worst, worst_at, GC_PARAM_COUNT);
    return worst <= TOL ? 0 : 1;
}
