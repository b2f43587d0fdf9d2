/*
 * test_ir.c: the graph IR (ir.c): shapes and broadcasting, hash-consing,
 * and the builders' result shapes.
 */
#include "helpers.h"

static void test_broadcast(void **state)
{
    (void)state;
    Shape o;
    Shape a = {2, {DIM_B, 3}}, b = {1, {3}}, c = {2, {4, 1}}, d = {1, {2}};
    assert_true(shape_broadcast(a, b, &o));
    assert_true(shape_eq(o, a));
    assert_true(shape_broadcast(c, b, &o));
    assert_int_equal(o.rank, 2);
    assert_int_equal(o.dim[0], 4);
    assert_int_equal(o.dim[1], 3);
    assert_false(shape_broadcast(b, d, &o));
    assert_true(shape_broadcast(shape0(), a, &o));
    assert_true(shape_eq(o, a));
    char buf[32];
    assert_string_equal(shape_str(a, buf, sizeof buf), "[B,3]");
    assert_string_equal(shape_str(shape0(), buf, sizeof buf), "[]");
    assert_int_equal(shape_numel_static(c), 4);
}

static void test_hash_consing(void **state)
{
    (void)state;
    Arena *ar = arena_new();
    Graph g;
    graph_init(&g, ar);
    Loc l = {1, 1, 1, 1};
    int ia0[4] = {0, 0, 0, 0}, ia1[4] = {1, 0, 0, 0};
    Ref x = node_make(&g, OP_INPUT, shape2(DIM_B, 3), NULL, 0, ia0, l);
    Ref w = node_make(&g, OP_PARAM, shape1(3), NULL, 0, ia0, l);
    Ref v = node_make(&g, OP_PARAM, shape1(3), NULL, 0, ia1, l);
    assert_int_not_equal(w, v);
    assert_int_equal(node_make(&g, OP_PARAM, shape1(3), NULL, 0, ia0, l), w);
    Ref s1 = g_binary(&g, OP_ADD, x, w, l), s2 = g_binary(&g, OP_ADD, w, x, l);
    assert_int_equal(s1, s2); /* commutative: one node */
    Ref d1 = g_binary(&g, OP_SUB, x, w, l), d2 = g_binary(&g, OP_SUB, w, x, l);
    assert_int_not_equal(d1, d2);
    assert_int_equal(g_const(&g, 2.0, l), g_const(&g, 2.0, l));
    assert_int_not_equal(g_const(&g, 0.0, l), g_const(&g, -0.0, l));
    int before = g.n;
    for (int i = 0; i < 5000; i++) /* growth and rehashing keep identities */
        g_const(&g, i, l);
    assert_int_equal(g.n, before + 5000 - 2); /* 0.0 and 2.0 existed */
    assert_int_equal(g_const(&g, 1234, l), g_const(&g, 1234, l));
    assert_int_equal(g_binary(&g, OP_ADD, x, w, l), s1);
    graph_release(&g);
    arena_free(ar);
}

static void test_builders(void **state)
{
    (void)state;
    Arena *ar = arena_new();
    Graph g;
    graph_init(&g, ar);
    Loc l = {1, 1, 1, 1};
    int ia0[4] = {0, 0, 0, 0};
    Ref x = node_make(&g, OP_INPUT, shape2(DIM_B, 3), NULL, 0, ia0, l);
    Ref W = node_make(&g, OP_PARAM, shape2(16, 3), NULL, 0, ia0, l);
    Ref z = g_matmul(&g, x, W, 0, 1, l); /* X Wᵀ */
    assert_int_equal(N(&g, z)->shape.rank, 2);
    assert_int_equal(N(&g, z)->shape.dim[0], DIM_B);
    assert_int_equal(N(&g, z)->shape.dim[1], 16);
    Ref dW = g_matmul(&g, z, x, 1, 0, l); /* Zᵀ X: contracts the batch */
    assert_int_equal(N(&g, dW)->shape.dim[0], 16);
    assert_int_equal(N(&g, dW)->shape.dim[1], 3);
    Ref s = g_reduce(&g, OP_SUM, z, 1u, 0, l);
    assert_int_equal(N(&g, s)->shape.rank, 1);
    Ref k = g_reduce(&g, OP_SUM, z, 2u, 1, l);
    assert_int_equal(N(&g, k)->shape.dim[1], 1);
    /* the adjoint of a broadcast [16] operand of a [B,16] sum */
    Ref u = g_unbroadcast(&g, z, shape1(16), l);
    assert_true(shape_eq(N(&g, u)->shape, shape1(16)));
    Ref u2 = g_unbroadcast(&g, z, shape2(1, 16), l);
    assert_true(shape_eq(N(&g, u2)->shape, shape2(1, 16)));
    assert_int_equal(g_unbroadcast(&g, z, N(&g, z)->shape, l), z);
    Ref t = g_transpose(&g, W, l);
    assert_true(shape_eq(N(&g, t)->shape, shape2(3, 16)));
    double v;
    assert_true(node_is_const(&g, g_expand(&g, g_const(&g, 3, l), shape1(4), l), &v));
    assert_true(v == 3);
    assert_false(node_is_const(&g, W, &v));
    graph_release(&g);
    arena_free(ar);
}

/* tokens and sequences: strided views share their records; batched
 * products broadcast their leading axes */
static void test_views_and_lead(void **state)
{
    (void)state;
    Arena *ar = arena_new();
    Graph g;
    graph_init(&g, ar);
    Loc l = {1, 1, 1, 1};
    int ia0[4] = {0, 0, 0, 0};
    Shape sx = {4, {DIM_B, 2, 3, 4}}, st = {4, {DIM_B, 4, 2, 3}};
    Ref x = node_make(&g, OP_INPUT, sx, NULL, 0, ia0, l);
    long str[4] = {24, 1, 12, 4};
    Ref t1 = g_view(&g, x, st, 0, str, l), t2 = g_view(&g, x, st, 0, str, l);
    assert_int_equal(t1, t2);
    assert_int_equal(g.nviews, 1);
    assert_int_equal(view_of(&g, t1)[2], 1);
    long str2[4] = {24, 1, 12, 4};
    assert_int_not_equal(g_view(&g, x, st, 5, str2, l), t1);
    assert_int_equal(g.nviews, 2);
    Shape lead, a = {4, {DIM_B, 2, 3, 4}}, b = {3, {2, 4, 5}}, c = {2, {4, 5}}, d = {4, {DIM_B, 3, 4, 5}};
    assert_true(matmul_lead(a, b, &lead));
    assert_int_equal(lead.rank, 2);
    assert_int_equal(lead.dim[0], DIM_B);
    assert_int_equal(lead.dim[1], 2);
    assert_true(matmul_lead(a, c, &lead));
    assert_int_equal(lead.rank, 2);
    assert_false(matmul_lead(a, d, &lead));
    Ref w = node_make(&g, OP_PARAM, b, NULL, 0, ia0, l);
    Ref m = g_matmul(&g, x, w, 0, 0, l);
    Shape want = {4, {DIM_B, 2, 3, 5}};
    assert_true(shape_eq(N(&g, m)->shape, want));
    Ref dw = g_matmul_sum(&g, x, m, 1, 0, 1, l); /* summed over the leading axes */
    assert_true(shape_eq(N(&g, dw)->shape, shape2(4, 5)));
    graph_release(&g);
    arena_free(ar);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broadcast),
        cmocka_unit_test(test_hash_consing),
        cmocka_unit_test(test_builders),
        cmocka_unit_test(test_views_and_lead),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
