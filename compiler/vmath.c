/*
 * vmath.c: e^x and log(1 + u) in float, for the loops of sigmoid, softplus
 * and binary cross-entropy that every float model with them carries.
 *
 * Like gemm_kernel.c, a template: the build turns it into a string
 * (build/vmath.inc) that emit_c.c writes into a generated .c, "vm_" renamed
 * to the model's ("seed_vm_"), "VM_" likewise; tests/test_vmath.c compiles it on its own and
 * measures its error against libm in double.
 *
 * Both are branch-free (selects, not branches; no call), so that a loop
 * over a batch calling them is vectorized by the C compiler: libm's expf
 * and logf are calls, one element at a time. The polynomials are Cephes'
 * (S. L. Moshier), about 1 ulp; tests/test_vmath.c checks at most 2 ulp
 * against exp and log1p in double over the whole range, the special values
 * (NaN through, inf, 0 below the normal range) and that a loop over each
 * vectorizes (gcc -O3).
 */

/* inlined into every loop, whatever the optimizer's estimate of their size
 * (gcc -O2 would call them from a loop with several of them, which then
 * does not vectorize) */
#if defined(__GNUC__)
#define VM_INLINE static inline __attribute__((always_inline))
#else
#define VM_INLINE static inline
#endif

/* e^x: x = n·ln 2 + r with |r| <= ln 2 / 2 (ln 2 in two parts, so that r is
 * exact), e^r by a degree-7 polynomial, times 2^n built in the exponent
 * bits in two halves, so that past the largest float comes inf. Results
 * below the smallest normal float are 0 (as with flush-to-zero: no
 * subnormal arithmetic, which costs a hundred cycles an operation on some
 * processors; sigmoid, softplus and bce need no e^x that small). A NaN
 * goes through. Written with integer min and bit operations, not selects:
 * the compiler would split a select on x into two copies of the body (one
 * for the clamped constant), and such a loop no longer vectorizes. */
VM_INLINE float vm_expf(float x)
{
    union {
        int i;
        unsigned u;
        float f;
    } v, lo, hi, s1, s2, r;
    lo.f = 87.3365479f; /* -log(smallest normal float), rounded down */
    hi.f = 89.0f;
    v.f = x;
    /* |x| clamped to 87.34 (x < 0) or 89 (x > 0), a NaN to one of them */
    unsigned neg = v.u >> 31;
    int lim = hi.i + (int)neg * (lo.i - hi.i), mag = v.i & 0x7fffffff;
    mag = mag < lim ? mag : lim;
    v.i = (int)(neg << 31) | mag;
    float xc = v.f;
    float t = xc * 1.44269504088896341f;
    float fn = (t + 12582912.0f) - 12582912.0f; /* rounded to the nearest integer (1.5·2^23) */
    int n = (int)fn;
    float rr = xc - fn * 0.693359375f + fn * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * rr + 1.3981999507e-3f;
    p = p * rr + 8.3334519073e-3f;
    p = p * rr + 4.1665795894e-2f;
    p = p * rr + 1.6666665459e-1f;
    p = p * rr + 5.0000001201e-1f;
    p = p * (rr * rr) + rr + 1.0f;
    int n1 = n / 2, n2 = n - n1; /* each in [-64, 64]: a normal float */
    s1.i = (n1 + 127) << 23;
    s2.i = (n2 + 127) << 23;
    r.f = p * s1.f * s2.f;
    /* 0 below the smallest normal (x < -87.34), x itself if a NaN */
    int tiny = x < -87.3365479f, nan = x != x;
    r.i &= tiny - 1;
    v.f = x;
    r.i = (r.i & (nan - 1)) | (v.i & -nan);
    return r.f;
}

/* log(1 + u) for u in [0, 1]: 1 + u = 2^e·(1 + x) with 1 + x in
 * [sqrt(1/2), sqrt(2)) and x exact (u itself, or (u - 1)/2), then log(1 +
 * x) by Cephes' logf polynomial: no rounding of 1 + u to correct. Below
 * 2^-24 the answer is u (u - u²/2 rounds to u), given without arithmetic
 * on u² (a subnormal for u < 2^-63). Bit operations rather than selects,
 * as in vm_expf. */
VM_INLINE float vm_log1p(float u)
{
    union {
        int i;
        float f;
    } xv, hv, uv, r;
    int big = u > 0.41421356f, small = u < 5.96046448e-8f;
    uv.f = u;
    hv.f = 0.5f * (u - 1.0f);
    xv.i = ((hv.i & -big) | (uv.i & (big - 1))) & (small - 1); /* (u - 1)/2, u, or 0 for a small u */
    float x = xv.f, e = (float)big;
    float z = x * x;
    float y = 7.0376836292e-2f;
    y = y * x - 1.1514610310e-1f;
    y = y * x + 1.1676998740e-1f;
    y = y * x - 1.2420140846e-1f;
    y = y * x + 1.4249322787e-1f;
    y = y * x - 1.6668057665e-1f;
    y = y * x + 2.0000714765e-1f;
    y = y * x - 2.4999993993e-1f;
    y = y * x + 3.3333331174e-1f;
    y = y * x * z;
    y += -2.12194440e-4f * e;
    y += -0.5f * z;
    r.f = x + y + 0.693359375f * e;
    r.i = (r.i & (small - 1)) | (uv.i & -small);
    return r.f;
}

/* erf(x): for |x| < 0.5 its series to x^11 (relative error below 1e-7),
 * else 1 - (a1 t + ... + a5 t^5) e^(-x²), t = 1/(1 + p|x|) (Abramowitz and
 * Stegun 7.1.26, absolute error below 1.5e-7), the sign put back; both
 * computed and one kept by a select of bits, so that its loops vectorize.
 * Used by GELU, whose error it is within a few float ulps of. */
VM_INLINE float vm_erff(float x)
{
    union {
        int i;
        unsigned u;
        float f;
    } ax, sm, bg, r, sx;
    sx.f = x;
    ax.u = sx.u & 0x7fffffffu;
    float a = ax.f, z = x * x;
    float p = -1.0f / 1320.0f;
    p = p * z + 1.0f / 216.0f;
    p = p * z - 1.0f / 42.0f;
    p = p * z + 1.0f / 10.0f;
    p = p * z - 1.0f / 3.0f;
    p = p * z + 1.0f;
    sm.f = 1.12837916709551257f * x * p;
    float t = 1.0f / (1.0f + 0.3275911f * a);
    float q = 1.061405429f;
    q = q * t - 1.453152027f;
    q = q * t + 1.421413741f;
    q = q * t - 0.284496736f;
    q = q * t + 0.254829592f;
    bg.f = 1.0f - q * t * vm_expf(-z);
    bg.u |= sx.u & 0x80000000u; /* erf(-x) = -erf(x) */
    int small = a < 0.5f;
    r.i = (sm.i & -small) | (bg.i & (small - 1));
    return r.f;
}
