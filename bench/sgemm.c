/*
 * sgemm.c: the ceiling of the benchmark table: single-thread cblas_sgemm of
 * OpenBLAS on square float matrices, C = A*B (2*n^3 flops).
 *
 *   gcc -O2 bench/sgemm.c -lopenblas -o sgemm
 *   OPENBLAS_NUM_THREADS=1 ./sgemm [N [SAMPLES]]
 *
 * Prints: gflops=MEDIAN max_gflops=.. median_ms=.. n=.. samples=..
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200112L
#endif
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1024;
    int samples = argc > 2 ? atoi(argv[2]) : 30;
    if (n < 1 || samples < 1)
        return 2;
    openblas_set_num_threads(1);
    size_t nn = (size_t)n * (size_t)n;
    float *a, *b, *c;
    if (posix_memalign((void **)&a, 64, nn * sizeof(float)) ||
        posix_memalign((void **)&b, 64, nn * sizeof(float)) ||
        posix_memalign((void **)&c, 64, nn * sizeof(float)))
        return 1;
    uint64_t s = 1;
    for (size_t i = 0; i < nn; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        a[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        b[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
        c[i] = 0;
    }
    double *t = malloc(sizeof(double) * (size_t)samples);
    if (!t)
        return 1;
    for (int k = 0; k < 3; k++) /* warm-up */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n,
            0.0f, c, n);
    for (int k = 0; k < samples; k++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n,
            0.0f, c, n);
        t[k] = now() - t0;
    }
    qsort(t, (size_t)samples, sizeof(double), cmp_double);
    double med = samples % 2 ? t[samples / 2] : 0.5 * (t[samples / 2 - 1] + t[samples / 2]);
    double flops = 2.0 * (double)n * (double)n * (double)n;
    printf("gflops=%.3f max_gflops=%.3f median_ms=%.4f n=%d samples=%d check=%g\n",
        flops / med * 1e-9, flops / t[0] * 1e-9, med * 1e3, n, samples, (double)c[nn / 2]);
    free(t);
    free(c);
    free(b);
    free(a);
    return 0;
}
