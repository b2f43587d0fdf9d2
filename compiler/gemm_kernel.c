/*
 * gemm_kernel.c: the matrix product every generated file carries.
 *
 * This is a template, not part of gradc itself: the build turns it into a
 * string (build/gemm_kernel.inc) that emit_c.c writes into each generated
 * .c, with "gk_" renamed to the model's prefix ("seed_gk_"), "GK_" to its
 * macro prefix and gk_real to float or double. It also compiles on its own
 * (with -Dgk_real=float), which is how tests/test_gemm.c checks it.
 *
 *   C[M,N] = act(alpha * A·B (+ C when acc) (+ bias[j])), C row-major with
 *   row stride ldc, A(i,k) at a[i*ai + k*ak], B(k,j) at b[k*bk + j*bj],
 *   act 0 for none, 1 for relu; bias may be NULL
 *
 * so a transposed operand is only another pair of strides. The product is
 * blocked as in Goto's algorithm: a block of B (KC x NC) and a block of A
 * (MC x KC) are copied into panels that the micro-kernel reads
 * sequentially; the micro-kernel keeps an MR x NR tile of C in registers.
 * Three micro-kernels, chosen at compile time: AVX-512 (float, 8 x 32),
 * AVX2 with FMA (float, 6 x 16), and portable C (4 x 16) that compilers
 * vectorize. The panels live in the caller's workspace: pack points at
 * GK_PACK_ELEMS(...) elements, no allocation. With OpenMP (-fopenmp) the
 * column panels of a block are shared among the threads.
 *
 * Two things keep the AVX-512 kernel at full speed on big operands whose
 * rows are a multiple of 4 KiB apart (a 4096-wide layer), where the 8 rows
 * of a tile of C fall into the same cache sets: a tile that accumulates
 * has its lines of C prefetched as its loop starts, and a C of at least
 * GK_NT_MIN elements written once in one pass over k (a weight gradient
 * summed over the batch) is written with streaming stores that go around
 * the caches (kernel act bit 2). M4's 4096 x 4096 weight gradient went
 * from 54 to 44 ms with the latter, its K = 4096 products gained 5-20%
 * with the former (docs/kernels.md).
 */
#if !defined(GK_PORTABLE) && defined(__AVX512F__) && GK_IS_FLOAT
#include <immintrin.h>
#define GK_MR 8
#define GK_NR 32
#define GK_AVX512 1
#elif !defined(GK_PORTABLE) && defined(__AVX2__) && defined(__FMA__) && GK_IS_FLOAT
#include <immintrin.h>
#define GK_MR 6
#define GK_NR 16
#define GK_AVX2 1
#else
#define GK_MR 4
#define GK_NR 16
#endif
#if defined(_OPENMP)
#include <omp.h>
#endif
#define GK_MIN(a, b) ((a) < (b) ? (a) : (b))
#ifndef GK_NT_MIN
#define GK_NT_MIN (1L << 21)
#endif
#ifndef GK_KC
#define GK_KC 256
#endif
#ifndef GK_MC
#define GK_MC 96
#endif
#ifndef GK_NC
#define GK_NC 2048
#endif

#if defined(GK_AVX512)
/* p[k*pl + l] = s[l*sl + k] for l, k < 16: a 16 x 16 block transposed in
 * registers (four rounds of shuffles), for panels whose lines run along k */
