/*
 * emit_scalar.c: --scalar, the generated C of a tiny model written out one
 * scalar at a time, so that the chain rule can be read off the code:
 *
 *     const float dL_dz = dL_dh * h * (1 - h);
 *     dL_dw1 += x1 * dL_dz;
 *
 * The functions have the interface of docs/language.md (the C interface). Each example of
 * the batch is one pass of a loop; inside it every element of every node is
 * a named local variable. Values that do not depend on the example (params,
 * and what only they reach) are computed before the loop; the parameters'
 * gradients are sums over the batch, accumulated in the loop and scaled
 * after it.
 */
#include "gradc.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

#define MAX_SCALARS 4000 /* per example, over all nodes of a function */

enum { PH_PRE, PH_LOOP, PH_ACC, PH_POST };

typedef struct S {
    Model *m;
    Graph *g;
    Plan *p;
    FILE *out;
    const char *T, *fs;  /* float/double, "f"/"" */
    int *phase;          /* per node */
    char ***el;          /* per node: the C expression of each element */
    char **base;         /* per node: variable base name */
    Arena *a;
    const char *prefix, *PREFIX; /* the model's: "seed_", "SEED_" */
    /* a param's gradient that the simplifier wrote as (sum over the batch)
     * times c/n: the sum is accumulated as dL_d<param> with c folded into
     * each term (fold[sum] = c's literal), and the gradient is dL_d<param>/n
     * (fold_of[gradient] = the sum) */
    const char **fold;
    Ref *fold_of;
    char *unused;        /* per node: c/n read by folded gradients alone, not written */
} S;

static const char *const reserved[] = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef",
    "union", "unsigned", "void", "volatile", "while", "params", "x", "y", "n", "grad", "work",
    "out", "ex", "size_t", "NAN", "INFINITY", NULL};

static int numel(Shape s)
{
    return shape_numel_static(s);
}

static int batched(Shape s)
{
    return shape_has_batch(s);
}

/* a C identifier from a model name */
static char *ident(S *s, const char *prefix, const char *name)
{
    char *v = arena_printf(s->a, "%s%s", prefix, name);
    for (char *q = v; *q; q++)
        if (!isalnum((unsigned char)*q) && *q != '_')
            *q = '_';
    for (int i = 0; reserved[i]; i++)
        if (!strcmp(v, reserved[i]))
            return arena_printf(s->a, "v_%s", v);
    /* C's names, the headers', the model's own macros (c_name_unsafe) */
    if (c_name_unsafe(v, s->prefix, s->PREFIX))
        return arena_printf(s->a, "v_%s", v);
    return v;
}

static char *elname(S *s, Ref r, int i)
{
    return numel(N(s->g, r)->shape) == 1 ? s->base[r] : arena_printf(s->a, "%s_%d", s->base[r], i);
}

static const char *literal(S *s, double v)
{
    if (v == floor(v) && fabs(v) < 1e15)
        return arena_printf(s->a, v < 0 ? "(%.0f)" : "%.0f", v);
    return arena_printf(s->a, v < 0 ? "(%.17g%s)" : "%.17g%s", v, s->fs);
}

/* multi-index of flat element i of shape sh, the batch axis skipped */
static void unflat(Shape sh, int i, int *idx)
{
    for (int d = sh.rank - 1; d >= 0; d--) {
        if (sh.dim[d] == DIM_B) {
            idx[d] = 0;
            continue;
        }
        idx[d] = i % sh.dim[d];
        i /= sh.dim[d];
    }
}

static int flat(Shape sh, const int *idx)
{
    int f = 0;
    for (int d = 0; d < sh.rank; d++)
        if (sh.dim[d] != DIM_B)
            f = f * sh.dim[d] + idx[d];
    return f;
}

/* the element of operand r that output element i (of shape out) reads */
static const char *operand_el(S *s, Ref r, Shape out, int i)
{
    Shape t = N(s->g, r)->shape;
    int oi[MAXRANK], ti[MAXRANK];
    unflat(out, i, oi);
    for (int d = 0; d < t.rank; d++) {
        int od = d + out.rank - t.rank;
        ti[d] = t.dim[d] == 1 || t.dim[d] == DIM_B ? 0 : oi[od];
    }
    return s->el[r][flat(t, ti)];
}

