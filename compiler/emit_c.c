/*
 * emit_c.c: the generated C, assembled. For a model it writes MODEL.c:
 * the model's own code first (init, then the forward pass, the objective
 * and the backward pass as static functions of the plan's parts, then the
 * interface's loss, loss_grad and predict over them) and the generic
 * kernels after it, declared before the model's code. Here are the names of
 * values and params, one statement per node (emit_node) and the kernels'
 * templates; the loops are in emit_loops.c, the matrix products in
 * emit_matmul.c, the header and init in emit_iface.c, the convolution
 * family in conv.c, an executable's glue in emit_main.c.
 *
 * The generated pair needs nothing but <stddef.h>, <stdint.h> and <math.h>:
 * no allocation, no globals, no libc string functions. Each statement is a
 * block of its own, preceded by a comment naming the node, its shape and the
 * model line it comes from; in it the output pointer is restrict, which the
 * plan makes true (a node's storage never overlaps the storage it reads).
 */
#include "emit_c.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ helpers */

void emitf(E *e, int indent, const char *fmt, ...) GRADC_PRINTF(3, 4);
void emitf(E *e, int indent, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit_vline(e->out, indent, fmt, ap);
    va_end(ap);
}

const char *lit(E *e, double v, char *buf, size_t n)
{
    if (isinf(v))
        snprintf(buf, n, "%sINFINITY", v < 0 ? "-" : "");
    else if (v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, n, "%.1f%s", v, e->fs);
    else
        snprintf(buf, n, "%.17g%s", v, e->fs);
    if (v < 0 && !isinf(v)) {
        char t[64];
        snprintf(t, sizeof t, "(%s)", buf);
        snprintf(buf, n, "%s", t);
    }
    return buf;
}

/* "n" for the batch axis, the size otherwise */
const char *ext(int d, char *buf, size_t n)
{
    if (d == DIM_B)
        snprintf(buf, n, "n");
    else
        snprintf(buf, n, "%d", d);
    return buf;
}

/* the number of elements as a C expression: "n * 16", "48" */
const char *total(Shape s, char *buf, size_t n)
{
    int k = shape_numel_static(s);
    if (shape_has_batch(s)) {
        if (k == 1)
            snprintf(buf, n, "n");
        else
            snprintf(buf, n, "n * %d", k);
    } else {
        snprintf(buf, n, "%d", k);
    }
    return buf;
}

long stride(Shape s, int axis)
{
    long st = 1;
    for (int i = axis + 1; i < s.rank; i++)
        st *= s.dim[i];
    return st;
}

Ref storage(Plan *p, Ref r)
{
    while (p->slot[r].home == H_ALIAS)
        r = p->slot[r].alias;
    return r;
}

const char *mangle(Arena *a, const char *prefix, const char *name)
{
    size_t n = strlen(name);
    char *s = arena_alloc(a, n + strlen(prefix) + 1);
    strcpy(s, prefix);
    char *q = s + strlen(prefix);
    for (size_t i = 0; i < n; i++)
        q[i] = isalnum((unsigned char)name[i]) ? name[i] : '_';
    return s;
}

/* names the C variable of every node with storage of its own */
/* a set of names, open addressing (names are unique in a file) */
typedef struct Names {
    const char **slot;
    size_t cap, n;
} Names;

static int names_add(Names *t, const char *s)
{
    if (2 * (t->n + 1) > t->cap) {
        Names u = {xcalloc(t->cap ? 2 * t->cap : 256, sizeof(char *)), t->cap ? 2 * t->cap : 256, 0};
        for (size_t i = 0; i < t->cap; i++)
            if (t->slot[i])
                names_add(&u, t->slot[i]);
        free(t->slot);
        *t = u;
    }
    uint64_t h = 1469598103934665603ull;
    for (const char *q = s; *q; q++)
        h = (h ^ (unsigned char)*q) * 1099511628211ull;
    for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        if (!t->slot[i]) {
            t->slot[i] = s;
            t->n++;
            return 1;
        }
        if (!strcmp(t->slot[i], s))
            return 0;
    }
}

/* names the C variable of every node with storage of its own: v_NAME for a
 * value of the model, d_NAME for its adjoint, t_NAME (dt_NAME in the
 * backward pass) for a value the model does not name, after the statement
 * of its model line; NAME_2, NAME_3 where one is taken */
