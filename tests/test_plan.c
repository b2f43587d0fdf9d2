/*
 * test_plan.c: scheduling and memory (plan.c): every function computes what
 * its roots need in an order where operands come first, buffers that are
 * live at the same time never overlap, and reuse shrinks the workspace.
 */
#include "helpers.h"

static const char *const DEEP =
    "input x[64]\ntarget y[64]\n"
    "h1 = dense(x, 64, relu)\nh2 = dense(h1, 64, relu)\nh3 = dense(h2, 64, relu)\n"
    "h4 = dense(h3, 64, relu)\nh5 = dense(h4, 64, relu)\nh6 = dense(h5, 64)\n"
    "minimize mse(h6, y)\n";

static void check_plan(Model *m, Plan *p)
{
    Graph *g = &m->g;
    int *pos = calloc((size_t)g->n, sizeof(int));
    for (int i = 0; i < p->norder; i++)
        pos[p->order[i]] = i + 1;
    /* operands before users */
    for (int i = 0; i < p->norder; i++) {
        Node *x = N(g, p->order[i]);
        for (int k = 0; k < op_nin[x->op]; k++) {
            assert_true(pos[x->in[k]] > 0);
            assert_true(pos[x->in[k]] < i + 1);
        }
    }
    /* live ranges of workspace buffers: [def, last read] */
    int *last = calloc((size_t)g->n, sizeof(int));
    for (int i = 0; i < p->norder; i++) {
        Ref r = p->order[i];
        last[r] = i;
        Node *x = N(g, r);
        for (int k = 0; k < op_nin[x->op]; k++) {
            Ref s = x->in[k];
            while (p->slot[s].home == H_ALIAS)
                s = p->slot[s].alias;
            if (last[s] < i)
                last[s] = i;
        }
    }
    for (int i = 0; i < p->norder; i++) {
        Ref a = p->order[i];
        if (p->slot[a].home != H_WORK)
            continue;
        size_t sa = (size_t)shape_numel_static(N(g, a)->shape) * (shape_has_batch(N(g, a)->shape) ? (size_t)m->batch : 1);
        assert_true(p->slot[a].offset + sa <= p->work_elems);
        for (int j = i + 1; j < p->norder; j++) {
            Ref b = p->order[j];
            if (p->slot[b].home != H_WORK || j > last[a])
                continue;
            /* b is defined while a is live: no overlap */
            size_t sb = (size_t)shape_numel_static(N(g, b)->shape) * (shape_has_batch(N(g, b)->shape) ? (size_t)m->batch : 1);
            int disjoint = p->slot[a].offset + sa <= p->slot[b].offset || p->slot[b].offset + sb <= p->slot[a].offset;
            assert_true(disjoint);
        }
    }
    free(pos);
    free(last);
}

static void test_deep_reuse(void **state)
{
    (void)state;
    Compiled *c = compile_src(DEEP, 1, 2);
    assert_non_null(c->m);
    for (int f = 0; f < FN_COUNT; f++) {
        Plan p;
        plan_build(c->m, (FnKind)f, &p);
        check_plan(c->m, &p);
        assert_true(p.work_elems <= p.work_noreuse);
        if (f == FN_PREDICT)
            assert_true(p.work_elems * 2 < p.work_noreuse); /* a chain needs two live buffers */
    }
    compiled_free(c);
}

static void test_homes(void **state)
{
    (void)state;
    Compiled *c = compile_src(SEED_SRC, 1, 2);
    Model *m = c->m;
    Plan p;
    plan_build(m, FN_LOSS_GRAD, &p);
    check_plan(m, &p);
    /* gradients straight into grad, params read in place */
    int in_grad = 0;
    for (int i = 0; i < m->nparams; i++)
        in_grad += p.slot[m->grads[i]].home == H_GRAD;
    assert_int_equal(in_grad, m->nparams);
    assert_int_equal(p.slot[m->params[0]->ref].home, H_PARAMS);
    assert_int_equal(p.slot[m->inputs[0]->ref].home, H_X);
    Plan q;
    plan_build(m, FN_PREDICT, &q);
    assert_int_equal(q.slot[m->output].home, H_OUT);
    /* predict needs no backward node */
    for (int i = 0; i < q.norder; i++)
        assert_false(N(&m->g, q.order[i])->backward);
    compiled_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deep_reuse),
        cmocka_unit_test(test_homes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
