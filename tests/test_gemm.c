/*
 * test_gemm.c: the matrix product every generated file carries
 * (compiler/gemm_kernel.c) against a plain triple loop in double: every
 * transpose, sizes around the register tile and the cache blocks, alpha,
 * accumulation, bias and relu. The Makefile builds it three times: as is
 * (the portable kernel), with -mavx2 -mfma and with -march=native (the
 * AVX-512 kernel on machines that have it), and a fourth time with
 * -fopenmp on three threads (uneven shares of the panels); a build whose
 * kernel the CPU cannot run skips itself. C is 64-byte aligned and GK_NT_MIN is small here,
 * so that products written once in one pass over k take the streaming
 * stores (AVX-512) as the big weight gradients do.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

typedef float gk_real;
#define GK_IS_FLOAT 1
#define GK_NT_MIN 4096
#include "../compiler/gemm_kernel.c"

static unsigned long long rng = 88172645463325252ull;
static float rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 - 0.5);
}

/* one product of every kind at sizes M x N x K; returns the worst relative error */
static double check(long M, long N, long K, int ta, int tb, float alpha, int acc, int bias, int act)
{
    float *a = malloc(sizeof(float) * (size_t)(M * K + 1)), *b = malloc(sizeof(float) * (size_t)(K * N + 1));
    void *cp = NULL;
    if (posix_memalign(&cp, 64, sizeof(float) * (size_t)(M * N + 16)) != 0)
        cp = NULL;
    float *c = cp, *c0 = malloc(sizeof(float) * (size_t)(M * N + 1));
    assert_non_null(c);
    float *bv = malloc(sizeof(float) * (size_t)(N + 1));
    float *pack = malloc(sizeof(float) * (size_t)GK_PACK_ELEMS(M, N, K));
    for (long i = 0; i < M * K; i++)
        a[i] = rnd();
    for (long i = 0; i < K * N; i++)
        b[i] = rnd();
    for (long i = 0; i < M * N; i++)
        c[i] = c0[i] = rnd();
    for (long j = 0; j < N; j++)
        bv[j] = rnd();
    long ai = ta ? 1 : K, ak = ta ? M : 1, bk = tb ? 1 : N, bj = tb ? K : 1;
    gk_gemm(M, N, K, alpha, a, ai, ak, b, bk, bj, acc, c, N, bias ? bv : NULL, act, pack);
    double worst = 0;
    for (long i = 0; i < M; i++)
        for (long j = 0; j < N; j++) {
            double s = 0, mag = 0;
            for (long k = 0; k < K; k++) {
                double p = (double)a[i * ai + k * ak] * b[k * bk + j * bj];
                s += p;
                mag += fabs(p);
            }
            double want = alpha * s + (acc ? c0[i * N + j] : 0) + (bias ? bv[j] : 0);
            if (act == 1 && want < 0)
                want = 0;
            double scale = fabs(alpha) * mag + (acc ? fabs(c0[i * N + j]) : 0) + (bias ? fabs(bv[j]) : 0);
            double err = fabs(c[i * N + j] - want) / (scale + 1e-3);
            if (err > worst)
                worst = err;
        }
    free(a);
    free(b);
    free(c);
    free(c0);
    free(bv);
    free(pack);
    return worst;
}

static void test_sizes(void **state)
{
    (void)state;
    static const long sz[] = {1, 2, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 97};
    int n = (int)(sizeof sz / sizeof sz[0]);
    double worst = 0;
    for (int t = 0; t < 4; t++)
        for (int i = 0; i < n; i += 2)
            for (int j = 1; j < n; j += 3)
                for (int k = 0; k < n; k += 3) {
                    double e = check(sz[i], sz[j], sz[k], t & 1, t >> 1, 1.0f, 0, 0, 0);
                    if (e > worst)
                        worst = e;
                }
    printf("  gemm small sizes, all transposes: worst relative error %.2g\n", worst);
    assert_true(worst < 1e-5);
}

