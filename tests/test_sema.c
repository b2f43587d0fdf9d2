/*
 * test_sema.c: names, shapes and the forward graph (sema.c): what the
 * checker accepts builds the right shapes; what it refuses gets the exact
 * located message, all of a file's errors in one run.
 */
#include "helpers.h"

static Sym *find_param(Model *m, const char *name)
{
    for (int i = 0; i < m->nparams; i++)
        if (!strcmp(m->params[i]->name, name))
            return m->params[i];
    return NULL;
}

static void test_seed_shapes(void **state)
{
    (void)state;
    Compiled *c = compile_src(SEED_SRC, 0, 0);
    assert_non_null(c->m);
    Model *m = c->m;
    assert_string_equal(m->name, "seed");
    assert_int_equal(m->nparams, 6);
    assert_int_equal(m->param_count, 353);
    assert_int_equal(m->input_size, 3);
    assert_int_equal(m->target_size, 1);
    assert_int_equal(m->output_size, 1);
    assert_int_equal(m->batch, 32);
    assert_int_equal(find_param(m, "W2")->offset, 16 * 3 + 16);
    char buf[64];
    assert_string_equal(shape_str(N(&m->g, m->output)->shape, buf, sizeof buf), "[B,1]");
    assert_string_equal(shape_str(N(&m->g, m->loss)->shape, buf, sizeof buf), "[]");
    assert_true(m->binary);
    assert_true(m->threshold == 0.5);
    assert_true(m->train.lr == 0.1);
    assert_int_equal(m->train.epochs, 100);
    assert_int_equal((int)m->train.seed, 42);
    compiled_free(c);
}

static void expect_error(const char *src, const char *first)
{
    Compiled *c = compile_src(src, 0, 0);
    char buf[512];
    if (c->m != NULL || strcmp(first_diag(c, buf, sizeof buf), first) != 0)
        print_message("source:\n%s\ndiagnostics:\n%s\n", src, c->diags ? c->diags : "");
    assert_null(c->m);
    assert_string_equal(first_diag(c, buf, sizeof buf), first);
    compiled_free(c);
}

#define IO "input x[3]\ntarget y[1]\n"

static void test_errors(void **state)
{
    (void)state;
    expect_error(IO "param W[1, 3]\nminimize mse(V @ x, y)\n", "t.nn:4:14: error: unknown name 'V'");
    expect_error(IO "param W[1, 3]\na = b\nb = W @ x\nminimize mse(b, y)\n",
                 "t.nn:4:5: error: 'b' is used before it is bound (at line 5)");
    expect_error(IO "param W[1, 3]\na = W @ x\na = W @ x\nminimize mse(a, y)\n",
                 "t.nn:5:1: error: 'a' is already bound (at 4:1); names are bound once");
    expect_error(IO "param W[2, 4]\nminimize mse(W @ x, y)\n",
                 "t.nn:4:14: error: inner dimensions do not match in [2,4] @ [3] (4 and 3)");
    expect_error(IO "param W[2, 3]\nparam b[3]\nminimize mse(W @ x + b, y)\n",
                 "t.nn:5:14: error: shapes [2] and [3] do not broadcast for '+'");
    expect_error(IO "param W[1, 3]\nminimize mse(conv2d(x, out=3), y)\n",
                 "t.nn:4:14: error: conv2d() needs its argument 'k'");
    expect_error(IO "param W[1, 3]\nparam V[2]\nminimize mse(W @ x, y)\n",
                 "t.nn:4:7: error: param 'V' is never used");
    expect_error(IO "param W[1, 3]\nz = W @ x\n", "t.nn:4:1: error: the model has no objective; add 'minimize EXPR' or 'maximize EXPR'");
    expect_error(IO "param W[1, 3]\nminimize mse(W @ x, y)\nmaximize mse(W @ x, y)\n",
                 "t.nn:5:1: error: a model has exactly one objective");
    expect_error(IO "param W[4, 3]\nminimize W @ x\n",
                 "t.nn:4:10: error: the objective must be a scalar per example, not [4]; wrap it in sum() or mean()");
    expect_error(IO "param W[0, 3]\nminimize mse(W @ x, y)\n",
                 "t.nn:3:9: error: a dimension must be between 1 and 16777216, not 0");
    expect_error(IO "param W[1, 3] init gaussian\nminimize mse(W @ x, y)\n",
                 "t.nn:3:20: error: unknown init 'gaussian'; expected zeros, ones, const(c), normal(mean, std), uniform(lo, hi), xavier or he");
    expect_error(IO "param W[1, 3]\nminimize mse(W @ x, y)\ntrain {\n  optimizer adagrad(lr=1)\n}\n",
                 "t.nn:6:13: error: unknown optimizer; expected sgd, momentum, nesterov, rmsprop, adam or adamw");
    expect_error(IO "param W[1, 3]\nminimize mse(W @ x, y)\ntrain {\n  batch 0\n}\n",
                 "t.nn:6:9: error: the batch size must be between 1 and 1048576, not 0");
    expect_error(IO "param W[1, 3]\nminimize mse(W @ x, y)\ntrain {\n  epochs 3\n  epochs 4\n}\n",
                 "t.nn:7:3: error: 'epochs' is set twice in the train block");
    expect_error(IO "param W[1, 3]\nminimize mse(leaky_relu(W @ x, slope=2), y)\n",
                 "t.nn:4:32: error: leaky_relu() has no argument named 'slope'");
    expect_error("input x[3]\ntarget l: class(4)\nparam W[3, 3]\nminimize cross_entropy(W @ x, l)\n",
                 "t.nn:4:24: error: cross_entropy() against 'l' (class(4)) needs logits of shape [4], not [3]");
    expect_error(IO "param W[1, 3]\nh = dense(x, 4)\nminimize mse(h.V @ x, y)\n",
                 "t.nn:5:14: error: unknown name 'h.V'");
    expect_error(IO "param W[1, 3]\nh = dense(x, 4) + dense(x, 4)\nminimize mse(W @ x, y)\n",
                 "t.nn:4:19: error: a binding holds at most one dense() or conv2d(); bind this one to a name of its own");
    expect_error(IO "param W[1, 3]\nminimize mse(W @ x, y) ^ W\n",
                 "t.nn:4:26: error: the exponent of '^' must be a constant number");
}

