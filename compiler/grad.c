/*
 * grad.c: symbolic reverse mode.
 *
 * The adjoint of the loss is seeded with 1; the forward nodes are walked
 * backwards (their array order is topological), and each node that carries
 * an adjoint hands its operands their contributions through the op's
 * gradient rule. A node used in several places receives several
 * contributions, which are summed with `add` nodes. Rules build new nodes of
 * the same graph through the hash-consing constructor, so the backward graph
 * reuses forward values (yhat in yhat - y) and shares its own subexpressions.
 *
 * Only nodes that depend on a parameter get adjoints: no work is spent on
 * the gradients of inputs, targets or constants.
 */
#include "gradc.h"

#include <math.h>
#include <string.h>

typedef struct Grad {
    Model *m;       /* the model */
    Graph *g;       /* its graph */
    Ref *adj;       /* adjoint per forward node, 0 for none yet */
    unsigned char *needs; /* forward node depends on a parameter */
} Grad;

static void contribute(Grad *G, Ref x, Ref d, Loc loc)
{
    Graph *g = G->g;
    if (!x || !G->needs[x] || !d)
        return;
    d = g_unbroadcast(g, d, N(g, x)->shape, loc);
    G->adj[x] = G->adj[x] ? g_binary(g, OP_ADD, G->adj[x], d, loc) : d;
}

static Ref C(Graph *g, double v, Loc loc)
{
    return g_const(g, v, loc);
}

/* keepdims shape of a reduction's output, for broadcasting back */
static Shape keep_shape(Node *x, Shape in)
{
    Shape s = in;
    for (int i = 0; i < in.rank; i++)
        if ((unsigned)x->ia[0] & (1u << i))
            s.dim[i] = 1;
    return s;
}

/* The adjoint of a matmul operand: dC against the other operand, with the
 * batch summed away when the operand has none. */
static Ref mm(Graph *g, Ref a, Ref b, int ta, int tb, Ref target, Loc loc)
{
    int sum = N(g, target)->shape.rank == 2 &&
              (N(g, a)->shape.rank >= 3 || N(g, b)->shape.rank >= 3);
    return g_matmul_sum(g, a, b, ta, tb, sum, loc);
}