static void name_vars(E *e)
{
    Graph *g = e->g;
    Arena *a = g->arena;
    e->var = arena_alloc(a, sizeof(char *) * (size_t)g->n);
    e->tname = arena_alloc(a, sizeof(char *) * (size_t)g->n);
    memset(e->var, 0, sizeof(char *) * (size_t)g->n);
    memset(e->tname, 0, sizeof(char *) * (size_t)g->n);
    const char **bind = graph_line_names(g, NULL);
    Names used = {0};
    for (int i = 0; i < e->p->norder; i++) {
        Ref r = e->p->order[i];
        Node *x = N(g, r);
        const char *base;
        int t = 0;
        if (x->name)
            base = mangle(a, "v_", x->name);
        else if (x->adj_of && N(g, x->adj_of)->name)
            base = mangle(a, "d_", N(g, x->adj_of)->name);
        else {
            const char *b = x->loc.first_line > 0 ? bind[x->loc.first_line] : NULL;
            base = b ? mangle(a, x->backward ? "dt_" : "t_", b)
                     : arena_printf(a, "%s_line%d", x->backward ? "dt" : "t", x->loc.first_line);
            t = 1;
        }
        const char *name = base;
        Home h = e->p->slot[r].home;
        if (fuse_away(e->p, r) || (h != H_WORK && h != H_GRAD && h != H_OUT)) { /* never a variable */
            e->var[r] = (char *)base;
            continue;
        }
        for (int k = 2; !names_add(&used, name); k++)
            name = arena_printf(a, "%s_%d", base, k);
        e->var[r] = (char *)name;
        if (t)
            e->tname[r] = name;
    }
    free(used.slot);
    free(bind);
}

/* Pointer expression of a node's storage. */
const char *ptr(E *e, Ref r, char *buf, size_t n)
{
    Ref s = storage(e->p, r);
    Slot *sl = &e->p->slot[s];
    switch (sl->home) {
    case H_PARAMS:
        if (e->pvar && N(e->g, s)->op == OP_PARAM)
            snprintf(buf, n, "%s", e->pvar[N(e->g, s)->ia[0]]);
        else
            snprintf(buf, n, "(params + %zu)", sl->offset);
        break;
    case H_X: snprintf(buf, n, "x"); break;
    case H_Y: snprintf(buf, n, "y"); break;
    default: snprintf(buf, n, "%s", e->var[s]); break;
    }
    return buf;
}

int is_inline(E *e, Ref r)
{
    return e->p->slot[r].home == H_INLINE;
}

/* Element expression of an inline node */
const char *inline_val(E *e, Ref r, char *buf, size_t n)
{
    Node *x = N(e->g, r);
    if (x->op == OP_BATCHN)
        snprintf(buf, n, "(%s)n", e->T);
    else
        lit(e, x->f, buf, n);
    return buf;
}

/* ------------------------------------------------------- comments */

/* marks what is computed along with r, through chains (fuse.c), and the
 * model lines they span */
static int mark_along(E *e, Ref r, Ref keep, unsigned char *inl, Ref *list, int k, int *lo, int *hi)
{
    for (Ref q = e->fchild[r]; q; q = e->fnext[q]) {
        if (q == keep || inl[q])
            continue;
        inl[q] = 1;
        list[k++] = q;
        int l = N(e->g, q)->loc.first_line;
        if (l && (!*lo || l < *lo))
            *lo = l;
        if (l > *hi)
            *hi = l;
        k = mark_along(e, q, keep, inl, list, k, lo, hi);
    }
    return k;
}

/* One comment per statement: the equation of the value it writes, what is
 * computed along written out in it (those values have no name in the C),
 * its shape and the model lines. r: the node emitted. */
