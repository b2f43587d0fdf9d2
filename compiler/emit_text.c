/*
 * emit_text.c: the graph as text, for people: --emit=graph (one node a
 * line, as the IR holds it), --emit=grad (the backward pass as equations in
 * the forward names, one line per adjoint, in the order they are computed)
 * and --emit=stats (what a training step costs).
 */
#include "gradc.h"

#include <string.h>

/* ----------------------------------------------------------- graph */

void emit_graph(Model *m, FILE *out, int with_backward)
{
    Graph *g = &m->g;
    char sh[64], l[96];
    for (Ref r = 1; r < g->n; r++) {
        Node *x = N(g, r);
        if (x->backward && !with_backward)
            continue;
        fprintf(out, "%%%d = %s", r, op_name[x->op]);
        for (int i = 0; i < op_nin[x->op]; i++)
            fprintf(out, "%s%%%d", i ? ", " : " ", x->in[i]);
        switch (x->op) {
        case OP_CONST: fprintf(out, " %.17g", x->f); break;
        case OP_INPUT: case OP_TARGET: case OP_PARAM: fprintf(out, " #%d", x->ia[0]); break;
        case OP_SUM: case OP_MAX: fprintf(out, " axes=0x%x keep=%d", x->ia[0], x->ia[1]); break;
        case OP_MATMUL:
            fprintf(out, " ta=%d tb=%d sum=%d", x->ia[0], x->ia[1], x->ia[2]);
            break;
        case OP_CONCAT: fprintf(out, " axis=%d", x->ia[0]); break;
        case OP_SLICE: fprintf(out, " axis=%d start=%d", x->ia[0], x->ia[1]); break;
        case OP_ONEHOT: fprintf(out, " classes=%d", x->ia[0]); break;
        /* tokens and sequences */
        case OP_VIEW: case OP_VIEW_BWD: {
            const long *v = view_of(&m->g, r);
            Shape vs = x->op == OP_VIEW ? x->shape : N(&m->g, x->in[0])->shape;
            fprintf(out, " offset=%ld strides=", v[0]);
            for (int i = 0; i < vs.rank; i++)
                fprintf(out, "%s%ld", i ? "," : "", v[1 + i]);
            break;
        }
        default:
            if (op_flags[x->op] & OPF_F1)
                fprintf(out, " f=%.17g", x->f);
            break;
        }
        fprintf(out, " : %s", shape_str(x->shape, sh, sizeof sh));
        if (x->name || x->adj_of)
            fprintf(out, "  (%s)", node_label(m, r, l, sizeof l));
        if (x->loc.first_line)
            fprintf(out, "  @%d:%d", x->loc.first_line, x->loc.first_column);
        fprintf(out, "%s\n", x->backward ? "  [backward]" : "");
    }
    fprintf(out, "loss = %%%d\noutput = %%%d\n", m->loss, m->output);
    if (with_backward && m->grads)
        for (int i = 0; i < m->nparams; i++)
            fprintf(out, "dL/d%s = %%%d\n", m->params[i]->name, m->grads[i]);
}

/* ------------------------------------------------------------ grad */

typedef struct Txt {
    char *buf;
    size_t len, cap;
} Txt;

static void put(Txt *t, const char *s)
{
    size_t n = strlen(s);
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->buf = xrealloc(t->buf, t->cap);
    }
    memcpy(t->buf + t->len, s, n + 1);
    t->len += n;
}

/* How infix() names things: expand forward names down to the leaves (the
 * closed form) or stop at every named node. */
typedef struct Infix {
    Model *m;
    Ref top;      /* the node being defined: printed in full */
    int expand;   /* 1: expand named forward nodes; -1: name every operand */
} Infix;

static int leaf(Node *x)
{
    return x->op == OP_INPUT || x->op == OP_TARGET || x->op == OP_PARAM;
}

/* nodes written out in an equation instead of named (node_equation_fused) */
static const unsigned char *infix_inline;

static Node *through_views(Graph *g, Ref r);

/* A number, n, or a number over n (the adjoint of a mean): what it is says
 * more than the name of the adjoint it is. */
static int number(Graph *g, Ref r)
{
    Node *x = through_views(g, r);
    if (x->op == OP_DIV)
        return through_views(g, x->in[0])->op == OP_CONST && through_views(g, x->in[1])->op == OP_BATCHN;
    return x->op == OP_CONST || x->op == OP_BATCHN;
}