/* "(x)" unless x is a name or a number */
static const char *par(S *s, const char *x)
{
    for (const char *q = x; *q; q++)
        if (!isalnum((unsigned char)*q) && *q != '_' && *q != '.')
            return arena_printf(s->a, "(%s)", x);
    return x;
}

static const char *fmt(S *s, Node *x, const char *a, const char *b)
{
    CFlavour f = {s->T, s->fs, arena_printf(s->a, "exp%s", s->fs), arena_printf(s->a, "log1p%s", s->fs),
                  literal(s, x->f), literal(s, x->f2), arena_printf(s->a, "erf%s", s->fs)};
    return op_expr(s->a, x, a, b ? b : "0", &f);
}

/* ------------------------------------------------------------ phases */

static int reduces_batch(S *s, Node *x)
{
    if (batched(x->shape))
        return 0;
    for (int k = 0; k < op_nin[x->op]; k++)
        if (batched(N(s->g, x->in[k])->shape))
            return 1;
    return 0;
}

/* Whether --scalar writes op out: the element-wise ops, sums, matrix
 * products and shape changes; not the reductions and ops over a whole axis
 * (max, softmax, cross-entropy, concat), nor the convolution family. */
static int scalar_op(Op op)
{
    if (op_flags[op] & OPF_STRUCT)
        return 0;
    return !(op == OP_SOFTMAX || op == OP_LOG_SOFTMAX || op == OP_CE || op == OP_MAX ||
             op == OP_CONCAT || op == OP_SLICE || op == OP_ONEHOT ||
             /* tokens and sequences */
             op == OP_GATHER || op == OP_GATHER_BWD || op == OP_VIEW || op == OP_VIEW_BWD ||
             op == OP_CAUSAL || op == OP_CAUSAL_BWD);
}

int scalar_check_ops(Model *m, Diag *d)
{
    int ok = 1;
    for (Ref r = 1; r < m->g.n; r++) {
        Node *x = N(&m->g, r);
        /* tokens and sequences: gathers, views, causal masks and products
         * over more than one leading axis are not written out */
        int tok = x->op == OP_GATHER || x->op == OP_VIEW || x->op == OP_CAUSAL ||
                  (x->op == OP_MATMUL && x->shape.rank > 3);
        if (scalar_op(x->op) && !tok)
            continue;
        diag_error(d, x->loc, "--scalar does not support %s; compile without --scalar", op_name[x->op]);
        ok = 0;
    }
    return ok;
}

static int classify(S *s, char *why, size_t n)
{
    int total = 0;
    for (int i = 0; i < s->p->norder; i++) {
        Ref r = s->p->order[i];
        Node *x = N(s->g, r);
        int ph = PH_PRE;
        if (batched(x->shape))
            ph = PH_LOOP;
        else if (reduces_batch(s, x))
            ph = PH_ACC;
        for (int k = 0; k < op_nin[x->op]; k++) {
            int q = s->phase[x->in[k]];
            if (q == PH_ACC || q == PH_POST) {
                if (ph == PH_LOOP || ph == PH_ACC) {
                    snprintf(why, n, "a per-example value depends on a sum over the batch");
                    return 0;
                }
                ph = PH_POST;
            }
        }
        s->phase[r] = ph;
        total += numel(x->shape);
        if (!scalar_op(x->op)) {
            snprintf(why, n, "--scalar does not write out %s", op_name[x->op]);
            return 0;
        }
        if (x->op == OP_MATMUL && x->ia[2]) {
            snprintf(why, n, "--scalar does not write out batched matrix products");
            return 0;
        }
    }
    if (total > MAX_SCALARS) {
        snprintf(why, n, "the model has %d scalars per example; --scalar writes out at most %d", total,
                 MAX_SCALARS);
        return 0;
    }
    return 1;
}

