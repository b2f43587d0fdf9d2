/*
 * emit_loops.c: the loops of the generated C for element-wise ops (the op
 * table's C templates, broadcasting, fused chains), reductions, row-wise
 * ops (softmax, log_softmax, cross-entropy, one-hot), transposes, concat
 * and slices, gathering inputs and copies.
 */
#include "emit_c.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
                  lit(e, x->f, c, sizeof c), lit(e, x->f2, c2, sizeof c2),
                  fl ? arena_printf(e->g->arena, "%svm_erff", e->prefix) : "erf"};
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

void emit_elemwise(E *e, Ref r, const char *dst)
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
int batch_sum_cols(Graph *g, Ref r)
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

void emit_reduce(E *e, Ref r, const char *dst)
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
        /* with a constant size the rest loop is written only when there is
         * a rest (gcc warns of an empty one: -Waggressive-loop-optimizations) */
        long k = shape_has_batch(s) ? -1 : (long)shape_numel_static(s);
        emitf(e, 2, "size_t i = 0;");
        emitf(e, 2, "for (; i + 4 <= %s; i += 4) {", total(s, tb, sizeof tb));
        emitf(e, 3, "s0 += a_[i];");
        emitf(e, 3, "s1 += a_[i + 1];");
        emitf(e, 3, "s2 += a_[i + 2];");
        emitf(e, 3, "s3 += a_[i + 3];");
        emitf(e, 2, "}");
        if (k < 0 || k % 4) {
            emitf(e, 2, "for (; i < %s; i++)", total(s, tb, sizeof tb));
            emitf(e, 3, "s0 += a_[i];");
        }
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

/* rows of the last axis: (number of rows expression, row length) */
static void rows_of(Shape s, char *buf, size_t n, int *len)
{
    Shape t = s;
    *len = s.dim[s.rank - 1];
    t.rank--;
    total(t, buf, n);
}

/* a softmax row's e^x in orow[0..bound) divided by their sum (the sum in
 * a loop apart, so that the e^x loop vectorizes: a float sum does not) */
static void softmax_sum(E *e, const char *bound)
{
    emitf(e, 3, "for (size_t c = 0; c < %s; c++)", bound);
    emitf(e, 4, "s += orow[c];");
    emitf(e, 3, "const %s inv = 1 / s;", e->T);
    emitf(e, 3, "for (size_t c = 0; c < %s; c++)", bound);
    emitf(e, 4, "orow[c] *= inv;");
}

