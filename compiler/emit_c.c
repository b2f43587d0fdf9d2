/*
 * emit_c.c: the generated C.
 *
 * For a model it writes MODEL.h (the interface of LANGUAGE.md section 5),
 * MODEL.c (init, loss, loss_grad, predict: straight-line loops with every
 * size a constant, over n <= the compiled batch) and, for an executable, a
 * glue file that describes the model to the runtime.
 *
 * The generated pair needs nothing but <stddef.h>, <stdint.h> and <math.h>:
 * no allocation, no globals, no libc string functions. Each statement is a
 * block of its own, preceded by a comment naming the node, its shape and the
 * model line it comes from; in it the output pointer is restrict, which the
 * plan makes true (a node's storage never overlaps the storage it reads).
 */
#include "gradc.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct E {
    Model *m;               /* the model */
    Graph *g;               /* its graph */
    Plan *p;                /* the function being written */
    FILE *out;              /* where */
    FILE *o_out;            /* the file being written (out may be aside) */
    const char *T;          /* float or double */
    const char *fs;         /* "f" for float math functions, "" for double */
    const EmitOptions *o;   /* options */
    char **var;             /* C variable per node, for this function */
    const char *prefix;     /* model prefix, "seed_" */
    const char *PREFIX;     /* macro prefix, "SEED_" */
    int train;              /* the function trains: dropout masks (conv.c) */
    size_t pack_off;        /* workspace offset of the matrix product's panels */
    Ref *fused;             /* per node: the product that computes it along, or 0 */
    Fusion *fz;             /* per product: what it computes along */
    const char **pvar;      /* per param: the name of its pointer in the functions */
    int drop;               /* the model has dropout: the parts take train and seed */
    const char **kernels;   /* per node: its kernel's name (conv.c), or NULL */
} E;

/* ------------------------------------------------------------ helpers */

static void emitf(E *e, int indent, const char *fmt, ...) GRADC_PRINTF(3, 4);
static void emitf(E *e, int indent, const char *fmt, ...)
{
    for (int i = 0; i < indent; i++)
        fputs("    ", e->out);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(e->out, fmt, ap);
    va_end(ap);
    fputc('\n', e->out);
}

static const char *lit(E *e, double v, char *buf, size_t n)
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
static const char *ext(int d, char *buf, size_t n)
{
    if (d == DIM_B)
        snprintf(buf, n, "n");
    else
        snprintf(buf, n, "%d", d);
    return buf;
}

/* the number of elements as a C expression: "n * 16", "48" */
static const char *total(Shape s, char *buf, size_t n)
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

static long stride(Shape s, int axis)
{
    long st = 1;
    for (int i = axis + 1; i < s.rank; i++)
        st *= s.dim[i];
    return st;
}

static Ref storage(Plan *p, Ref r)
{
    while (p->slot[r].home == H_ALIAS)
        r = p->slot[r].alias;
    return r;
}

static const char *mangle(Arena *a, const char *prefix, const char *name)
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
static void name_vars(E *e)
{
    Graph *g = e->g;
    Arena *a = g->arena;
    e->var = arena_alloc(a, sizeof(char *) * (size_t)g->n);
    for (int i = 0; i < e->p->norder; i++) {
        Ref r = e->p->order[i];
        Node *x = N(g, r);
        const char *base;
        if (x->name)
            base = mangle(a, "v_", x->name);
        else if (x->adj_of && N(g, x->adj_of)->name)
            base = mangle(a, "d_", N(g, x->adj_of)->name);
        else
            base = arena_printf(a, "t%d", r);
        /* unique within the function */
        const char *name = base;
        for (int k = 0; k < i; k++)
            if (e->var[e->p->order[k]] && strcmp(e->var[e->p->order[k]], name) == 0) {
                name = arena_printf(a, "%s_%d", base, r);
                break;
            }
        e->var[r] = (char *)name;
    }
}

/* Pointer expression of a node's storage. */
static const char *ptr(E *e, Ref r, char *buf, size_t n)
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

static int is_inline(E *e, Ref r)
{
    return e->p->slot[r].home == H_INLINE;
}

/* Element expression of an inline node */
static const char *inline_val(E *e, Ref r, char *buf, size_t n)
{
    Node *x = N(e->g, r);
    if (x->op == OP_BATCHN)
        snprintf(buf, n, "(%s)n", e->T);
    else
        lit(e, x->f, buf, n);
    return buf;
}

/* ------------------------------------------------------- comments */

static void describe(E *e, Ref r, char *buf, size_t n)
{
    Node *x = N(e->g, r);
    char sh[64], eq[400];
    node_equation(e->m, r, eq, sizeof eq);
    size_t k = (size_t)snprintf(buf, n, "%s   %s", eq, shape_str(x->shape, sh, sizeof sh));
    if (x->loc.first_line && k < n) {
        const char *src = e->o && e->o->source_path ? e->o->source_path : "model";
        const char *base = strrchr(src, '/');
        snprintf(buf + k, n - k, "   %s:%d", base ? base + 1 : src, x->loc.first_line);
    }
}

static void comment(E *e, Ref r)
{
    char d[512];
    describe(e, r, d, sizeof d);
    /* never close the comment early */
    for (char *q = d; *q; q++)
        if (q[0] == '*' && q[1] == '/')
            q[1] = '|';
    emitf(e, 1, "/* %s */", d);
    Node *x = N(e->g, r);
    if (e->o && e->o->line_directives && x->loc.first_line)
        fprintf(e->out, "#line %d \"%s\"\n", x->loc.first_line, e->o->source_path);
}

/* ------------------------------------------------- elementwise code */

/* the value of element-wise node x at one element, its operands being the
 * locals a and b: the op table's template. e^x and log(1 + u) are in float
 * the file's own (vmath.c), whose loops vectorize. */
static const char *scalar_expr(E *e, Node *x, char *buf, size_t n)
{
    if (x->op == OP_EXPAND || x->op == OP_RESHAPE || x->op == OP_CONST || x->op == OP_BATCHN) {
        snprintf(buf, n, "a");
        return buf;
    }
    int fl = !e->m->is_double;
    char c[64], c2[64];
    CFlavour f = {e->T, e->fs,
                  fl ? arena_printf(e->g->arena, "%svm_expf", e->prefix) : "exp",
                  fl ? arena_printf(e->g->arena, "%svm_log1p", e->prefix) : "log1p",
                  lit(e, x->f, c, sizeof c), lit(e, x->f2, c2, sizeof c2)};
    snprintf(buf, n, "%s", op_expr(e->g->arena, x, "a", "b", &f));
    return buf;
}

/* Index expression of an operand of shape t read at the output's loop
 * indices i0..i(r-1) (NumPy broadcasting). */
static void bcast_index(Shape out, Shape t, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = 0;
    int off = out.rank - t.rank;
    for (int d = 0; d < t.rank; d++) {
        if (t.dim[d] == 1)
            continue;
        long st = stride(t, d);
        if (st == 1)
            k += (size_t)snprintf(buf + k, n - k, "%si%d", k ? " + " : "", d + off);
        else
            k += (size_t)snprintf(buf + k, n - k, "%si%d * %ld", k ? " + " : "", d + off, st);
    }
    if (!k)
        snprintf(buf, n, "0");
}

/* flat: every operand is the node's shape, a single value or inline, so one
 * loop over the elements computes it */
/* an element-wise producer computed inside its reader's loop (plan_fusions):
 * pointers to its stored operands, declared before the loop */
static void fused_ptrs(E *e, Ref r, int ind)
{
    Node *x = N(e->g, r);
    char p[64];
    for (int k = 0; k < op_nin[x->op]; k++) {
        Ref q = x->in[k];
        if (e->fused[q] == r)
            fused_ptrs(e, q, ind);
        else if (!is_inline(e, q))
            emitf(e, ind, "const %s *p%d_%d = %s;", e->T, r, k, ptr(e, q, p, sizeof p));
    }
}

/* ... and its value at element i, as the local f<r> */
static void fused_value(E *e, Ref r, int ind)
{
    Node *x = N(e->g, r);
    char expr[512], v[2][64];
    for (int k = 0; k < op_nin[x->op]; k++) {
        Ref q = x->in[k];
        if (e->fused[q] == r) {
            fused_value(e, q, ind);
            snprintf(v[k], sizeof v[k], "f%d", q);
        } else if (is_inline(e, q)) {
            inline_val(e, q, v[k], sizeof v[k]);
        } else {
            snprintf(v[k], sizeof v[k], "p%d_%d[%s]", r, k, shape_eq(N(e->g, q)->shape, x->shape) ? "i" : "0");
        }
    }
    scalar_expr(e, x, expr, sizeof expr);
    emitf(e, ind, "%s f%d;", e->T, r);
    emitf(e, ind, "{");
    for (int k = 0; k < op_nin[x->op]; k++)
        emitf(e, ind + 1, "const %s %c = %s;", e->T, 'a' + k, v[k]);
    emitf(e, ind + 1, "f%d = %s;", r, expr);
    emitf(e, ind, "}");
}