int scalar_check(Model *m, char *why, size_t n)
{
    for (int f = 0; f < FN_COUNT; f++) {
        Plan p;
        plan_build(m, (FnKind)f, &p);
        S s = {m, &m->g, &p, NULL, "float", "f", NULL, NULL, NULL, m->g.arena, "", "", NULL, NULL, NULL};
        s.prefix = model_prefix(m, 0);
        s.PREFIX = model_prefix(m, 1);
        s.phase = xcalloc((size_t)m->g.n, sizeof(int));
        int ok = classify(&s, why, n);
        free(s.phase);
        if (!ok)
            return 0;
    }
    return 1;
}

/* ------------------------------------------------------------ emission */

/* The sums over the batch that are a param's gradient times n/c (the
 * simplifier takes a constant c out of a sum: linreg's Σ xᵀ(xw - y) times
 * 2/n), into fold and fold_of; the sum then holds dL_d<param> itself. */
static void folds(S *s)
{
    for (int p = 0; p < s->m->nparams; p++) {
        Ref g = s->m->grads[p], acc = 0, k = 0;
        Node *x = g ? N(s->g, g) : NULL;
        if (!x || x->op != OP_MUL || s->phase[g] != PH_POST)
            continue;
        for (int j = 0; j < 2; j++)
            if (s->phase[x->in[j]] == PH_ACC && shape_eq(N(s->g, x->in[j])->shape, x->shape)) {
                acc = x->in[j];
                k = x->in[1 - j];
            }
        Node *kn = k ? N(s->g, k) : NULL;
        if (!acc || kn->op != OP_DIV || N(s->g, kn->in[0])->op != OP_CONST || N(s->g, kn->in[1])->op != OP_BATCHN)
            continue;
        int readers = 0;
        for (int i = 0; i < s->p->norder; i++) {
            Node *y = N(s->g, s->p->order[i]);
            for (int j = 0; j < op_nin[y->op]; j++)
                readers += y->in[j] == acc;
        }
        if (readers != 1 || s->fold[acc])
            continue;
        double c = N(s->g, kn->in[0])->f;
        s->fold[acc] = c == 1 ? "" : literal(s, c);
        s->fold_of[g] = acc;
    }
    /* a c/n that only folded gradients read is not written */
    for (int i = 0; i < s->p->norder; i++) {
        Ref k = s->p->order[i];
        int live = 0, folded = 0;
        for (int j = 0; j < s->p->norder; j++) {
            Ref y = s->p->order[j];
            for (int a = 0; a < op_nin[N(s->g, y)->op]; a++)
                if (N(s->g, y)->in[a] == k)
                    *(s->fold_of[y] ? &folded : &live) += 1;
        }
        s->unused[k] = folded && !live && k != s->m->loss;
    }
}

static void names(S *s)
{
    for (int i = 0; i < s->p->norder; i++) {
        Ref r = s->p->order[i];
        Node *x = N(s->g, r);
        const char *b;
        Ref gp = 0;
        for (int p = 0; p < s->m->nparams; p++)
            if (s->m->grads[p] && s->fold_of[s->m->grads[p]] == r)
                gp = (Ref)p + 1;
        if (gp)
            b = ident(s, "dL_d", s->m->params[gp - 1]->name);
        else if (x->op == OP_PARAM)
            b = ident(s, "", s->m->params[x->ia[0]]->name);
        else if (x->name && !(x->adj_of && x->backward))
            b = ident(s, "", x->name);
        else if (x->adj_of && N(s->g, x->adj_of)->name)
            b = ident(s, "dL_d", N(s->g, x->adj_of)->name);
        else if (x->adj_of && N(s->g, x->adj_of)->op == OP_PARAM)
            b = ident(s, "dL_d", s->m->params[N(s->g, x->adj_of)->ia[0]]->name);
        else
            b = arena_printf(s->a, "t%d", r);
        /* unique */
        for (int k = 0; k < i; k++)
            if (s->base[s->p->order[k]] && !strcmp(s->base[s->p->order[k]], b)) {
                b = arena_printf(s->a, "%s_%d", b, r);
                break;
            }
        s->base[r] = (char *)b;
    }
}