static int named(Infix *I, Ref r)
{
    Node *x = N(&I->m->g, r);
    if (x->op == OP_CONST || x->op == OP_BATCHN || (I->expand >= 0 && number(&I->m->g, r)))
        return 0;
    if (infix_inline && infix_inline[r])
        return 0;
    if (leaf(x))
        return 1;
    if (I->expand < 0)
        return x->op != OP_RESHAPE && x->op != OP_EXPAND;
    if (I->expand && !x->backward)
        return 0;
    return x->name || x->adj_of;
}

static Node *through_views(Graph *g, Ref r)
{
    Node *x = N(g, r);
    while (x->op == OP_EXPAND || x->op == OP_RESHAPE)
        x = N(g, x->in[0]);
    return x;
}

static int atomic(Infix *I, Ref r)
{
    Node *x = through_views(&I->m->g, r);
    if (r != I->top && named(I, r))
        return 1;
    if (x->op == OP_DIV && number(&I->m->g, r))
        return 1; /* 2/n */
    return x->op == OP_CONST || x->op == OP_BATCHN || !(op_flags[x->op] & OPF_ELEMWISE);
}

static void infix(Infix *I, Ref r, Txt *t, int depth);

/* binding strength of what r prints as: 1 sums, 2 products, 3 atoms */
static int prec(Infix *I, Ref r)
{
    if (atomic(I, r))
        return 3;
    switch (through_views(&I->m->g, r)->op) {
    case OP_ADD: case OP_SUB: return 1;
    case OP_MUL: case OP_DIV: case OP_NEG: return 2;
    default: return 3;
    }
}

/* prints r as an operand needing strength at least p */
static void operand_p(Infix *I, Ref r, Txt *t, int depth, int p)
{
    int paren = prec(I, r) < p;
    if (paren)
        put(t, "(");
    infix(I, r, t, depth);
    if (paren)
        put(t, ")");
}

static void operand(Infix *I, Ref r, Txt *t, int depth)
{
    operand_p(I, r, t, depth, 3);
}

/* names of unnamed values, where a caller gave them (node_label_names) */
static const char *const *label_names;

void node_label_names(const char *const *names)
{
    label_names = names;
}

/* Label of a node in equations: its name, dL/dname for an adjoint. */
const char *node_label(Model *m, Ref r, char *buf, size_t size)
{
    Node *x = N(&m->g, r);
    if (x->name && !(x->adj_of && x->backward)) {
        snprintf(buf, size, "%s", x->name);
    } else if (x->adj_of && N(&m->g, x->adj_of)->name) {
        snprintf(buf, size, "dL/d%s", N(&m->g, x->adj_of)->name);
    } else if (x->name) {
        snprintf(buf, size, "%s", x->name);
    } else if (x->op == OP_CONST) {
        snprintf(buf, size, "%g", x->f);
    } else if (x->op == OP_BATCHN) {
        snprintf(buf, size, "n");
    } else if (x->adj_of) {
        /* the adjoint of an unnamed value: name it by its expression */
        Txt t = {0};
        Infix I = {m, x->adj_of, 0};
        put(&t, "");
        infix(&I, x->adj_of, &t, 0);
        if (t.len <= 40)
            snprintf(buf, size, "dL/d(%s)", t.buf);
        else if (label_names && label_names[x->adj_of])
            snprintf(buf, size, "dL/d%s", label_names[x->adj_of]);
        else
            snprintf(buf, size, "dL/dt%d", x->adj_of);
        free(t.buf);
    } else if (label_names && label_names[r]) {
        snprintf(buf, size, "%s", label_names[r]);
    } else {
        snprintf(buf, size, "t%d", r);
    }
    return buf;
}