/* whether node r, or a producer computed inside its loop, calls the file's
 * e^x (float sigmoid, softplus, bce: emit_vmath) */
static int uses_vmath(E *e, Ref r)
{
    Node *x = N(e->g, r);
    if (e->m->is_double)
        return 0;
    if (op_uses_vmath(x->op))
        return 1;
    for (int k = 0; k < op_nin[x->op]; k++)
        if (e->fused && e->fused[x->in[k]] == r && uses_vmath(e, x->in[k]))
            return 1;
    return 0;
}

/* the body of a flat loop at element i: the producers computed along, the
 * operands, the value */
static void flat_body(E *e, Ref r, int nin, char rd[2][200], const char *expr, const char *lhs, int ind)
{
    Node *x = N(e->g, r);
    char v[2][200];
    for (int k = 0; k < nin; k++) {
        snprintf(v[k], sizeof v[k], "%s", rd[k]);
        if (e->fused && e->fused[x->in[k]] == r) {
            fused_value(e, x->in[k], ind);
            snprintf(v[k], sizeof v[k], "f%d", x->in[k]);
        }
    }
    for (int k = 0; k < nin; k++)
        emitf(e, ind, "const %s %c = %s;", e->T, 'a' + k, v[k]);
    emitf(e, ind, "%s = %s;", lhs, expr);
}

static void emit_elemwise(E *e, Ref r, const char *dst)
{
    Node *x = N(e->g, r);
    Shape s = x->shape;
    int nin = op_nin[x->op] ? op_nin[x->op] : 0;
    Ref in[2] = {x->in[0], x->in[1]};
    char expr[512], tb[64], p[64];
    if (x->op == OP_CONST || x->op == OP_BATCHN) /* a constant filled in */
        inline_val(e, r, expr, sizeof expr);
    else
        scalar_expr(e, x, expr, sizeof expr);
    /* flat when every operand is the output's shape or a single value */
    int flat = 1;
    for (int k = 0; k < nin; k++) {
        Node *y = N(e->g, in[k]);
        if (!is_inline(e, in[k]) && !shape_eq(y->shape, s) &&
            !(shape_numel_static(y->shape) == 1 && !shape_has_batch(y->shape)))
            flat = 0;
    }
    emitf(e, 1, "{");
    emitf(e, 2, "%s *restrict o = %s;", e->T, dst);
    for (int k = 0; k < nin; k++)
        if (e->fused && e->fused[in[k]] == r) /* computed in this loop */
            fused_ptrs(e, in[k], 2);
        else if (!is_inline(e, in[k]))
            emitf(e, 2, "const %s *%c_ = %s;", e->T, 'a' + k, ptr(e, in[k], p, sizeof p));
    char rd[2][200];
    if (flat) {
        for (int k = 0; k < nin; k++) {
            Node *y = N(e->g, in[k]);
            if (is_inline(e, in[k]))
                inline_val(e, in[k], rd[k], sizeof rd[k]);
            else if (shape_eq(y->shape, s))
                snprintf(rd[k], sizeof rd[k], "%c_[i]", 'a' + k);
            else
                snprintf(rd[k], sizeof rd[k], "%c_[0]", 'a' + k);
        }
        if ((long)shape_numel_static(s) * (shape_has_batch(s) ? e->m->batch : 1) >= 65536) {
            emitf(e, 0, "#if defined(_OPENMP)"); /* large: shared among threads (gradc --threads) */
            emitf(e, 0, "#pragma omp parallel for schedule(static)");
            emitf(e, 0, "#endif");
        }
        const char *len = total(s, tb, sizeof tb);
        if (uses_vmath(e, r)) {
            /* 16 elements at a time into a local array, then copied out:
             * loops of known length whose stores cannot alias their loads,
             * which gcc vectorizes at -O2 too (its cost model there allows
             * no scalar remainder and no run-time alias check); then the rest */
            emitf(e, 2, "for (size_t blk = 0; blk < (size_t)(%s) / 16; blk++) {", len);
            emitf(e, 3, "%s ov[16];", e->T);
            emitf(e, 3, "for (size_t j = 0; j < 16; j++) {");
            emitf(e, 4, "const size_t i = blk * 16 + j;");
            flat_body(e, r, nin, rd, expr, "ov[j]", 4);
            emitf(e, 3, "}");
            emitf(e, 3, "for (size_t j = 0; j < 16; j++) o[blk * 16 + j] = ov[j];");
            emitf(e, 2, "}");
            emitf(e, 2, "for (size_t i = (size_t)(%s) / 16 * 16; i < %s; i++) {", len, len);
        } else {
            emitf(e, 2, "for (size_t i = 0; i < %s; i++) {", len);
        }
        flat_body(e, r, nin, rd, expr, "o[i]", 3);
        emitf(e, 2, "}");
    } else {
        for (int d = 0; d < s.rank; d++)
            emitf(e, 2 + d, "for (size_t i%d = 0; i%d < %s; i%d++)%s", d, d,
                  ext(s.dim[d], tb, sizeof tb), d, d == s.rank - 1 ? " {" : "");
        int ind = 2 + s.rank;
        for (int k = 0; k < nin; k++) {
            char idx[160];
            if (is_inline(e, in[k])) {
                inline_val(e, in[k], rd[k], sizeof rd[k]);
            } else {
                bcast_index(s, N(e->g, in[k])->shape, idx, sizeof idx);
                snprintf(rd[k], sizeof rd[k], "%c_[%s]", 'a' + k, idx);
            }
            emitf(e, ind, "const %s %c = %s;", e->T, 'a' + k, rd[k]);
        }
        char oi[160];
        bcast_index(s, s, oi, sizeof oi);
        emitf(e, ind, "o[%s] = %s;", oi, expr);
        emitf(e, ind - 1, "}");
    }
    emitf(e, 1, "}");
}

/* ---------------------------------------------------- other ops */

/* A sum over the batch of rows of at least 16 elements (the gradient of a
 * bias): the columns of C are vectors summed in four partial sums along the
 * batch, added at the end (fallback: plain loops). The row length, or 0. */
static int batch_sum_cols(Graph *g, Ref r)
{
    Node *x = N(g, r);
    if (x->op != OP_SUM || x->ia[0] != 1)
        return 0;
    Shape s = N(g, x->in[0])->shape;
    if (s.rank < 2 || s.dim[0] != DIM_B)
        return 0;
    for (int d = 1; d < s.rank; d++)
        if (s.dim[d] == DIM_B)
            return 0;
    int c = shape_numel_static(s);
    return c >= 16 ? c : 0;
}