void comment(E *e, Ref r)
{
    Ref t = e->fz && e->fz[r].last ? e->fz[r].last : r; /* a product writes its last reader */
    Node *x = N(e->g, t);
    int lo = x->loc.first_line, hi = lo, k = 0;
    Ref *list = e->inl_list;
    if (e->fchild) {
        if (t != r) {
            e->inl[r] = 1;
            list[k++] = r;
            int l = N(e->g, r)->loc.first_line;
            if (l && (!lo || l < lo))
                lo = l;
            if (l > hi)
                hi = l;
        }
        if (e->fz[r].alpha && !e->inl[e->fz[r].alpha]) { /* its scale, written as a value (1/n) */
            e->inl[e->fz[r].alpha] = 1;
            list[k++] = e->fz[r].alpha;
        }
        k = mark_along(e, r, t, e->inl, list, k, &lo, &hi);
        k = mark_along(e, t, t, e->inl, list, k, &lo, &hi);
    }
    char sh[64], eq[600], d[800];
    node_equation_fused(e->m, t, e->inl, eq, sizeof eq);
    for (int i = 0; i < k; i++)
        e->inl[list[i]] = 0;
    size_t n = (size_t)snprintf(d, sizeof d, "%s   %s", eq, shape_str(x->shape, sh, sizeof sh));
    if (lo && n < sizeof d) {
        const char *src = e->o && e->o->source_path ? e->o->source_path : "model";
        const char *base = strrchr(src, '/');
        src = c_comment_escape(e->g->arena, base ? base + 1 : src);
        if (hi > lo)
            snprintf(d + n, sizeof d - n, "   %s:%d-%d", src, lo, hi);
        else
            snprintf(d + n, sizeof d - n, "   %s:%d", src, lo);
    }
    /* never close the comment early */
    for (char *q = d; *q; q++)
        if (q[0] == '*' && q[1] == '/')
            q[1] = '|';
    emitf(e, 1, "/* %s */", d);
    if (e->o && e->o->line_directives && lo)
        fprintf(e->out, "#line %d \"%s\"\n", lo, c_string_escape(e->g->arena, e->o->source_path));
}

static void emit_node(E *e, Ref r)
{
    Node *x = N(e->g, r);
    Slot *s = &e->p->slot[r];
    if (s->home == H_PARAMS || s->home == H_X || s->home == H_Y || s->home == H_INLINE ||
        s->home == H_ALIAS)
        return;
    if (e->fused && e->fused[r]) /* computed along with a product (fusion_of) */
        return;
    comment(e, r);
    const char *dst = e->var[r];
    if (conv_op(x->op)) { /* the convolution family writes itself (conv.c) */
        char a[64], b[64], sc[64];
        OpEmit oe = {e->out, e->T, e->prefix, e->g, r, dst, {NULL, NULL}, NULL, e->train, NULL, 0, e->kernels[r]};
        const char *al;
        char bias[64];
        Fusion f = fusion_args(e, r, &oe.dst, &al, bias, sizeof bias);
        oe.bias = f.bias ? bias : NULL;
        oe.relu = f.act != 0;
        oe.in[0] = ptr(e, x->in[0], a, sizeof a);
        if (op_nin[x->op] > 1)
            oe.in[1] = ptr(e, x->in[1], b, sizeof b);
        if (conv_scratch(e->g, r)) {
            snprintf(sc, sizeof sc, "(w + %zu)", s->scratch);
            oe.scratch = sc;
        }
        conv_emit(&oe);
        return;
    }
    if (norm_op(x->op)) { /* normalization writes itself (norm.c) */
        char a[64], b[64], c[64], sc[64];
        NormEmit ne = {e->out, e->T, e->g, r, dst, {NULL, NULL, NULL}, NULL, e->train};
        ne.in[0] = ptr(e, x->in[0], a, sizeof a);
        if (op_nin[x->op] > 1)
            ne.in[1] = ptr(e, x->in[1], b, sizeof b);
        if (op_nin[x->op] > 2)
            ne.in[2] = ptr(e, x->in[2], c, sizeof c);
        if (norm_scratch(e->g, r)) {
            snprintf(sc, sizeof sc, "(w + %zu)", s->scratch);
            ne.scratch = sc;
        }
        norm_emit(&ne);
        return;
    }
    switch (x->op) {
    case OP_INPUT: case OP_TARGET: emit_gather(e, r, dst); break;
    case OP_SUM: case OP_MAX: emit_reduce(e, r, dst); break;
    case OP_MATMUL: emit_matmul(e, r, dst); break;
    case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_CE: case OP_ONEHOT: emit_rowwise(e, r, dst); break;
    case OP_TRANSPOSE: emit_transpose(e, r, dst); break;
    case OP_CONCAT: case OP_SLICE: emit_concat_slice(e, r, dst); break;
    /* tokens and sequences */
    case OP_GATHER: case OP_GATHER_BWD: emit_gather_rows(e, r, dst); break;
    case OP_VIEW: case OP_VIEW_BWD: emit_view(e, r, dst); break;
    case OP_CAUSAL: case OP_CAUSAL_BWD: emit_causal(e, r, dst); break;
    case OP_PARAM: unreachable();
    default: emit_elemwise(e, r, dst); break;
    }
}

/* ------------------------------------------------------- functions */

/* Names the emitted functions' locals take (every emitter's, kernels'
 * too): a param pointer never takes one of them, so no block's local hides
 * it. */
