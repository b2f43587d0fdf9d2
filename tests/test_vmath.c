/*
 * test_vmath.c: the float e^x and log(1 + u) that generated files carry
 * (compiler/vmath.c) against libm in double: their error in units in the
 * last place over the whole range, and the special values. That loops over
 * them vectorize is checked by tests/e2e (vmath.sh), with gcc's report.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <math.h>
#include <float.h>

#include <cmocka.h>

#include "../compiler/vmath.c"

/* the distance between want (rounded to float) and got, in units of the last place of want */
static double ulps(double want, float got)
{
    float w = (float)want;
    if (w == got)
        return 0;
    if (!isfinite(w) || !isfinite(got))
        return 1e9;
    double unit = w != 0 && fabsf(w) >= FLT_MIN ? (double)nextafterf(fabsf(w), INFINITY) - fabsf(w)
                                                : (double)nextafterf(0.0f, 1.0f);
    return fabs((double)got - want) / unit;
}

static void test_expf(void **state)
{
    (void)state;
    /* floats in [-87.33, 88.7] (results from the smallest normal float to
     * near the largest) in steps of about 2^-14 of their size */
    double worst = 0, at = 0;
    long n = 0;
    for (float x = -87.33f; x < 88.7f; x = x + (fabsf(x) > 1e-3f ? fabsf(x) * 6.1e-5f : 1e-7f)) {
        double u = ulps(exp((double)x), vm_expf(x));
        if (u > worst)
            worst = u, at = x;
        n++;
    }
    printf("  vm_expf: %ld points in [-87.33, 88.7], worst %.2f ulp at %.9g\n", n, worst, at);
    assert_true(worst <= 2.0);
    /* the special values */
    assert_true(isnan(vm_expf(NAN)));
    assert_true(vm_expf(INFINITY) == INFINITY);
    assert_true(vm_expf(-INFINITY) == 0);
    assert_true(vm_expf(89.0f) == INFINITY);
    assert_true(vm_expf(1000.0f) == INFINITY);
    assert_true(vm_expf(-200.0f) == 0);
    assert_true(vm_expf(0.0f) == 1.0f);
    assert_true(vm_expf(88.7f) > 3e38f && vm_expf(88.7f) < FLT_MAX);
    assert_true(vm_expf(-87.3f) >= FLT_MIN);
    assert_true(vm_expf(-87.4f) == 0 && vm_expf(-100.0f) == 0); /* flushed, not subnormal */
    assert_true(isnan(vm_expf(-NAN)));
}

static void test_log1p(void **state)
{
    (void)state;
    double worst = 0, at = 0;
    long n = 0;
    for (float u = 0; u <= 1.0f; u = u + (u > 1e-30f ? u * 3.1e-5f : 1e-30f)) {
        double e = ulps(log1p((double)u), vm_log1p(u));
        if (e > worst)
            worst = e, at = u;
        n++;
    }
    printf("  vm_log1p: %ld points in [0, 1], worst %.2f ulp at %.9g\n", n, worst, at);
    assert_true(worst <= 2.0);
    assert_true(vm_log1p(0) == 0);
    assert_true(vm_log1p(FLT_MIN) == FLT_MIN && vm_log1p(1e-20f) == 1e-20f);
    assert_true(vm_log1p(nextafterf(0.0f, 1.0f)) == nextafterf(0.0f, 1.0f));
    assert_true(fabs(vm_log1p(1.0f) - 0.69314718055994531) < 1e-7);
}

/* erf (GELU's): absolute error against libm's erf in double, and odd */
static void test_erf(void **state)
{
    (void)state;
    double worst = 0, at = 0;
    long n = 0;
    for (float x = -6.0f; x <= 6.0f; x += 1.0f / 4096, n++) {
        double e = fabs(erf((double)x) - (double)vm_erff(x));
        double rel = x != 0 && fabs(x) < 0.5f ? e / fabs(erf((double)x)) : 0;
        if (e > worst) {
            worst = e;
            at = x;
        }
        assert_true(rel < 1e-6); /* near 0 the error is relative */
        assert_true(vm_erff(-x) == -vm_erff(x));
    }
    printf("  vm_erff: %ld points in [-6, 6], worst absolute error %.2g at %.9g\n", n, worst, at);
    assert_true(worst < 3e-7);
    assert_true(vm_erff(0.0f) == 0.0f);
    assert_true(vm_erff(INFINITY) == 1.0f && vm_erff(-INFINITY) == -1.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expf),
        cmocka_unit_test(test_log1p),
        cmocka_unit_test(test_erf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
