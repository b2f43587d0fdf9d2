/*
 * ir.c: the graph IR. Nodes live in one array in topological order (every
 * operand is created before its users) and are referenced by small integer
 * handles. Every node is built through node_make, which hash-conses: asking
 * for a node identical to an existing one (same op, shape, operands and
 * attributes) returns the existing one, so common subexpressions disappear
 * as the graph is built, forward and backward alike.
 */
#include "gradc.h"

#include <limits.h>
#include <math.h>
#include <string.h>

const char *const op_name[OP_COUNT] = {
#define OP(id, name, nin, flags, cost, sig, c, text, fold) name,
#include "ops.def"
};

const int op_nin[OP_COUNT] = {
#define OP(id, name, nin, flags, cost, sig, c, text, fold) nin,
#include "ops.def"
};

const int op_flags[OP_COUNT] = {
#define OP(id, name, nin, flags, cost, sig, c, text, fold) flags,
#include "ops.def"
};

const double op_cost[OP_COUNT] = {
#define OP(id, name, nin, flags, cost, sig, c, text, fold) cost,
#include "ops.def"
};

const char *const op_sig[OP_COUNT] = {
#define OP(id, name, nin, flags, cost, sig, c, text, fold) sig,
#include "ops.def"
};

const char *const op_c[OP_COUNT] = {
#define OP(id, name, nin, flags, cost, sig, c, text, fold) c,
#include "ops.def"
};

const char *const op_text[OP_COUNT] = {
#define OP(id, name, nin, flags, cost, sig, c, text, fold) text,
#include "ops.def"
};

int op_fold(Op op, double a, double b, double f, double *out)
{
    int ok = 1;
    double r = 0;
#define NOFOLD (ok = 0, 0.0)
    switch (op) {
#define OP(id, name, nin, flags, cost, sig, c, text, fold) \
    case OP_##id:                                          \
        r = (fold);                                        \
        break;
#include "ops.def"
    case OP_COUNT:
        ok = 0;
        break;
    }
#undef NOFOLD
    (void)a, (void)b, (void)f;
    if (!ok)
        return 0;
    *out = r;
    return 1;
}

/* ----------------------------------------------------------------- shapes */

Shape shape0(void)
{
    Shape s = {0, {0}};
    return s;
}

Shape shape1(int a)
{
    Shape s = {1, {a}};
    return s;
}

Shape shape2(int a, int b)
{
    Shape s = {2, {a, b}};
    return s;
}

int shape_eq(Shape a, Shape b)
{
    if (a.rank != b.rank)
        return 0;
    for (int i = 0; i < a.rank; i++)
        if (a.dim[i] != b.dim[i])
            return 0;
    return 1;
}

int shape_numel_static(Shape s)
{
    int n = 1;
    for (int i = 0; i < s.rank; i++)
        if (s.dim[i] != DIM_B)
            n *= s.dim[i];
    return n;
}

int shape_has_batch(Shape s)
{
    return s.rank > 0 && s.dim[0] == DIM_B;
}

int shape_broadcast(Shape a, Shape b, Shape *out)
{
    Shape r;
    r.rank = a.rank > b.rank ? a.rank : b.rank;
    if (r.rank > MAXRANK)
        return 0;
    for (int i = 0; i < r.rank; i++) {
        int ia = i - (r.rank - a.rank), ib = i - (r.rank - b.rank);
        int da = ia >= 0 ? a.dim[ia] : 1, db = ib >= 0 ? b.dim[ib] : 1;
        if (da == db || db == 1)
            r.dim[i] = da;
        else if (da == 1)
            r.dim[i] = db;
        else
            return 0;
    }
    *out = r;
    return 1;
}

const char *shape_str(Shape s, char *buf, size_t size)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, size - k, "[");
    for (int i = 0; i < s.rank && k < size; i++) {
        if (s.dim[i] == DIM_B)
            k += (size_t)snprintf(buf + k, size - k, "%sB", i ? "," : "");
        else
            k += (size_t)snprintf(buf + k, size - k, "%s%d", i ? "," : "", s.dim[i]);
    }
    if (k < size)
        snprintf(buf + k, size - k, "]");
    return buf;
}