static const char *const emit_locals[] = {
    "a", "a_", "ac", "acc", "acc1", "acc2", "acc3", "act", "ai", "ak", "al", "alpha", "ar", "at", "av", "b", "b_",
    "bend", "best", "bias", "bias_", "big", "bits", "bj", "bk", "blk", "bo", "br", "bt", "bv", "c", "c0", "ci", "col",
    "cp", "cr", "ct", "dr", "drow", "dst", "dw", "dx", "dxb", "dxh", "dy", "dy_", "dyb", "e", "f", "fn", "g", "ge",
    "grad", "gt", "h", "hp", "i", "i0", "i1", "i2", "i3", "i4", "ic", "ii", "ip", "ir", "j", "j0", "jc", "jj", "jp", "jr", "k",
    "k0", "kc", "kcmax", "keep0", "kf", "kfull", "kk", "kstep", "kx", "ky", "l", "l0", "l_", "lda", "ldb", "ldc",
    "lim", "m", "mc", "mpan", "mr", "n", "n1", "nc", "neg", "nj", "noscratch_", "npan", "nr", "nt", "o", "o_", "or_",
    "out", "ov", "ox", "oy", "p", "p0", "p1", "params", "pc", "pf", "pk", "pr", "q", "r", "row", "rr", "s", "s0", "s1",
    "s2", "s3", "scratch_", "seed", "site", "sk", "state", "mode",
    /* norm.c's */
    "a1_", "a2_", "b_", "c_", "cnt_", "dxr_", "dyr_", "e_", "e0_", "i_", "i8_", "j_", "k0_", "m_", "m1_", "m2_",
    "mean_", "mu_", "p_", "q_", "Q_", "rs_", "rstd_", "s_", "S_", "st_", "u_", "v_", "va_", "var_", "xr_", "y_",
    "yr_", "ska", "sl", "src", "t", "train", "u", "unused_", "v", "VL", "w",
    "work", "wp", "wr", "x", "xp", "y", "zero", "L", NULL};

static int emit_local(const char *name)
{
    for (int i = 0; emit_locals[i]; i++)
        if (!strcmp(name, emit_locals[i]))
            return 1;
    return 0;
}

/* The pointer of each param in the functions: its own name where that
 * cannot clash with C, the generated names or another param, else p_NAME
 * (p_NAME_2, ...). */
static void name_params(E *e)
{
    Model *m = e->m;
    Arena *a = e->g->arena;
    e->pvar = arena_alloc(a, sizeof(char *) * (size_t)(m->nparams ? m->nparams : 1));
    e->pmacro = param_macro_names(m);
    Names used = {0};
    for (int i = 0; i < m->nparams; i++) {
        const char *nm = c_identifier(a, "", m->params[i]->name);
        int bad = c_name_unsafe(nm, e->prefix, e->PREFIX) || emit_local(nm) || (nm[0] && nm[1] == '_') ||
                  ((nm[0] == 't' || nm[0] == 'f' || nm[0] == 'p') && isdigit((unsigned char)nm[1]));
        const char *name = bad ? arena_printf(a, "p_%s", nm) : nm;
        for (int k = 2; !names_add(&used, name); k++)
            name = arena_printf(a, "p_%s_%d", nm, k);
        e->pvar[i] = name;
    }
    free(used.slot);
}

/* the storage nodes positions lo..hi of the plan read or write, and what
 * the part returns or copies (extra, 0-terminated) */
static unsigned char *part_uses(E *e, int lo, int hi, const Ref *extra)
{
    Graph *g = e->g;
    unsigned char *used = xcalloc((size_t)g->n, 1);
    for (int i = lo; i < hi; i++) {
        Ref r = e->p->order[i];
        Node *x = N(g, r);
        used[storage(e->p, r)] = 1;
        for (int k = 0; k < op_nin[x->op]; k++)
            used[storage(e->p, x->in[k])] = 1;
        if (e->fz[r].bias)
            used[storage(e->p, e->fz[r].bias)] = 1;
    }
    for (; extra && *extra; extra++)
        used[storage(e->p, *extra)] = 1;
    return used;
}