static void emit_reduce(E *e, Ref r, const char *dst)
{
    Node *x = N(e->g, r);
    Node *a = N(e->g, x->in[0]);
    Shape s = a->shape;
    unsigned mask = (unsigned)x->ia[0];
    char tb[64], p[64];
    int ismax = x->op == OP_MAX;
    int C = batch_sum_cols(e->g, r);
    if (C) {
        const char *T = e->T, *V = arena_printf(e->g->arena, "gradc_v%s", e->T);
        emitf(e, 1, "{");
        emitf(e, 2, "%s *restrict o = %s;", T, dst);
        emitf(e, 2, "const %s *a_ = %s;", T, ptr(e, x->in[0], p, sizeof p));
        emitf(e, 2, "size_t c0 = 0;");
        emitf(e, 0, "#ifdef GRADC_VEC");
        emitf(e, 2, "enum { VL = GRADC_VBYTES / (int)sizeof(%s) };", T);
        emitf(e, 2, "for (; c0 + VL <= %d; c0 += VL) {", C);
        emitf(e, 3, "const %s zero = {0};", V);
        emitf(e, 3, "%s s0 = zero, s1 = zero, s2 = zero, s3 = zero;", V);
        emitf(e, 3, "size_t i0 = 0;");
        emitf(e, 3, "for (; i0 + 4 <= n; i0 += 4) {");
        for (int u = 0; u < 4; u++)
            emitf(e, 4, "s%d += *(const %s *)(a_ + (i0 + %d) * %d + c0);", u, V, u, C);
        emitf(e, 3, "}");
        emitf(e, 3, "for (; i0 < n; i0++)");
        emitf(e, 4, "s0 += *(const %s *)(a_ + i0 * %d + c0);", V, C);
        emitf(e, 3, "*(%s *)(o + c0) = (s0 + s1) + (s2 + s3);", V);
        emitf(e, 2, "}");
        /* a multiple of 16 is all vectors (the rest loop would only draw a
         * warning from gcc at -O2, for a loop that cannot run) */
        emitf(e, 0, C % 16 ? "#endif" : "#else");
        emitf(e, 2, "for (; c0 < %d; c0++) {", C);
        emitf(e, 3, "%s t = 0;", T);
        emitf(e, 3, "for (size_t i0 = 0; i0 < n; i0++)");
        emitf(e, 4, "t += a_[i0 * %d + c0];", C);
        emitf(e, 3, "o[c0] = t;");
        emitf(e, 2, "}");
        if (C % 16 == 0)
            emitf(e, 0, "#endif");
        emitf(e, 1, "}");
        return;
    }
    if (!ismax && shape_numel_static(x->shape) == 1 && !shape_has_batch(x->shape) &&
        (shape_has_batch(s) || shape_numel_static(s) >= 16)) {
        /* a sum of everything (a loss over the batch): four partial sums, so
         * that the adds do not each wait for the one before */
        const char *T = e->T;
        emitf(e, 1, "{");
        emitf(e, 2, "%s *restrict o = %s;", T, dst);
        emitf(e, 2, "const %s *a_ = %s;", T, ptr(e, x->in[0], p, sizeof p));
        emitf(e, 2, "%s s0 = 0, s1 = 0, s2 = 0, s3 = 0;", T);
        emitf(e, 2, "size_t i = 0;");
        emitf(e, 2, "for (; i + 4 <= %s; i += 4) {", total(s, tb, sizeof tb));
        emitf(e, 3, "s0 += a_[i];");
        emitf(e, 3, "s1 += a_[i + 1];");
        emitf(e, 3, "s2 += a_[i + 2];");
        emitf(e, 3, "s3 += a_[i + 3];");
        emitf(e, 2, "}");
        emitf(e, 2, "for (; i < %s; i++)", total(s, tb, sizeof tb));
        emitf(e, 3, "s0 += a_[i];");
        emitf(e, 2, "o[0] = (s0 + s1) + (s2 + s3);");
        emitf(e, 1, "}");
        return;
    }
    /* output strides per input axis: 0 on reduced axes */
    Shape ko = s; /* keepdims output shape */
    for (int d = 0; d < s.rank; d++)
        if (mask & (1u << d))
            ko.dim[d] = 1;
    emitf(e, 1, "{");
    emitf(e, 2, "%s *restrict o = %s;", e->T, dst);
    emitf(e, 2, "const %s *a_ = %s;", e->T, ptr(e, x->in[0], p, sizeof p));
    emitf(e, 2, "for (size_t i = 0; i < %s; i++)", total(x->shape, tb, sizeof tb));
    emitf(e, 3, "o[i] = %s;", ismax ? "-INFINITY" : "0");
    for (int d = 0; d < s.rank; d++)
        emitf(e, 2 + d, "for (size_t i%d = 0; i%d < %s; i%d++)%s", d, d, ext(s.dim[d], tb, sizeof tb),
              d, d == s.rank - 1 ? " {" : "");
    if (s.rank == 0)
        emitf(e, 2, "{");
    int ind = 2 + s.rank;
    char ii[160], oi[160];
    bcast_index(s, s, ii, sizeof ii);
    bcast_index(s, ko, oi, sizeof oi);
    if (ismax)
        emitf(e, ind, "if (a_[%s] > o[%s]) o[%s] = a_[%s];", ii, oi, oi, ii);
    else
        emitf(e, ind, "o[%s] += a_[%s];", oi, ii);
    emitf(e, ind - 1 > 1 ? ind - 1 : 2, "}");
    emitf(e, 1, "}");
}

/* The sizes of a matrix product: rows, columns, inner; the leading axis of a
 * batched (rank 3) product, 0 if none. */
typedef struct MM {
    int M, N, K, lead;
    int ai_, ak_, bk_, bj_; /* element strides of A(i,k) and B(k,j) */
} MM;

static MM mm_sizes(Graph *g, Ref r)
{
    Node *x = N(g, r);
    Node *A = N(g, x->in[0]), *B = N(g, x->in[1]);
    int ta = x->ia[0], tb = x->ia[1];
    Shape sa = A->shape, sb = B->shape;
    int ra = sa.rank, rb = sb.rank;
    int lda = sa.dim[ra - 1], ldb = sb.dim[rb - 1];
    MM s;
    s.M = ta ? sa.dim[ra - 1] : sa.dim[ra - 2];
    s.K = ta ? sa.dim[ra - 2] : sa.dim[ra - 1];
    s.N = tb ? sb.dim[rb - 2] : sb.dim[rb - 1];
    s.lead = ra == 3 ? sa.dim[0] : rb == 3 ? sb.dim[0] : 0;
    s.ai_ = ta ? 1 : lda;
    s.ak_ = ta ? lda : 1;
    s.bk_ = tb ? 1 : ldb;
    s.bj_ = tb ? ldb : 1;
    return s;
}

#ifndef GEMM_KC
#define GEMM_KC 256 /* the blocks of gemm_kernel.c */
#endif
#ifndef GEMM_MC
#define GEMM_MC 96
#endif
#ifndef GEMM_NC
#define GEMM_NC 2048
#endif
#ifndef GEMM_SMALL
#define GEMM_SMALL 600 /* products of at most this many multiply-adds, and N = 1, are loops */
#endif

/* the panel elements gk_gemm needs for a product (GK_PACK_ELEMS) */
static size_t mm_pack(MM s, int batch)
{
    size_t M = (size_t)(s.M == DIM_B ? batch : s.M), N = (size_t)(s.N == DIM_B ? batch : s.N);
    size_t K = (size_t)(s.K == DIM_B ? batch : s.K);
    size_t kc = K < GEMM_KC ? K : GEMM_KC, nc = N < GEMM_NC ? N : GEMM_NC, mc = M < GEMM_MC ? M : GEMM_MC;
    size_t panels = kc * (nc + 32 + mc + 8), small = K * (N + 16) + 16; /* B copied, vgemm's pk */
    return panels > small ? panels : small;
}

static int mm_small(MM s, int batch);
static int mm_vec(MM s, int batch);

/* What the products of the emitted functions need: the panel elements of
 * the largest (GK_PACK_ELEMS), whether any goes through gk_gemm, and the
 * vector code: 1 a batch sum in vectors, 3 a product through vgemm too. */
static size_t gemm_needs(Model *m, const Plan *p, const EmitOptions *o, int *kernel, int *vec)
{
    size_t need = 0;
    *kernel = 0;
    *vec = 0;
    if (o && o->scalar)
        return 0;
    for (int i = 0; i < p->norder; i++) {
        Ref r = p->order[i];
        const Slot *sl = &p->slot[r];
        if (batch_sum_cols(&m->g, r))
            *vec |= 1;
        if (N(&m->g, r)->op != OP_MATMUL || sl->home == H_INLINE || sl->home == H_ALIAS)
            continue;
        MM s = mm_sizes(&m->g, r);
        size_t k = mm_pack(s, m->batch);
        if (k > need)
            need = k;
        if (s.lead || !mm_small(s, m->batch))
            *kernel = 1;
        else if (mm_vec(s, m->batch))
            *vec |= 3;
    }
    return need;
}

/* where the panels start: after the functions' own workspace */
static size_t gemm_pack_offset(const Plan *p)
{
    return (p->work_elems + 15) / 16 * 16;
}

/* a size as a long: "(long)n" for the batch axis */
static const char *lext(int d, char *buf, size_t n)
{
    if (d == DIM_B)
        snprintf(buf, n, "(long)n");
    else
        snprintf(buf, n, "%d", d);
    return buf;
}

/* ------------------------------------------------------------ fusion
 *
 * What a product computes along is decided in planning (fuse.c); here
 * are the C expressions of its scale and bias. */

/* a C expression for a single value made of constants and n alone (1/n, 2/n), or NULL */
static const char *value_expr(E *e, Ref r, int depth)
{
    Node *x = N(e->g, r);
    char b[64];
    if (shape_numel_static(x->shape) != 1 || shape_has_batch(x->shape) || depth > 4)
        return NULL;
    if (x->op == OP_CONST || x->op == OP_BATCHN)
        return arena_printf(e->g->arena, "%s", inline_val(e, r, b, sizeof b));
    const char *opc = x->op == OP_ADD ? "+" : x->op == OP_SUB ? "-" : x->op == OP_MUL ? "*" : x->op == OP_DIV ? "/" : NULL;
    if (!opc)
        return NULL;
    const char *l = value_expr(e, x->in[0], depth + 1), *rr = l ? value_expr(e, x->in[1], depth + 1) : NULL;
    return rr ? arena_printf(e->g->arena, "(%s %s %s)", l, opc, rr) : NULL;
}

