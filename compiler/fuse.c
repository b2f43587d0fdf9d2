/*
 * fuse.c: which nodes are computed along with another, decided in planning
 * before any storage is placed (plan.c then gives a fused value no storage
 * of its own and keeps what it reads alive until it is computed).
 *
 * Two kinds:
 * - A product (OP_MATMUL), a convolution or a max-pool's adjoint takes over
 *   its one reader when that reader scales it by a single value (the 1/n of
 *   a parameter's gradient), adds a bias along its rows (then perhaps
 *   relu), or (the max-pool's adjoint) applies relu's adjoint: the product's
 *   epilogue computes them, straight into the last one's storage.
 * - An element-wise node read once, by the next element-wise node over the
 *   same elements, is computed inside that reader's loop (at most six
 *   deep).
 * - A causal mask read by a softmax alone, and a scaling by a constant
 *   before it, are computed in the softmax's rows.
 */
#include "gradc.h"

#include <stdlib.h>
#include <string.h>

/* a single value made of constants and n alone (1/n, 2/n) */
static int value_node(Graph *g, Ref r, int depth)
{
    Node *x = N(g, r);
    if (shape_numel_static(x->shape) != 1 || shape_has_batch(x->shape) || depth > 4)
        return 0;
    if (x->op == OP_CONST || x->op == OP_BATCHN)
        return 1;
    if (x->op != OP_ADD && x->op != OP_SUB && x->op != OP_MUL && x->op != OP_DIV)
        return 0;
    return value_node(g, x->in[0], depth + 1) && value_node(g, x->in[1], depth + 1);
}

int fuse_elem_flat(const Plan *p, Graph *g, Ref r)
{
    Node *x = N(g, r);
    for (int k = 0; k < op_nin[x->op]; k++) {
        Node *y = N(g, x->in[k]);
        if (p->slot[x->in[k]].home != H_INLINE && !shape_eq(y->shape, x->shape) &&
            !(shape_numel_static(y->shape) == 1 && !shape_has_batch(y->shape)))
            return 0;
    }
    return 1;
}

int fuse_away(const Plan *p, Ref r)
{
    if (!p->fused || !p->fz)
        return 0;
    if (p->fz[r].last)
        return 1; /* a product writing its last reader's storage */
    Ref f = p->fused[r];
    return f && p->fz[f].last != r;
}

/* whether no node from position lo to hi (exclusive) writes any C */
static int silent(const Plan *p, int lo, int hi)
{
    for (int k = lo; k < hi; k++) {
        Home h = p->slot[p->order[k]].home;
        if (h != H_ALIAS && h != H_INLINE && h != H_PARAMS)
            return 0;
    }
    return 1;
}

static Fusion fusion_of(Model *m, Plan *p, Ref r, const int *uses, const int *pos, const Ref *reader)
{
    Fusion f = {0, 0, 0, 0};
    Graph *g = &m->g;
    Node *x = N(g, r);
    int mm = x->op == OP_MATMUL;
    if (uses[r] != 1 || p->slot[r].home != H_WORK)
        return f;
    if (mm && (N(g, x->in[0])->shape.rank >= 3 || N(g, x->in[1])->shape.rank >= 3 || x->shape.rank != 2))
        return f;
    int i = pos[r];
    /* the reader: the next node computed, or (for the scaling) any later one */
    Ref u = reader[r];
    if (!u)
        return f;
    Node *y = N(g, u);
    Ref other = y->in[0] == r ? y->in[1] : y->in[0];
    int bias = 0;
    if (x->op == OP_MAXPOOL_BWD) {
        if (y->op != OP_RELU_BWD || !silent(p, i + 1, pos[u]) || y->in[1] != r || !conv_fusable(g, r, y->in[0]))
            return f;
        f.last = u;
        f.act = 2;
    } else if (y->op != OP_ADD || !silent(p, i + 1, pos[u]) || !shape_eq(y->shape, x->shape) ||
               p->slot[other].home == H_INLINE || other == r) {
        if (!mm || y->op != OP_MUL || !value_node(g, other, 0) || !shape_eq(y->shape, x->shape))
            return f;
        f.last = u;
        f.alpha = other;
    } else if (mm) {
        Shape b = N(g, other)->shape;
        bias = b.rank == 1 && !shape_has_batch(b) && b.dim[0] == x->shape.dim[1];
    } else {
        bias = x->op == OP_CONV2D && conv_fusable(g, r, other);
    }
    if (bias) {
        f.last = u;
        f.bias = other;
        if (uses[u] == 1 && pos[u] + 1 < p->norder) {
            Ref v = p->order[pos[u] + 1];
            if (N(g, v)->op == OP_RELU && N(g, v)->in[0] == u && p->slot[u].home == H_WORK) {
                f.last = v;
                f.act = 1;
            }
        }
    }
    Home h = f.last ? p->slot[f.last].home : H_NONE;
    if (h != H_WORK && h != H_GRAD && h != H_OUT)
        return (Fusion){0, 0, 0, 0};
    /* the segments of the functions together: all in one */
    if (p->seg && p->seg[f.last] != p->seg[r])
        return (Fusion){0, 0, 0, 0};
    return f;
}