static void line(S *s, int indent, const char *fmtstr, ...) GRADC_PRINTF(3, 4);
static void line(S *s, int indent, const char *fmtstr, ...)
{
    va_list ap;
    va_start(ap, fmtstr);
    emit_vline(s->out, indent, fmtstr, ap);
    va_end(ap);
}

/* element k of a matmul operand, op(A)[i][k] of its per-example or whole matrix */
static const char *mm_el(S *s, Ref r, int t, int row, int col, int lead)
{
    Shape sh = N(s->g, r)->shape;
    int rk = sh.rank;
    int R = sh.dim[rk - 2], C = sh.dim[rk - 1];
    int i = t ? col : row, j = t ? row : col; /* stored indices */
    if (R == DIM_B)
        i = 0; /* the current example's row */
    int cols = C == DIM_B ? 1 : C;
    int rows = R == DIM_B ? 1 : R;
    int base = rk == 3 && sh.dim[0] != DIM_B ? lead * rows * cols : 0;
    if (C == DIM_B)
        j = 0;
    return s->el[r][base + i * cols + j];
}

static void define(S *s, Ref r, int indent, int acc)
{
    Node *x = N(s->g, r);
    int ne = numel(x->shape);
    Shape sh = x->shape;
    s->el[r] = arena_alloc(s->a, sizeof(char *) * (size_t)(ne + 1));
    if (s->fold_of[r]) { /* folds(): the gradient is the sum (dL_d<param>) over n */
        for (int i = 0; i < ne; i++) {
            s->el[r][i] = elname(s, r, i);
            line(s, indent, "const %s %s = %s / (%s)n;", s->T, s->el[r][i], s->el[s->fold_of[r]][i], s->T);
        }
        return;
    }
    switch (x->op) {
    case OP_PARAM:
        for (int i = 0; i < ne; i++) {
            s->el[r][i] = elname(s, r, i);
            line(s, indent, "const %s %s = params[%zu];", s->T, s->el[r][i],
                 s->m->params[x->ia[0]]->offset + (size_t)i);
        }
        return;
    case OP_INPUT: case OP_TARGET: {
        Sym *y = x->op == OP_INPUT ? s->m->inputs[x->ia[0]] : s->m->targets[x->ia[0]];
        size_t row = x->op == OP_INPUT ? s->m->input_size : s->m->target_size;
        for (int i = 0; i < ne; i++) {
            s->el[r][i] = elname(s, r, i);
            line(s, indent, "const %s %s = %s[ex * %zu + %zu];", s->T, s->el[r][i],
                 x->op == OP_INPUT ? "x" : "y", row, y->offset + (size_t)i);
        }
        return;
    }
    case OP_CONST:
        for (int i = 0; i < ne; i++)
            s->el[r][i] = (char *)literal(s, x->f);
        return;
    case OP_BATCHN:
        s->el[r][0] = arena_printf(s->a, "(%s)n", s->T);
        return;
    case OP_RESHAPE:
        for (int i = 0; i < ne; i++)
            s->el[r][i] = s->el[x->in[0]][i];
        return;
    case OP_EXPAND:
        for (int i = 0; i < ne; i++)
            s->el[r][i] = (char *)operand_el(s, x->in[0], sh, i);
        return;
    case OP_TRANSPOSE: {
        for (int i = 0; i < ne; i++) {
            int idx[MAXRANK];
            unflat(sh, i, idx);
            int t = idx[sh.rank - 1];
            idx[sh.rank - 1] = idx[sh.rank - 2];
            idx[sh.rank - 2] = t;
            s->el[r][i] = s->el[x->in[0]][flat(N(s->g, x->in[0])->shape, idx)];
        }
        return;
    }
    default:
        break;
    }
    /* the value of each element as an expression */
    char **val = arena_alloc(s->a, sizeof(char *) * (size_t)ne);
    if (op_flags[x->op] & OPF_ELEMWISE) {
        for (int i = 0; i < ne; i++)
            val[i] = (char *)fmt(s, x, operand_el(s, x->in[0], sh, i),
                                 op_nin[x->op] > 1 ? operand_el(s, x->in[1], sh, i) : NULL);
    } else if (x->op == OP_SUM) {
        Node *a = N(s->g, x->in[0]);
        Shape in = a->shape;
        int na = numel(in);
        for (int i = 0; i < ne; i++)
            val[i] = NULL;
        for (int j = 0; j < na; j++) {
            int idx[MAXRANK], o[MAXRANK], k = 0;
            unflat(in, j, idx);
            for (int d = 0; d < in.rank; d++) {
                if (((unsigned)x->ia[0] >> d) & 1u) {
                    if (x->ia[1])
                        o[k++] = 0;
                } else {
                    o[k++] = idx[d];
                }
            }
            int oi = flat(sh, o);
            const char *e = s->el[x->in[0]][j];
            val[oi] = val[oi] ? arena_printf(s->a, "%s + %s", val[oi], e) : (char *)e;
        }
    } else if (x->op == OP_MATMUL) {
        Node *A = N(s->g, x->in[0]), *Bn = N(s->g, x->in[1]);
        int ta = x->ia[0], tb = x->ia[1];
        int ra = A->shape.rank;
        int M = sh.dim[sh.rank - 2], Nc = sh.dim[sh.rank - 1];
        int K = ta ? A->shape.dim[ra - 2] : A->shape.dim[ra - 1];
        int Kn = K == DIM_B ? 1 : K;
        int Mr = M == DIM_B ? 1 : M;
        int lead = sh.rank == 3 ? 1 : 0;
        (void)Bn;
        for (int i = 0; i < ne; i++) {
            int row = (i / Nc) % Mr, col = i % Nc, l = lead ? i / (Mr * Nc) : 0;
            char *e = NULL;
            for (int k = 0; k < Kn; k++) {
                const char *p = arena_printf(s->a, "%s * %s", par(s, mm_el(s, x->in[0], ta, row, k, l)),
                                             par(s, mm_el(s, x->in[1], tb, k, col, l)));
                e = e ? arena_printf(s->a, "%s + %s", e, p) : (char *)p;
            }
            val[i] = e;
        }
    } else {
        unreachable();
    }
    for (int i = 0; i < ne; i++) {
        s->el[r][i] = elname(s, r, i);
        if (acc && s->fold[r] && *s->fold[r])
            line(s, indent, "%s += %s * %s;", s->el[r][i], par(s, val[i]), s->fold[r]);
        else if (acc)
            line(s, indent, "%s += %s;", s->el[r][i], val[i]);
        else
            line(s, indent, "const %s %s = %s;", s->T, s->el[r][i], val[i]);
    }
}