static void gk_tr16(const float *s, long sl, float *p, long pl)
{
    __m512 r[16], t[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        r[i] = _mm512_loadu_ps(s + i * sl);
#pragma GCC unroll 16
    for (int i = 0; i < 16; i += 2) { /* pairs of lines, element by element */
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; i += 4) { /* then pairs of pairs */
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    }
#pragma GCC unroll 16
    for (int i = 0; i < 4; i++) { /* 128-bit quarters of groups of four lines */
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        _mm512_storeu_ps(p + i * pl, r[i]);
}
#endif

/* Packs one panel: n <= W lines (rows of A, columns of B) by kc, line l at
 * k being s[l*sl + k*sk], into p[k*W + l], k-major, lines n..W-1 zero. A
 * whole panel gets loops of constant length: lines that run along k (sk ==
 * 1) are transposed 16 k at a time so reads and writes stay in cache, 16
 * lines at a time along the whole kc (fewer streams for the memory to
 * serve), the same lines of the panel packed next (next, if not NULL)
 * fetched as they go: a layer's weights come from memory, and the 16 runs
 * of kc elements are too short for the hardware to fetch ahead. */
#if (defined(GK_AVX512) || defined(GK_AVX2)) && !defined(GK_NO_PREFETCH)
#define GK_PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
#else
#define GK_PREFETCH(p) ((void)(p))
#endif
static void gk_pack(long n, long kc, const gk_real *s, long sl, long sk, int W, gk_real *p, const gk_real *next)
{
#if defined(GK_AVX512)
    if (sk == 1 && n == W && W % 16 == 0) {
        long kfull = kc / 16 * 16;
        for (int l0 = 0; l0 < W; l0 += 16)
            for (long k0 = 0; k0 < kfull; k0 += 16) {
                if (next)
                    for (int l = l0; l < l0 + 16; l++)
                        GK_PREFETCH(next + l * sl + k0);
                gk_tr16(s + l0 * sl + k0, sl, p + k0 * W + l0, W);
            }
        for (int l = 0; l < W; l++)
            for (long k = kfull; k < kc; k++)
                p[k * W + l] = s[l * sl + k];
        return;
    }
#endif
    (void)next;
    if (sk == 1 && n == W) {
        long kfull = kc / 16 * 16;
        for (long k0 = 0; k0 < kfull; k0 += 16)
            for (int l = 0; l < W; l++)
                for (int k = 0; k < 16; k++)
                    p[(k0 + k) * W + l] = s[l * sl + k0 + k];
        for (int l = 0; l < W; l++)
            for (long k = kfull; k < kc; k++)
                p[k * W + l] = s[l * sl + k];
        return;
    }
    if (sl == 1 && n == W) { /* lines side by side: each k a row copied as it is */
        for (long k = 0; k < kc; k++)
            for (int l = 0; l < W; l++)
                p[k * W + l] = s[k * sk + l];
        return;
    }
    for (long k = 0; k < kc; k++) {
        for (long l = 0; l < n; l++)
            p[k * W + l] = s[l * sl + k * sk];
        for (long l = n; l < W; l++)
            p[k * W + l] = 0;
    }
}

/* Packs panels p0..p1-1 of a block of B whose rows are contiguous (B(k,j)
 * at s[k*sk + j], j < nc) into p[jp*W*kc + k*W + l], columns past nc zero:
 * 8 rows at a time across the panels' whole width, so that memory is read
 * in runs of that width, not of one panel's. */
static void gk_pack_rows(long nc, long kc, long p0, long p1, const gk_real *s, long sk, int W, gk_real *p)
{
    long pf = GK_MIN(p1, nc / W); /* the full panels */
    for (long g = 0; g < kc; g += 8) {
        long ge = GK_MIN(g + 8, kc);
        for (long jp = p0; jp < pf; jp++)
            for (long k = g; k < ge; k++)
                for (int l = 0; l < W; l++)
                    p[jp * W * kc + k * W + l] = s[k * sk + jp * W + l];
        if (pf < p1)
            for (long k = g; k < ge; k++)
                for (int l = 0; l < W; l++)
                    p[pf * W * kc + k * W + l] = pf * W + l < nc ? s[k * sk + pf * W + l] : 0;
    }
}

#if defined(GK_AVX512)
/* 8 x 32 tile: 16 accumulators, 2 loads of B and 8 broadcasts of A per k */
static void gk_kernel(long kc, const float *a, const float *b, float *c, long ldc, long mr, long nr, float alpha,
                      int acc, const float *bias, int act)
{
    if (acc) /* C's lines on their way while the loop runs: they are far apart, often in the same sets */
        for (long i = 0; i < mr; i++) {
            _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + i * ldc + 16), _MM_HINT_T0);
        }
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
           c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    for (long k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16), t;
        t = _mm512_set1_ps(a[0]); c00 = _mm512_fmadd_ps(t, b0, c00); c01 = _mm512_fmadd_ps(t, b1, c01);
        t = _mm512_set1_ps(a[1]); c10 = _mm512_fmadd_ps(t, b0, c10); c11 = _mm512_fmadd_ps(t, b1, c11);
        t = _mm512_set1_ps(a[2]); c20 = _mm512_fmadd_ps(t, b0, c20); c21 = _mm512_fmadd_ps(t, b1, c21);
        t = _mm512_set1_ps(a[3]); c30 = _mm512_fmadd_ps(t, b0, c30); c31 = _mm512_fmadd_ps(t, b1, c31);
        t = _mm512_set1_ps(a[4]); c40 = _mm512_fmadd_ps(t, b0, c40); c41 = _mm512_fmadd_ps(t, b1, c41);
        t = _mm512_set1_ps(a[5]); c50 = _mm512_fmadd_ps(t, b0, c50); c51 = _mm512_fmadd_ps(t, b1, c51);
        t = _mm512_set1_ps(a[6]); c60 = _mm512_fmadd_ps(t, b0, c60); c61 = _mm512_fmadd_ps(t, b1, c61);
        t = _mm512_set1_ps(a[7]); c70 = _mm512_fmadd_ps(t, b0, c70); c71 = _mm512_fmadd_ps(t, b1, c71);
        a += 8;
        b += 32;
    }
    __m512 r[16] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71};
    __m512 al = _mm512_set1_ps(alpha);
    __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xffff : (1u << nr) - 1u);
    __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xffff : nr > 16 ? (1u << (nr - 16)) - 1u : 0u);
    __m512 bv0 = _mm512_setzero_ps(), bv1 = bv0, zero = bv0;
    if (bias) {
        bv0 = _mm512_maskz_loadu_ps(m0, bias);
        bv1 = _mm512_maskz_loadu_ps(m1, bias + 16);
    }
    for (long i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        __m512 v0 = _mm512_fmadd_ps(al, r[2 * i], bv0), v1 = _mm512_fmadd_ps(al, r[2 * i + 1], bv1);
        if (acc) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, ci));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, ci + 16));
        }
        if (act & 1) {
            v0 = _mm512_max_ps(zero, v0); /* a NaN stays a NaN */
            v1 = _mm512_max_ps(zero, v1);
        }
        if (act & 2) { /* whole aligned lines, not to be read soon */
            _mm512_stream_ps(ci, v0);
            _mm512_stream_ps(ci + 16, v1);
        } else {
            _mm512_mask_storeu_ps(ci, m0, v0);
            _mm512_mask_storeu_ps(ci + 16, m1, v1);
        }
    }
}
#elif defined(GK_AVX2)
/* 6 x 16 tile: 12 accumulators */
static void gk_kernel(long kc, const float *a, const float *b, float *c, long ldc, long mr, long nr, float alpha,
                      int acc, const float *bias, int act)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
           c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (long k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), t;
        t = _mm256_broadcast_ss(a + 0); c00 = _mm256_fmadd_ps(t, b0, c00); c01 = _mm256_fmadd_ps(t, b1, c01);
        t = _mm256_broadcast_ss(a + 1); c10 = _mm256_fmadd_ps(t, b0, c10); c11 = _mm256_fmadd_ps(t, b1, c11);
        t = _mm256_broadcast_ss(a + 2); c20 = _mm256_fmadd_ps(t, b0, c20); c21 = _mm256_fmadd_ps(t, b1, c21);
        t = _mm256_broadcast_ss(a + 3); c30 = _mm256_fmadd_ps(t, b0, c30); c31 = _mm256_fmadd_ps(t, b1, c31);
        t = _mm256_broadcast_ss(a + 4); c40 = _mm256_fmadd_ps(t, b0, c40); c41 = _mm256_fmadd_ps(t, b1, c41);
        t = _mm256_broadcast_ss(a + 5); c50 = _mm256_fmadd_ps(t, b0, c50); c51 = _mm256_fmadd_ps(t, b1, c51);
        a += 6;
        b += 16;
    }
    float t[6][16];
    _mm256_storeu_ps(t[0], c00); _mm256_storeu_ps(t[0] + 8, c01);
    _mm256_storeu_ps(t[1], c10); _mm256_storeu_ps(t[1] + 8, c11);
    _mm256_storeu_ps(t[2], c20); _mm256_storeu_ps(t[2] + 8, c21);
    _mm256_storeu_ps(t[3], c30); _mm256_storeu_ps(t[3] + 8, c31);
    _mm256_storeu_ps(t[4], c40); _mm256_storeu_ps(t[4] + 8, c41);
    _mm256_storeu_ps(t[5], c50); _mm256_storeu_ps(t[5] + 8, c51);
    for (long i = 0; i < mr; i++)
        for (long j = 0; j < nr; j++) {
            float v = alpha * t[i][j] + (acc ? c[i * ldc + j] : 0.0f) + (bias ? bias[j] : 0.0f);
            c[i * ldc + j] = (act & 1) && v < 0 ? 0.0f : v;
        }
}
#else
/* portable: a 4 x 16 tile in a local array that compilers keep in vector registers */
static void gk_kernel(long kc, const gk_real *a, const gk_real *b, gk_real *c, long ldc, long mr, long nr,
                      gk_real alpha, int acc, const gk_real *bias, int act)
{
    gk_real t[GK_MR][GK_NR];
    for (int i = 0; i < GK_MR; i++)
        for (int j = 0; j < GK_NR; j++)
            t[i][j] = 0;
    for (long k = 0; k < kc; k++) {
        for (int i = 0; i < GK_MR; i++)
            for (int j = 0; j < GK_NR; j++)
                t[i][j] += a[i] * b[j];
        a += GK_MR;
        b += GK_NR;
    }
    for (long i = 0; i < mr; i++)
        for (long j = 0; j < nr; j++) {
            gk_real v = alpha * t[i][j] + (acc ? c[i * ldc + j] : 0) + (bias ? bias[j] : 0);
            c[i * ldc + j] = (act & 1) && v < 0 ? 0 : v;
        }
}
#endif