static void test_all_errors_reported(void **state)
{
    (void)state;
    Compiled *c = compile_src(IO "param W[1, 3]\na = foo\nb = bar + W\nc = W @ W\nminimize mse(W @ x, y)\n",
                              0, 0);
    assert_null(c->m);
    assert_int_equal(c->d.errors, 3);
    assert_non_null(strstr(c->diags, "unknown name 'foo'"));
    assert_non_null(strstr(c->diags, "unknown name 'bar'"));
    assert_non_null(strstr(c->diags, "inner dimensions do not match"));
    compiled_free(c);
}

static void test_warnings(void **state)
{
    (void)state;
    Compiled *c = compile_src(IO "param W[1, 3]\nparam V[1, 3]\nh = V @ x\nminimize mse(W @ x, y)\noutput h\n", 0, 0);
    assert_non_null(c->m);
    assert_int_equal(c->d.warnings, 1);
    assert_non_null(strstr(c->diags, "t.nn:4:7: warning: param 'V' does not reach the objective"));
    compiled_free(c);
}

/* An unused target: a warning, since the data must still hold it. */
static void test_unused_target(void **state)
{
    (void)state;
    Compiled *c = compile_src(IO "target t[2]\ntarget u[1]\nparam W[1, 3]\nminimize mse(W @ x, y)\n", 0, 0);
    assert_non_null(c->m);
    assert_int_equal(c->d.warnings, 2);
    assert_non_null(strstr(c->diags, "t.nn:3:8: warning: target 't' is never used; the data must still hold its columns"));
    assert_non_null(strstr(c->diags, "t.nn:4:8: warning: target 'u' is never used; the data must still hold its column\n"));
    compiled_free(c);
}