static void function(S *s, FnKind fn)
{
    Model *m = s->m;
    const char *T = s->T, *P = arena_printf(s->a, "%s_", m->cname);
    char *U = arena_printf(s->a, "%s_", m->cname);
    for (char *q = U; *q; q++)
        *q = (char)toupper((unsigned char)*q);
    if (fn == FN_LOSS)
        fprintf(s->out, "%s %sloss(const %s *params, const %s *x, const %s *y, size_t n, void *work)\n{\n", T, P, T, T, T);
    else if (fn == FN_LOSS_GRAD)
        fprintf(s->out, "%s %sloss_grad(const %s *params, const %s *x, const %s *y, size_t n, %s *grad,\n        void *work)\n{\n",
                T, P, T, T, T, T);
    else
        fprintf(s->out, "void %spredict(const %s *params, const %s *x, size_t n, %s *out, void *work)\n{\n", P, T, T, T);
    line(s, 1, "(void)params; (void)x; (void)work;%s", fn == FN_PREDICT ? "" : " (void)y;");
    line(s, 1, "if (n == 0 || n > %sMAX_BATCH) return%s;", U, fn == FN_PREDICT ? "" : " NAN");
    line(s, 1, "// ---- what does not depend on the example");
    for (int i = 0; i < s->p->norder; i++)
        if (s->phase[s->p->order[i]] == PH_PRE && !s->unused[s->p->order[i]])
            define(s, s->p->order[i], 1, 0);
    int any_acc = 0;
    for (int i = 0; i < s->p->norder; i++) {
        Ref r = s->p->order[i];
        if (s->phase[r] != PH_ACC)
            continue;
        if (!any_acc++)
            line(s, 1, "// ---- sums over the batch");
        for (int k = 0; k < numel(N(s->g, r)->shape); k++)
            line(s, 1, "%s %s = 0;", T, elname(s, r, k));
    }
    line(s, 1, "for (size_t ex = 0; ex < n; ex++) {");
    int bw = 0;
    for (int i = 0; i < s->p->norder; i++) {
        Ref r = s->p->order[i];
        int ph = s->phase[r];
        if (ph != PH_LOOP && ph != PH_ACC)
            continue;
        if (N(s->g, r)->backward && !bw++)
            line(s, 2, "// ---- backward");
        define(s, r, 2, ph == PH_ACC);
        if (fn == FN_PREDICT && r == m->output)
            for (int k = 0; k < numel(N(s->g, r)->shape); k++)
                line(s, 2, "out[ex * %zu + %d] = %s;", m->output_size, k, s->el[r][k]);
    }
    line(s, 1, "}");
    for (int i = 0; i < s->p->norder; i++)
        if (s->phase[s->p->order[i]] == PH_POST)
            define(s, s->p->order[i], 1, 0);
    if (fn == FN_PREDICT) {
        if (m->output && s->phase[m->output] != PH_LOOP)
            line(s, 1, "for (size_t ex = 0; ex < n; ex++) { /* the output does not depend on the example */");
        if (m->output && s->phase[m->output] != PH_LOOP) {
            for (int k = 0; k < numel(N(s->g, m->output)->shape); k++)
                line(s, 2, "out[ex * %zu + %d] = %s;", m->output_size, k, s->el[m->output][k]);
            line(s, 1, "}");
        }
    } else {
        if (fn == FN_LOSS_GRAD) {
            line(s, 1, "// ---- the gradient");
            for (int p = 0; p < m->nparams; p++) {
                Sym *y = m->params[p];
                Ref g = m->grads[p];
                for (int k = 0; k < numel(y->shape); k++)
                    line(s, 1, "grad[%zu] = %s;", y->offset + (size_t)k, g ? s->el[g][k] : "0");
            }
        }
        line(s, 1, "return %s;", s->el[m->loss][0]);
    }
    fprintf(s->out, "}\n\n");
}

