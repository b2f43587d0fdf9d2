/*
 * simplify.c: small local rewrites on the graph, forward and backward alike.
 *
 * The graph is copied, node by node in topological order and only from what
 * the roots (loss, output, gradients) reach, into a fresh graph through a
 * "smart" constructor that applies the rewrites of the node's op before it
 * hash-conses. So dead nodes vanish (they are never copied), common
 * subexpressions merge (hash-consing), and each rewrite sees operands that
 * are already simplified. Copies repeat until no rewrite fires.
 *
 * Rewrites: constant folding (only when the result is finite: no NaN or
 * infinity is folded), algebraic identities (x+0, x*1, x*0, --x, ...),
 * scalar factors hoisted out of matrix products and sums and folded with
 * each other, and the stable forms of docs/language.md ("Losses"):
 * log(sigmoid(z)), log(1 - sigmoid(z)), log(softmax(z)), bce(sigmoid(z), y),
 * the textbook y·log(sigmoid(z)) + (1 - y)·log(1 - sigmoid(z)), and
 * -sum(onehot(l) * log_softmax(z)). Each one found in what the model wrote
 * is recorded in Model.recognised for --emit=grad.
 */
#include "gradc.h"

#include <math.h>
#include <string.h>

typedef struct Simp {
    Model *m;        /* the model */
    Graph *old;      /* the graph being copied */
    Graph *g;        /* the new graph */
    int level;       /* 1: folds and identities; 2: also stable forms, hoisting */
    int fired;       /* rewrites in this copy */
    FILE *explain;   /* --explain: where to say what fired */
    const char *file; /* the model file, for --explain */
    Op cur_op;       /* the op of the node being copied, and its second */
    double cur_f2;   /* constant, which a node of that op built on the way keeps */
} Simp;

static Ref mk(Simp *S, Op op, Shape shape, Ref a, Ref b, double f, const int *ia, Loc loc);

static void said(Simp *S, Loc loc, const char *what)
{
    S->fired++;
    if (S->explain)
        fprintf(S->explain, "%s:%d:%d: %s\n", S->file ? S->file : "model", loc.first_line,
                loc.first_column, what);
}

/* A stable form found in what the user wrote, for --emit=grad's
 * "# recognised:" line. Rewrites run bottom-up, so a later form on the same
 * model line encloses an earlier one (the cross-entropy around its
 * log(softmax)): it takes the earlier one's place. */
static void recognise(Simp *S, Loc loc, const char *what)
{
    Model *m = S->m;
    for (int i = 0; i < m->nrecognised; i++)
        if (m->recognised[i].loc.first_line == loc.first_line) {
            m->recognised[i].what = what;
            m->recognised[i].loc = loc;
            return;
        }
    if (m->nrecognised < (int)(sizeof m->recognised / sizeof m->recognised[0])) {
        m->recognised[m->nrecognised].what = what;
        m->recognised[m->nrecognised++].loc = loc;
    }
}

static Node *NN(Simp *S, Ref r)
{
    return N(S->g, r);
}

static int is_c(Simp *S, Ref r, double v)
{
    double c;
    return node_is_const(S->g, r, &c) && c == v;
}

static int scalar_const(Simp *S, Ref r, double *v)
{
    return NN(S, r)->op == OP_CONST && NN(S, r)->shape.rank == 0 && (*v = NN(S, r)->f, 1);
}

/* A rank-0 node: a factor that can move freely through linear ops. */
static int is_scalar(Simp *S, Ref r)
{
    return NN(S, r)->shape.rank == 0;
}

static Ref C(Simp *S, double v, Loc loc)
{
    return node_make(S->g, OP_CONST, shape0(), NULL, v, NULL, loc);
}

static Ref expand_to(Simp *S, Ref x, Shape s, Loc loc)
{
    if (shape_eq(NN(S, x)->shape, s))
        return x;
    return mk(S, OP_EXPAND, s, x, 0, 0, NULL, loc);
}

static Ref un(Simp *S, Op op, Ref a, Loc loc)
{
    return mk(S, op, NN(S, a)->shape, a, 0, 0, NULL, loc);
}