/* What a product computes along (fusion_of): the comments of the nodes it
 * takes over, where it writes, its scale (NULL for none) and its bias
 * pointer ("" for none). */
static Fusion fusion_args(E *e, Ref r, const char **dst, const char **alpha, char *bias, size_t nb)
{
    Fusion f = e->fz[r];
    *alpha = NULL;
    bias[0] = 0;
    if (!f.last)
        return f;
    if (f.act == 1)
        comment(e, N(e->g, f.last)->in[0]);
    comment(e, f.last);
    *dst = e->var[storage(e->p, f.last)];
    if (f.alpha)
        *alpha = value_expr(e, f.alpha, 0);
    if (f.bias)
        ptr(e, f.bias, bias, nb);
    return f;
}

/* Small products are written out as loops with constant sizes instead of
 * going through gk_gemm: no panels to copy, the sums held in a local array
 * the C compiler keeps in registers, written once at the end.
 *
 * MM_ROWS: each row of C on its own (C = X·Wᵀ of a small layer over the
 * batch, or a product of a few hundred multiply-adds); a transposed B is
 * first copied into [K][N] order in the panel area.
 * MM_ACC: all of a small C (M·N <= MM_ACC_MAX, constants) at once, summed
 * along a K that is usually the batch (the gradient of a small weight);
 * held transposed when A(i,k) is the contiguous operand.
 * Short accumulators are split into MM_SPLIT partial sums along K so that
 * the adds do not wait on each other; the partial sums are added at the end
 * in a fixed order. */
enum { MM_GEMM, MM_ROWS, MM_ACC };
#define MM_ACC_MAX 256
#define MM_SPLIT 4

static int mm_form(MM s, int batch)
{
    long M = s.M == DIM_B ? batch : s.M, N = s.N == DIM_B ? batch : s.N, K = s.K == DIM_B ? batch : s.K;
    if (s.lead || s.N == DIM_B)
        return MM_GEMM;
    if (s.M != DIM_B && M * N <= MM_ACC_MAX && (s.bj_ == 1 || s.ai_ == 1))
        return MM_ACC;
    if (s.K != DIM_B && N <= 64 && K <= 64)
        return MM_ROWS;
    return N == 1 || M * N * K <= GEMM_SMALL ? MM_ROWS : MM_GEMM;
}

static int mm_small(MM s, int batch)
{
    return mm_form(s, batch) != MM_GEMM;
}

/* Small products whose rows are at least a vector of the widest registers
 * long are register-tiled with vector extensions (the file's vgemm): C by rows
 * (MM_VROWS), or computed transposed, Cᵀ = Bᵀ·Aᵀ, when A(i,k) is the
 * operand contiguous along the long side (MM_VTRANS); 0: plain loops. */
enum { MM_VROWS = 1, MM_VTRANS = 2 };

static int mm_vec(MM s, int batch)
{
    int form = mm_form(s, batch);
    if (form == MM_GEMM || s.ai_ == DIM_B || s.ak_ == DIM_B || s.bk_ == DIM_B || s.bj_ == DIM_B)
        return 0;
    if (form == MM_ROWS)
        return s.N >= 4 ? MM_VROWS : 0;
    if (s.bj_ == 1 && s.N >= 16)
        return MM_VROWS;
    if (s.ai_ == 1 && s.M >= 4)
        return MM_VTRANS;
    return 0;
}

/* ext() kept in the arena: a stride as text, "16", "n" */
static const char *sext(E *e, int d)
{
    char b[16];
    return arena_printf(e->g->arena, "%s", ext(d, b, sizeof b));
}

/* A transposed B(k,j) copied into [K][N] order at the panels, as bt */
static void emit_b_copy(E *e, MM s, const char *q, const char *K)
{
    emitf(e, 2, "%s *restrict bt = w + %zu; /* B in [K][N] order */", e->T, e->pack_off);
    emitf(e, 2, "for (size_t j = 0; j < %d; j++)", s.N);
    emitf(e, 3, "for (size_t k = 0; k < %s; k++)", K);
    emitf(e, 4, "bt[k * %d + j] = %s[j * %s + k * %s];", s.N, q, sext(e, s.bj_), sext(e, s.bk_));
}

/* the end of a small product's element t of row `row`: the scale and bias
 * it computes along, relu, the write into o */
static void emit_small_out(E *e, int ind, const char *row, int N, const char *al, const char *bias, int act)
{
    if (al || *bias)
        emitf(e, ind, "t = %st%s%s;", al ? arena_printf(e->g->arena, "%s * ", al) : "", *bias ? " + " : "",
              *bias ? arena_printf(e->g->arena, "%s[j]", bias) : "");
    emitf(e, ind, "o[%s * %d + j] = %s;", row, N, act ? "t > 0 ? t : 0" : "t");
}

/* The vector form (mm_vec) of a small product: vgemm into dst, or into
 * a local Cᵀ, then one pass for the scale, bias and relu it computes along */
static void emit_vec_matmul(E *e, MM s, int form, const char *p, const char *q, const char *dst, const char *al,
                            const char *bias, int act)
{
    const char *T = e->T;
    char M_[16], K_[16];
    ext(s.M, M_, sizeof M_);
    ext(s.K, K_, sizeof K_);
    size_t kmax = (size_t)(s.K == DIM_B ? e->m->batch : s.K);
    emitf(e, 1, "{");
    size_t pk = e->pack_off + (kmax * (size_t)s.N + 15) / 16 * 16;
    if (form == MM_VTRANS) { /* Cᵀ(j,i) = sum over k of B(k,j) A(i,k) */
        emitf(e, 2, "%s ct[%d];", T, s.N * s.M);
        emitf(e, 2, "%svgemm(%d, %d, %s, %s, %d, %d, %s, %d, ct, %d, w + %zu);", e->prefix, s.N, s.M, K_, q, s.bj_,
              s.bk_, p, s.ak_, s.M, pk);
    } else if (s.bj_ == 1) {
        emitf(e, 2, "%svgemm(%s, %d, %s, %s, %d, %d, %s, %d, %s, %d, w + %zu);", e->prefix, M_, s.N, K_, p, s.ai_,
              s.ak_, q, s.bk_, dst, s.N, pk);
    } else {
        emit_b_copy(e, s, q, K_);
        emitf(e, 2, "%svgemm(%s, %d, %s, %s, %d, %d, bt, %d, %s, %d, w + %zu);", e->prefix, M_, s.N, K_, p, s.ai_,
              s.ak_, s.N, dst, s.N, pk);
    }
    if (form == MM_VTRANS || al || *bias || act) {
        emitf(e, 2, "%s *restrict o = %s;", T, dst);
        emitf(e, 2, "for (size_t i = 0; i < %s; i++)", M_);
        emitf(e, 3, "for (size_t j = 0; j < %d; j++) {", s.N);
        emitf(e, 4, "%s t = %s;", T, form == MM_VTRANS ? arena_printf(e->g->arena, "ct[j * %d + i]", s.M)
                                                       : arena_printf(e->g->arena, "o[i * %d + j]", s.N));
        emit_small_out(e, 4, "i", s.N, al, bias, act);
        emitf(e, 3, "}");
    }
    emitf(e, 1, "}");
}