void emit_scalar_c(Model *m, Plan plans[FN_COUNT], const EmitOptions *o, FILE *out)
{
    emit_c_prelude(m, o, out);
    static const FnKind order[] = {FN_LOSS, FN_LOSS_GRAD, FN_PREDICT};
    for (int f = 0; f < 3; f++) {
        S s = {m, &m->g, &plans[order[f]], out, m->is_double ? "double" : "float", m->is_double ? "" : "f",
               NULL, NULL, NULL, m->g.arena, NULL, NULL, NULL, NULL, NULL};
        s.prefix = model_prefix(m, 0);
        s.PREFIX = model_prefix(m, 1);
        s.phase = xcalloc((size_t)m->g.n, sizeof(int));
        s.el = arena_alloc(s.a, sizeof(char **) * (size_t)m->g.n);
        s.base = arena_alloc(s.a, sizeof(char *) * (size_t)m->g.n);
        char why[160];
        if (!classify(&s, why, sizeof why))
            die("internal error: --scalar: %s", why);
        s.fold = arena_alloc(s.a, sizeof(char *) * (size_t)m->g.n);
        s.fold_of = arena_alloc(s.a, sizeof(Ref) * (size_t)m->g.n);
        memset(s.fold, 0, sizeof(char *) * (size_t)m->g.n);
        memset(s.fold_of, 0, sizeof(Ref) * (size_t)m->g.n);
        s.unused = arena_alloc(s.a, (size_t)m->g.n);
        memset(s.unused, 0, (size_t)m->g.n);
        if (order[f] == FN_LOSS_GRAD)
            folds(&s);
        names(&s);
        function(&s, order[f]);
        free(s.phase);
    }
}