/* the panel elements a product of these sizes needs (an upper bound for every kernel) */
#define GK_PACK_ELEMS(M, N, K) (GK_MIN(K, GK_KC) * (GK_MIN(N, GK_NC) + 32 + GK_MIN(M, GK_MC) + 8))

static void gk_gemm(long M, long N, long K, gk_real alpha, const gk_real *a, long ai, long ak, const gk_real *b,
                    long bk, long bj, int acc, gk_real *c, long ldc, const gk_real *bias, int act, gk_real *pack)
{
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {
        for (long i = 0; i < M; i++)
            for (long j = 0; j < N; j++) {
                gk_real v = (acc ? c[i * ldc + j] : 0) + (bias ? bias[j] : 0);
                c[i * ldc + j] = (act & 1) && v < 0 ? 0 : v;
            }
        return;
    }
    long kcmax = GK_MIN(K, GK_KC);
    /* a big C written once, in one pass over k, goes around the caches:
     * its rows are often a multiple of 4 KiB apart, so that the lines of a
     * tile would all fall into the same cache sets and push the panels out */
#if defined(GK_AVX512)
    int nt = !acc && K <= GK_KC && M * N >= GK_NT_MIN && ldc % 16 == 0 && ((size_t)c & 63) == 0 ? 2 : 0;
#else
    int nt = 0;
#endif
    long kstep = (K + (K + GK_KC - 1) / GK_KC - 1) / ((K + GK_KC - 1) / GK_KC); /* even blocks of k */
    gk_real *pb = pack, *pa = pack + kcmax * (GK_MIN(N, GK_NC) + 32);
    /* with OpenMP every thread runs the block loops; the panels of each
     * block, copied and multiplied, are shared among them */
#if defined(_OPENMP)
#pragma omp parallel if (M * N * K > 2000000)
#endif
    {
        for (long jc = 0; jc < N; jc += GK_NC) {
            long nc = GK_MIN(N - jc, GK_NC);
            long npan = (nc + GK_NR - 1) / GK_NR;
            for (long pc = 0; pc < K; pc += kstep) {
                long kc = GK_MIN(K - pc, kstep);
                int ac = acc || pc > 0, last = pc + kc >= K;
                if (bj == 1 && nc >= GK_NR) { /* B's rows contiguous: each thread its share of the panels */
#if defined(_OPENMP)
                    long T = omp_get_num_threads(), t = omp_get_thread_num();
                    gk_pack_rows(nc, kc, npan * t / T, npan * (t + 1) / T, b + pc * bk + jc, bk, GK_NR, pb);
#pragma omp barrier
#else
                    gk_pack_rows(nc, kc, 0, npan, b + pc * bk + jc, bk, GK_NR, pb);
#endif
                } else {
#if defined(_OPENMP)
#pragma omp for schedule(static)
#endif
                    for (long jp = 0; jp < npan; jp++) {
                        long jr = jp * GK_NR;
                        gk_pack(GK_MIN(nc - jr, GK_NR), kc, b + pc * bk + (jc + jr) * bj, bj, bk, GK_NR, pb + jr * kc,
                                jr + 2 * GK_NR <= nc ? b + pc * bk + (jc + jr + GK_NR) * bj : NULL);
                    }
                }
                for (long ic = 0; ic < M; ic += GK_MC) {
                    long mc = GK_MIN(M - ic, GK_MC);
                    long mpan = (mc + GK_MR - 1) / GK_MR;
#if defined(_OPENMP)
#pragma omp for schedule(static)
#endif
                    for (long ip = 0; ip < mpan; ip++) {
                        long ir = ip * GK_MR;
                        gk_pack(GK_MIN(mc - ir, GK_MR), kc, a + (ic + ir) * ai + pc * ak, ai, ak, GK_MR, pa + ir * kc, NULL);
                    }
#if defined(_OPENMP)
#pragma omp for schedule(static) collapse(2)
#endif
                    for (long jp = 0; jp < npan; jp++)
                        for (long ip = 0; ip < mpan; ip++) {
                            long jr = jp * GK_NR, ir = ip * GK_MR;
                            long nr = GK_MIN(nc - jr, GK_NR), mr = GK_MIN(mc - ir, GK_MR);
                            gk_kernel(kc, pa + ir * kc, pb + jr * kc, c + (ic + ir) * ldc + jc + jr, ldc, mr, nr,
                                      alpha, ac, last && bias ? bias + jc + jr : NULL,
                                      last ? act | (nr == GK_NR ? nt : 0) : 0);
                        }
                }
            }
        }
#if defined(GK_AVX512)
        if (nt)
            _mm_sfence(); /* the streamed lines visible before anyone reads C */
#endif
    }
}