static void infix(Infix *I, Ref r, Txt *t, int depth)
{
    Model *m = I->m;
    Node *x = N(&m->g, r);
    char b[128];
    if ((r != I->top && named(I, r)) || depth > 40) {
        put(t, node_label(m, r, b, sizeof b));
        return;
    }
    Ref a = x->in[0], c = x->in[1];
    switch (x->op) {
    case OP_CONST:
        snprintf(b, sizeof b, "%g", x->f);
        put(t, b);
        return;
    case OP_BATCHN: put(t, "n"); return;
    case OP_EXPAND: case OP_RESHAPE: infix(I, a, t, depth + 1); return;
    case OP_NEG: put(t, "-"); operand(I, a, t, depth + 1); return;
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: {
        static const char *const sym[] = {" + ", " - ", "·", " / "};
        int k = x->op == OP_ADD ? 0 : x->op == OP_SUB ? 1 : x->op == OP_MUL ? 2 : 3;
        if (x->op == OP_DIV && atomic(I, a) && atomic(I, c))
            k = 4;
        /* scalar factors last, as written by hand: x·2/n; parameters
         * after the values they add to: x·w + b */
        if ((x->op == OP_MUL && N(&m->g, a)->shape.rank == 0 && N(&m->g, c)->shape.rank != 0) ||
            (x->op == OP_ADD && leaf(through_views(&m->g, a)) && !leaf(through_views(&m->g, c)))) {
            Ref tmp = a;
            a = c;
            c = tmp;
        }
        int p = x->op == OP_ADD || x->op == OP_SUB ? 1 : 2;
        Node *cn = through_views(&m->g, c);
        if (x->op == OP_MUL && cn->op == OP_DIV && number(&m->g, c) && !named(I, a) &&
            through_views(&m->g, cn->in[0])->f == 1) {
            operand_p(I, a, t, depth + 1, 2); /* a·1/n as a/n */
            put(t, "/n");
            return;
        }
        operand_p(I, a, t, depth + 1, k == 4 ? 3 : p);
        put(t, k == 4 ? "/" : sym[k]);
        operand_p(I, c, t, depth + 1, k == 4 ? 3 : x->op == OP_SUB || x->op == OP_DIV ? p + 1 : p);
        return;
    }
    case OP_MATMUL:
        operand(I, a, t, depth + 1);
        if (x->ia[0])
            put(t, "ᵀ");
        put(t, " · ");
        operand(I, c, t, depth + 1);
        if (x->ia[1])
            put(t, "ᵀ");
        if (x->ia[2])
            put(t, " (summed over the batch)");
        return;
    case OP_TRANSPOSE: operand(I, a, t, depth + 1); put(t, "ᵀ"); return;
    case OP_SUM: {
        Shape in = N(&m->g, a)->shape;
        if (shape_has_batch(in) && x->ia[0] == 1) {
            put(t, "Σ_batch ");
            operand(I, a, t, depth + 1);
            return;
        }
        put(t, "sum(");
        infix(I, a, t, depth + 1);
        put(t, ")");
        return;
    }
    default:
        break;
    }
    if (op_text[x->op]) { /* the table's form: {a}, {b}; bare inside brackets */
        char one[2] = {0, 0};
        for (const char *q = op_text[x->op]; *q; q++) {
            if (q[0] == '{' && (q[1] == 'a' || q[1] == 'b') && q[2] == '}') {
                Ref o = x->in[q[1] - 'a'];
                if (q > op_text[x->op] && (q[-1] == '[' || q[-1] == '('))
                    infix(I, o, t, depth + 1);
                else
                    operand(I, o, t, depth + 1);
                q += 2;
                continue;
            }
            one[0] = *q;
            put(t, one);
        }
        return;
    }
    put(t, op_name[x->op]);
    put(t, "(");
    for (int i = 0; i < op_nin[x->op]; i++) {
        if (i)
            put(t, ", ");
        infix(I, x->in[i], t, depth + 1);
    }
    put(t, ")");
}

/* the equation text of r */
static const char *equation(Model *m, Ref r, int expand, Txt *t)
{
    Infix I = {m, r, expand};
    t->len = 0;
    put(t, "");
    infix(&I, r, t, 0);
    return t->buf;
}

const char *node_equation(Model *m, Ref r, char *buf, size_t size)
{
    Txt t = {0};
    char l[128];
    node_label(m, r, l, sizeof l);
    equation(m, r, -1, &t);
    snprintf(buf, size, "%s = %s", l, t.buf);
    free(t.buf);
    return buf;
}

const char *node_equation_fused(Model *m, Ref r, const unsigned char *inl, char *buf, size_t size)
{
    infix_inline = inl;
    node_equation(m, r, buf, size);
    infix_inline = NULL;
    return buf;
}

