/*
 * step.c: times one full training step of a gradc-generated model: forward,
 * loss, backward (NAME_loss_grad) and the SGD update p -= lr*g, on one
 * mini-batch already in memory. Compiled against a generated pair:
 *
 *   gcc -O3 -march=native -D_POSIX_C_SOURCE=200112L -DMODEL=m3 -DUMODEL=M3 \
 *       -DNCLASS=10 -include m3.h bench/step.c m3.c -lm -o step
 *
 * (-D_POSIX_C_SOURCE on the command line: the -include'd header is read
 * before this file, so a #define here comes too late under -std=c99.)
 *
 * NCLASS: 0 real-valued targets in [-1,1], N >= 2 random class indices
 * 0..N-1 held in floats (2 also serves bce's 0/1 targets). VOCAB: inputs
 * are token ids 0..VOCAB-1 (int(V) inputs). ADAMW: the update is AdamW.
 * With -fopenmp, SPLIT: the batch split among the threads as an executable
 * of gradc --threads splits it (runtime/rt_train.c, grt_chunk_grad): each
 * thread the loss_grad of its part with a workspace and gradient of its
 * own, the gradients then added weighted by the parts' sizes; the products
 * inside a part are not split again. Without SPLIT the threads share each
 * matrix product (and the update) instead.
 *
 *   ./step [MIN_SAMPLES [MAX_SAMPLES [BUDGET_S [WARM_S]]]]
 *
 * Warm-up runs steps for WARM_S seconds (at least 2 steps), then timing
 * samples are taken until MIN_SAMPLES are done and either MAX_SAMPLES are
 * done or BUDGET_S seconds have passed. A sample is REPS consecutive steps
 * timed together (REPS chosen so that a sample lasts >= 50 us), divided by
 * REPS. Prints one line:
 *   median_ms=.. min_ms=.. samples=.. reps=.. batch=.. loss0=.. loss=..
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200112L
#endif
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(_OPENMP)
#include <omp.h>
#endif

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(MODEL, CAT(_, name))
#define MAC(name) CAT(UMODEL, CAT(_, name))

#define PARAM_COUNT MAC(PARAM_COUNT)
#define INPUT_SIZE MAC(INPUT_SIZE)
#define TARGET_SIZE MAC(TARGET_SIZE)
#define MAX_BATCH MAC(MAX_BATCH)
#define WORKSPACE_BYTES MAC(WORKSPACE_BYTES)

#ifndef NCLASS
#define NCLASS 0
#endif
#ifndef LR
#define LR 0.01f
#endif

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *alloc64(size_t bytes)
{
    void *p = NULL;
    if (bytes == 0)
        bytes = 64;
    bytes = (bytes + 63) / 64 * 64;
    if (posix_memalign(&p, 64, bytes) != 0) {
        fprintf(stderr, "step: out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    memset(p, 0, bytes); /* touch every page before timing */
    return p;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double urand(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#ifdef ADAMW
static float *adam_m, *adam_v;
static long adam_t;
#endif

#if defined(SPLIT) && defined(_OPENMP)
#define SPLIT_MAX 64
static void *split_work[SPLIT_MAX];
static float *split_grad[SPLIT_MAX];
static double split_loss[SPLIT_MAX];

static void *alloc64(size_t bytes);

static float loss_grad(const float *params, const float *x, const float *y, size_t n, float *grad, void *work)
{
    int T = omp_get_max_threads();
    if (T > SPLIT_MAX)
        T = SPLIT_MAX;
    if ((size_t)T > n)
        T = (int)n;
    if (T < 2)
        return FN(loss_grad)(params, x, y, n, grad, work);
    for (int t = 1; t < T; t++)
        if (!split_work[t]) {
            split_work[t] = alloc64((size_t)WORKSPACE_BYTES);
            split_grad[t] = alloc64(sizeof(float) * (size_t)PARAM_COUNT);
        }
#pragma omp parallel num_threads(T)
    {
        int t = omp_get_thread_num();
        size_t lo = n * (size_t)t / (size_t)T, hi = n * (size_t)(t + 1) / (size_t)T;
        split_loss[t] = FN(loss_grad)(params, x + lo * (size_t)INPUT_SIZE, y + lo * (size_t)TARGET_SIZE, hi - lo,
                                      t ? split_grad[t] : grad, t ? split_work[t] : work);
#pragma omp barrier
        for (int u = 0; u < T; u++) {
            const float w = (float)((double)(n * (size_t)(u + 1) / (size_t)T - n * (size_t)u / (size_t)T) / (double)n);
            const float *restrict gu = split_grad[u];
            float *restrict g = grad;
#pragma omp for schedule(static)
            for (size_t i = 0; i < (size_t)PARAM_COUNT; i++)
                g[i] = u ? g[i] + w * gu[i] : g[i] * w;
        }
    }
    double l = 0;
    for (int t = 0; t < T; t++)
        l += (double)(n * (size_t)(t + 1) / (size_t)T - n * (size_t)t / (size_t)T) * split_loss[t];
    return (float)(l / (double)n);
}
#else
#define loss_grad FN(loss_grad)
#endif

/* The training step being timed: SGD, or with -DADAMW the AdamW update of
 * the GPT recipe (betas 0.9/0.99, weight decay 0.1), as PyTorch's peer does.
 * (bench/m6.sh compiles this file with -fno-math-errno, so that sqrtf's
 * loop is in vectors.) */
static float step(float *restrict params, const float *x, const float *y, size_t n,
    float *restrict grad, void *work)
{
    float loss = loss_grad(params, x, y, n, grad, work);
    const float lr = LR;
#ifdef ADAMW
    adam_t++;
    const float b1 = 0.9f, b2 = 0.99f, wd = 0.1f, eps = 1e-8f;
    const float c1 = 1 - powf(b1, (float)adam_t), c2 = 1 - powf(b2, (float)adam_t);
    const float a1 = lr / c1, ic2 = 1 / c2, lwd = lr * wd;
    float *restrict am = adam_m, *restrict av = adam_v;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (PARAM_COUNT > 100000)
#endif
    for (size_t i = 0; i < (size_t)PARAM_COUNT; i++) {
        float g = grad[i];
        am[i] = b1 * am[i] + (1 - b1) * g;
        av[i] = b2 * av[i] + (1 - b2) * g * g;
        params[i] -= a1 * am[i] / (sqrtf(av[i] * ic2) + eps) + lwd * params[i];
    }
#else
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (PARAM_COUNT > 100000)
#endif
    for (size_t i = 0; i < (size_t)PARAM_COUNT; i++)
        params[i] -= lr * grad[i];
#endif
    return loss;
}

int main(int argc, char **argv)
{
#if defined(_OPENMP)
    omp_set_max_active_levels(1); /* SPLIT: a part's products on its own thread */
#endif
    long min_samples = argc > 1 ? atol(argv[1]) : 20;
    long max_samples = argc > 2 ? atol(argv[2]) : 2000;
    double budget = argc > 3 ? atof(argv[3]) : 2.0;
    double warm = argc > 4 ? atof(argv[4]) : 0.5;
    size_t n = (size_t)MAX_BATCH;
    if (min_samples < 1)
        min_samples = 1;
    if (max_samples < min_samples)
        max_samples = min_samples;

    float *params = alloc64(sizeof(float) * (size_t)PARAM_COUNT);
    float *grad = alloc64(sizeof(float) * (size_t)PARAM_COUNT);
    float *x = alloc64(sizeof(float) * n * (size_t)INPUT_SIZE);
    float *y = alloc64(sizeof(float) * n * (size_t)TARGET_SIZE);
    void *work = alloc64((size_t)WORKSPACE_BYTES);
    double *times = malloc(sizeof(double) * (size_t)max_samples);
    if (!times)
        return 1;

    FN(init)(params, 42);
#ifdef VOCAB /* token ids 0..VOCAB-1, as floats */
    for (size_t i = 0; i < n * (size_t)INPUT_SIZE; i++)
        x[i] = (float)(int)(urand() * VOCAB);
#else
    for (size_t i = 0; i < n * (size_t)INPUT_SIZE; i++)
        x[i] = (float)(urand() * 2 - 1);
#endif
#ifdef ADAMW
    adam_m = alloc64(sizeof(float) * (size_t)PARAM_COUNT);
    adam_v = alloc64(sizeof(float) * (size_t)PARAM_COUNT);
#endif
    for (size_t i = 0; i < n * (size_t)TARGET_SIZE; i++)
        y[i] = NCLASS ? (float)(int)(urand() * NCLASS) : (float)(urand() * 2 - 1);

    /* warm-up; the fastest warm-up step sets the repeat count */
    float loss0 = step(params, x, y, n, grad, work), loss = loss0;
    double t_start = now(), best = 1e30;
    for (int k = 0; k < 1 || now() - t_start < warm; k++) {
        double t0 = now();
        loss = step(params, x, y, n, grad, work);
        double dt = now() - t0;
        if (dt < best)
            best = dt;
    }
    long reps = best >= 50e-6 ? 1 : (long)ceil(50e-6 / (best > 1e-9 ? best : 1e-9));

    long ns = 0;
    t_start = now();
    while (ns < min_samples || (ns < max_samples && now() - t_start < budget)) {
        double t0 = now();
        for (long r = 0; r < reps; r++)
            loss = step(params, x, y, n, grad, work);
        times[ns++] = (now() - t0) / (double)reps;
    }
    qsort(times, (size_t)ns, sizeof(double), cmp_double);
    double med = ns % 2 ? times[ns / 2] : 0.5 * (times[ns / 2 - 1] + times[ns / 2]);
    printf("median_ms=%.6f min_ms=%.6f samples=%ld reps=%ld batch=%zu loss0=%.6g loss=%.6g\n",
        med * 1e3, times[0] * 1e3, ns, reps, n, (double)loss0, (double)loss);
    free(times);
    free(work);
    free(y);
    free(x);
    free(grad);
    free(params);
    if (!isfinite(loss))
        fprintf(stderr, "step: warning: the loss is not finite (%g)\n", (double)loss);
    return 0;
}