static void rule(Grad *G, Ref r)
{
    Graph *g = G->g;
    Node x = *N(g, r); /* a copy: the node array may move */
    Ref dy = G->adj[r];
    Ref a = x.in[0], b = x.in[1];
    Loc l = x.loc;
    switch (x.op) {
    case OP_INPUT: case OP_TARGET: case OP_PARAM: case OP_CONST: case OP_BATCHN:
    case OP_SIGN: case OP_EQ: case OP_ONEHOT:
        return;
    case OP_NEG:
        contribute(G, a, g_unary(g, OP_NEG, dy, l), l);
        return;
    case OP_RELU:
        /* y > 0 exactly where x > 0: the saved output serves */
        contribute(G, a, g_binary(g, OP_RELU_BWD, r, dy, l), l);
        return;
    case OP_SIGMOID: /* dy * y * (1 - y) */
        contribute(G, a,
                   g_binary(g, OP_MUL, dy,
                            g_binary(g, OP_MUL, r, g_binary(g, OP_SUB, C(g, 1, l), r, l), l), l),
                   l);
        return;
    case OP_TANH: /* dy * (1 - y^2) */
        contribute(G, a,
                   g_binary(g, OP_MUL, dy,
                            g_binary(g, OP_SUB, C(g, 1, l), g_unary(g, OP_SQUARE, r, l), l), l),
                   l);
        return;
    case OP_EXP:
        contribute(G, a, g_binary(g, OP_MUL, dy, r, l), l);
        return;
    case OP_LOG:
        contribute(G, a, g_binary(g, OP_DIV, dy, a, l), l);
        return;
    case OP_SQRT: /* dy / (2 y) */
        contribute(G, a, g_binary(g, OP_DIV, dy, g_binary(g, OP_MUL, C(g, 2, l), r, l), l), l);
        return;
    case OP_ABS:
        contribute(G, a, g_binary(g, OP_MUL, dy, g_unary(g, OP_SIGN, a, l), l), l);
        return;
    case OP_SQUARE: /* 2 x dy */
        contribute(G, a, g_binary(g, OP_MUL, g_binary(g, OP_MUL, C(g, 2, l), a, l), dy, l), l);
        return;
    case OP_POWC: /* c x^(c-1) dy */
        contribute(G, a,
                   g_binary(g, OP_MUL,
                            g_binary(g, OP_MUL, C(g, x.f, l), g_unary_f(g, OP_POWC, a, x.f - 1, l), l),
                            dy, l),
                   l);
        return;
    case OP_SOFTPLUS:
        contribute(G, a, g_binary(g, OP_MUL, dy, g_unary(g, OP_SIGMOID, a, l), l), l);
        return;
    case OP_LEAKY_RELU:
        contribute(G, a, g_binary_f(g, OP_LEAKY_BWD, a, dy, x.f, l), l);
        return;
    case OP_ELU:
        contribute(G, a, g_binary_f(g, OP_ELU_BWD, a, dy, x.f, l), l);
        return;
    case OP_GELU:
        contribute(G, a, g_binary(g, OP_GELU_BWD, a, dy, l), l);
        return;
    case OP_SOFTSIGN: /* dy / (1 + |x|)^2 */
        contribute(G, a,
                   g_binary(g, OP_DIV, dy,
                            g_unary(g, OP_SQUARE, g_binary(g, OP_ADD, C(g, 1, l), g_unary(g, OP_ABS, a, l), l), l),
                            l),
                   l);
        return;
    case OP_HUBER:
        contribute(G, a, g_binary_f(g, OP_HUBER_BWD, a, dy, x.f, l), l);
        return;
    case OP_ADD:
        contribute(G, a, dy, l);
        contribute(G, b, dy, l);
        return;
    case OP_SUB:
        contribute(G, a, dy, l);
        contribute(G, b, g_unary(g, OP_NEG, dy, l), l);
        return;
    case OP_MUL:
        contribute(G, a, g_binary(g, OP_MUL, dy, b, l), l);
        contribute(G, b, g_binary(g, OP_MUL, dy, a, l), l);
        return;
    case OP_DIV: /* d(a/b) = da/b - a db / b^2 = (da - y db) / b */
        contribute(G, a, g_binary(g, OP_DIV, dy, b, l), l);
        contribute(G, b, g_unary(g, OP_NEG, g_binary(g, OP_DIV, g_binary(g, OP_MUL, dy, r, l), b, l), l),
                   l);
        return;
    case OP_CONV2D: case OP_MAXPOOL: case OP_AVGPOOL: case OP_DROPOUT: {
        Ref d[2]; /* the convolution family's rules are in conv.c */
        conv_grad(g, r, dy, G->needs, d);
        contribute(G, a, d[0], l);
        contribute(G, b, d[1], l);
        return;
    }
    case OP_LN_STATS: case OP_LAYERNORM: case OP_BN_STATS: case OP_BATCHNORM: {
        Ref d[2]; /* normalization: the closed forms are in norm.c */
        norm_grad(g, r, dy, G->needs, d);
        contribute(G, a, d[0], l);
        return;
    }
    case OP_LAYERNORM_BWD: case OP_BN_BWD:
        die("internal error: no gradient rule for %s", op_name[x.op]);
    case OP_RELU_BWD: case OP_LEAKY_BWD: case OP_ELU_BWD: case OP_GELU_BWD: case OP_HUBER_BWD:
    case OP_SLICE: case OP_CONV2D_BWD_X: case OP_CONV2D_BWD_W: case OP_MAXPOOL_BWD:
    case OP_AVGPOOL_BWD: case OP_DROPOUT_BWD:
        /* second derivatives are not needed: these only appear in backward graphs */
        die("internal error: no gradient rule for %s", op_name[x.op]);
    case OP_BCE: {
        /* d/dp = (p - y) / (p (1 - p)); d/dy = log(1 - p) - log(p) */
        Ref pm = g_binary(g, OP_MUL, a, g_binary(g, OP_SUB, C(g, 1, l), a, l), l);
        contribute(G, a, g_binary(g, OP_DIV, g_binary(g, OP_MUL, dy, g_binary(g, OP_SUB, a, b, l), l), pm, l),
                   l);
        contribute(G, b,
                   g_binary(g, OP_MUL, dy,
                            g_binary(g, OP_SUB,
                                     g_unary(g, OP_LOG, g_binary(g, OP_SUB, C(g, 1, l), a, l), l),
                                     g_unary(g, OP_LOG, a, l), l),
                            l),
                   l);
        return;
    }
    case OP_BCE_LOGITS:
        /* softplus(z) - y z: d/dz = sigmoid(z) - y, d/dy = -z */
        contribute(G, a,
                   g_binary(g, OP_MUL, g_binary(g, OP_SUB, g_unary(g, OP_SIGMOID, a, l), b, l), dy, l),
                   l);
        contribute(G, b, g_unary(g, OP_NEG, g_binary(g, OP_MUL, dy, a, l), l), l);
        return;
    case OP_SUM: {
        Shape in = N(g, a)->shape;
        Ref k = g_reshape(g, dy, keep_shape(&x, in), l);
        contribute(G, a, g_expand(g, k, in, l), l);
        return;
    }
    case OP_MAX: {
        /* to the elements that hold the maximum, split evenly among them
         * where several do (as torch.max(x) and torch.amax): dy / count */
        Shape in = N(g, a)->shape, ks = keep_shape(&x, in);
        Ref mask = g_binary(g, OP_EQ, a, g_reshape(g, r, ks, l), l);
        Ref count = g_reduce(g, OP_SUM, mask, (unsigned)x.ia[0], 1, l);
        Ref share = g_binary(g, OP_DIV, g_reshape(g, dy, ks, l), count, l);
        contribute(G, a, g_binary(g, OP_MUL, mask, share, l), l);
        return;
    }
    case OP_RESHAPE:
        contribute(G, a, g_reshape(g, dy, N(g, a)->shape, l), l);
        return;
    case OP_EXPAND:
        contribute(G, a, dy, l); /* contribute() sums the broadcast axes */
        return;
    case OP_TRANSPOSE:
        contribute(G, a, g_transpose(g, dy, l), l);
        return;
    case OP_MATMUL: {
        int ta = x.ia[0], tb = x.ia[1];
        if (G->needs[a])
            contribute(G, a, ta ? mm(g, b, dy, tb, 1, a, l) : mm(g, dy, b, 0, !tb, a, l), l);
        if (G->needs[b])
            contribute(G, b, tb ? mm(g, dy, a, 1, ta, b, l) : mm(g, a, dy, !ta, 0, b, l), l);
        return;
    }
    case OP_CONCAT: {
        int ax = x.ia[0];
        Shape sa = N(g, a)->shape, sb = N(g, b)->shape;
        int ia1[4] = {ax, 0, 0, 0}, ia2[4] = {ax, sa.dim[ax], 0, 0};
        Ref in[1] = {dy};
        if (G->needs[a])
            contribute(G, a, node_make(g, OP_SLICE, sa, in, 0, ia1, l), l);
        if (G->needs[b])
            contribute(G, b, node_make(g, OP_SLICE, sb, in, 0, ia2, l), l);
        return;
    }
    case OP_SOFTMAX: { /* y * (dy - sum(dy * y)) over the last axis */
        Shape s = x.shape;
        unsigned last = 1u << (s.rank - 1);
        Ref dot = g_reduce(g, OP_SUM, g_binary(g, OP_MUL, dy, r, l), last, 1, l);
        contribute(G, a, g_binary(g, OP_MUL, r, g_binary(g, OP_SUB, dy, dot, l), l), l);
        return;
    }
    case OP_LOG_SOFTMAX: { /* dy - softmax(x) * sum(dy) over the last axis */
        Shape s = x.shape;
        unsigned last = 1u << (s.rank - 1);
        Ref tot = g_reduce(g, OP_SUM, dy, last, 1, l);
        contribute(G, a,
                   g_binary(g, OP_SUB, dy, g_binary(g, OP_MUL, g_unary(g, OP_SOFTMAX, a, l), tot, l), l),
                   l);
        return;
    }
    case OP_CE: { /* (softmax(z) - onehot(label)) * dy */
        Shape sz = N(g, a)->shape;
        int ia[4] = {sz.dim[sz.rank - 1], 0, 0, 0};
        Ref in[1] = {b};
        Shape so = N(g, b)->shape;
        so.dim[so.rank++] = sz.dim[sz.rank - 1];
        Ref oh = node_make(g, OP_ONEHOT, so, in, 0, ia, l);
        Shape ks = x.shape;
        ks.dim[ks.rank++] = 1;
        Ref d = g_binary(g, OP_MUL, g_binary(g, OP_SUB, g_unary(g, OP_SOFTMAX, a, l), oh, l),
                         g_reshape(g, dy, ks, l), l);
        contribute(G, a, d, l);
        return;
    }
    /* tokens and sequences */
    case OP_GATHER: { /* the rows of dy added into the rows the ids name */
        Ref in[2] = {dy, b};
        contribute(G, a, node_make(g, OP_GATHER_BWD, N(g, a)->shape, in, 0, NULL, l), l);
        return;
    }
    case OP_VIEW: { /* dy written at the view's elements, zeros elsewhere */
        Ref in[1] = {dy};
        contribute(G, a, node_make(g, OP_VIEW_BWD, N(g, a)->shape, in, 0, x.ia, l), l);
        return;
    }
    case OP_CAUSAL: { /* through below the diagonal, 0 above */
        Ref in[1] = {dy};
        contribute(G, a, node_make(g, OP_CAUSAL_BWD, x.shape, in, 0, NULL, l), l);
        return;
    }
    /* silu, minimum, maximum, clamp */
    case OP_SILU: { /* dy * s * (1 + x (1 - s)), s = sigmoid(x) */
        Ref sg = g_unary(g, OP_SIGMOID, a, l);
        Ref inner = g_binary(g, OP_ADD, C(g, 1, l),
                             g_binary(g, OP_MUL, a, g_binary(g, OP_SUB, C(g, 1, l), sg, l), l), l);
        contribute(G, a, g_binary(g, OP_MUL, dy, g_binary(g, OP_MUL, sg, inner, l), l), l);
        return;
    }
    case OP_MAXIMUM: case OP_MINIMUM: {
        /* to the larger (smaller) operand; half to each at a tie */
        int mx = x.op == OP_MAXIMUM;
        if (G->needs[a])
            contribute(G, a, g_binary(g, OP_MUL, dy, g_binary(g, OP_MAX_SHARE, mx ? a : b, mx ? b : a, l), l), l);
        if (G->needs[b])
            contribute(G, b, g_binary(g, OP_MUL, dy, g_binary(g, OP_MAX_SHARE, mx ? b : a, mx ? a : b, l), l), l);
        return;
    }
    case OP_CLAMP: { /* dy where lo <= x <= hi (bounds included, as torch.clamp) */
        Ref in[2] = {a, dy};
        contribute(G, a, node_make2(g, OP_CLAMP_BWD, N(g, a)->shape, in, x.f, x.f2, NULL, l), l);
        return;
    }
    case OP_MAX_SHARE:
        return; /* piecewise constant */
    case OP_GATHER_BWD: case OP_VIEW_BWD: case OP_CAUSAL_BWD: case OP_CLAMP_BWD:
        die("internal error: no gradient rule for %s", op_name[x.op]);
    case OP_COUNT:
        break;
    }
    unreachable();
}