static void emit_small_matmul(E *e, Ref r, MM s, const char *dst)
{
    Node *x = N(e->g, r);
    const char *al;
    char bias[64], p[64], q[64], M[16], K[16];
    Fusion f = fusion_args(e, r, &dst, &al, bias, sizeof bias);
    ptr(e, x->in[0], p, sizeof p);
    ptr(e, x->in[1], q, sizeof q);
    int vf = mm_vec(s, e->m->batch);
    if (vf) {
        emit_vec_matmul(e, s, vf, p, q, dst, al, bias, f.act);
        return;
    }
    ext(s.M, M, sizeof M);
    ext(s.K, K, sizeof K);
    int acc = mm_form(s, e->m->batch) == MM_ACC;
    int mi = acc ? s.M : 1; /* rows of C in the accumulator */
    /* the accumulator is [split][rows][N], or [split][N][rows] (tr) */
    int tr = acc && s.ai_ == 1 && (s.bj_ != 1 || s.M > s.N);
    int tile = mi * s.N;
    int split = tile <= 64 ? MM_SPLIT : tile <= 128 ? 2 : 1;
    long kn = s.K == DIM_B ? e->m->batch : s.K;
    if (kn < 2 * split)
        split = 1;
    Arena *ar = e->g->arena;
    const char *kk = split > 1 ? "kk" : "k"; /* the k of a product term */
    emitf(e, 1, "{");
    emitf(e, 2, "const %s *a_ = %s;", e->T, p);
    const char *B;
    if (!acc && s.bj_ != 1 && s.N > 1) { /* B(k,j) not contiguous along j */
        emit_b_copy(e, s, q, K);
        emitf(e, 2, "const %s *b_ = bt;", e->T);
        B = arena_printf(ar, "b_[%s * %d + j]", kk, s.N);
    } else {
        emitf(e, 2, "const %s *b_ = %s;", e->T, q);
        B = arena_printf(ar, "b_[%s * %s + j * %s]", kk, sext(e, s.bk_), sext(e, s.bj_));
    }
    /* the row of C: i of the row loop, ii of the accumulator's, or its only one */
    const char *row = !acc ? "i" : mi > 1 || tr ? "ii" : "0";
    const char *A = arena_printf(ar, "a_[%s * %s + %s * %s]", row, sext(e, s.ai_), kk, sext(e, s.ak_));
    emitf(e, 2, "%s *restrict o = %s;", e->T, dst);
    int ind = 2;
    if (!acc) {
        emitf(e, 2, "for (size_t i = 0; i < %s; i++) {", M);
        ind = 3;
    }
    /* where C(ii,j) of partial sum s is: acc[s][ii][j], or [s][j][ii] (tr) */
    const char *cell = mi == 1 ? "j" : tr ? arena_printf(ar, "j * %d + ii", mi) : arena_printf(ar, "ii * %d + j", s.N);
    const char *ix = split > 1 ? arena_printf(ar, "s * %d + %s", tile, cell) : cell;
    emitf(e, ind, "%s acc[%d];", e->T, split * tile);
    emitf(e, ind, "for (size_t q = 0; q < %d; q++)", split * tile);
    emitf(e, ind + 1, "acc[q] = 0;");
    /* the k loop: split partial sums, then the rest into the first */
    for (int pass = 0; pass < (split > 1 ? 2 : 1); pass++) {
        int d = ind + 1;
        if (split == 1)
            emitf(e, ind, "for (size_t k = 0; k < %s; k++) {", K);
        else if (!pass)
            emitf(e, ind, "size_t k = 0;"), emitf(e, ind, "for (; k + %d <= %s; k += %d) {", split, K, split);
        else
            emitf(e, ind, "for (; k < %s; k++) {", K);
        if (split > 1) {
            emitf(e, d, "for (size_t s = 0; s < %d; s++) {", pass ? 1 : split);
            emitf(e, ++d, "const size_t kk = k + s;");
        }
        if (tr) {
            emitf(e, d, "for (size_t j = 0; j < %d; j++) {", s.N);
            emitf(e, d + 1, "const %s v = %s;", e->T, B);
            emitf(e, d + 1, "for (size_t ii = 0; ii < %d; ii++)", mi);
            emitf(e, d + 2, "acc[%s] += %s * v;", ix, A);
            emitf(e, d, "}");
        } else if (mi > 1) {
            emitf(e, d, "for (size_t ii = 0; ii < %d; ii++) {", mi);
            emitf(e, d + 1, "const %s v = %s;", e->T, A);
            emitf(e, d + 1, "for (size_t j = 0; j < %d; j++)", s.N);
            emitf(e, d + 2, "acc[%s] += v * %s;", ix, B);
            emitf(e, d, "}");
        } else {
            emitf(e, d, "const %s v = %s;", e->T, A);
            emitf(e, d, "for (size_t j = 0; j < %d; j++)", s.N);
            emitf(e, d + 1, "acc[%s] += v * %s;", ix, B);
        }
        if (split > 1)
            emitf(e, --d, "}");
        emitf(e, ind, "}");
    }
    /* the epilogue: partial sums added, scale, bias, relu, one write */
    int d = ind;
    if (mi > 1)
        emitf(e, d++, "for (size_t ii = 0; ii < %d; ii++)", mi);
    emitf(e, d, "for (size_t j = 0; j < %d; j++) {", s.N);
    emitf(e, d + 1, "%s t = acc[%s];", e->T, cell);
    if (split > 1) {
        emitf(e, d + 1, "for (size_t u = 1; u < %d; u++)", split);
        emitf(e, d + 2, "t += acc[u * %d + %s];", tile, cell);
    }
    emit_small_out(e, d + 1, mi > 1 ? "ii" : acc ? "0" : "i", s.N, al, bias, f.act);
    emitf(e, d, "}");
    if (!acc)
        emitf(e, 2, "}");
    emitf(e, 1, "}");
}

static void emit_matmul(E *e, Ref r, const char *dst)
{
    Node *x = N(e->g, r);
    MM s = mm_sizes(e->g, r);
    if (!s.lead && mm_small(s, e->m->batch)) {
        emit_small_matmul(e, r, s, dst);
        return;
    }
    int sum = x->ia[2];
    Shape sa = N(e->g, x->in[0])->shape, sb = N(e->g, x->in[1])->shape, sc = x->shape;
    char M[16], K[16], Ns[16], L[16], p[64], q[64], st[4][16];
    lext(s.M, M, sizeof M);
    lext(s.K, K, sizeof K);
    lext(s.N, Ns, sizeof Ns);
    lext(s.ai_, st[0], sizeof st[0]);
    lext(s.ak_, st[1], sizeof st[1]);
    lext(s.bk_, st[2], sizeof st[2]);
    lext(s.bj_, st[3], sizeof st[3]);
    ptr(e, x->in[0], p, sizeof p);
    ptr(e, x->in[1], q, sizeof q);
    if (!s.lead) {
        const char *al;
        char bias[64];
        Fusion f = fusion_args(e, r, &dst, &al, bias, sizeof bias);
        emitf(e, 1, "%sgk_gemm(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 0, %s, %s, %s, %d, w + %zu);", e->prefix, M,
              Ns, K, al ? al : "1", p, st[0], st[1], q, st[2], st[3], dst, Ns, *bias ? bias : "NULL", f.act,
              e->pack_off);
        return;
    }
    ext(s.lead, L, sizeof L);
    emitf(e, 1, "for (size_t l = 0; l < %s; l++)", L);
    const char *ao = sa.rank == 3 ? arena_printf(e->g->arena, " + l * %ld", (long)sa.dim[1] * sa.dim[2]) : "";
    const char *bo = sb.rank == 3 ? arena_printf(e->g->arena, " + l * %ld", (long)sb.dim[1] * sb.dim[2]) : "";
    const char *co = sum ? "" : arena_printf(e->g->arena, " + l * %ld", (long)sc.dim[1] * sc.dim[2]);
    emitf(e, 2, "%sgk_gemm(%s, %s, %s, 1, %s%s, %s, %s, %s%s, %s, %s, %s, %s%s, %s, NULL, 0, w + %zu);", e->prefix, M,
          Ns, K, p, ao, st[0], st[1], q, bo, st[2], st[3], sum ? "l > 0" : "0", dst, co, Ns, e->pack_off);
}

/* rows of the last axis: (number of rows expression, row length) */
static void rows_of(Shape s, char *buf, size_t n, int *len)
{
    Shape t = s;
    *len = s.dim[s.rank - 1];
    t.rank--;
    total(t, buf, n);
}

static void emit_rowwise(E *e, Ref r, const char *dst)
{
    Node *x = N(e->g, r);
    char rows[64], p[64];
    int len;
    Node *z = N(e->g, x->in[0]);
    const char *f = e->fs;
    emitf(e, 1, "{");
    emitf(e, 2, "%s *restrict o = %s;", e->T, dst);
    emitf(e, 2, "const %s *a_ = %s;", e->T, ptr(e, x->in[0], p, sizeof p));
    if (x->op == OP_ONEHOT) {
        int k = x->ia[0];
        emitf(e, 2, "for (size_t r = 0; r < %s; r++)", total(z->shape, rows, sizeof rows));
        emitf(e, 3, "for (size_t c = 0; c < %d; c++)", k);
        emitf(e, 4, "o[r * %d + c] = (%s)((long)a_[r] == (long)c);", k, e->T);
        emitf(e, 1, "}");
        return;
    }
    rows_of(z->shape, rows, sizeof rows, &len);
    if (x->op == OP_CE)
        emitf(e, 2, "const %s *l_ = %s;", e->T, ptr(e, x->in[1], p, sizeof p));
    emitf(e, 2, "for (size_t r = 0; r < %s; r++) {", rows);
    emitf(e, 3, "const %s *z = a_ + r * %d;", e->T, len);
    emitf(e, 3, "%s m = z[0], s = 0;", e->T);
    emitf(e, 3, "for (size_t c = 1; c < %d; c++)", len);
    emitf(e, 4, "if (z[c] > m) m = z[c];");
    emitf(e, 3, "for (size_t c = 0; c < %d; c++)", len);
    emitf(e, 4, "s += exp%s(z[c] - m);", f);
    if (x->op == OP_SOFTMAX) {
        emitf(e, 3, "for (size_t c = 0; c < %d; c++)", len);
        emitf(e, 4, "o[r * %d + c] = exp%s(z[c] - m) / s;", len, f);
    } else if (x->op == OP_LOG_SOFTMAX) {
        emitf(e, 3, "const %s lse = m + log%s(s);", e->T, f);
        emitf(e, 3, "for (size_t c = 0; c < %d; c++)", len);
        emitf(e, 4, "o[r * %d + c] = z[c] - lse;", len);
    } else { /* CE */
        emitf(e, 3, "long k = (long)l_[r];");
        emitf(e, 3, "k = k < 0 ? 0 : k >= %d ? %d : k;", len, len - 1);
        emitf(e, 3, "o[r] = m + log%s(s) - z[k];", f);
    }
    emitf(e, 2, "}");
    emitf(e, 1, "}");
}