void emit_rowwise(E *e, Ref r, const char *dst)
{
    Node *x = N(e->g, r);
    char rows[64], p[64];
    int len;
    Node *z = N(e->g, x->in[0]);
    const char *f = e->fs;
    /* fuse.c: softmax(causal(a op k)), the mask and the scaling computed here */
    int causal = x->op == OP_SOFTMAX && e->fused && e->fused[x->in[0]] == r;
    Ref src = causal ? N(e->g, x->in[0])->in[0] : x->in[0], scale = 0;
    if (causal && e->fused[src] == r) {
        scale = src;
        src = N(e->g, src)->in[0];
    }
    emitf(e, 1, "{");
    emitf(e, 2, "%s *restrict o = %s;", e->T, dst);
    emitf(e, 2, "const %s *a_ = %s;%s", e->T, ptr(e, src, p, sizeof p),
          causal ? " /* under the mask: row i of each square keeps entries 0..i */" : "");
    if (x->op == OP_ONEHOT) {
        int k = x->ia[0];
        emitf(e, 2, "for (size_t r = 0; r < %s; r++)", total(z->shape, rows, sizeof rows));
        emitf(e, 3, "for (size_t c = 0; c < %d; c++)", k);
        emitf(e, 4, "o[r * %d + c] = (%s)((long)a_[r] == (long)c);", k, e->T);
        emitf(e, 1, "}");
        return;
    }
    rows_of(z->shape, rows, sizeof rows, &len);
    if (causal) { /* e^x of the entries on and below the diagonal only, the others 0 */
        char kv[64];
        const char *scaled = "z[c]";
        if (scale)
            scaled = arena_printf(e->g->arena, "z[c] %s %s", N(e->g, scale)->op == OP_DIV ? "/" : "*",
                                  inline_val(e, N(e->g, scale)->in[1], kv, sizeof kv));
        const char *ex = e->m->is_double ? "exp" : arena_printf(e->g->arena, "%svm_expf", e->prefix);
        emitf(e, 2, "for (size_t r = 0; r < %s; r++) {", rows);
        emitf(e, 3, "const %s *z = a_ + r * %d;", e->T, len);
        emitf(e, 3, "const size_t nv = r %% %d + 1;", len);
        emitf(e, 3, "%s *restrict orow = o + r * %d;", e->T, len);
        emitf(e, 3, "for (size_t c = 0; c < nv; c++)");
        emitf(e, 4, "orow[c] = %s;", scaled);
        emitf(e, 3, "%s m = orow[0], s = 0;", e->T);
        emitf(e, 3, "for (size_t c = 1; c < nv; c++)");
        emitf(e, 4, "if (orow[c] > m) m = orow[c];");
        emitf(e, 3, "for (size_t c = 0; c < nv; c++)");
        emitf(e, 4, "orow[c] = %s(orow[c] - m);", ex);
        softmax_sum(e, "nv");
        emitf(e, 3, "for (size_t c = nv; c < %d; c++)", len);
        emitf(e, 4, "orow[c] = 0;");
        emitf(e, 2, "}");
        emitf(e, 1, "}");
        return;
    }
    if (x->op == OP_CE)
        emitf(e, 2, "const %s *l_ = %s;", e->T, ptr(e, x->in[1], p, sizeof p));
    emitf(e, 2, "for (size_t r = 0; r < %s; r++) {", rows);
    emitf(e, 3, "const %s *z = a_ + r * %d;", e->T, len);
    emitf(e, 3, "%s m = z[0], s = 0;", e->T);
    emitf(e, 3, "for (size_t c = 1; c < %d; c++)", len);
    emitf(e, 4, "if (z[c] > m) m = z[c];");
    /* e^x: in float the file's own (vmath.c), inlined and vectorizable */
    const char *ex = e->m->is_double ? "exp" : arena_printf(e->g->arena, "%svm_expf", e->prefix);
    if (x->op == OP_SOFTMAX) { /* each e^x once, kept in the output; the
                                   e^x loop apart from the sum, so that it
                                   vectorizes (a float sum does not) */
        emitf(e, 3, "%s *restrict orow = o + r * %d;", e->T, len);
        emitf(e, 3, "for (size_t c = 0; c < %d; c++)", len);
        emitf(e, 4, "orow[c] = %s(z[c] - m);", ex);
        softmax_sum(e, arena_printf(e->g->arena, "%d", len));
        emitf(e, 2, "}");
        emitf(e, 1, "}");
        return;
    }
    emitf(e, 3, "for (size_t c = 0; c < %d; c++)", len);
    emitf(e, 4, "s += %s(z[c] - m);", ex);
    if (x->op == OP_LOG_SOFTMAX) {
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

void emit_transpose(E *e, Ref r, const char *dst)
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

void emit_concat_slice(E *e, Ref r, const char *dst)
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

void emit_gather(E *e, Ref r, const char *dst)
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

/* copies node r (any home) into dst, n examples if batched */
void emit_copy(E *e, Ref r, const char *dst, int per_example)
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

/* ------------------------------------------- tokens and sequences */

/* GATHER: row ids[i] of the table for each id; GATHER_BWD: the rows of dy
 * added into the rows the ids name. An id is used only when it lies in
 * 0..V-1 (v >= 0 && v < V is false for NaN): any other float gives a row
 * of zeros, or adds nothing, and no read or write leaves the table. */
void emit_gather_rows(E *e, Ref r, const char *dst)
{
    Node *x = N(e->g, r);
    int bwd = x->op == OP_GATHER_BWD;
    Shape st = bwd ? x->shape : N(e->g, x->in[0])->shape;
    Shape si = N(e->g, x->in[1])->shape;
    int V = st.dim[0];
    long R = stride(st, 0);
    char ids[64], p[64], q[64], tb[64];
    total(si, ids, sizeof ids);
    emitf(e, 1, "{");
    emitf(e, 2, "%s *restrict o = %s;", e->T, dst);
    emitf(e, 2, "const %s *a_ = %s;", e->T, ptr(e, x->in[0], p, sizeof p));
    emitf(e, 2, "const %s *b_ = %s;", e->T, ptr(e, x->in[1], q, sizeof q));
    if (bwd)
        emitf(e, 2, "for (size_t i = 0; i < %s; i++) o[i] = 0;", total(x->shape, tb, sizeof tb));
    emitf(e, 2, "for (size_t i = 0; i < %s; i++) {", ids);
    emitf(e, 3, "const %s v = b_[i];", e->T);
    emitf(e, 3, "if (v >= 0 && v < %d) {", V);
    emitf(e, 4, "const size_t k = (size_t)v;");
    if (bwd) {
        emitf(e, 4, "for (size_t j = 0; j < %ld; j++) o[k * %ld + j] += a_[i * %ld + j];", R, R, R);
        emitf(e, 3, "}");
    } else {
        emitf(e, 4, "for (size_t j = 0; j < %ld; j++) o[i * %ld + j] = a_[k * %ld + j];", R, R, R);
        emitf(e, 3, "} else {");
        emitf(e, 4, "for (size_t j = 0; j < %ld; j++) o[i * %ld + j] = 0;", R, R);
        emitf(e, 3, "}");
    }
    emitf(e, 2, "}");
    emitf(e, 1, "}");
}

/* VIEW: a loop per axis of the view, out[q++] = a[offset + sum i_k s_k];
 * VIEW_BWD: out[offset + sum i_k s_k] = dy[q++], zeros first unless the
 * view takes every element. A view (slices with steps of at least 1,
 * indexing, transposes) never takes an element twice. */
void emit_view(E *e, Ref r, const char *dst)
{
    Node *x = N(e->g, r);
    int bwd = x->op == OP_VIEW_BWD;
    Shape sv = bwd ? N(e->g, x->in[0])->shape : x->shape;
    const long *v = view_of(e->g, r);
    char p[64], tb[64], d[16];
    emitf(e, 1, "{");
    emitf(e, 2, "%s *restrict o = %s;", e->T, dst);
    emitf(e, 2, "const %s *a_ = %s;", e->T, ptr(e, x->in[0], p, sizeof p));
    if (bwd && shape_numel_static(sv) != shape_numel_static(x->shape))
        emitf(e, 2, "for (size_t i = 0; i < %s; i++) o[i] = 0;", total(x->shape, tb, sizeof tb));
    emitf(e, 2, "size_t q = 0;");
    char idx[256];
    size_t k = (size_t)snprintf(idx, sizeof idx, "%ld", v[0]);
    for (int i = 0; i < sv.rank; i++) {
        emitf(e, 2 + i, "for (size_t i%d = 0; i%d < %s; i%d++)", i, i, ext(sv.dim[i], d, sizeof d), i);
        k += (size_t)snprintf(idx + k, sizeof idx - k, " + i%d * %ld", i, v[1 + i]);
    }
    if (bwd)
        emitf(e, 2 + sv.rank, "o[%s] = a_[q++];", idx);
    else
        emitf(e, 2 + sv.rank, "o[q++] = a_[%s];", idx);
    emitf(e, 1, "}");
}

/* CAUSAL: over the last two axes, -infinity above the diagonal
 * (CAUSAL_BWD: zeros, its adjoint); a softmax after it gives those entries e^-inf =
 * 0 after its max subtraction (the diagonal keeps every row's max finite) */
void emit_causal(E *e, Ref r, const char *dst)
{
    Node *x = N(e->g, r);
    Shape s = x->shape, t = s;
    int T = s.dim[s.rank - 1];
    t.rank -= 2;
    char lead[64], p[64];
    total(t, lead, sizeof lead);
    emitf(e, 1, "{");
    emitf(e, 2, "%s *restrict o = %s;", e->T, dst);
    emitf(e, 2, "const %s *a_ = %s;", e->T, ptr(e, x->in[0], p, sizeof p));
    emitf(e, 2, "for (size_t l = 0; l < %s; l++)", lead);
    emitf(e, 3, "for (size_t i = 0; i < %d; i++)", T);
    emitf(e, 4, "for (size_t j = 0; j < %d; j++)", T);
    emitf(e, 5, "o[(l * %d + i) * %d + j] = j > i ? %s : a_[(l * %d + i) * %d + j];", T, T,
          x->op == OP_CAUSAL_BWD ? "0" : "-INFINITY", T, T);
    emitf(e, 1, "}");
}
