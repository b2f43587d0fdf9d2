/*
 * test_emit.c: the generated interface (emit_c.c) is docs/language.md's C interface
 * exactly: names, macros, signatures, precision, prefixes.
 */
#include <math.h>

#include "helpers.h"

static char *emit_to_string(Model *m, int header)
{
    Plan plans[FN_COUNT];
    for (int i = 0; i < FN_COUNT; i++)
        plan_build(m, (FnKind)i, &plans[i]);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    EmitOptions o = {0, "t.nn", "gradc -c t.nn"};
    if (header)
        emit_h(m, plans, &o, f);
    else
        emit_c(m, plans, &o, f);
    fclose(f);
    return buf;
}

static void test_seed_header(void **state)
{
    (void)state;
    Compiled *c = compile_src(SEED_SRC, 1, 2);
    char *h = emit_to_string(c->m, 1);
    assert_non_null(strstr(h, "#define SEED_PARAM_COUNT 353 "));
    assert_non_null(strstr(h, "#define SEED_INPUT_SIZE 3 "));
    assert_non_null(strstr(h, "#define SEED_TARGET_SIZE 1 "));
    assert_non_null(strstr(h, "#define SEED_OUTPUT_SIZE 1\n"));
    assert_non_null(strstr(h, "#define SEED_MAX_BATCH 32 "));
    assert_non_null(strstr(h, "#define SEED_WORKSPACE_BYTES "));
    assert_non_null(strstr(h, "void seed_init(float *params, uint64_t seed);"));
    assert_non_null(strstr(h, "float seed_loss(const float *params, const float *x, const float *y, size_t n, void *work);"));
    assert_non_null(strstr(h, "float seed_loss_grad(const float *params, const float *x, const float *y, size_t n, float *grad,"));
    assert_non_null(strstr(h, "void seed_predict(const float *params, const float *x, size_t n, float *out, void *work);"));
    assert_non_null(strstr(h, "#include <stdint.h>"));
    assert_null(strstr(h, "stdlib"));
    free(h);
    char *src = emit_to_string(c->m, 0);
    assert_null(strstr(src, "malloc"));
    assert_null(strstr(src, "<string.h>"));
    /* no globals: every file-scope "static float" is a function */
    for (const char *q = src; (q = strstr(q, "\nstatic float ")) != NULL; q++) {
        const char *paren = strchr(q + 1, '('), *eq = strpbrk(q + 1, "=[;");
        assert_true(paren && eq && paren < eq);
    }
    /* the forward pass written once, shared by the three functions */
    assert_non_null(strstr(src, "static void seed_forward("));
    assert_non_null(strstr(src, "static void seed_backward("));
    const char *fw = strstr(src, "/* a1 = relu(");
    assert_non_null(fw);
    assert_null(strstr(fw + 1, "/* a1 = relu("));
    assert_non_null(strstr(src, "t.nn:14")); /* traced to the model line */
    free(src);
    compiled_free(c);
}

static void test_double_and_prefix(void **state)
{
    (void)state;
    Compiled *c = compile_src("model fmnist-mlp\nprecision double\ninput x[2]\ntarget y[1]\nparam w[1, 2]\n"
                              "minimize mse(w @ x, y)\n",
                              1, 2);
    assert_null(c->m); /* '-' is not a name character: the parser refuses it */
    compiled_free(c);
    c = compile_src("precision double\ninput x[2]\ntarget y[1]\nparam w[1, 2]\nminimize mse(w @ x, y)\n", 1, 2);
    assert_non_null(c->m);
    c->m->cname = "fmnist_mlp"; /* as made from the file name fmnist-mlp.nn */
    char *h = emit_to_string(c->m, 1);
    assert_non_null(strstr(h, "#define FMNIST_MLP_PARAM_COUNT 2 "));
    assert_non_null(strstr(h, "double fmnist_mlp_loss_grad(const double *params"));
    free(h);
    compiled_free(c);
}

/* FLOPs of the seed model of docs/language.md, counted by hand with the
 * conventions of docs/emit.md: 2mnk per matrix product, one per element of
 * an elementwise op, one per input element of a reduction. */
static void test_seed_flops(void **state)
{
    (void)state;
    Compiled *c = compile_src(SEED_SRC, 1, 2);
    double f, b;
    model_flops(c->m, &f, &b);
    double B = 32;
    double fwd = (2 * 16 * 3 + 16) + 16      /* z1 = W1 @ x + b1, a1 = relu(z1) */
                 + (2 * 16 * 16 + 16) + 16   /* a2 */
                 + (2 * 16 * 1 + 1) + 1      /* z3, yhat = sigmoid(z3) (read by backward) */
                 + 1 + 1                     /* bce_logits, sum over the batch */
                 + 1 / B;                    /* / n */
    double bwd = 1 + 1                       /* dL/dz3 = yhat - y, dL/db3 */
                 + 2 * 16 + 2 * 16           /* dL/da2, dL/dW3 */
                 + 16 + 16 + 2 * 16 * 16 + 2 * 16 * 16 /* dL/dz2, dL/db2, dL/da1, dL/dW2 */
                 + 16 + 16 + 2 * 16 * 3      /* dL/dz1, dL/db1, dL/dW1 (no dL/dx) */
                 + (1 + 353) / B;            /* 1/n, and every gradient / n */
    if (fabs(f - fwd) > 1e-9 || fabs(b - bwd) > 1e-9)
        print_message("forward %.6f (hand %.6f), backward %.6f (hand %.6f)\n", f, fwd, b, bwd);
    assert_true(fabs(f - fwd) < 1e-9);
    assert_true(fabs(b - bwd) < 1e-9);
    assert_true(b / f <= 3);
    compiled_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_header),
        cmocka_unit_test(test_double_and_prefix),
        cmocka_unit_test(test_seed_flops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