/* a node emitted by emit_elemwise's flat loop, not computed along with anything */
static int elem_fusable_reader(Model *m, Plan *p, Ref c)
{
    Node *x = N(&m->g, c);
    Home h = p->slot[c].home;
    if (!(op_flags[x->op] & OPF_ELEMWISE) || x->op == OP_CONST || x->op == OP_BATCHN || x->op == OP_EXPAND ||
        x->op == OP_RESHAPE || op_nin[x->op] < 1)
        return 0;
    if (h == H_PARAMS || h == H_X || h == H_Y || h == H_INLINE || h == H_ALIAS || p->fused[c] || p->fz[c].last)
        return 0;
    return fuse_elem_flat(p, &m->g, c);
}

static int elem_depth(Plan *p, Graph *g, Ref q)
{
    int d = 0;
    Node *x = N(g, q);
    for (int k = 0; k < op_nin[x->op]; k++)
        if (p->fused[x->in[k]] == q) {
            int t = elem_depth(p, g, x->in[k]);
            d = t > d ? t : d;
        }
    return d + 1;
}

static int elem_fusable(Model *m, Plan *p, Ref q, Ref c, const int *uses, const int *pos)
{
    if (uses[q] != 1 || p->slot[q].home != H_WORK || !elem_fusable_reader(m, p, q))
        return 0;
    if (p->seg && p->seg[q] != p->seg[c])
        return 0;
    return shape_eq(N(&m->g, q)->shape, N(&m->g, c)->shape) && pos[q] < pos[c] && elem_depth(p, &m->g, q) <= 6;
}

/* a node of op `op` read once, by c, in the work area, and fused into nothing else */
static int mask_fusable(Plan *p, Graph *g, Ref q, Ref c, Op op, const int *uses)
{
    return N(g, q)->op == op && uses[q] == 1 && p->slot[q].home == H_WORK && !p->fused[q] && !p->fz[q].last &&
           shape_eq(N(g, q)->shape, N(g, c)->shape) && (!p->seg || p->seg[q] == p->seg[c]);
}

/* a constant of one element */
static int scalar_const(Graph *g, Ref r)
{
    return N(g, r)->op == OP_CONST && shape_numel_static(N(g, r)->shape) == 1 && !shape_has_batch(N(g, r)->shape);
}

void fuse_plan(Model *m, Plan *p, const unsigned char *root)
{
    Graph *g = &m->g;
    if (getenv("GRADC_NO_FUSION"))
        return;
    int *uses = xcalloc((size_t)g->n, sizeof(int)), *pos = xcalloc((size_t)g->n, sizeof(int));
    for (int i = 0; i < p->norder; i++) {
        Node *x = N(g, p->order[i]);
        pos[p->order[i]] = i;
        for (int j = 0; j < op_nin[x->op]; j++)
            uses[x->in[j]]++;
        if (root[p->order[i]])
            uses[p->order[i]]++;
    }
    /* each node's first reader in the order (a scan from the node for
     * each product was quadratic on long models) */
    Ref *reader = xcalloc((size_t)g->n, sizeof(Ref));
    for (int i = p->norder - 1; i >= 0; i--) {
        Node *y = N(g, p->order[i]);
        for (int j = 0; j < op_nin[y->op]; j++)
            reader[y->in[j]] = p->order[i];
    }
    for (int i = 0; i < p->norder; i++) {
        Ref r = p->order[i];
        Op op = N(g, r)->op;
        if (op != OP_MATMUL && op != OP_CONV2D && op != OP_MAXPOOL_BWD)
            continue;
        Fusion f = fusion_of(m, p, r, uses, pos, reader);
        if (!f.last)
            continue;
        p->fz[r] = f; /* the nodes computed along: the reader(s) up to the last */
        p->fused[f.last] = r;
        if (f.act == 1)
            p->fused[N(g, f.last)->in[0]] = r;
    }
    for (int i = 0; i < p->norder; i++) {
        Ref c = p->order[i];
        Node *x = N(g, c);
        if (!elem_fusable_reader(m, p, c))
            continue;
        for (int k = 0; k < op_nin[x->op]; k++) {
            Ref q = x->in[k];
            if (k == 1 && x->in[1] == x->in[0])
                continue;
            if (elem_fusable(m, p, q, c, uses, pos))
                p->fused[q] = c;
        }
    }
    /* a causal mask read by a softmax alone (attention's weights) is
     * applied in the softmax's rows, which take e^x of the entries on and
     * below the diagonal only (emit_rowwise); a scaling by a constant
     * before the mask (q·kᵀ/√d) is computed there too */
    for (int i = 0; i < p->norder; i++) {
        Ref c = p->order[i], q = N(g, c)->in[0];
        if (N(g, c)->op != OP_SOFTMAX || !mask_fusable(p, g, q, c, OP_CAUSAL, uses))
            continue;
        p->fused[q] = c;
        Ref d = N(g, q)->in[0];
        Node *y = N(g, d);
        if ((y->op == OP_DIV || y->op == OP_MUL) && mask_fusable(p, g, d, c, y->op, uses) &&
            shape_eq(N(g, y->in[0])->shape, y->shape) && scalar_const(g, y->in[1]))
            p->fused[d] = c;
    }
    free(reader);
    free(uses);
    free(pos);
}