static Ref bin(Simp *S, Op op, Ref a, Ref b, Loc loc)
{
    Shape s;
    if (!shape_broadcast(NN(S, a)->shape, NN(S, b)->shape, &s))
        die("internal error: simplify built %s of shapes that do not broadcast", op_name[op]);
    return mk(S, op, s, a, b, 0, NULL, loc);
}

/* Evaluates an elementwise op on constants, in double (the table's fold
 * column): never into NaN or infinity, which are left to run time. */
static int fold(Op op, double a, double b, double f, double *out)
{
    double r;
    if (!op_fold(op, a, b, f, &r) || !isfinite(r))
        return 0;
    *out = r;
    return 1;
}

/* Whether VIEW_BWD node r takes a slice of its operand's shape along one
 * axis (every other axis whole, no step): *axis, its start *lo. */
static int slice_of(Graph *g, Ref r, int *axis, long *lo)
{
    Node *x = N(g, r);
    Shape so = x->shape, sv = N(g, x->in[0])->shape;
    const long *v = view_of(g, r);
    long st[MAXRANK], k = 1;
    if (so.rank != sv.rank)
        return 0;
    for (int i = so.rank - 1; i >= 0; i--) {
        st[i] = k;
        k *= so.dim[i] == DIM_B ? 1 : so.dim[i];
    }
    *axis = -1;
    for (int i = 0; i < so.rank; i++) {
        if (v[1 + i] != st[i])
            return 0;
        if (sv.dim[i] != so.dim[i]) {
            if (*axis >= 0 || so.dim[i] == DIM_B || sv.dim[i] == DIM_B)
                return 0;
            *axis = i;
        }
    }
    if (*axis < 0 || v[0] % st[*axis])
        return 0;
    *lo = v[0] / st[*axis];
    return *lo >= 0 && *lo + sv.dim[*axis] <= so.dim[*axis];
}