/* the pointers a part uses: params by name, the nodes' storage */
static void declare_part(E *e, const unsigned char *used)
{
    Model *m = e->m;
    char sh[64], l[96];
    for (int i = 0; i < m->nparams; i++) {
        Sym *y = m->params[i];
        Ref r = y->ref;
        if (!r || !used[r] || e->p->slot[r].home != H_PARAMS)
            continue;
        emitf(e, 1, "const %s *restrict %s = params + %sPARAM_%s_OFFSET; /* %s %s */", e->T, e->pvar[i], e->PREFIX,
              e->pmacro[i],
              y->name, shape_str(y->shape, sh, sizeof sh));
    }
    for (int i = 0; i < e->p->norder; i++) {
        Ref r = e->p->order[i];
        Slot *s = &e->p->slot[r];
        const char *where = NULL;
        if (!used[r])
            continue;
        if (s->home == H_WORK)
            where = arena_printf(e->g->arena, "w + %zu", s->offset);
        else if (s->home == H_GRAD)
            where = arena_printf(e->g->arena, "grad + %zu", s->offset);
        else if (s->home == H_OUT)
            where = "out";
        if (!where)
            continue;
        if ((e->fz[r].last) || (e->fused[r] && e->fz[e->fused[r]].last != r))
            continue; /* computed along with a product, in another's storage */
        emitf(e, 1, "%s *const %s = %s; /* %s %s */", e->T, e->var[r], where,
              node_label(e->m, r, l, sizeof l), shape_str(N(e->g, r)->shape, sh, sizeof sh));
    }
}

/* The nodes of one part (SEG_*), with the pointers they use; dropout in
 * the mode train says (0 evaluation, 1 training, 2 the argument train). */
static void emit_part_body(E *e, int seg, int train, const Ref *extra)
{
    int lo = e->p->seg_start[seg], hi = e->p->seg_start[seg + 1];
    unsigned char *used = part_uses(e, lo, hi, extra);
    declare_part(e, used);
    free(used);
    e->train = train;
    for (int i = lo; i < hi; i++)
        emit_node(e, e->p->order[i]);
}

/* the head of a part: static RET PREFIXNAME(ARGS) with its mode arguments */
static void part_head(E *e, const char *what, const char *ret, const char *name, const char *args, int mode)
{
    fprintf(e->out, "/* %s */\n", what);
    if (e->state && mode) { /* norm.c: mode 0 evaluation, 1 training, 2 training that updates the state */
        fprintf(e->out, "static %s %s%s(%s, int mode%s)\n{\n", ret, e->prefix, name, args,
                e->drop ? ", uint64_t seed" : "");
        emitf(e, 1, "(void)state; (void)mode;%s", e->drop ? " const int train = mode != 0; (void)train;" : "");
        return;
    }
    fprintf(e->out, "static %s %s%s(%s%s)\n{\n", ret, e->prefix, name, args,
            e->drop && mode ? ", int train, uint64_t seed" : "");
}

static void emit_parts(E *e, int predict_only)
{
    Model *m = e->m;
    const char *T = e->T;
    char a[512];
    /* forward */
    snprintf(a, sizeof a, "const %s *params, %s%s *x, size_t n, %s *w", T, e->state ? arena_printf(e->g->arena, "%s *state, const ", T) : "const ", T, T);
    part_head(e, "the forward pass: from the inputs to what both the loss and the prediction need", "void",
              "forward", a, 1);
    emitf(e, 1, "(void)params; (void)x; (void)n; (void)w;%s", e->drop ? (e->state ? " (void)seed;" : " (void)train; (void)seed;") : "");
    emit_part_body(e, SEG_FORWARD, (e->drop || e->state) && !predict_only ? 2 : 0, NULL);
    fprintf(e->out, "}\n\n");
    if (predict_only)
        return;
    /* objective */
    snprintf(a, sizeof a, "const %s *params, %s%s *x, const %s *y, size_t n, %s *w", T, e->state ? arena_printf(e->g->arena, "%s *state, const ", T) : "const ", T, T, T);
    part_head(e, "the objective: the loss of the batch, after forward", T, "objective", a, 1);
    emitf(e, 1, "(void)params; (void)x; (void)y; (void)n; (void)w;%s", e->drop ? (e->state ? " (void)seed;" : " (void)train; (void)seed;") : "");
    Ref ex[2] = {m->loss, 0};
    emit_part_body(e, SEG_OBJECTIVE, e->drop || e->state ? 2 : 0, ex);
    char p[64];
    if (is_inline(e, m->loss))
        emitf(e, 1, "return %s;", inline_val(e, m->loss, p, sizeof p));
    else
        emitf(e, 1, "return %s[0];", ptr(e, m->loss, p, sizeof p));
    fprintf(e->out, "}\n\n");
    /* backward */
    snprintf(a, sizeof a, "const %s *params, const %s *x, const %s *y, size_t n, %s *grad, %s *w%s", T, T, T, T, T,
             e->drop ? ", uint64_t seed" : "");
    fprintf(e->out, "/* the backward pass: the gradient of the loss, after forward and objective */\n");
    fprintf(e->out, "static void %sbackward(%s)\n{\n", e->prefix, a);
    emitf(e, 1, "(void)params; (void)x; (void)y; (void)n; (void)grad; (void)w;%s", e->drop ? " (void)seed;" : "");
    Ref *gx = xcalloc((size_t)m->nparams + 1, sizeof(Ref));
    for (int i = 0, k = 0; i < m->nparams; i++)
        if (m->grads[i])
            gx[k++] = m->grads[i];
    emit_part_body(e, SEG_BACKWARD, 1, gx);
    free(gx);
    int hdr = 0;
    for (int i = 0; i < m->nparams; i++) {
        Ref r = m->grads[i];
        Sym *y = m->params[i];
        int k = shape_numel_static(y->shape);
        if (r && e->p->slot[r].home == H_GRAD && e->p->slot[r].offset == y->offset)
            continue;
        if (!hdr++)
            fprintf(e->out, "\n    // ---- gradients not computed in place\n");
        if (!r)
            emitf(e, 1, "for (size_t i = 0; i < %d; i++) grad[%zu + i] = 0; /* d_%s: %s */", k, y->offset, y->name,
                  "does not reach the objective");
        else
            emit_copy(e, r, arena_printf(e->g->arena, "(grad + %zu)", y->offset), 0);
    }
    fprintf(e->out, "}\n\n");
}

