/*
 * test_grad.c: reverse mode (grad.c) and the simplifier (simplify.c) on the
 * structure of what they build; the numbers are checked against finite
 * differences by tests/gradcheck.sh.
 */
#include "helpers.h"

static Node *grad_of(Model *m, const char *name)
{
    for (int i = 0; i < m->nparams; i++)
        if (!strcmp(m->params[i]->name, name))
            return m->grads[i] ? N(&m->g, m->grads[i]) : NULL;
    return NULL;
}

static void test_seed_backward(void **state)
{
    (void)state;
    Compiled *c = compile_src(SEED_SRC, 1, 2);
    assert_non_null(c->m);
    Model *m = c->m;
    /* the stable form: no log, no bce of a probability anywhere */
    assert_int_equal(ops_in_model(m, OP_LOG), 0);
    assert_int_equal(ops_in_model(m, OP_BCE), 0);
    assert_int_equal(ops_in_model(m, OP_BCE_LOGITS), 1);
    /* one sigmoid, shared by the output and the gradient (yhat - y) */
    assert_int_equal(ops_in_model(m, OP_SIGMOID), 1);
    /* dL/dW3 is a matrix product over the batch: [1,16] */
    Node *dW3 = grad_of(m, "W3");
    assert_non_null(dW3);
    char buf[64];
    assert_string_equal(shape_str(dW3->shape, buf, sizeof buf), "[1,16]");
    /* every gradient has its param's shape */
    for (int i = 0; i < m->nparams; i++)
        assert_true(shape_eq(N(&m->g, m->grads[i])->shape, m->params[i]->shape));
    /* relu's gradient reads the saved activation, not a recomputation */
    assert_int_equal(ops_in_model(m, OP_RELU_BWD), 2);
    assert_int_equal(ops_in_model(m, OP_RELU), 2);
    compiled_free(c);
}

static void test_fanout_summed(void **state)
{
    (void)state;
    /* W is used twice: its adjoint sums two contributions */
    Compiled *c = compile_src("input x[3]\ntarget y[3]\nparam W[3, 3]\n"
                              "h = W @ (W @ x)\nminimize mse(h, y)\n",
                              1, 1);
    assert_non_null(c->m);
    assert_non_null(grad_of(c->m, "W"));
    Node *dW = N(&c->m->g, c->m->adjs[0]); /* before the division by n */
    assert_int_equal(dW->op, OP_ADD);
    assert_int_equal(dW->contribs, 2);
    compiled_free(c);
}

static void test_unreached_param(void **state)
{
    (void)state;
    Compiled *c = compile_src("input x[3]\ntarget y[1]\nparam W[1, 3]\nparam V[1, 3]\n"
                              "h = V @ x\nminimize mse(W @ x, y)\noutput h\n",
                              1, 2);
    assert_non_null(c->m);
    assert_null(grad_of(c->m, "V"));
    assert_non_null(grad_of(c->m, "W"));
    compiled_free(c);
}

static void test_cross_entropy_found(void **state)
{
    (void)state;
    Compiled *c = compile_src("input x[4]\ntarget l: class(3)\nparam W[3, 4]\n"
                              "z = W @ x\nminimize -sum(onehot(l) * log(softmax(z)))\n",
                              1, 2);
    assert_non_null(c->m);
    assert_int_equal(ops_in_model(c->m, OP_CE), 1);
    assert_int_equal(ops_in_model(c->m, OP_LOG), 0);
    assert_int_equal(ops_in_model(c->m, OP_LOG_SOFTMAX), 0);
    compiled_free(c);
    /* at -O0 nothing is rewritten */
    c = compile_src("input x[4]\ntarget l: class(3)\nparam W[3, 4]\n"
                    "z = W @ x\nminimize -sum(onehot(l) * log(softmax(z)))\n",
                    1, 0);
    assert_non_null(c->m);
    assert_int_equal(ops_in_model(c->m, OP_CE), 0);
    assert_int_equal(ops_in_model(c->m, OP_LOG), 1);
    compiled_free(c);
}

static void test_folding(void **state)
{
    (void)state;
    Compiled *c = compile_src("input x[3]\ntarget y[3]\nparam w[3]\n"
                              "h = (w * 1 + 0) * x * (2 * 3)\nminimize mse(h, y)\n",
                              1, 2);
    assert_non_null(c->m);
    Model *m = c->m;
    int six = 0;
    for (Ref r = 1; r < m->g.n; r++)
        if (N(&m->g, r)->op == OP_CONST && N(&m->g, r)->f == 6)
            six = 1;
    assert_true(six);
    compiled_free(c);
    /* no NaN is folded: log(-1) stays a log, computed at run time */
    c = compile_src("input x[3]\ntarget y[3]\nparam w[3]\n"
                    "h = w * x + log(0 - 1)\nminimize mse(h, y)\n",
                    1, 2);
    assert_non_null(c->m);
    assert_int_equal(ops_in_model(c->m, OP_LOG), 1);
    compiled_free(c);
}

static void test_cse(void **state)
{
    (void)state;
    Compiled *c = compile_src("input x[3]\ntarget y[3]\nparam w[3]\n"
                              "a = relu(w * x)\nb = relu(w * x)\nminimize mse(a + b, y)\n",
                              1, 2);
    assert_non_null(c->m);
    assert_int_equal(ops_in_model(c->m, OP_RELU), 1);
    compiled_free(c);
}

static void test_linreg_closed_form(void **state)
{
    (void)state;
    /* the gradient of w is one matrix product xᵀ(yhat - y), scaled by 2/n */
    Compiled *c = compile_src("input x[10]\ntarget y[1]\nparam w[10, 1]\nparam b[1]\n"
                              "yhat = x @ w + b\nminimize mse(yhat, y)\n",
                              1, 2);
    assert_non_null(c->m);
    Model *m = c->m;
    Node *dw = grad_of(m, "w");
    assert_int_equal(dw->op, OP_MUL);
    Node *mm = N(&m->g, dw->in[0])->op == OP_MATMUL ? N(&m->g, dw->in[0]) : N(&m->g, dw->in[1]);
    assert_int_equal(mm->op, OP_MATMUL);
    assert_int_equal(mm->ia[0], 1); /* xᵀ */
    assert_int_equal(N(&m->g, mm->in[0])->op, OP_INPUT);
    assert_int_equal(N(&m->g, mm->in[1])->op, OP_SUB);
    compiled_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_backward),
        cmocka_unit_test(test_fanout_summed),
        cmocka_unit_test(test_unreached_param),
        cmocka_unit_test(test_cross_entropy_found),
        cmocka_unit_test(test_folding),
        cmocka_unit_test(test_cse),
        cmocka_unit_test(test_linreg_closed_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