static Ref mk(Simp *S, Op op, Shape shape, Ref a, Ref b, double f, const int *ia, Loc loc)
{
    Graph *g = S->g;
    int lv = S->level;
    double ca, cb;
    Node *A = a ? NN(S, a) : NULL, *Bn = b ? NN(S, b) : NULL;

    if (lv >= 1 && (op_flags[op] & OPF_ELEMWISE)) {
        /* fold constants */
        int ka = a && node_is_const(g, a, &ca), kb = !b || node_is_const(g, b, &cb);
        double v;
        if (ka && kb && fold(op, ca, b ? cb : 0, f, &v)) {
            said(S, loc, "fold constant");
            return expand_to(S, C(S, v, loc), shape, loc);
        }
        /* an expanded operand broadcasts by itself */
        Shape t;
        if (A && A->op == OP_EXPAND && (!b || shape_broadcast(NN(S, A->in[0])->shape, Bn->shape, &t)) &&
            (b ? shape_eq(t, shape) : shape_eq(NN(S, A->in[0])->shape, shape)))
            return mk(S, op, shape, A->in[0], b, f, ia, loc);
        if (Bn && Bn->op == OP_EXPAND && shape_broadcast(A->shape, NN(S, Bn->in[0])->shape, &t) &&
            shape_eq(t, shape))
            return mk(S, op, shape, a, Bn->in[0], f, ia, loc);
    }

    if (lv >= 1) {
        switch (op) {
        case OP_ADD:
            if (is_c(S, b, 0) && shape_eq(A->shape, shape)) {
                said(S, loc, "x + 0 -> x");
                return a;
            }
            if (is_c(S, a, 0) && shape_eq(Bn->shape, shape)) {
                said(S, loc, "0 + x -> x");
                return b;
            }
            if (Bn->op == OP_NEG) {
                said(S, loc, "a + -b -> a - b");
                return mk(S, OP_SUB, shape, a, Bn->in[0], 0, NULL, loc);
            }
            if (A->op == OP_NEG) {
                said(S, loc, "-a + b -> b - a");
                return mk(S, OP_SUB, shape, b, A->in[0], 0, NULL, loc);
            }
            break;
        case OP_SUB:
            if (is_c(S, b, 0) && shape_eq(A->shape, shape)) {
                said(S, loc, "x - 0 -> x");
                return a;
            }
            if (is_c(S, a, 0)) {
                said(S, loc, "0 - x -> -x");
                return expand_to(S, un(S, OP_NEG, b, loc), shape, loc);
            }
            if (Bn->op == OP_NEG) {
                said(S, loc, "a - -b -> a + b");
                return mk(S, OP_ADD, shape, a, Bn->in[0], 0, NULL, loc);
            }
            if (a == b) {
                said(S, loc, "x - x -> 0");
                return expand_to(S, C(S, 0, loc), shape, loc);
            }
            break;
        case OP_MUL:
            for (int side = 0; side < 2; side++) {
                Ref x = side ? a : b, c = side ? b : a;
                if (is_c(S, c, 1) && shape_eq(NN(S, x)->shape, shape)) {
                    said(S, loc, "x * 1 -> x");
                    return x;
                }
                if (is_c(S, c, 0)) {
                    said(S, loc, "x * 0 -> 0");
                    return expand_to(S, C(S, 0, loc), shape, loc);
                }
                double c1, c2;
                Node *X = NN(S, x);
                for (int k = 0; k < 2; k++)
                    if (scalar_const(S, c, &c1) && X->op == OP_MUL && scalar_const(S, X->in[k], &c2) &&
                        isfinite(c1 * c2)) {
                        said(S, loc, "c1 * (c2 * x) -> (c1 c2) * x");
                        return mk(S, OP_MUL, shape, C(S, c1 * c2, loc), X->in[!k], 0, NULL, loc);
                    }
                /* the 1/2 of a loss meets the 2 of its square's derivative:
                 * the factor of the gradient is a number over n */
                if (scalar_const(S, c, &c1) && X->op == OP_DIV && scalar_const(S, X->in[0], &c2) &&
                    isfinite(c1 * c2)) {
                    said(S, loc, "c1 * (c2 / x) -> (c1 c2) / x");
                    return expand_to(S, bin(S, OP_DIV, C(S, c1 * c2, loc), X->in[1], loc), shape, loc);
                }
                if (scalar_const(S, c, &c1) && X->op == OP_NEG) {
                    said(S, loc, "c * -x -> (-c) * x");
                    return mk(S, OP_MUL, shape, C(S, -c1, loc), X->in[0], 0, NULL, loc);
                }
            }
            if (a == b) {
                said(S, loc, "x * x -> square(x)");
                return mk(S, OP_SQUARE, shape, a, 0, 0, NULL, loc);
            }
            if (lv >= 2) {
                /* scalar factors meet and fold: s1*(s2*x) -> (s1*s2)*x */
                for (int side = 0; side < 2; side++) {
                    Ref x = side ? a : b, y = side ? b : a;
                    Node *X = NN(S, x);
                    if (X->op != OP_MUL)
                        continue;
                    for (int k = 0; k < 2; k++) {
                        Ref s0 = X->in[k], rest = X->in[!k];
                        if (!is_scalar(S, s0) || is_scalar(S, rest))
                            continue;
                        if (!is_scalar(S, y))
                            continue; /* a*(s*b) stays: the adjoints keep their names */
                        said(S, loc, "gather scalar factors");
                        return mk(S, OP_MUL, shape, bin(S, OP_MUL, s0, y, loc), rest, 0, NULL, loc);
                    }
                }
                /* c * (1 / z) -> c / z */
                for (int side = 0; side < 2; side++) {
                    Ref x = side ? a : b, y = side ? b : a;
                    Node *X = NN(S, x);
                    if (X->op == OP_DIV && is_c(S, X->in[0], 1) && is_scalar(S, x) && is_scalar(S, y)) {
                        said(S, loc, "c * (1 / z) -> c / z");
                        return mk(S, OP_DIV, shape, y, X->in[1], 0, NULL, loc);
                    }
                }
                /* (a - b) * -s -> (b - a) * s: a gradient reads yhat - y, not
                 * (y - yhat) times a negative factor */
                for (int side = 0; side < 2; side++) {
                    Ref x = side ? a : b, y = side ? b : a;
                    Node *X = NN(S, x), *Y = NN(S, y);
                    double cn;
                    if (Y->op != OP_SUB || !is_scalar(S, x))
                        continue;
                    if (X->op == OP_NEG) {
                        said(S, loc, "(a - b) * -s -> (b - a) * s");
                        return mk(S, OP_MUL, shape, bin(S, OP_SUB, Y->in[1], Y->in[0], loc), X->in[0], 0,
                                  NULL, loc);
                    }
                    if (X->op == OP_DIV && scalar_const(S, X->in[0], &cn) && cn < 0) {
                        said(S, loc, "(a - b) * (-c / x) -> (b - a) * (c / x)");
                        return mk(S, OP_MUL, shape, bin(S, OP_SUB, Y->in[1], Y->in[0], loc),
                                  bin(S, OP_DIV, C(S, -cn, loc), X->in[1], loc), 0, NULL, loc);
                    }
                }
                /* (s * a) * b -> s * (a * b): a scalar factor moves out of a
                 * product, where it meets the others (an unnamed product
                 * only, so that no adjoint loses its name) */
                for (int side = 0; side < 2; side++) {
                    Ref x = side ? a : b, y = side ? b : a;
                    Node *X = NN(S, x);
                    if (X->op != OP_MUL || X->name || X->adj_of || is_scalar(S, y) || is_scalar(S, x))
                        continue;
                    for (int k = 0; k < 2; k++) {
                        if (!is_scalar(S, X->in[k]) || is_scalar(S, X->in[!k]) ||
                            node_is_const(g, X->in[k], NULL))
                            continue;
                        said(S, loc, "(s * a) * b -> s * (a * b)");
                        return bin(S, OP_MUL, X->in[k], bin(S, OP_MUL, X->in[!k], y, loc), loc);
                    }
                }
            }
            break;
        case OP_DIV:
            if (is_c(S, b, 1) && shape_eq(A->shape, shape)) {
                said(S, loc, "x / 1 -> x");
                return a;
            }
            if (scalar_const(S, b, &cb) && cb != 0 && fabs(frexp(cb, &(int){0})) == 0.5) {
                said(S, loc, "x / 2^k -> x * 2^-k (exact)");
                return mk(S, OP_MUL, shape, C(S, 1.0 / cb, loc), a, 0, NULL, loc);
            }
            break;
        case OP_NEG:
            if (A->op == OP_NEG) {
                said(S, loc, "--x -> x");
                return A->in[0];
            }
            for (int k = 0; k < 2; k++)
                if (A->op == OP_MUL && scalar_const(S, A->in[k], &ca)) {
                    said(S, loc, "-(c * x) -> (-c) * x");
                    return mk(S, OP_MUL, shape, C(S, -ca, loc), A->in[!k], 0, NULL, loc);
                }
            if (A->op == OP_DIV && scalar_const(S, A->in[0], &ca)) {
                said(S, loc, "-(c / x) -> (-c) / x");
                return mk(S, OP_DIV, shape, C(S, -ca, loc), A->in[1], 0, NULL, loc);
            }
            if (A->op == OP_SUB) {
                said(S, loc, "-(a - b) -> b - a");
                return mk(S, OP_SUB, shape, A->in[1], A->in[0], 0, NULL, loc);
            }
            break;
        case OP_POWC:
            if (f == 2) {
                said(S, loc, "x ^ 2 -> square(x)");
                return mk(S, OP_SQUARE, shape, a, 0, 0, NULL, loc);
            }
            if (f == 1) {
                said(S, loc, "x ^ 1 -> x");
                return a;
            }
            if (f == 0.5) {
                said(S, loc, "x ^ 0.5 -> sqrt(x)");
                return mk(S, OP_SQRT, shape, a, 0, 0, NULL, loc);
            }
            break;
        case OP_RESHAPE:
            if (shape_eq(A->shape, shape))
                return a;
            if (A->op == OP_RESHAPE) {
                said(S, loc, "reshape(reshape(x)) -> reshape(x)");
                return mk(S, OP_RESHAPE, shape, A->in[0], 0, 0, NULL, loc);
            }
            if (A->op == OP_EXPAND && shape_numel_static(NN(S, A->in[0])->shape) == 1 &&
                !shape_has_batch(NN(S, A->in[0])->shape)) {
                said(S, loc, "reshape(expand(scalar)) -> expand(scalar)");
                Ref s0 = NN(S, A->in[0])->shape.rank ? mk(S, OP_RESHAPE, shape0(), A->in[0], 0, 0, NULL, loc)
                                                     : A->in[0];
                return expand_to(S, s0, shape, loc);
            }
            break;
        case OP_EXPAND:
            if (shape_eq(A->shape, shape))
                return a;
            if (A->op == OP_EXPAND) {
                said(S, loc, "expand(expand(x)) -> expand(x)");
                return mk(S, OP_EXPAND, shape, A->in[0], 0, 0, NULL, loc);
            }
            break;
        case OP_TRANSPOSE:
            if (A->op == OP_TRANSPOSE) {
                said(S, loc, "transpose(transpose(x)) -> x");
                return A->in[0];
            }
            break;
        case OP_SUM: {
            /* reducing only axes of size 1 is a reshape */
            int trivial = 1;
            for (int i = 0; i < A->shape.rank; i++)
                if (((unsigned)ia[0] & (1u << i)) && A->shape.dim[i] != 1)
                    trivial = 0;
            if (trivial) {
                said(S, loc, "sum over axes of size 1 -> reshape");
                return mk(S, OP_RESHAPE, shape, a, 0, 0, NULL, loc);
            }
            if (A->op == OP_NEG) {
                said(S, loc, "sum(-x) -> -sum(x)");
                return un(S, OP_NEG, mk(S, OP_SUM, shape, A->in[0], 0, 0, ia, loc), loc);
            }
            for (int k = 0; lv >= 2 && A->op == OP_MUL && k < 2; k++)
                if (is_scalar(S, A->in[k]) && !is_scalar(S, A->in[!k])) {
                    said(S, loc, "sum(s * x) -> s * sum(x)");
                    return bin(S, OP_MUL, A->in[k], mk(S, OP_SUM, shape, A->in[!k], 0, 0, ia, loc), loc);
                }
            break;
        }
        case OP_MATMUL: {
            int t[4];
            memcpy(t, ia, sizeof t);
            if (A->op == OP_TRANSPOSE && A->shape.rank == NN(S, A->in[0])->shape.rank) {
                said(S, loc, "matmul(transpose(a), b) -> transposed operand");
                t[0] = !t[0];
                return mk(S, op, shape, A->in[0], b, 0, t, loc);
            }
            if (Bn->op == OP_TRANSPOSE && Bn->shape.rank == NN(S, Bn->in[0])->shape.rank) {
                said(S, loc, "matmul(a, transpose(b)) -> transposed operand");
                t[1] = !t[1];
                return mk(S, op, shape, a, Bn->in[0], 0, t, loc);
            }
            if (lv >= 2) {
                for (int side = 0; side < 2; side++) {
                    Node *X = side ? Bn : A;
                    for (int k = 0; k < 2 && X->op == OP_MUL; k++) {
                        if (!is_scalar(S, X->in[k]) || is_scalar(S, X->in[!k]))
                            continue;
                        said(S, loc, "matmul(s * a, b) -> s * matmul(a, b)");
                        Ref sc = X->in[k], rest = X->in[!k];
                        Ref inner = side ? mk(S, op, shape, a, rest, 0, ia, loc)
                                         : mk(S, op, shape, rest, b, 0, ia, loc);
                        return bin(S, OP_MUL, sc, inner, loc);
                    }
                }
            }
            break;
        }
        default:
            break;
        }
    }

    if (lv >= 2) {
        switch (op) {
        case OP_LOG:
            if (A->op == OP_SIGMOID) {
                said(S, loc, "stable form: log(sigmoid(z)) -> -softplus(-z)");
                recognise(S, loc, "log of sigmoid, log(sigmoid(z)) = -softplus(-z) (stable form)");
                return un(S, OP_NEG, un(S, OP_SOFTPLUS, un(S, OP_NEG, A->in[0], loc), loc), loc);
            }
            if (A->op == OP_SUB && is_c(S, A->in[0], 1) && NN(S, A->in[1])->op == OP_SIGMOID &&
                shape_eq(NN(S, A->in[1])->shape, shape)) {
                said(S, loc, "stable form: log(1 - sigmoid(z)) -> -softplus(z)");
                recognise(S, loc, "log of 1 - sigmoid, log(1 - sigmoid(z)) = -softplus(z) (stable form)");
                return un(S, OP_NEG, un(S, OP_SOFTPLUS, NN(S, A->in[1])->in[0], loc), loc);
            }
            if (A->op == OP_SOFTMAX) {
                said(S, loc, "stable form: log(softmax(z)) -> log_softmax(z)");
                recognise(S, loc, "log of softmax, log(softmax(z)) = log_softmax(z) (stable form)");
                return un(S, OP_LOG_SOFTMAX, A->in[0], loc);
            }
            break;
        case OP_BCE:
            if (A->op == OP_SIGMOID) {
                said(S, loc, "stable form: bce(sigmoid(z), y) -> bce_logits(z, y)");
                recognise(S, loc, "binary cross-entropy of sigmoid, bce(sigmoid(z), y) = bce_logits(z, y) "
                                  "(stable form)");
                return mk(S, OP_BCE_LOGITS, shape, A->in[0], b, 0, NULL, loc);
            }
            break;
        case OP_NEG:
            /* -sum(onehot(l) * log_softmax(z)) over the classes -> cross_entropy(z, l) */
            if (A->op == OP_SUM && NN(S, A->in[0])->op == OP_MUL && !A->ia[1]) {
                Node *M = NN(S, A->in[0]);
                Shape ms = M->shape;
                unsigned last = 1u << (ms.rank - 1);
                if ((unsigned)A->ia[0] != last)
                    break;
                for (int side = 0; side < 2; side++) {
                    Node *O = NN(S, M->in[side]), *L = NN(S, M->in[!side]);
                    if (O->op == OP_ONEHOT && L->op == OP_LOG_SOFTMAX && shape_eq(O->shape, ms) &&
                        shape_eq(L->shape, ms)) {
                        said(S, loc, "stable form: -sum(onehot(l) * log(softmax(z))) -> "
                                     "cross_entropy(z, l)");
                        recognise(S, loc, "cross-entropy of softmax, -sum(onehot(l) * log(softmax(z))) = "
                                          "cross_entropy(z, l) (stable form)");
                        Ref in[2] = {L->in[0], O->in[0]};
                        return node_make(g, OP_CE, shape, in, 0, NULL, loc);
                    }
                }
                /* against probabilities: the graph stays (it is the stable
                 * form); its gradient is softmax(z)·sum(p) - p */
                for (int side = 0; side < 2; side++)
                    if (NN(S, M->in[!side])->op == OP_LOG_SOFTMAX && NN(S, M->in[side])->op != OP_ONEHOT &&
                        shape_eq(NN(S, M->in[!side])->shape, ms))
                        recognise(S, loc, "cross-entropy of softmax, -sum(p * log(softmax(z))) = "
                                          "cross_entropy(z, p) (stable form)");
            }
            break;
        case OP_ADD: {
            /* the adjoints of two adjacent slices of one value (qkv[:, 0:D]
             * and qkv[:, D:2D]), each zeros but for its slice, added: the
             * adjoint of the joint slice is their concat, written once;
             * of the whole value, the concat itself */
            int ka, kb;
            long la, lb;
            if (A->op == OP_VIEW_BWD && Bn->op == OP_VIEW_BWD && shape_eq(A->shape, shape) &&
                shape_eq(Bn->shape, shape) && slice_of(g, a, &ka, &la) && slice_of(g, b, &kb, &lb) && ka == kb) {
                Shape sa = NN(S, A->in[0])->shape, sb = NN(S, Bn->in[0])->shape;
                int first = la + sa.dim[ka] == lb ? 0 : lb + sb.dim[kb] == la ? 1 : -1;
                if (first >= 0) {
                    Node *F = first ? Bn : A, *L = first ? A : Bn;
                    Shape cs = first ? sb : sa;
                    long lo = first ? lb : la;
                    cs.dim[ka] = sa.dim[ka] + sb.dim[ka];
                    int cia[4] = {ka, 0, 0, 0};
                    Ref cin[2] = {F->in[0], L->in[0]};
                    Ref c = node_make(g, OP_CONCAT, cs, cin, 0, cia, loc);
                    said(S, loc, "view_bwd(a) + view_bwd(b) of adjacent slices -> view_bwd(concat(a, b))");
                    if (lo == 0 && cs.dim[ka] == shape.dim[ka])
                        return c;
                    long st[MAXRANK], k = 1;
                    for (int i = shape.rank - 1; i >= 0; i--) {
                        st[i] = k;
                        k *= shape.dim[i] == DIM_B ? 1 : shape.dim[i];
                    }
                    int via[4] = {view_record(g, lo * st[ka], st, cs.rank), 0, 0, 0};
                    Ref vin[1] = {c};
                    return node_make(g, OP_VIEW_BWD, shape, vin, 0, via, loc);
                }
            }
            /* y·log(sigmoid(z)) + (1 - y)·log(1 - sigmoid(z)), as the
             * rewrites above left it: y·-softplus(-z) + (1 - y)·-softplus(z),
             * is -bce_logits(z, y) = -(softplus(z) - y·z), for any y */
            for (int side = 0; side < 2; side++) {
                Node *P = NN(S, side ? b : a), *Q = NN(S, side ? a : b);
                if (P->op != OP_MUL || Q->op != OP_MUL)
                    continue;
                for (int i = 0; i < 2; i++)
                    for (int j = 0; j < 2; j++) {
                        Ref y = P->in[i], z;
                        Node *lp = NN(S, P->in[!i]), *oy = NN(S, Q->in[j]), *lq = NN(S, Q->in[!j]);
                        if (lp->op != OP_NEG || NN(S, lp->in[0])->op != OP_SOFTPLUS ||
                            NN(S, NN(S, lp->in[0])->in[0])->op != OP_NEG)
                            continue;
                        z = NN(S, NN(S, lp->in[0])->in[0])->in[0];
                        if (oy->op != OP_SUB || !is_c(S, oy->in[0], 1) || oy->in[1] != y)
                            continue;
                        if (lq->op != OP_NEG || NN(S, lq->in[0])->op != OP_SOFTPLUS ||
                            NN(S, lq->in[0])->in[0] != z)
                            continue;
                        Shape t;
                        if (!shape_broadcast(NN(S, z)->shape, NN(S, y)->shape, &t) || !shape_eq(t, shape))
                            continue;
                        said(S, loc, "stable form: y·log(sigmoid(z)) + (1 - y)·log(1 - sigmoid(z)) -> "
                                     "-bce_logits(z, y)");
                        recognise(S, loc, "binary cross-entropy of sigmoid, -(y·log(sigmoid(z)) + (1 - y)·"
                                          "log(1 - sigmoid(z))) = bce_logits(z, y) (stable form)");
                        return un(S, OP_NEG, mk(S, OP_BCE_LOGITS, shape, z, y, 0, NULL, loc), loc);
                    }
            }
            break;
        }
        case OP_SUB:
            /* a*c - b*c -> (a - b)*c */
            if (A->op == OP_MUL && Bn->op == OP_MUL) {
                for (int i = 0; i < 2; i++)
                    for (int j = 0; j < 2; j++)
                        if (A->in[i] == Bn->in[j]) {
                            Ref d = bin(S, OP_SUB, A->in[!i], Bn->in[!j], loc);
                            Shape t;
                            if (shape_broadcast(NN(S, d)->shape, NN(S, A->in[i])->shape, &t) &&
                                shape_eq(t, shape)) {
                                said(S, loc, "a*c - b*c -> (a - b)*c");
                                return mk(S, OP_MUL, shape, d, A->in[i], 0, NULL, loc);
                            }
                        }
            }
            break;
        default:
            break;
        }
    }
    Ref in[2] = {a, b};
    return node_make2(g, op, shape, in, f, op == S->cur_op ? S->cur_f2 : 0, ia, loc);
}