/* forward values (not params, inputs or targets) that r's equation reads */
static void reused(Model *m, Ref r, Ref top, unsigned char *seen, Txt *t, int depth)
{
    Node *x = N(&m->g, r);
    if (seen[r] || depth > 40)
        return;
    seen[r] = 1;
    if (!x->backward && r != top) {
        if (!leaf(x) && x->op != OP_CONST && x->op != OP_BATCHN && x->name) {
            put(t, t->len ? ", " : "");
            put(t, x->name);
            return;
        }
        if (leaf(x) || x->name)
            return;
    }
    Infix I = {m, top, 0};
    if (r != top && named(&I, r))
        return;
    for (int i = 0; i < op_nin[x->op]; i++)
        reused(m, x->in[i], top, seen, t, depth + 1);
}

/* Whether emit_grad prints r as a line of its own: an adjoint, or a
 * param's gradient before / n (the final gradients come last). */
static int shown_adjoint(Model *m, Ref r)
{
    Node *x = N(&m->g, r);
    int pi = -1;
    for (int k = 0; k < m->nparams; k++)
        if (m->adjs[k] == r)
            pi = k;
    if (!x->backward || (!x->adj_of && pi < 0) || (pi < 0 && number(&m->g, r)))
        return 0;
    for (int k = 0; k < m->nparams; k++)
        if (m->grads[k] == r && m->adjs[k] != r)
            return 0; /* printed below */
    return 1;
}

void emit_grad(Model *m, FILE *out)
{
    Graph *g = &m->g;
    Plan p;
    plan_build(m, FN_LOSS_GRAD, &p);
    char l[128], sh[64];
    Txt t = {0}, e = {0}, u = {0};
    unsigned char *seen = xcalloc((size_t)g->n, 1);
    fprintf(out, "# %s: the backward pass, one line per adjoint, in the order it is computed.\n", m->name);
    fprintf(out, "# L is the loss summed over the batch; the step uses the mean L/n, so each\n"
                 "# parameter's gradient is dL/dθ / n, the mean of the per-example gradients.\n");
    if (m->objective)
        fprintf(out, "loss per example = %s\n", equation(m, m->objective, 0, &t));
    /* a stable form gradc found is said above the first adjoint of its
     * model line, else here, under the loss */
    int said[8] = {0}; /* 0: to say under the loss, -1: at its line, 1: said */
    for (int i = 0; i < p.norder; i++)
        for (int k = 0; k < m->nrecognised; k++)
            if (shown_adjoint(m, p.order[i]) &&
                m->recognised[k].loc.first_line == N(g, p.order[i])->loc.first_line)
                said[k] = -1;
    for (int k = 0; k < m->nrecognised; k++)
        if (!said[k]) {
            fprintf(out, "# recognised: %s\n", m->recognised[k].what);
            said[k] = 1;
        }
    for (int i = 0; i < p.norder; i++) {
        Ref r = p.order[i];
        Node *x = N(g, r);
        if (!shown_adjoint(m, r))
            continue;
        for (int k = 0; k < m->nrecognised; k++)
            if (said[k] < 0 && m->recognised[k].loc.first_line == x->loc.first_line) {
                fprintf(out, "# recognised: %s\n", m->recognised[k].what);
                said[k] = 1;
            }
        const char *lab = node_label(m, r, l, sizeof l);
        fprintf(out, "%s = %s   %s", lab, equation(m, r, 0, &t), shape_str(x->shape, sh, sizeof sh));
        if (x->loc.first_line)
            fprintf(out, "   line %d", x->loc.first_line);
        memset(seen, 0, (size_t)g->n);
        u.len = 0;
        put(&u, "");
        reused(m, r, r, seen, &u, 0);
        if (u.len)
            fprintf(out, "   reuses %s from the forward pass", u.buf);
        if (x->contribs > 1 && x->adj_of)
            fprintf(out, "   sums %d contributions (%s is used %d times)", x->contribs,
                    N(g, x->adj_of)->name ? N(g, x->adj_of)->name : "it", x->contribs);
        fprintf(out, "\n");
    }
    for (int k = 0; k < m->nparams; k++) {
        Sym *y = m->params[k];
        if (!m->grads[k] && (y->flags & PARAM_FROZEN)) {
            fprintf(out, "grad %s = 0   (frozen)\n", y->name);
            continue;
        }
        if (!m->grads[k]) {
            fprintf(out, "grad %s = 0   (%s does not reach the objective)\n", y->name, y->name);
            continue;
        }
        const char *eq = equation(m, m->grads[k], 0, &t);
        fprintf(out, "grad %s = %s   %s\n", y->name, eq, shape_str(y->shape, sh, sizeof sh));
        const char *ex = equation(m, m->grads[k], 1, &e);
        if (strcmp(ex, eq) != 0 && strlen(ex) < 160)
            fprintf(out, "       = %s\n", ex);
    }
    free(seen);
    free(t.buf);
    free(e.buf);
    free(u.buf);
}