/* loss, loss_grad and predict (and the seeded pair) over the parts; a
 * model with state (batch_norm) takes it after params, and its parts a
 * mode instead of train: 0 evaluation (loss, predict), 1 training
 * (loss_seeded), 2 training that updates the state (loss_grad) */
static void emit_api(E *e, int predict_only)
{
    Model *m = e->m;
    const char *T = e->T, *P = e->prefix, *U = e->PREFIX;
    Arena *ar = e->g->arena;
    /* the state argument of the interface (read-only, written) and as the parts take it */
    const char *cst = e->state ? arena_printf(ar, "const %s *state, ", T) : "";
    const char *wst = e->state ? arena_printf(ar, "%s *state, ", T) : "";
    const char *rd = e->state ? arena_printf(ar, "(%s *)state, ", T) : "", *wr = e->state ? "state, " : "";
    const char *ev = e->drop ? ", 0, 0" : e->state ? ", 0" : "";
    const char *tr = e->drop ? ", 1, seed" : "";
    const char *up = e->drop ? (e->state ? ", 2, seed" : ", 1, seed") : e->state ? ", 2" : "";
    if (!predict_only) {
        for (int seeded = 0; seeded <= e->drop; seeded++) {
            fprintf(e->out, "%s %sloss%s(const %s *params, %sconst %s *x, const %s *y, size_t n, void *work%s)\n{\n", T,
                    P, seeded ? "_seeded" : "", T, cst, T, T, seeded ? ", uint64_t seed" : "");
            emitf(e, 1, "%s *const w = (%s *)work;", T, T);
            emitf(e, 1, "if (n == 0 || n > %sMAX_BATCH) return NAN;", U);
            emitf(e, 1, "%sforward(params, %sx, n, w%s);", P, rd, seeded ? tr : ev);
            emitf(e, 1, "return %sobjective(params, %sx, y, n, w%s);", P, rd, seeded ? tr : ev);
            fprintf(e->out, "}\n\n");
        }
        fprintf(e->out, "%s %sloss_grad%s(const %s *params, %sconst %s *x, const %s *y, size_t n, %s *grad,\n"
                        "        void *work%s)\n{\n",
                T, P, e->drop ? "_seeded" : "", T, wst, T, T, T, e->drop ? ", uint64_t seed" : "");
        emitf(e, 1, "%s *const w = (%s *)work;", T, T);
        emitf(e, 1, "if (n == 0 || n > %sMAX_BATCH) return NAN;", U);
        emitf(e, 1, "%sforward(params, %sx, n, w%s);", P, wr, up);
        emitf(e, 1, "const %s L = %sobjective(params, %sx, y, n, w%s);", T, P, wr, up);
        emitf(e, 1, "%sbackward(params, x, y, n, grad, w%s);", P, e->drop ? ", seed" : "");
        emitf(e, 1, "return L;");
        fprintf(e->out, "}\n\n");
        if (e->drop) /* loss_grad: seeded by the batch */
            fprintf(e->out,
                    "%s %sloss_grad(const %s *params, %sconst %s *x, const %s *y, size_t n, %s *grad,\n"
                    "        void *work)\n{\n"
                    "    return %sloss_grad_seeded(params, %sx, y, n, grad, work, %sbatch_seed(x, n));\n}\n\n",
                    T, P, T, wst, T, T, T, P, wr, P);
    }
    fprintf(e->out, "void %spredict(const %s *params, %sconst %s *x, size_t n, %s *out, void *work)\n{\n", P, T, cst, T,
            T);
    emitf(e, 1, "%s *const w = (%s *)work;", T, T);
    emitf(e, 1, "if (n == 0 || n > %sMAX_BATCH) return;", U);
    emitf(e, 1, "%sforward(params, %sx, n, w%s);", P, rd, ev);
    int lo = e->p->seg_start[SEG_PREDICT], hi = e->p->seg_start[SEG_PREDICT + 1];
    int copy = m->output && e->p->slot[m->output].home != H_OUT;
    if (lo < hi || copy) {
        Ref ex[2] = {m->output, 0};
        unsigned char *used = part_uses(e, lo, hi, ex);
        if (lo < hi)
            fprintf(e->out, "\n    // ---- what only the prediction needs\n");
        declare_part(e, used);
        free(used);
        emitf(e, 1, "(void)params; (void)x;%s", e->state ? " (void)state;" : "");
        e->train = 0;
        for (int i = lo; i < hi; i++)
            emit_node(e, e->p->order[i]);
        if (copy)
            emit_copy(e, m->output, "out", 1);
    } else {
        emitf(e, 1, "(void)out;%s", e->state ? " (void)state;" : "");
    }
    fprintf(e->out, "}\n\n");
}