void grad_build(Model *m)
{
    Graph *g = &m->g;
    int n0 = g->n;
    Grad G;
    G.m = m;
    G.g = g;
    G.adj = xcalloc((size_t)n0, sizeof(Ref));
    G.needs = xcalloc((size_t)n0, 1);
    int *count = xcalloc((size_t)n0, sizeof(int));
    for (Ref r = 1; r < n0; r++) {
        Node *x = N(g, r);
        /* a frozen param needs no gradient: nothing is computed for it */
        if (x->op == OP_PARAM && !(m->params[x->ia[0]]->flags & PARAM_FROZEN))
            G.needs[r] = 1;
        for (int i = 0; i < op_nin[x->op]; i++)
            if (G.needs[x->in[i]])
                G.needs[r] = 1;
    }
    m->grads = arena_alloc(g->arena, sizeof(Ref) * (size_t)(m->nparams + 1));
    m->adjs = arena_alloc(g->arena, sizeof(Ref) * (size_t)(m->nparams + 1));
    if (!m->loss || !G.needs[m->loss]) {
        free(G.adj);
        free(G.needs);
        free(count);
        return;
    }
    g->loc_backward = 1;
    /* The loss is the mean over the batch, sum(l) / n. Reverse mode starts
     * from the sum, so every adjoint is that of the summed loss (per example,
     * the gradient of its own loss: yhat - y), and the parameter gradients
     * are divided by n at the end: the gradient of the mean is the mean of
     * the per-example gradients. */
    Node *L = N(g, m->loss);
    Ref start = m->loss, scale = 0;
    if (L->op == OP_DIV && N(g, L->in[1])->op == OP_BATCHN && N(g, L->in[0])->op == OP_SUM) {
        start = L->in[0];
        scale = L->in[1];
    }
    G.adj[start] = g_const(g, 1.0, N(g, m->loss)->loc);
    for (Ref r = n0 - 1; r >= 1; r--) {
        if (!G.adj[r] || !G.needs[r])
            continue;
        Node *a = N(g, G.adj[r]);
        /* label the adjoint; a named primal wins over an unnamed one that
         * shares it (yhat over yhat - y) */
        if (a->backward && a->op != OP_CONST &&
            (!a->adj_of || (!N(g, a->adj_of)->name && N(g, r)->name))) {
            a->adj_of = r;
            a->contribs = count[r];
        }
        Node x = *N(g, r);
        for (int i = 0; i < op_nin[x.op]; i++)
            if (G.needs[x.in[i]])
                count[x.in[i]]++;
        rule(&G, r);
    }
    for (int i = 0; i < m->nparams; i++) {
        Ref p = m->params[i]->ref;
        Ref d = G.adj[p];
        m->adjs[i] = d;
        if (d && N(g, d)->backward && !N(g, d)->adj_of) {
            N(g, d)->adj_of = p;
            N(g, d)->contribs = count[p];
        }
        if (d && scale) {
            d = g_binary(g, OP_MUL, d, g_binary(g, OP_DIV, g_const(g, 1, L->loc), scale, L->loc), L->loc);
            if (!N(g, d)->name)
                N(g, d)->name = arena_printf(g->arena, "grad %s", m->params[i]->name);
        }
        m->grads[i] = d;
    }
    g->loc_backward = 0;
    free(G.adj);
    free(G.needs);
    free(count);
}