/* ------------------------------------------------------------------ nodes */

void graph_init(Graph *g, Arena *a)
{
    memset(g, 0, sizeof *g);
    g->arena = a;
    g->nchunk = 1;
    g->chunk = xcalloc(1, sizeof(Node *));
    g->chunk[0] = xcalloc(NODE_CHUNK, sizeof(Node));
    g->n = 1; /* node 0 is "none" */
    g->nhash = 1024;
    g->hash = xcalloc((size_t)g->nhash, sizeof(int));
}

void graph_release(Graph *g)
{
    for (int i = 0; i < g->nchunk; i++)
        free(g->chunk[i]);
    free(g->chunk);
    free(g->hash);
    g->chunk = NULL;
    g->nchunk = 0;
    g->hash = NULL;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

static uint64_t node_key(const Node *x)
{
    uint64_t h = (uint64_t)x->op;
    h = mix(h, (uint64_t)x->shape.rank);
    for (int i = 0; i < x->shape.rank; i++)
        h = mix(h, (uint64_t)(int64_t)x->shape.dim[i]);
    for (int i = 0; i < 3; i++)
        h = mix(h, (uint64_t)x->in[i]);
    for (int i = 0; i < 4; i++)
        h = mix(h, (uint64_t)(int64_t)x->ia[i]);
    uint64_t fb;
    memcpy(&fb, &x->f, sizeof fb);
    h = mix(h, fb);
    memcpy(&fb, &x->f2, sizeof fb);
    h = mix(h, fb);
    return h;
}

static int node_same(const Node *a, const Node *b)
{
    return a->op == b->op && shape_eq(a->shape, b->shape) && a->in[0] == b->in[0] &&
           a->in[1] == b->in[1] && a->in[2] == b->in[2] &&
           memcmp(a->ia, b->ia, sizeof a->ia) == 0 && memcmp(&a->f, &b->f, sizeof a->f) == 0 &&
           memcmp(&a->f2, &b->f2, sizeof a->f2) == 0;
}

static void rehash(Graph *g)
{
    free(g->hash);
    g->nhash *= 2;
    g->hash = xcalloc((size_t)g->nhash, sizeof(int));
    for (int r = 1; r < g->n; r++) {
        Node *x = N(g, r);
        int b = (int)(node_key(x) & (uint64_t)(g->nhash - 1));
        x->hash_next = g->hash[b];
        g->hash[b] = r;
    }
}

Ref node_make(Graph *g, Op op, Shape shape, const Ref *in, double f, const int *ia, Loc loc)
{
    return node_make2(g, op, shape, in, f, 0, ia, loc);
}

Ref node_make2(Graph *g, Op op, Shape shape, const Ref *in, double f, double f2, const int *ia, Loc loc)
{
    Node x;
    memset(&x, 0, sizeof x);
    x.op = op;
    x.shape = shape;
    for (int i = 0; i < op_nin[op]; i++)
        x.in[i] = in[i];
    if ((op_flags[op] & OPF_COMMUTATIVE) && x.in[0] > x.in[1]) {
        Ref t = x.in[0];
        x.in[0] = x.in[1];
        x.in[1] = t;
    }
    x.f = f;
    x.f2 = f2;
    if (ia)
        memcpy(x.ia, ia, sizeof x.ia);
    x.loc = loc;
    uint64_t key = node_key(&x);
    int b = (int)(key & (uint64_t)(g->nhash - 1));
    for (int r = g->hash[b]; r; r = N(g, r)->hash_next)
        if (node_same(N(g, r), &x))
            return r;
    if (g->n == g->nchunk * NODE_CHUNK) { /* a new chunk; the old ones stay put */
        if (g->n >= INT_MAX - NODE_CHUNK)
            die("gradc: error: the graph has more than %d nodes", g->n);
        g->chunk = xrealloc(g->chunk, sizeof(Node *) * (size_t)(g->nchunk + 1));
        g->chunk[g->nchunk++] = xcalloc(NODE_CHUNK, sizeof(Node));
    }
    x.backward = g->loc_backward;
    Ref r = g->n++;
    x.hash_next = g->hash[b];
    *N(g, r) = x;
    g->hash[b] = r;
    if (g->n > g->nhash)
        rehash(g);
    return r;
}

/* --------------------------------------------------------------- builders */

Ref g_const(Graph *g, double v, Loc loc)
{
    return node_make(g, OP_CONST, shape0(), NULL, v, NULL, loc);
}

Ref g_unary_f(Graph *g, Op op, Ref a, double f, Loc loc)
{
    Ref in[1] = {a};
    return node_make(g, op, N(g, a)->shape, in, f, NULL, loc);
}

Ref g_unary(Graph *g, Op op, Ref a, Loc loc)
{
    return g_unary_f(g, op, a, 0, loc);
}

Ref g_binary_f(Graph *g, Op op, Ref a, Ref b, double f, Loc loc)
{
    Ref in[2] = {a, b};
    Shape s;
    if (!shape_broadcast(N(g, a)->shape, N(g, b)->shape, &s))
        die("internal error: %s of shapes that do not broadcast", op_name[op]);
    return node_make(g, op, s, in, f, NULL, loc);
}

Ref g_binary(Graph *g, Op op, Ref a, Ref b, Loc loc)
{
    return g_binary_f(g, op, a, b, 0, loc);
}

Ref g_reduce(Graph *g, Op op, Ref a, unsigned axes, int keepdims, Loc loc)
{
    Shape in = N(g, a)->shape, s;
    s.rank = 0;
    for (int i = 0; i < in.rank; i++) {
        if (axes & (1u << i)) {
            if (keepdims)
                s.dim[s.rank++] = 1;
        } else {
            s.dim[s.rank++] = in.dim[i];
        }
    }
    int ia[4] = {(int)axes, keepdims, 0, 0};
    Ref ins[1] = {a};
    return node_make(g, op, s, ins, 0, ia, loc);
}

Ref g_reshape(Graph *g, Ref a, Shape s, Loc loc)
{
    if (shape_eq(N(g, a)->shape, s))
        return a;
    Ref in[1] = {a};
    return node_make(g, OP_RESHAPE, s, in, 0, NULL, loc);
}

Ref g_expand(Graph *g, Ref a, Shape s, Loc loc)
{
    if (shape_eq(N(g, a)->shape, s))
        return a;
    Ref in[1] = {a};
    return node_make(g, OP_EXPAND, s, in, 0, NULL, loc);
}

Ref g_transpose(Graph *g, Ref a, Loc loc)
{
    Shape s = N(g, a)->shape;
    int t = s.dim[s.rank - 1];
    s.dim[s.rank - 1] = s.dim[s.rank - 2];
    s.dim[s.rank - 2] = t;
    Ref in[1] = {a};
    return node_make(g, OP_TRANSPOSE, s, in, 0, NULL, loc);
}

/* op(A) of a rank-2 or rank-3 operand: the rows and columns of its last two
 * axes, swapped if transposed. */
static void mat_dims(Shape s, int t, int *rows, int *cols)
{
    int r = s.dim[s.rank - 2], c = s.dim[s.rank - 1];
    *rows = t ? c : r;
    *cols = t ? r : c;
}

Ref g_matmul_sum(Graph *g, Ref a, Ref b, int ta, int tb, int sumbatch, Loc loc)
{
    Shape sa = N(g, a)->shape, sb = N(g, b)->shape, s, lead;
    int m, k, k2, nn;
    mat_dims(sa, ta, &m, &k);
    mat_dims(sb, tb, &k2, &nn);
    if (k != k2)
        die("internal error: matmul inner dimensions %d and %d", k, k2);
    /* the leading axes of both, broadcast (tokens and sequences) */
    if (!matmul_lead(sa, sb, &lead))
        die("internal error: matmul leading axes do not broadcast");
    if (lead.rank && !sumbatch) {
        s = lead;
        s.dim[s.rank++] = m;
        s.dim[s.rank++] = nn;
    } else {
        s = shape2(m, nn);
        if (!lead.rank)
            sumbatch = 0;
    }
    int ia[4] = {ta, tb, sumbatch, 0};
    Ref in[2] = {a, b};
    return node_make(g, OP_MATMUL, s, in, 0, ia, loc);
}

/* tokens and sequences */
int matmul_lead(Shape a, Shape b, Shape *lead)
{
    Shape la = a, lb = b;
    la.rank = a.rank - 2;
    lb.rank = b.rank - 2;
    return shape_broadcast(la, lb, lead);
}

int view_record(Graph *g, long off, const long *strides, int rank)
{
    long rec[VIEW_LONGS] = {0};
    rec[0] = off;
    for (int i = 0; i < rank; i++)
        rec[1 + i] = strides[i];
    int k = 0;
    while (k < g->nviews && memcmp(g->views + (size_t)k * VIEW_LONGS, rec, sizeof rec))
        k++;
    if (k == g->nviews) {
        int cap = g->cviews * VIEW_LONGS, need = (k + 1) * VIEW_LONGS;
        g->views = arena_grow(g->arena, g->views, sizeof(long), &cap, need);
        g->cviews = cap / VIEW_LONGS;
        memcpy(g->views + (size_t)k * VIEW_LONGS, rec, sizeof rec);
        g->nviews++;
    }
    return k;
}

Ref g_view(Graph *g, Ref a, Shape s, long off, const long *strides, Loc loc)
{
    int ia[4] = {view_record(g, off, strides, s.rank), 0, 0, 0};
    Ref in[1] = {a};
    return node_make(g, OP_VIEW, s, in, 0, ia, loc);
}

const long *view_of(const Graph *g, Ref r)
{
    return g->views + (size_t)N(g, r)->ia[0] * VIEW_LONGS;
}

Ref g_matmul(Graph *g, Ref a, Ref b, int ta, int tb, Loc loc)
{
    return g_matmul_sum(g, a, b, ta, tb, 0, loc);
}

Ref g_unbroadcast(Graph *g, Ref a, Shape s, Loc loc)
{
    Shape in = N(g, a)->shape;
    if (shape_eq(in, s))
        return a;
    int extra = in.rank - s.rank;
    unsigned lead = 0, ones = 0;
    for (int i = 0; i < extra; i++)
        lead |= 1u << i;
    for (int i = 0; i < s.rank; i++)
        if (s.dim[i] == 1 && in.dim[i + extra] != 1)
            ones |= 1u << i;
    Ref r = a;
    if (lead)
        r = g_reduce(g, OP_SUM, r, lead, 0, loc);
    if (ones)
        r = g_reduce(g, OP_SUM, r, ones, 1, loc);
    return g_reshape(g, r, s, loc);
}

int node_is_const(Graph *g, Ref r, double *v)
{
    Node *x = N(g, r);
    while (x->op == OP_EXPAND || x->op == OP_RESHAPE)
        x = N(g, x->in[0]);
    if (x->op != OP_CONST)
        return 0;
    if (v)
        *v = x->f;
    return 1;
}

const char **graph_line_names(const Graph *g, int *nlines)
{
    int lines = 0;
    for (Ref r = 1; r < g->n; r++)
        if (N(g, r)->loc.first_line > lines)
            lines = N(g, r)->loc.first_line;
    const char **bind = xcalloc((size_t)lines + 1, sizeof(char *));
    for (Ref r = 1; r < g->n; r++) {
        Node *x = N(g, r);
        if (x->name && !x->backward && x->op != OP_PARAM && x->op != OP_INPUT && x->op != OP_TARGET &&
            x->loc.first_line > 0 && !bind[x->loc.first_line])
            bind[x->loc.first_line] = x->name;
    }
    if (nlines)
        *nlines = lines;
    return bind;
}