/* A template of compiler/ built into a string (gemm_kernel.inc, vmath.inc)
 * written out with the model's prefix before its names: "gk_gemm" becomes
 * "seed_gk_gemm", "GK_KC" "SEED_GK_KC" (tag "gk"); up to the line that
 * starts with stop, if any. */
static void emit_template(E *e, const char *const *text, const char *tag, const char *const *sections, unsigned keep)
{
    char lo[8], up[8];
    snprintf(lo, sizeof lo, "%s_", tag);
    for (int k = 0; (up[k] = (char)toupper((unsigned char)lo[k])) != 0; k++)
        ;
    size_t n = strlen(lo);
    int cur = -1; /* the section being read: -1 the part always written */
    for (int i = 0; text[i]; i++) {
        for (int k = 0; sections && sections[k]; k++)
            if (!strncmp(text[i], sections[k], strlen(sections[k])))
                cur = k;
        if (cur >= 0 && !(keep & (1u << cur)))
            continue;
        for (const char *t = text[i], *s = t; *s; s++) {
            int word_start = s == t || !(isalnum((unsigned char)s[-1]) || s[-1] == '_');
            if (word_start && !strncmp(s, lo, n))
                fputs(e->prefix, e->out);
            else if (word_start && !strncmp(s, up, n))
                fputs(e->PREFIX, e->out);
            fputc(*s, e->out);
        }
    }
    fputc('\n', e->out);
}

/* the matrix product (gemm_kernel.c), renamed to the model */
static const char *const gemm_kernel_text[] = {
#include "gemm_kernel.inc"
    NULL};

static void emit_gemm_kernel(E *e)
{
    fprintf(e->out, "/* The matrix product: C = alpha*A*B (+ C), blocked, panels in the workspace. */\n");
    fprintf(e->out, "typedef %s %sgk_real;\n#define %sGK_IS_FLOAT %d\n", e->T, e->prefix, e->PREFIX,
            e->m->is_double ? 0 : 1);
    fprintf(e->out, "#define %sGK_KC %d /* the blocks: inner, rows, columns */\n#define %sGK_MC %d\n#define %sGK_NC %d\n",
            e->PREFIX, GEMM_KC, e->PREFIX, GEMM_MC, e->PREFIX, GEMM_NC);
    emit_template(e, gemm_kernel_text, "gk", NULL, 0);
}

/* e^x and log(1 + u) in float (vmath.c), renamed to the model */
static const char *const vmath_text[] = {
#include "vmath.inc"
    NULL};