static void test_blocks(void **state)
{
    (void)state;
    /* past every block: K > KC, M > MC, N > NR panels; odd edges */
    double worst = 0, e;
    e = check(GK_MC + 13, 2 * GK_NR + 5, GK_KC + 37, 0, 1, 1.0f, 0, 0, 0), worst = e > worst ? e : worst;
    e = check(GK_MC * 2 + 1, GK_NR + 1, 2 * GK_KC + 1, 1, 0, 0.25f, 0, 0, 0), worst = e > worst ? e : worst;
    e = check(3, GK_NC + 40, 70, 0, 0, 1.0f, 0, 0, 0), worst = e > worst ? e : worst;
    e = check(64, 256, 784, 0, 1, 1.0f, 0, 0, 0), worst = e > worst ? e : worst;
    /* B's rows contiguous, copied across the panels; big enough for threads */
    e = check(200, 6 * GK_NR + 5, GK_KC + 44, 0, 0, 1.0f, 0, 1, 1), worst = e > worst ? e : worst;
    e = check(GK_MC + 3, GK_NC + 3 * GK_NR, 40, 1, 0, 1.0f, 1, 0, 0), worst = e > worst ? e : worst;
    printf("  gemm past the cache blocks: worst relative error %.2g\n", worst);
    assert_true(worst < 1e-5);
}

static void test_stream(void **state)
{
    (void)state;
    /* one pass over k, no accumulation, rows a multiple of 16 apart, M * N
     * >= GK_NT_MIN: full panels streamed, the last (16 wide) stored masked */
    double worst = 0, e;
    for (int t = 0; t < 4; t++) {
        e = check(GK_MC + 13, 2 * GK_NR + 16, 70, t & 1, t >> 1, 0.5f, 0, 0, 0), worst = e > worst ? e : worst;
        e = check(2 * GK_MR + 3, 4 * GK_NR, GK_KC, t & 1, t >> 1, 1.0f, 0, 1, 1), worst = e > worst ? e : worst;
    }
    printf("  gemm streamed stores: worst relative error %.2g\n", worst);
    assert_true(worst < 1e-5);
}

static void test_epilogue(void **state)
{
    (void)state;
    double worst = 0, e;
    for (int t = 0; t < 4; t++) {
        e = check(37, 45, GK_KC + 9, t & 1, t >> 1, -0.5f, 1, 0, 0), worst = e > worst ? e : worst;
        e = check(37, 45, GK_KC + 9, t & 1, t >> 1, 1.0f, 0, 1, 1), worst = e > worst ? e : worst;
        e = check(9, 33, 5, t & 1, t >> 1, 2.0f, 1, 1, 1), worst = e > worst ? e : worst;
        e = check(4, 3, 0, t & 1, t >> 1, 1.0f, 1, 1, 1), worst = e > worst ? e : worst; /* K = 0 */
    }
    printf("  gemm alpha, accumulate, bias, relu: worst relative error %.2g\n", worst);
    assert_true(worst < 1e-5);
}

int main(void)
{
#if defined(GK_AVX512)
    if (!__builtin_cpu_supports("avx512f")) {
        printf("  gemm: AVX-512 kernel, CPU lacks it: skipped\n");
        return 0;
    }
    printf("  gemm: AVX-512 kernel %dx%d\n", GK_MR, GK_NR);
#elif defined(GK_AVX2)
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
        printf("  gemm: AVX2 kernel, CPU lacks it: skipped\n");
        return 0;
    }
    printf("  gemm: AVX2 kernel %dx%d\n", GK_MR, GK_NR);
#else
    printf("  gemm: portable kernel %dx%d\n", GK_MR, GK_NR);
#endif
#if defined(_OPENMP)
    omp_set_num_threads(3);
    printf("  gemm: on 3 threads\n");
#endif
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_blocks),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_epilogue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