static void emit_transpose(E *e, Ref r, const char *dst)
{
    Node *x = N(e->g, r);
    Shape s = N(e->g, x->in[0])->shape;
    int R = s.dim[s.rank - 2], Cc = s.dim[s.rank - 1];
    char lead[64], p[64], Rs[16], Cs[16];
    Shape t = s;
    t.rank -= 2;
    total(t, lead, sizeof lead);
    ext(R, Rs, sizeof Rs);
    ext(Cc, Cs, sizeof Cs);
    long blk = (long)(R == DIM_B ? 0 : R) * (Cc == DIM_B ? 0 : Cc);
    emitf(e, 1, "{");
    emitf(e, 2, "%s *restrict o = %s;", e->T, dst);
    emitf(e, 2, "const %s *a_ = %s;", e->T, ptr(e, x->in[0], p, sizeof p));
    if (R == DIM_B || Cc == DIM_B) {
        emitf(e, 2, "for (size_t i = 0; i < %s; i++)", Rs);
        emitf(e, 3, "for (size_t j = 0; j < %s; j++)", Cs);
        emitf(e, 4, "o[j * %s + i] = a_[i * %s + j];", Rs, Cs);
    } else {
        emitf(e, 2, "for (size_t l = 0; l < %s; l++)", lead);
        emitf(e, 3, "for (size_t i = 0; i < %d; i++)", R);
        emitf(e, 4, "for (size_t j = 0; j < %d; j++)", Cc);
        emitf(e, 5, "o[l * %ld + j * %d + i] = a_[l * %ld + i * %d + j];", blk, R, blk, Cc);
    }
    emitf(e, 1, "}");
}

/* outer count (axes before ax) as an expression */
static void outer_of(Shape s, int ax, char *buf, size_t n)
{
    Shape t = s;
    t.rank = ax;
    total(t, buf, n);
}

static void emit_concat_slice(E *e, Ref r, const char *dst)
{
    Node *x = N(e->g, r);
    int ax = x->ia[0];
    char outer[64], p[64];
    emitf(e, 1, "{");
    emitf(e, 2, "%s *restrict o = %s;", e->T, dst);
    if (x->op == OP_CONCAT) {
        Shape sa = N(e->g, x->in[0])->shape, sb = N(e->g, x->in[1])->shape;
        long ia = stride(sa, ax) * sa.dim[ax], ib = stride(sb, ax) * sb.dim[ax];
        outer_of(x->shape, ax, outer, sizeof outer);
        emitf(e, 2, "const %s *a_ = %s;", e->T, ptr(e, x->in[0], p, sizeof p));
        emitf(e, 2, "const %s *b_ = %s;", e->T, ptr(e, x->in[1], p, sizeof p));
        emitf(e, 2, "for (size_t r = 0; r < %s; r++) {", outer);
        emitf(e, 3, "for (size_t j = 0; j < %ld; j++) o[r * %ld + j] = a_[r * %ld + j];", ia, ia + ib, ia);
        emitf(e, 3, "for (size_t j = 0; j < %ld; j++) o[r * %ld + %ld + j] = b_[r * %ld + j];", ib,
              ia + ib, ia, ib);
        emitf(e, 2, "}");
    } else {
        Shape si = N(e->g, x->in[0])->shape;
        long inner = stride(si, ax);
        outer_of(si, ax, outer, sizeof outer);
        emitf(e, 2, "const %s *a_ = %s;", e->T, ptr(e, x->in[0], p, sizeof p));
        emitf(e, 2, "for (size_t r = 0; r < %s; r++)", outer);
        emitf(e, 3, "for (size_t j = 0; j < %ld; j++)", (long)x->shape.dim[ax] * inner);
        emitf(e, 4, "o[r * %ld + j] = a_[r * %ld + %ld + j];", (long)x->shape.dim[ax] * inner,
              (long)si.dim[ax] * inner, (long)x->ia[1] * inner);
    }
    emitf(e, 1, "}");
}

static void emit_gather(E *e, Ref r, const char *dst)
{
    Node *x = N(e->g, r);
    Model *m = e->m;
    Sym *y = x->op == OP_INPUT ? m->inputs[x->ia[0]] : m->targets[x->ia[0]];
    size_t row = x->op == OP_INPUT ? m->input_size : m->target_size;
    int k = shape_numel_static(x->shape);
    emitf(e, 1, "for (size_t r = 0; r < n; r++)");
    emitf(e, 2, "for (size_t j = 0; j < %d; j++)", k);
    emitf(e, 3, "%s[r * %d + j] = %s[r * %zu + %zu + j];", dst, k, x->op == OP_INPUT ? "x" : "y",
          row, y->offset);
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
    switch (x->op) {
    case OP_INPUT: case OP_TARGET: emit_gather(e, r, dst); break;
    case OP_SUM: case OP_MAX: emit_reduce(e, r, dst); break;
    case OP_MATMUL: emit_matmul(e, r, dst); break;
    case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_CE: case OP_ONEHOT: emit_rowwise(e, r, dst); break;
    case OP_TRANSPOSE: emit_transpose(e, r, dst); break;
    case OP_CONCAT: case OP_SLICE: emit_concat_slice(e, r, dst); break;
    case OP_PARAM: unreachable();
    default: emit_elemwise(e, r, dst); break;
    }
}