static void emit_vmath(E *e, int vm)
{
    fprintf(e->out, "/* e^x%s%s for the loops that call them: branch-free, so that those loops\n"
                    "   vectorize; about 1 ulp (Cephes' polynomials; tests/test_vmath.c) */",
            vm & VM_LOG1P ? ", log(1 + u)" : "", vm & VM_ERF ? ", erf" : "");
    /* only what is called: an unused static function is a warning */
    static const char *const sections[] = {"/* log(1 + u)", "/* erf(x)", NULL};
    emit_template(e, vmath_text, "vm", sections, (vm & VM_LOG1P ? 1u : 0u) | (vm & VM_ERF ? 2u : 0u));
}

void emit_c(Model *m, Plan plans[FN_COUNT], const EmitOptions *o, FILE *out)
{
    if (o && o->scalar) {
        emit_scalar_c(m, plans, o, out);
        return;
    }
    E e = e_make(m, o, out);
    int predict_only = o && o->predict_only;
    Plan all;
    plan_build_all(m, predict_only, &all);
    e.p = &all;
    emit_c_prelude(m, o, out);
    /* the generic kernels are written aside, declared here and defined
     * after the model's own code */
    char *ktext = NULL;
    size_t klen = 0;
    FILE *ks = open_memstream(&ktext, &klen);
    if (!ks)
        die("out of memory");
    e.out = out = ks;
    int vm = 0;
    for (int i = 0; i < all.norder; i++)
        vm |= op_uses_vmath(N(&m->g, all.order[i])->op);
    if (vm && !m->is_double)
        emit_vmath(&e, vm);
    e.drop = conv_has_dropout(&m->g) && !predict_only;
    e.state = norm_has_state(m); /* norm.c: batch_norm's running statistics */
    if (e.drop)
        conv_emit_helpers(out, e.prefix, e.T);
    /* the convolution family's kernels, one per node computed */
    e.kernels = conv_kernel_names(m, e.prefix);
    for (int i = 0; i < all.norder; i++) {
        Ref r = all.order[i];
        if (!conv_op(N(&m->g, r)->op))
            continue;
        OpEmit oe = {out, e.T, e.prefix, &m->g, r, NULL, {NULL, NULL}, NULL, 0, NULL, 0, e.kernels[r]};
        conv_emit_kernel(&oe);
    }
    int gk, vec;
    if (gemm_needs(m, &all, o, &gk, &vec)) {
        e.pack_off = gemm_pack_offset(&all);
        if (gk)
            emit_gemm_kernel(&e);
    }
    if (vec)
        vec_prelude(out, e.T, &m->g);
    if (vec & 2)
        vec_gemm_function(out, e.T, e.prefix);
    if (fclose(ks) != 0)
        die("out of memory");
    e.out = out = e.o_out;
    FILE *defs = tmpfile();
    if (!defs)
        die("cannot create a temporary file: %s", strerror(errno));
    split_definitions(ktext, out, defs);
    free(ktext);
    name_vars(&e);
    name_params(&e);
    e.fused = all.fused;
    e.fz = all.fz;
    /* what is computed along with each node, for the comments */
    e.fchild = arena_alloc(m->g.arena, sizeof(Ref) * (size_t)m->g.n);
    e.fnext = arena_alloc(m->g.arena, sizeof(Ref) * (size_t)m->g.n);
    e.inl = arena_alloc(m->g.arena, (size_t)m->g.n);
    e.inl_list = arena_alloc(m->g.arena, sizeof(Ref) * (size_t)m->g.n);
    memset(e.fchild, 0, sizeof(Ref) * (size_t)m->g.n);
    memset(e.fnext, 0, sizeof(Ref) * (size_t)m->g.n);
    memset(e.inl, 0, (size_t)m->g.n);
    for (int i = all.norder - 1; i >= 0; i--) {
        Ref q = all.order[i], f = all.fused[q];
        if (f) {
            e.fnext[q] = e.fchild[f];
            e.fchild[f] = q;
        }
    }
    fprintf(out, "\n/* ---------------------------------------------------------- the model */\n\n");
    node_label_names(e.tname); /* the comments name values as the C does */
    emit_parts(&e, predict_only);
    emit_api(&e, predict_only);
    node_label_names(NULL);
    if (ftell(defs) > 0) {
        fprintf(out, "/* ------------------------------------------------- the generic kernels */\n\n");
        rewind(defs);
        char buf[8192];
        size_t k;
        while ((k = fread(buf, 1, sizeof buf, defs)) > 0)
            fwrite(buf, 1, k, out);
    }
    fclose(defs);
}