/* One mistake, one message: nothing the first error explains is reported. */
static void test_one_message(void **state)
{
    (void)state;
    static const char *const srcs[] = {
        IO "param W[1, 3]\nminimize mse(swish(W @ x), y)\n", /* not also: W never used */
        "input x[3] foo\ntarget y[1]\nparam W[1, 3]\nminimize mse(W @ x, y)\n", /* not: unknown x */
        IO "param W[1, 3]\nz = W @ x\nminimize mse(z ** 2, y)\n",
        IO "param W[1, 3]\nz = W @ x\nminimize mse(z >= 0, y)\n",
        IO "param W[1, 3]\nz = W @ x\nminimize mse(z, 'y')\n",
    };
    for (size_t i = 0; i < sizeof srcs / sizeof srcs[0]; i++) {
        Compiled *c = compile_src(srcs[i], 0, 0);
        if (c->d.errors != 1 || c->d.warnings != 0)
            print_message("source:\n%s\ndiagnostics:\n%s\n", srcs[i], c->diags ? c->diags : "");
        assert_int_equal(c->d.errors, 1);
        assert_int_equal(c->d.warnings, 0);
        compiled_free(c);
    }
}

static void test_dense_and_consts(void **state)
{
    (void)state;
    Compiled *c = compile_src("const H = 8\ninput x[3]\ntarget label: class(5)\n"
                              "h1 = dense(x, H, relu)\nz = dense(h1, 5)\n"
                              "minimize cross_entropy(z, label) + 1e-4 * sum(square(h1.W))\n",
                              0, 0);
    assert_non_null(c->m);
    Model *m = c->m;
    assert_int_equal(m->nparams, 4);
    assert_string_equal(m->params[0]->name, "h1.W");
    assert_string_equal(m->params[2]->name, "z.W");
    assert_int_equal(m->params[0]->shape.dim[0], 8);
    assert_int_equal(m->params[2]->shape.dim[1], 8);
    assert_int_equal(m->param_count, 8 * 3 + 8 + 5 * 8 + 5);
    assert_int_equal(m->target_kind, TK_CLASS);
    assert_int_equal(m->nclasses, 5);
    assert_int_equal(m->target_size, 1);
    assert_int_equal(m->output_size, 5); /* the last binding */
    assert_int_equal(m->batch, 32);      /* the default */
    compiled_free(c);
}

/* blocks: the params of each call, their names and their words (the
 * declaration's, and the binding's for all that the call declares) */
static void test_blocks_and_flags(void **state)
{
    (void)state;
    Compiled *c = compile_src(IO "const D = 3\n"
                              "def inner(u) {\n  param W[D, D] init he\n  return tanh(W @ u)\n}\n"
                              "def blk(u) {\n  param g[D] init ones nodecay\n  m = inner(u * g)\n  return m + u\n}\n"
                              "param E[3] frozen nodecay\n"
                              "h1 = blk(x * E) frozen\nh2 = blk(h1)\nz = dense(h2, 1) nodecay\n"
                              "minimize mse(z + sum(h1.m), y)\n",
                              0, 0);
    assert_non_null(c->m);
    Model *m = c->m;
    static const char *const names[] = {"E", "h1.g", "h1.m.W", "h2.g", "h2.m.W", "z.W", "z.b"};
    static const unsigned flags[] = {PARAM_FROZEN | PARAM_NODECAY, PARAM_FROZEN | PARAM_NODECAY, PARAM_FROZEN,
                                     PARAM_NODECAY, 0, PARAM_NODECAY, PARAM_NODECAY};
    assert_int_equal(m->nparams, 7);
    for (int i = 0; i < 7; i++) {
        assert_string_equal(m->params[i]->name, names[i]);
        assert_int_equal(m->params[i]->flags, flags[i]);
    }
    assert_int_equal(m->params[2]->shape.dim[0], 3);
    assert_int_equal(c->d.warnings, 0);
    compiled_free(c);
}

static void test_broadcasting(void **state)
{
    (void)state;
    /* per-example broadcasting: [3] with [4,3] gives [4,3] per example */
    Compiled *c = compile_src("input x[3]\ninput u[4, 1]\ntarget y[4, 3]\nparam W[4, 3]\n"
                              "h = x * W + u\nminimize mse(h, y)\n",
                              0, 0);
    assert_non_null(c->m);
    char buf[64];
    assert_string_equal(shape_str(N(&c->m->g, c->m->output)->shape, buf, sizeof buf), "[B,4,3]");
    compiled_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_shapes),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_all_errors_reported),
        cmocka_unit_test(test_warnings),
        cmocka_unit_test(test_unused_target),
        cmocka_unit_test(test_one_message),
        cmocka_unit_test(test_dense_and_consts),
        cmocka_unit_test(test_broadcasting),
        cmocka_unit_test(test_blocks_and_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