/* ----------------------------------------------------------- stats */

/* Elements of a tensor of shape s over a batch: in double, as the counts
 * below are (a per-example size of up to 2^28 times a batch of up to 2^20
 * overflows an int; a product's FLOPs, up to 2^24 times that, a 64-bit
 * integer too). */
static double numel_batch(Shape s, int batch)
{
    return (double)shape_numel_static(s) * (shape_has_batch(s) ? (double)batch : 1.0);
}

static double node_flops(Graph *g, Ref r, int batch)
{
    Node *x = N(g, r);
    double n = numel_batch(x->shape, batch);
    if (op_flags[x->op] & OPF_STRUCT) /* a structured op counts its own (its module) */
        return norm_op(x->op) ? norm_flops(g, r, batch) : conv_flops(g, r, batch);
    switch (x->op) {
    case OP_MATMUL: {
        Node *a = N(g, x->in[0]);
        int ra = a->shape.rank;
        int k = x->ia[0] ? a->shape.dim[ra - 2] : a->shape.dim[ra - 1];
        double kk = k == DIM_B ? batch : k;
        double out = n;
        if (x->ia[2]) { /* tokens and sequences: every leading axis */
            Shape lead;
            if (matmul_lead(a->shape, N(g, x->in[1])->shape, &lead))
                out *= numel_batch(lead, batch);
        }
        return op_cost[x->op] * out * kk;
    }
    case OP_SUM: case OP_MAX: case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_CE: {
        /* per element read */
        Node *a = N(g, x->in[0]);
        return op_cost[x->op] * numel_batch(a->shape, batch);
    }
    default:
        return op_cost[x->op] * n;
    }
}

void model_flops(Model *m, double *fwd, double *bwd)
{
    Plan p;
    plan_build(m, FN_LOSS_GRAD, &p);
    double f = 0, b = 0;
    for (int i = 0; i < p.norder; i++) {
        Ref r = p.order[i];
        double c = node_flops(&m->g, r, m->batch);
        if (N(&m->g, r)->backward)
            b += c;
        else
            f += c;
    }
    *fwd = f / m->batch;
    *bwd = b / m->batch;
}

void emit_stats(Model *m, Plan plans[FN_COUNT], FILE *out)
{
    double f, b;
    model_flops(m, &f, &b);
    size_t es = m->is_double ? 8 : 4;
    double upd = 2.0 * (double)m->param_count;
    fprintf(out, "model %s: %zu params, compiled batch %d, %s\n", m->name, m->param_count, m->batch,
            m->is_double ? "double" : "float");
    fprintf(out, "flops per example: forward %.0f, backward %.0f, ratio backward/forward %.2f\n", f, b,
            f > 0 ? b / f : 0);
    fprintf(out, "flops per step of %d examples: forward %.0f, backward %.0f, sgd update %.0f\n", m->batch,
            f * m->batch, b * m->batch, upd);
    fprintf(out, "forward-mode gradient (one pass per parameter): %.0f flops per example, %.0fx backprop\n",
            f * (double)m->param_count, (f + b) > 0 ? f * (double)m->param_count / (f + b) : 0);
    static const char *const fn[] = {"loss", "loss_grad", "predict"};
    for (int i = 0; i < FN_COUNT; i++)
        fprintf(out, "workspace %-9s: %zu bytes with buffer reuse, %zu without\n", fn[i],
                plans[i].work_elems * es, plans[i].work_noreuse * es);
    fprintf(out, "params %zu bytes, gradient %zu bytes\n", m->param_count * es, m->param_count * es);
}