/* copies node r (any home) into dst, n examples if batched */
static void emit_copy(E *e, Ref r, const char *dst, int per_example)
{
    Node *x = N(e->g, r);
    char tb[64], p[64], v[64];
    int k = shape_numel_static(x->shape);
    if (is_inline(e, r)) {
        inline_val(e, r, v, sizeof v);
        emitf(e, 1, "for (size_t i = 0; i < %s; i++) %s[i] = %s;",
              per_example ? arena_printf(e->g->arena, "n * %d", k) : total(x->shape, tb, sizeof tb), dst, v);
        return;
    }
    ptr(e, r, p, sizeof p);
    if (per_example && !shape_has_batch(x->shape)) {
        emitf(e, 1, "for (size_t r = 0; r < n; r++)");
        emitf(e, 2, "for (size_t j = 0; j < %d; j++) %s[r * %d + j] = %s[j];", k, dst, k, p);
    } else {
        emitf(e, 1, "for (size_t i = 0; i < %s; i++) %s[i] = %s[i];", total(x->shape, tb, sizeof tb), dst, p);
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
    "grad", "gt", "h", "hp", "i", "i0", "i1", "i2", "i3", "ic", "ii", "ip", "ir", "j", "j0", "jc", "jj", "jp", "jr", "k",
    "k0", "kc", "kcmax", "keep0", "kf", "kfull", "kk", "kstep", "kx", "ky", "l", "l0", "l_", "lda", "ldb", "ldc",
    "lim", "m", "mc", "mpan", "mr", "n", "n1", "nc", "neg", "nj", "noscratch_", "npan", "nr", "nt", "o", "o_", "or_",
    "out", "ov", "ox", "oy", "p", "p0", "p1", "params", "pc", "pf", "pk", "pr", "q", "r", "row", "rr", "s", "s0", "s1",
    "s2", "s3", "scratch_", "seed", "site", "sk", "ska", "sl", "src", "t", "train", "u", "unused_", "v", "VL", "w",
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
    size_t lp = strlen(e->prefix);
    for (int i = 0; i < m->nparams; i++) {
        const char *nm = mangle(a, "", m->params[i]->name);
        int bad = c_reserved(nm) || emit_local(nm) || !strncmp(nm, e->prefix, lp) || !strncmp(nm, e->PREFIX, lp) ||
                  !strncmp(nm, "gradc_", 6) || !strncmp(nm, "GRADC_", 6) || (nm[0] && nm[1] == '_') ||
                  ((nm[0] == 't' || nm[0] == 'f' || nm[0] == 'p') && isdigit((unsigned char)nm[1]));
        const char *name = bad ? arena_printf(a, "p_%s", nm) : nm;
        for (int k = 2;; k++) {
            int clash = 0;
            for (int j = 0; j < i && !clash; j++)
                clash = !strcmp(e->pvar[j], name);
            if (!clash)
                break;
            name = arena_printf(a, "p_%s_%d", nm, k);
        }
        e->pvar[i] = name;
    }
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
        const char *up = mangle(e->g->arena, "", y->name);
        char *U = arena_strdup(e->g->arena, up);
        for (char *q = U; *q; q++)
            *q = (char)toupper((unsigned char)*q);
        emitf(e, 1, "const %s *restrict %s = params + %sPARAM_%s_OFFSET; /* %s %s */", e->T, e->pvar[i], e->PREFIX, U,
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
    fprintf(e->out, "static %s %s%s(%s%s)\n{\n", ret, e->prefix, name, args,
            e->drop && mode ? ", int train, uint64_t seed" : "");
}

static void emit_parts(E *e, int predict_only)
{
    Model *m = e->m;
    const char *T = e->T;
    char a[512];
    /* forward */
    snprintf(a, sizeof a, "const %s *params, const %s *x, size_t n, %s *w", T, T, T);
    part_head(e, "the forward pass: from the inputs to what both the loss and the prediction need", "void",
              "forward", a, 1);
    emitf(e, 1, "(void)params; (void)x; (void)n; (void)w;%s", e->drop ? " (void)train; (void)seed;" : "");
    emit_part_body(e, SEG_FORWARD, e->drop ? 2 : 0, NULL);
    fprintf(e->out, "}\n\n");
    if (predict_only)
        return;
    /* objective */
    snprintf(a, sizeof a, "const %s *params, const %s *x, const %s *y, size_t n, %s *w", T, T, T, T);
    part_head(e, "the objective: the loss of the batch, after forward", T, "objective", a, 1);
    emitf(e, 1, "(void)params; (void)x; (void)y; (void)n; (void)w;%s", e->drop ? " (void)train; (void)seed;" : "");
    Ref ex[2] = {m->loss, 0};
    emit_part_body(e, SEG_OBJECTIVE, e->drop ? 2 : 0, ex);
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

/* loss, loss_grad and predict (and the seeded pair) over the parts */
static void emit_api(E *e, int predict_only)
{
    Model *m = e->m;
    const char *T = e->T, *P = e->prefix, *U = e->PREFIX;
    const char *ev = e->drop ? ", 0, 0" : "", *tr = e->drop ? ", 1, seed" : "";
    if (!predict_only) {
        for (int seeded = 0; seeded <= e->drop; seeded++) {
            fprintf(e->out, "%s %sloss%s(const %s *params, const %s *x, const %s *y, size_t n, void *work%s)\n{\n", T, P,
                    seeded ? "_seeded" : "", T, T, T, seeded ? ", uint64_t seed" : "");
            emitf(e, 1, "%s *const w = (%s *)work;", T, T);
            emitf(e, 1, "if (n == 0 || n > %sMAX_BATCH) return NAN;", U);
            emitf(e, 1, "%sforward(params, x, n, w%s);", P, seeded ? tr : ev);
            emitf(e, 1, "return %sobjective(params, x, y, n, w%s);", P, seeded ? tr : ev);
            fprintf(e->out, "}\n\n");
        }
        fprintf(e->out, "%s %sloss_grad%s(const %s *params, const %s *x, const %s *y, size_t n, %s *grad,\n"
                        "        void *work%s)\n{\n",
                T, P, e->drop ? "_seeded" : "", T, T, T, T, e->drop ? ", uint64_t seed" : "");
        emitf(e, 1, "%s *const w = (%s *)work;", T, T);
        emitf(e, 1, "if (n == 0 || n > %sMAX_BATCH) return NAN;", U);
        emitf(e, 1, "%sforward(params, x, n, w%s);", P, e->drop ? tr : "");
        emitf(e, 1, "const %s L = %sobjective(params, x, y, n, w%s);", T, P, e->drop ? tr : "");
        emitf(e, 1, "%sbackward(params, x, y, n, grad, w%s);", P, e->drop ? ", seed" : "");
        emitf(e, 1, "return L;");
        fprintf(e->out, "}\n\n");
        if (e->drop) /* loss_grad: seeded by the batch */
            fprintf(e->out,
                    "%s %sloss_grad(const %s *params, const %s *x, const %s *y, size_t n, %s *grad,\n"
                    "        void *work)\n{\n"
                    "    return %sloss_grad_seeded(params, x, y, n, grad, work, %sbatch_seed(x, n));\n}\n\n",
                    T, P, T, T, T, T, P, P);
    }
    fprintf(e->out, "void %spredict(const %s *params, const %s *x, size_t n, %s *out, void *work)\n{\n", P, T, T, T);
    emitf(e, 1, "%s *const w = (%s *)work;", T, T);
    emitf(e, 1, "if (n == 0 || n > %sMAX_BATCH) return;", U);
    emitf(e, 1, "%sforward(params, x, n, w%s);", P, ev);
    int lo = e->p->seg_start[SEG_PREDICT], hi = e->p->seg_start[SEG_PREDICT + 1];
    int copy = m->output && e->p->slot[m->output].home != H_OUT;
    if (lo < hi || copy) {
        Ref ex[2] = {m->output, 0};
        unsigned char *used = part_uses(e, lo, hi, ex);
        if (lo < hi)
            fprintf(e->out, "\n    // ---- what only the prediction needs\n");
        declare_part(e, used);
        free(used);
        emitf(e, 1, "(void)params; (void)x;");
        e->train = 0;
        for (int i = lo; i < hi; i++)
            emit_node(e, e->p->order[i]);
        if (copy)
            emit_copy(e, m->output, "out", 1);
    } else {
        emitf(e, 1, "(void)out;");
    }
    fprintf(e->out, "}\n\n");
}

static void emit_init(E *e)
{
    Model *m = e->m;
    const char *T = e->T, *P = e->prefix;
    int uni = 0, nor = 0;
    for (int i = 0; i < m->nparams; i++) {
        InitKind k = m->params[i]->init;
        uni |= k == INIT_UNIFORM || k == INIT_XAVIER || k == INIT_NORMAL || k == INIT_HE;
        nor |= k == INIT_NORMAL || k == INIT_HE;
    }
    if (uni)
        fprintf(e->out,
                "/* splitmix64: the initialisers' random numbers, the same on every machine */\n"
                "static uint64_t %snext(uint64_t *s)\n{\n"
                "    uint64_t z = (*s += 0x9E3779B97F4A7C15u);\n"
                "    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;\n"
                "    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;\n"
                "    return z ^ (z >> 31);\n}\n\n"
                "/* uniform in (0, 1) */\n"
                "static double %suniform(uint64_t *s)\n{\n"
                "    return ((double)(%snext(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);\n}\n\n",
                P, P, P);
    if (nor)
        fprintf(e->out,
                "/* standard normal, Box-Muller */\n"
                "static double %snormal(uint64_t *s)\n{\n"
                "    double u = %suniform(s), v = %suniform(s);\n"
                "    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);\n}\n\n",
                P, P, P);
    fprintf(e->out, "void %sinit(%s *params, uint64_t seed)\n{\n", P, T);
    emitf(e, 1, "uint64_t s;");
    emitf(e, 1, "(void)s; (void)seed;");
    for (int i = 0; i < m->nparams; i++) {
        Sym *y = m->params[i];
        int n = shape_numel_static(y->shape);
        int fan_out = y->shape.rank ? y->shape.dim[0] : 1;
        int fan_in = y->shape.rank > 1 ? n / fan_out : fan_out;
        char sh[64];
        shape_str(y->shape, sh, sizeof sh);
        const char *val;
        switch (y->init) {
        case INIT_ZEROS: val = "0"; break;
        case INIT_ONES: val = "1"; break;
        case INIT_CONST: val = arena_printf(e->g->arena, "%.17g", y->init_a); break;
        case INIT_NORMAL:
            val = arena_printf(e->g->arena, "%.17g + %.17g * %snormal(&s)", y->init_a, y->init_b, P);
            break;
        case INIT_UNIFORM:
            val = arena_printf(e->g->arena, "%.17g + %.17g * %suniform(&s)", y->init_a,
                               y->init_b - y->init_a, P);
            break;
        case INIT_XAVIER:
            val = arena_printf(e->g->arena, "%.17g * (2 * %suniform(&s) - 1)",
                               sqrt(6.0 / (fan_in + fan_out)), P);
            break;
        default: /* he */
            val = arena_printf(e->g->arena, "%.17g * %snormal(&s)", sqrt(2.0 / fan_in), P);
            break;
        }
        static const char *const iname[] = {"zeros", "ones", "const", "normal", "uniform", "xavier", "he"};
        emitf(e, 1, "/* %s %s, %s */", y->name, sh, iname[y->init]);
        if (y->init != INIT_ZEROS && y->init != INIT_ONES && y->init != INIT_CONST)
            emitf(e, 1, "s = seed ^ (0x%016llXu * %du);", 0xD1B54A32D192ED03ull, i + 1);
        emitf(e, 1, "for (size_t i = 0; i < %d; i++)", n);
        emitf(e, 2, "params[%zu + i] = (%s)(%s);", y->offset, T, val);
    }
    fprintf(e->out, "}\n\n");
}

static void prefixes(E *e, Model *m)
{
    Arena *a = m->g.arena;
    e->prefix = arena_printf(a, "%s_", m->cname);
    char *P = arena_printf(a, "%s_", m->cname);
    for (char *q = P; *q; q++)
        *q = (char)toupper((unsigned char)*q);
    e->PREFIX = P;
}

static E e_make(Model *m, const EmitOptions *o, FILE *out)
{
    E e = {.m = m, .g = &m->g, .out = out, .o_out = out, .T = m->is_double ? "double" : "float", .fs = m->is_double ? "" : "f", .o = o};
    prefixes(&e, m);
    return e;
}

static size_t workspace_bytes(Model *m, Plan plans[FN_COUNT], const EmitOptions *o)
{
    size_t w = 0;
    if (o && o->scalar) { /* emit_scalar.c writes each function from its own plan */
        for (int i = 0; i < FN_COUNT; i++)
            if (plans[i].work_elems > w && (!o->predict_only || i == FN_PREDICT))
                w = plans[i].work_elems;
        w *= m->is_double ? 8 : 4;
        return w < 64 ? 64 : w;
    }
    Plan all;
    plan_build_all(m, o && o->predict_only, &all);
    w = all.work_elems;
    int kernel, vec;
    size_t pack = gemm_needs(m, &all, o, &kernel, &vec);
    if (pack)
        w = gemm_pack_offset(&all) + pack;
    w *= m->is_double ? 8 : 4;
    return w < 64 ? 64 : w;
}

static void header_comment(E *e, const char *what)
{
    Model *m = e->m;
    fprintf(e->out, "/* %s%s: generated by gradc %s from %s; do not edit.\n", m->cname, what,
            GRADC_VERSION, e->o && e->o->source_path ? e->o->source_path : "a model");
    if (e->o && e->o->cmdline)
        fprintf(e->out, " * command: %s\n", e->o->cmdline);
    fprintf(e->out, " * model hash: %016llx */\n", (unsigned long long)model_hash(m));
}

void emit_h(Model *m, Plan plans[FN_COUNT], const EmitOptions *o, FILE *out)
{
    E e = e_make(m, o, out);
    const char *T = e.T, *P = e.prefix, *U = e.PREFIX;
    header_comment(&e, ".h");
    fprintf(out, "#ifndef %sH\n#define %sH\n\n#include <stddef.h>\n#include <stdint.h>\n\n", U, U);
    fprintf(out, "#define %sPARAM_COUNT %zu /* %ss, all params in declaration order, row-major */\n", U,
            m->param_count, T);
    fprintf(out, "#define %sINPUT_SIZE %zu /* %ss per example, all inputs in order */\n", U, m->input_size, T);
    fprintf(out, "#define %sTARGET_SIZE %zu /* per example; a class target counts as one */\n", U,
            m->target_size);
    fprintf(out, "#define %sOUTPUT_SIZE %zu\n", U, m->output_size);
    fprintf(out, "#define %sMAX_BATCH %d /* the compiled batch; any n <= it works */\n", U, m->batch);
    fprintf(out, "#define %sWORKSPACE_BYTES %zu /* scratch for one call, caller-provided */\n\n", U,
            workspace_bytes(m, plans, o));
    fprintf(out, "/* params: offsets and sizes */\n");
    for (int i = 0; i < m->nparams; i++) {
        Sym *y = m->params[i];
        const char *nm = mangle(m->g.arena, "", y->name);
        char *up = arena_strdup(m->g.arena, nm);
        for (char *q = up; *q; q++)
            *q = (char)toupper((unsigned char)*q);
        char sh[64];
        fprintf(out, "#define %sPARAM_%s_OFFSET %zu /* %s %s */\n", U, up, y->offset, y->name,
                shape_str(y->shape, sh, sizeof sh));
        fprintf(out, "#define %sPARAM_%s_SIZE %d\n", U, up, shape_numel_static(y->shape));
    }
    fprintf(out, "\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    if (o && o->embed)
        fprintf(out, "void %sinit(%s *params, uint64_t seed); /* the embedded trained params */\n", P, T);
    else
        fprintf(out, "void %sinit(%s *params, uint64_t seed); /* the declared initialisers */\n", P, T);
    if (!o || !o->predict_only) {
        fprintf(out, "%s %sloss(const %s *params, const %s *x, const %s *y, size_t n, void *work);\n", T, P, T, T, T);
        fprintf(out, "%s %sloss_grad(const %s *params, const %s *x, const %s *y, size_t n, %s *grad,\n    void *work);\n",
                T, P, T, T, T, T);
    }
    fprintf(out, "void %spredict(const %s *params, const %s *x, size_t n, %s *out, void *work);\n", P, T, T, T);
    if (o && o->embed && o->embed->mean) {
        fprintf(out, "/* the params were trained on standardized inputs: apply this to raw inputs first */\n");
        fprintf(out, "#define %sSTANDARDIZE 1\n", U);
        fprintf(out, "void %sstandardize(%s *x, size_t n);\n", P, T);
    }
    if (conv_has_dropout(&m->g) && (!o || !o->predict_only)) {
        fprintf(out, "\n/* The model has dropout: loss and predict leave it out, loss_grad applies it\n"
                     " * with masks drawn from a hash of the batch. The seeded variants take the\n"
                     " * seed of the masks: loss_seeded is the training loss that loss_grad_seeded\n"
                     " * differentiates (the same seed gives the same masks). */\n");
        fprintf(out, "#define %sDROPOUT 1\n", U);
        fprintf(out, "%s %sloss_seeded(const %s *params, const %s *x, const %s *y, size_t n, void *work,\n"
                     "    uint64_t seed);\n", T, P, T, T, T);
        fprintf(out, "%s %sloss_grad_seeded(const %s *params, const %s *x, const %s *y, size_t n, %s *grad,\n"
                     "    void *work, uint64_t seed);\n", T, P, T, T, T, T);
    }
    fprintf(out, "\n#ifdef __cplusplus\n}\n#endif\n\n#endif\n");
}

void emit_c_prelude(Model *m, const EmitOptions *o, FILE *out)
{
    E e = e_make(m, o, out);
    header_comment(&e, ".c");
    fprintf(out, "#include \"%s.h\"\n\n#include <math.h>\n\n", m->cname);
    if (o && o->embed)
        emit_embedded_init(m, o->embed, e.prefix, out);
    else
        emit_init(&e);
}

/* A template of compiler/ built into a string (gemm_kernel.inc, vmath.inc)
 * written out with the model's prefix before its names: "gk_gemm" becomes
 * "seed_gk_gemm", "GK_KC" "SEED_GK_KC" (tag "gk"); up to the line that
 * starts with stop, if any. */
static void emit_template(E *e, const char *const *text, const char *tag, const char *stop)
{
    char lo[8], up[8];
    snprintf(lo, sizeof lo, "%s_", tag);
    for (int k = 0; (up[k] = (char)toupper((unsigned char)lo[k])) != 0; k++)
        ;
    size_t n = strlen(lo), ns = stop ? strlen(stop) : 0;
    for (int i = 0; text[i]; i++) {
        if (stop && !strncmp(text[i], stop, ns))
            break;
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
    emit_template(e, gemm_kernel_text, "gk", NULL);
}

/* e^x and log(1 + u) in float (vmath.c), renamed to the model */
static const char *const vmath_text[] = {
#include "vmath.inc"
    NULL};


static void emit_vmath(E *e, int log1p)
{
    fprintf(e->out, "/* e^x%s for sigmoid, softplus and bce: branch-free, so that their loops\n"
                    "   vectorize; about 1 ulp (Cephes' polynomials; tests/test_vmath.c) */",
            log1p ? " and log(1 + u)" : "");
    /* without log(1 + u) when nothing calls it: an unused static function is a warning */
    emit_template(e, vmath_text, "vm", log1p ? NULL : "/* log(1 + u)");
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
    for (int i = 0; i < all.norder; i++) {
        int u = op_uses_vmath(N(&m->g, all.order[i])->op);
        vm = u > vm ? u : vm;
    }
    if (vm && !m->is_double)
        emit_vmath(&e, vm == 2);
    e.drop = conv_has_dropout(&m->g) && !predict_only;
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
    fprintf(out, "\n/* ---------------------------------------------------------- the model */\n\n");
    emit_parts(&e, predict_only);
    emit_api(&e, predict_only);
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