static void mark(Graph *g, Ref r, unsigned char *seen)
{
    /* iterative: deep graphs (100-layer models) must not overflow the stack */
    if (!r || seen[r])
        return;
    int cap = 64, n = 0;
    Ref *st = xmalloc(sizeof(Ref) * (size_t)cap);
    st[n++] = r;
    seen[r] = 1;
    while (n) {
        Ref x = st[--n];
        for (int i = 0; i < op_nin[N(g, x)->op]; i++) {
            Ref y = N(g, x)->in[i];
            if (y && !seen[y]) {
                seen[y] = 1;
                if (n == cap) {
                    cap *= 2;
                    st = xrealloc(st, sizeof(Ref) * (size_t)cap);
                }
                st[n++] = y;
            }
        }
    }
    free(st);
}

static Ref remap(Ref *map, Ref r)
{
    return r ? map[r] : 0;
}

void simplify(Model *m, int level, FILE *explain)
{
    if (level <= 0)
        return;
    for (int iter = 0; iter < 16; iter++) {
        Graph *old = &m->g;
        Graph ng;
        graph_init(&ng, old->arena);
        ng.views = old->views; /* tokens and sequences: the views' records carry over */
        ng.nviews = old->nviews;
        ng.cviews = old->cviews;
        unsigned char *seen = xcalloc((size_t)old->n, 1);
        mark(old, m->loss, seen);
        mark(old, m->output, seen);
        mark(old, m->objective, seen);
        for (int i = 0; i < m->nparams && m->grads; i++) {
            mark(old, m->grads[i], seen);
            mark(old, m->adjs[i], seen);
        }
        /* leaves stay, so every input and param keeps a node */
        for (Ref r = 1; r < old->n; r++)
            if (op_flags[N(old, r)->op] & OPF_LEAF && N(old, r)->op != OP_CONST)
                seen[r] = 1;
        Ref *map = xcalloc((size_t)old->n, sizeof(Ref));
        Simp S = {m, old, &ng, level, 0, explain, m->source, OP_COUNT, 0};
        for (Ref r = 1; r < old->n; r++) {
            if (!seen[r])
                continue;
            Node x = *N(old, r);
            ng.loc_backward = x.backward;
            S.cur_op = x.op;
            S.cur_f2 = x.f2;
            Ref nr;
            if (op_nin[x.op] == 3) { /* no rewrites of three operands (norm.c's adjoints) */
                Ref in3[3] = {remap(map, x.in[0]), remap(map, x.in[1]), remap(map, x.in[2])};
                nr = node_make2(&ng, x.op, x.shape, in3, x.f, x.f2, x.ia, x.loc);
            } else {
                nr = mk(&S, x.op, x.shape, remap(map, x.in[0]), remap(map, x.in[1]), x.f, x.ia, x.loc);
            }
            map[r] = nr;
            Node *y = N(&ng, nr);
            if (!y->name && x.name)
                y->name = x.name;
            if (!y->adj_of && x.adj_of && map[x.adj_of]) {
                y->adj_of = map[x.adj_of];
                y->contribs = x.contribs;
            }
        }
        ng.loc_backward = 0;
        m->loss = remap(map, m->loss);
        m->output = remap(map, m->output);
        m->objective = remap(map, m->objective);
        m->binary_of = m->binary_of < old->n ? remap(map, m->binary_of) : 0;
        for (int i = 0; i < m->nparams && m->grads; i++) {
            m->grads[i] = remap(map, m->grads[i]);
            m->adjs[i] = remap(map, m->adjs[i]);
        }
        for (int i = 0; i < m->nparams; i++)
            m->params[i]->ref = remap(map, m->params[i]->ref);
        for (int i = 0; i < m->ninputs; i++)
            m->inputs[i]->ref = remap(map, m->inputs[i]->ref);
        for (int i = 0; i < m->ntargets; i++)
            m->targets[i]->ref = remap(map, m->targets[i]->ref);
        int changed = S.fired > 0 || ng.n != old->n;
        free(map);
        free(seen);
        graph_release(old);
        m->g = ng;
        if (!changed)
            break;
    }
}
