/*
 * conv.c: the convolution family: conv2d, maxpool2d, avgpool2d and dropout.
 *
 * Each op's knowledge sits here together (STYLE.md item 4): the shape rules
 * and graph builders sema.c lowers the calls with, the gradient rules grad.c
 * applies, the workspace scratch plan.c reserves, the FLOPs the stats count
 * and the C emit_c.c writes for each node. The ops themselves are described
 * in ops.def.
 *
 * Images are row-major [C,H,W] per example, [B,C,H,W] in the batched graph.
 * A convolution is lowered to three ops, each emitted as its own loop nest so
 * that a faster kernel can replace one without touching the others:
 *
 *   CONV2D(x, W)        per example, im2col into scratch col[C·k·k][Ho·Wo]
 *                       (zeros where the window reads padding), then
 *                       y[o][p] = sum_kk W[o][kk] col[kk][p], four output
 *                       channels at a time, the inner loop over the pixels p
 *                       contiguous (the C compiler vectorizes it)
 *   CONV2D_BWD_W(x, dy) per example, the transposed im2col colT[Ho·Wo][C·k·k],
 *                       then dW[o][:] += dy[o][p] · colT[p][:] for every
 *                       pixel whose dy is not zero (after relu and max
 *                       pooling most are), summed over the batch
 *   CONV2D_BWD_X(dy, W) per example, dcolT[p][:] = sum_o dy[o][p] · W[o][:]
 *                       (again skipping zeros), then col2im adds dcolT back
 *                       onto the input positions each window read
 *
 * The scratch is one example's im2col matrix, C·k·k·Ho·Wo elements, taken
 * from the planned workspace and live only while the op runs (a 1x1
 * convolution of stride 1 without padding reads x directly and needs none).
 * No buffer is as large as the batch's im2col.
 *
 * Dropout is inverted dropout: in training y = x · mask / (1 - p), and
 * its adjoint dy · mask / (1 - p), mask recomputed from a counter-based
 * hash (splitmix64) of the call's seed, the dropout's site number and the
 * element's index, so forward and backward agree without storing the mask
 * and a given seed gives the same masks every time (finite differences see
 * the same function). In predict and in loss (eval) dropout is a copy.
 */
#include "gradc.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------- shapes */

int conv_out_dim(int in, int k, int stride, int pad, int *before)
{
    int out;
    *before = 0;
    if (pad == CONV_PAD_SAME) {
        /* TensorFlow's and PyTorch's 'same': ceil(in / stride) outputs, the
         * zeros needed split evenly, the odd one after (bottom, right) */
        out = (in + stride - 1) / stride;
        int total = (out - 1) * stride + k - in;
        if (total < 0)
            total = 0;
        *before = total / 2;
        return out;
    }
    if (in + 2 * pad < k)
        return 0;
    *before = pad;
    out = (in + 2 * pad - k) / stride + 1;
    return out;
}

/* the per-image geometry of a node of the family */
typedef struct Geo {
    int nb;         /* the input has a batch axis */
    int C, H, W;    /* input channels and size */
    int O, Ho, Wo;  /* output channels and size */
    int k, s;       /* kernel size, stride */
    int pt, pl;     /* zeros before the first row, column */
    long K, P;      /* C·k·k (im2col rows), Ho·Wo (pixels) */
} Geo;

/* image axes of a shape: [..., C, H, W] */
static void chw(Shape s, int *C, int *H, int *W)
{
    *H = s.dim[s.rank - 2];
    *W = s.dim[s.rank - 1];
    *C = s.rank >= 3 && s.dim[s.rank - 3] != DIM_B ? s.dim[s.rank - 3] : 1;
}

static Geo geo(Graph *g, Ref r)
{
    Node *x = N(g, r);
    Geo G;
    memset(&G, 0, sizeof G);
    Shape xs, ys;
    switch (x->op) {
    case OP_CONV2D: xs = N(g, x->in[0])->shape; ys = x->shape; break;
    case OP_CONV2D_BWD_X: xs = x->shape; ys = N(g, x->in[0])->shape; break;
    case OP_CONV2D_BWD_W: xs = N(g, x->in[0])->shape; ys = N(g, x->in[1])->shape; break;
    case OP_MAXPOOL: case OP_AVGPOOL: xs = N(g, x->in[0])->shape; ys = x->shape; break;
    case OP_MAXPOOL_BWD: xs = x->shape; ys = N(g, x->in[1])->shape; break;
    case OP_AVGPOOL_BWD: xs = x->shape; ys = N(g, x->in[0])->shape; break;
    default: xs = ys = x->shape; break;
    }
    G.nb = shape_has_batch(xs);
    chw(xs, &G.C, &G.H, &G.W);
    chw(ys, &G.O, &G.Ho, &G.Wo);
    G.k = x->ia[0];
    G.s = x->op == OP_CONV2D || x->op == OP_CONV2D_BWD_X || x->op == OP_CONV2D_BWD_W ? x->ia[1]
                                                                                     : x->ia[0];
    G.pt = x->ia[2];
    G.pl = x->ia[3];
    G.K = (long)G.C * G.k * G.k;
    G.P = (long)G.Ho * G.Wo;
    return G;
}

/* ----------------------------------------------------------- builders */

Ref g_conv2d(Graph *g, Ref x, Ref w, int stride, int pad, Loc loc)
{
    Shape xs = N(g, x)->shape, ws = N(g, w)->shape;
    int nb = shape_has_batch(xs);
    int H = xs.dim[xs.rank - 2], W = xs.dim[xs.rank - 1], k = ws.dim[2];
    int pt, pl;
    int Ho = conv_out_dim(H, k, stride, pad, &pt);
    int Wo = conv_out_dim(W, k, stride, pad, &pl);
    Shape o;
    o.rank = 0;
    if (nb)
        o.dim[o.rank++] = DIM_B;
    o.dim[o.rank++] = ws.dim[0];
    o.dim[o.rank++] = Ho;
    o.dim[o.rank++] = Wo;
    int ia[4] = {k, stride, pt, pl};
    Ref in[2] = {x, w};
    return node_make(g, OP_CONV2D, o, in, 0, ia, loc);
}

Ref g_pool2d(Graph *g, Op op, Ref x, int size, Loc loc)
{
    Shape o = N(g, x)->shape;
    o.dim[o.rank - 2] /= size;
    o.dim[o.rank - 1] /= size;
    int ia[4] = {size, 0, 0, 0};
    Ref in[1] = {x};
    return node_make(g, op, o, in, 0, ia, loc);
}

Ref g_dropout(Graph *g, Ref x, double p, int site, Loc loc)
{
    int ia[4] = {site, 0, 0, 0};
    Ref in[1] = {x};
    return node_make(g, OP_DROPOUT, N(g, x)->shape, in, p, ia, loc);
}

int conv_op(Op op)
{
    return op >= OP_CONV2D && op <= OP_DROPOUT_BWD;
}

int conv_has_dropout(Graph *g)
{
    for (Ref r = 1; r < g->n; r++)
        if (g->nodes[r].op == OP_DROPOUT)
            return 1;
    return 0;
}

/* ------------------------------------------------------ gradient rules */

void conv_grad(Graph *g, Ref r, Ref dy, const unsigned char *needs, Ref d[2])
{
    Node x = *N(g, r); /* a copy: node_make may move the array */
    Ref a = x.in[0], b = x.in[1];
    d[0] = d[1] = 0;
    switch (x.op) {
    case OP_CONV2D: {
        /* y = x ⋆ W: dx = the transposed convolution of dy with W; dW = the
         * correlation of x with dy, summed over the batch */
        if (needs[a]) {
            Ref in[2] = {dy, b};
            d[0] = node_make(g, OP_CONV2D_BWD_X, N(g, a)->shape, in, 0, x.ia, x.loc);
        }
        if (needs[b]) {
            Ref in[2] = {a, dy};
            d[1] = node_make(g, OP_CONV2D_BWD_W, N(g, b)->shape, in, 0, x.ia, x.loc);
        }
        return;
    }
    case OP_MAXPOOL: { /* dy to the first maximum of each window */
        Ref in[2] = {a, dy};
        d[0] = node_make(g, OP_MAXPOOL_BWD, N(g, a)->shape, in, 0, x.ia, x.loc);
        return;
    }
    case OP_AVGPOOL: { /* dy / size² to every element of the window */
        Ref in[1] = {dy};
        d[0] = node_make(g, OP_AVGPOOL_BWD, N(g, a)->shape, in, 0, x.ia, x.loc);
        return;
    }
    case OP_DROPOUT: { /* the same mask, the same scale */
        Ref in[1] = {dy};
        d[0] = node_make(g, OP_DROPOUT_BWD, N(g, a)->shape, in, x.f, x.ia, x.loc);
        return;
    }
    default:
        /* the backward ops only appear in backward graphs: no second
         * derivatives are needed */
        die("internal error: no gradient rule for %s", op_name[x.op]);
    }
}

/* ------------------------------------------------------ scratch, flops */

size_t conv_scratch(Graph *g, Ref r)
{
    Node *x = N(g, r);
    if (x->op != OP_CONV2D && x->op != OP_CONV2D_BWD_X && x->op != OP_CONV2D_BWD_W)
        return 0;
    Geo G = geo(g, r);
    if (x->op == OP_CONV2D && G.k == 1 && G.s == 1 && G.pt == 0 && G.pl == 0 && G.H == G.Ho &&
        G.W == G.Wo)
        return 0; /* x is its own im2col matrix */
    return (size_t)(G.K * G.P);
}

double conv_flops(Graph *g, Ref r, int batch)
{
    Node *x = N(g, r);
    Geo G = geo(g, r);
    double nb = G.nb ? batch : 1;
    switch (x->op) {
    case OP_CONV2D: case OP_CONV2D_BWD_X: case OP_CONV2D_BWD_W:
        return 2.0 * nb * G.O * (double)G.P * (double)G.K;
    case OP_MAXPOOL: case OP_AVGPOOL:
        return (double)shape_numel_static(N(g, x->in[0])->shape) * (shape_has_batch(N(g, x->in[0])->shape) ? batch : 1);
    default:
        return (double)shape_numel_static(x->shape) * (shape_has_batch(x->shape) ? batch : 1);
    }
}

/* ------------------------------------------------------------ emission */

static void line(const OpEmit *o, int indent, const char *fmt, ...) GRADC_PRINTF(3, 4);
static void line(const OpEmit *o, int indent, const char *fmt, ...)
{
    for (int i = 0; i < indent; i++)
        fputs("    ", o->out);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(o->out, fmt, ap);
    va_end(ap);
    fputc('\n', o->out);
}

/* the product of the axes of s but its last drop ones, n for the batch
 * axis, as a C expression: the number of [H,W] planes for drop = 2 */
static const char *lead(Shape s, int drop, char *buf, size_t n)
{
    long k = 1;
    int b = 0;
    for (int i = 0; i < s.rank - drop; i++) {
        if (s.dim[i] == DIM_B)
            b = 1;
        else
            k *= s.dim[i];
    }
    if (b && k == 1)
        snprintf(buf, n, "n");
    else if (b)
        snprintf(buf, n, "n * %ld", k);
    else
        snprintf(buf, n, "%ld", k);
    return buf;
}

static const char *kernel_name(const OpEmit *o, char *buf, size_t n)
{
    snprintf(buf, n, "%s%s_%d", o->prefix, op_name[N(o->g, o->r)->op], o->r);
    return buf;
}

/* The head of node o->r's kernel, a function of its own:
 *   static void NAME(const T *restrict a, const T *restrict b, T *restrict out,
 *                    T *restrict scratch, size_t n)
 * with the names given (NULL: the kernel does not use it). Every pointer is
 * restrict, which the plan makes true, so the C compiler vectorizes the
 * loops without run-time overlap checks. */
static void head(const OpEmit *o, const char *a, const char *b, const char *out, const char *scratch)
{
    const char *T = o->T;
    char name[128];
    Node *x = N(o->g, o->r);
    Geo G = geo(o->g, o->r);
    char sh[64];
    line(o, 0, "/* %s %s */", op_name[x->op], shape_str(x->shape, sh, sizeof sh));
    line(o, 0, "static void %s(const %s *restrict %s, const %s *restrict %s, %s *restrict %s,",
         kernel_name(o, name, sizeof name), T, a, T, b ? b : "unused_", T, out);
    line(o, 0, "    %s *restrict %s, size_t n)", T, scratch ? scratch : "noscratch_");
    line(o, 0, "{");
    if (!b || !scratch || !G.nb)
        line(o, 1, "%s%s%s", !b ? "(void)unused_; " : "", !scratch ? "(void)noscratch_; " : "",
             !G.nb ? "(void)n;" : "");
}

/* The rows of one example's im2col matrix, read from xb: transposed (colT,
 * [P][K]) or not (col, [K][P]); zeros where a window reads padding. */
static void emit_im2col(const OpEmit *o, const Geo *G, int transposed, int ind)
{
    const char *T = o->T;
    int padded = G->pt > 0 || G->pl > 0 || (G->Ho - 1) * G->s + G->k > G->H ||
                 (G->Wo - 1) * G->s + G->k > G->W;
    if (!transposed) {
        line(o, ind, "/* im2col: col[(c,ky,kx)][(oy,ox)] = x[c][oy*%d+ky-%d][ox*%d+kx-%d], 0 in the padding */",
             G->s, G->pt, G->s, G->pl);
        line(o, ind, "for (size_t c = 0; c < %d; c++)", G->C);
        line(o, ind + 1, "for (size_t ky = 0; ky < %d; ky++)", G->k);
        line(o, ind + 2, "for (size_t kx = 0; kx < %d; kx++) {", G->k);
        line(o, ind + 3, "%s *cr = col + ((c * %d + ky) * %d + kx) * %ld;", T, G->k, G->k, G->P);
        line(o, ind + 3, "for (size_t oy = 0; oy < %d; oy++) {", G->Ho);
        line(o, ind + 4, "const ptrdiff_t iy = (ptrdiff_t)(oy * %d + ky) - %d;", G->s, G->pt);
        line(o, ind + 4, "%s *crow = cr + oy * %d;", T, G->Wo);
        if (padded) {
            line(o, ind + 4, "if (iy < 0 || iy >= %d) {", G->H);
            line(o, ind + 5, "for (size_t ox = 0; ox < %d; ox++) crow[ox] = 0;", G->Wo);
            line(o, ind + 5, "continue;");
            line(o, ind + 4, "}");
        }
        line(o, ind + 4, "const %s *xr = xb + (c * %d + (size_t)iy) * %d;", T, G->H, G->W);
        line(o, ind + 4, "for (size_t ox = 0; ox < %d; ox++) {", G->Wo);
        line(o, ind + 5, "const ptrdiff_t ix = (ptrdiff_t)(ox * %d + kx) - %d;", G->s, G->pl);
        if (padded)
            line(o, ind + 5, "crow[ox] = ix >= 0 && ix < %d ? xr[ix] : 0;", G->W);
        else
            line(o, ind + 5, "crow[ox] = xr[ix];");
        line(o, ind + 4, "}");
        line(o, ind + 3, "}");
        line(o, ind + 2, "}");
        return;
    }
    line(o, ind, "/* transposed im2col: colT[(oy,ox)][(c,ky,kx)] = x[c][oy*%d+ky-%d][ox*%d+kx-%d], 0 in the padding */",
         G->s, G->pt, G->s, G->pl);
    line(o, ind, "for (size_t oy = 0; oy < %d; oy++)", G->Ho);
    line(o, ind + 1, "for (size_t ox = 0; ox < %d; ox++) {", G->Wo);
    line(o, ind + 2, "%s *cr = colT + (oy * %d + ox) * %ld;", T, G->Wo, G->K);
    line(o, ind + 2, "for (size_t c = 0; c < %d; c++)", G->C);
    line(o, ind + 3, "for (size_t ky = 0; ky < %d; ky++) {", G->k);
    line(o, ind + 4, "const ptrdiff_t iy = (ptrdiff_t)(oy * %d + ky) - %d;", G->s, G->pt);
    line(o, ind + 4, "%s *crow = cr + (c * %d + ky) * %d;", T, G->k, G->k);
    if (padded) {
        line(o, ind + 4, "if (iy < 0 || iy >= %d) {", G->H);
        line(o, ind + 5, "for (size_t kx = 0; kx < %d; kx++) crow[kx] = 0;", G->k);
        line(o, ind + 5, "continue;");
        line(o, ind + 4, "}");
    }
    line(o, ind + 4, "const %s *xr = xb + (c * %d + (size_t)iy) * %d;", T, G->H, G->W);
    line(o, ind + 4, "for (size_t kx = 0; kx < %d; kx++) {", G->k);
    line(o, ind + 5, "const ptrdiff_t ix = (ptrdiff_t)(ox * %d + kx) - %d;", G->s, G->pl);
    if (padded)
        line(o, ind + 5, "crow[kx] = ix >= 0 && ix < %d ? xr[ix] : 0;", G->W);
    else
        line(o, ind + 5, "crow[kx] = xr[ix];");
    line(o, ind + 4, "}");
    line(o, ind + 3, "}");
    line(o, ind + 1, "}");
}

static void emit_conv(const OpEmit *o, const Geo *G)
{
    const char *T = o->T;
    long CHW = (long)G->C * G->H * G->W, OP = (long)G->O * G->P;
    int OB = G->O % 4 == 0 ? 4 : G->O % 2 == 0 ? 2 : 1;
    head(o, "x_", "w_", "o_", o->scratch ? "col" : NULL);
    if (o->scratch)
        line(o, 1, "/* col: [%ld][%ld] */", G->K, G->P);
    line(o, 1, "for (size_t b = 0; b < %s; b++) {", G->nb ? "n" : "1");
    line(o, 2, "const %s *xb = x_ + b * %ld;", T, CHW);
    line(o, 2, "%s *yb = o_ + b * %ld;", T, OP);
    if (o->scratch)
        emit_im2col(o, G, 0, 2);
    else
        line(o, 2, "const %s *col = xb; /* a 1x1 convolution: x is its own im2col */", T);
    line(o, 2, "/* y[o][p] = sum over kk of W[o][kk] col[kk][p], %d output channel%s at a time */", OB,
         OB > 1 ? "s" : "");
    line(o, 2, "for (size_t o = 0; o < %d; o += %d) {", G->O, OB);
    for (int i = 0; i < OB; i++)
        line(o, 3, "%s *y%d = yb + (o + %d) * %ld;", T, i, i, G->P);
    line(o, 3, "for (size_t p = 0; p < %ld; p++) {", G->P);
    for (int i = 0; i < OB; i++)
        line(o, 4, "y%d[p] = 0;", i);
    line(o, 3, "}");
    line(o, 3, "for (size_t kk = 0; kk < %ld; kk++) {", G->K);
    for (int i = 0; i < OB; i++)
        line(o, 4, "const %s w%d = w_[(o + %d) * %ld + kk];", T, i, i, G->K);
    line(o, 4, "const %s *cr = col + kk * %ld;", T, G->P);
    line(o, 4, "for (size_t p = 0; p < %ld; p++) {", G->P);
    line(o, 5, "const %s c = cr[p];", T);
    for (int i = 0; i < OB; i++)
        line(o, 5, "y%d[p] += w%d * c;", i, i);
    line(o, 4, "}");
    line(o, 3, "}");
    line(o, 2, "}");
    line(o, 1, "}");
    line(o, 0, "}\n");
}

static void emit_conv_bwd_w(const OpEmit *o, const Geo *G)
{
    const char *T = o->T;
    long CHW = (long)G->C * G->H * G->W, OP = (long)G->O * G->P;
    head(o, "x_", "dy_", "o_", "colT");
    line(o, 1, "/* colT: [%ld][%ld] */", G->P, G->K);
    line(o, 1, "for (size_t i = 0; i < %ld; i++) o_[i] = 0;", (long)G->O * G->K);
    line(o, 1, "for (size_t b = 0; b < %s; b++) {", G->nb ? "n" : "1");
    line(o, 2, "const %s *xb = x_ + b * %ld;", T, CHW);
    line(o, 2, "const %s *dyb = dy_ + b * %ld;", T, OP);
    emit_im2col(o, G, 1, 2);
    line(o, 2, "/* dW[o][:] += dy[o][p] colT[p][:], skipping the pixels where dy is 0 */");
    line(o, 2, "for (size_t o = 0; o < %d; o++) {", G->O);
    line(o, 3, "%s *gr = o_ + o * %ld;", T, G->K);
    line(o, 3, "for (size_t p = 0; p < %ld; p++) {", G->P);
    line(o, 4, "const %s d = dyb[o * %ld + p];", T, G->P);
    line(o, 4, "if (d == 0) continue;");
    line(o, 4, "const %s *cr = colT + p * %ld;", T, G->K);
    line(o, 4, "for (size_t kk = 0; kk < %ld; kk++) gr[kk] += d * cr[kk];", G->K);
    line(o, 3, "}");
    line(o, 2, "}");
    line(o, 1, "}");
    line(o, 0, "}\n");
}

static void emit_conv_bwd_x(const OpEmit *o, const Geo *G)
{
    const char *T = o->T;
    long CHW = (long)G->C * G->H * G->W, OP = (long)G->O * G->P;
    head(o, "dy_", "w_", "o_", "dcol");
    line(o, 1, "/* dcol: [%ld][%ld] */", G->P, G->K);
    line(o, 1, "for (size_t b = 0; b < %s; b++) {", G->nb ? "n" : "1");
    line(o, 2, "const %s *dyb = dy_ + b * %ld;", T, OP);
    line(o, 2, "%s *dxb = o_ + b * %ld;", T, CHW);
    line(o, 2, "/* dcol[p][:] = sum over o of dy[o][p] W[o][:], skipping the o where dy is 0 */");
    line(o, 2, "for (size_t p = 0; p < %ld; p++) {", G->P);
    line(o, 3, "%s *dr = dcol + p * %ld;", T, G->K);
    line(o, 3, "for (size_t kk = 0; kk < %ld; kk++) dr[kk] = 0;", G->K);
    line(o, 3, "for (size_t o = 0; o < %d; o++) {", G->O);
    line(o, 4, "const %s d = dyb[o * %ld + p];", T, G->P);
    line(o, 4, "if (d == 0) continue;");
    line(o, 4, "const %s *wr = w_ + o * %ld;", T, G->K);
    line(o, 4, "for (size_t kk = 0; kk < %ld; kk++) dr[kk] += d * wr[kk];", G->K);
    line(o, 3, "}");
    line(o, 2, "}");
    line(o, 2, "/* col2im: every window element back onto the input position it read */");
    line(o, 2, "for (size_t i = 0; i < %ld; i++) dxb[i] = 0;", CHW);
    line(o, 2, "for (size_t oy = 0; oy < %d; oy++)", G->Ho);
    line(o, 3, "for (size_t ox = 0; ox < %d; ox++) {", G->Wo);
    line(o, 4, "const %s *dr = dcol + (oy * %d + ox) * %ld;", T, G->Wo, G->K);
    line(o, 4, "for (size_t c = 0; c < %d; c++)", G->C);
    line(o, 5, "for (size_t ky = 0; ky < %d; ky++) {", G->k);
    line(o, 6, "const ptrdiff_t iy = (ptrdiff_t)(oy * %d + ky) - %d;", G->s, G->pt);
    line(o, 6, "if (iy < 0 || iy >= %d) continue;", G->H);
    line(o, 6, "%s *xr = dxb + (c * %d + (size_t)iy) * %d;", T, G->H, G->W);
    line(o, 6, "for (size_t kx = 0; kx < %d; kx++) {", G->k);
    line(o, 7, "const ptrdiff_t ix = (ptrdiff_t)(ox * %d + kx) - %d;", G->s, G->pl);
    line(o, 7, "if (ix >= 0 && ix < %d) xr[ix] += dr[(c * %d + ky) * %d + kx];", G->W, G->k, G->k);
    line(o, 6, "}");
    line(o, 5, "}");
    line(o, 3, "}");
    line(o, 1, "}");
    line(o, 0, "}\n");
}

static void emit_pool(const OpEmit *o, Node *x, const Geo *G)
{
    const char *T = o->T;
    int S = x->ia[0];
    char L[64];
    int fwd = x->op == OP_MAXPOOL || x->op == OP_AVGPOOL;
    Shape xs = fwd ? N(o->g, x->in[0])->shape : x->shape;
    lead(xs, 2, L, sizeof L);
    long HW = (long)G->H * G->W, PW = (long)G->Ho * G->Wo;
    head(o, "a_", x->op == OP_MAXPOOL_BWD ? "dy_" : NULL, "o_", NULL);
    if (!fwd)
        line(o, 1, "for (size_t i = 0; i < (%s) * %ld; i++) o_[i] = 0;", L, HW);
    line(o, 1, "for (size_t l = 0; l < %s; l++)", L);
    line(o, 2, "for (size_t oy = 0; oy < %d; oy++)", G->Ho);
    line(o, 3, "for (size_t ox = 0; ox < %d; ox++) {", G->Wo);
    line(o, 4, "const size_t at = l * %ld + oy * %ld + ox * %d; /* the window's corner */", HW,
         (long)S * G->W, S);
    if (x->op == OP_MAXPOOL || x->op == OP_MAXPOOL_BWD) {
        line(o, 4, "const %s *wp = a_ + at;", T);
        line(o, 4, "%s m = wp[0];", T);
        if (x->op == OP_MAXPOOL_BWD)
            line(o, 4, "size_t best = 0; /* the first maximum */");
        line(o, 4, "for (size_t dy = 0; dy < %d; dy++)", S);
        line(o, 5, "for (size_t dx = 0; dx < %d; dx++)", S);
        if (x->op == OP_MAXPOOL) {
            line(o, 6, "if (wp[dy * %d + dx] > m) m = wp[dy * %d + dx];", G->W, G->W);
            line(o, 4, "o_[l * %ld + oy * %d + ox] = m;", PW, G->Wo);
        } else {
            line(o, 6, "if (wp[dy * %d + dx] > m) {", G->W);
            line(o, 7, "m = wp[dy * %d + dx];", G->W);
            line(o, 7, "best = dy * %d + dx;", G->W);
            line(o, 6, "}");
            line(o, 4, "o_[at + best] += dy_[l * %ld + oy * %d + ox];", PW, G->Wo);
        }
    } else if (x->op == OP_AVGPOOL) {
        line(o, 4, "%s s = 0;", T);
        line(o, 4, "for (size_t dy = 0; dy < %d; dy++)", S);
        line(o, 5, "for (size_t dx = 0; dx < %d; dx++) s += a_[at + dy * %d + dx];", S, G->W);
        line(o, 4, "o_[l * %ld + oy * %d + ox] = s * (%s)%.17g;", PW, G->Wo, T, 1.0 / (S * S));
    } else {
        line(o, 4, "const %s v = a_[l * %ld + oy * %d + ox] * (%s)%.17g;", T, PW, G->Wo, T, 1.0 / (S * S));
        line(o, 4, "for (size_t dy = 0; dy < %d; dy++)", S);
        line(o, 5, "for (size_t dx = 0; dx < %d; dx++) o_[at + dy * %d + dx] = v;", S, G->W);
    }
    line(o, 3, "}");
    line(o, 0, "}\n");
}

/* the keep threshold on the hash's high 32 bits: P(keep) = 1 - p */
static unsigned long dropout_threshold(double p)
{
    double t = floor(p * 4294967296.0 + 0.5);
    return t > 4294967295.0 ? 4294967295ul : (unsigned long)t;
}

static void emit_dropout(const OpEmit *o, Node *x)
{
    const char *T = o->T;
    char L[64];
    lead(x->shape, 0, L, sizeof L);
    line(o, 1, "{");
    line(o, 2, "%s *restrict o_ = %s;", T, o->dst);
    line(o, 2, "const %s *a_ = %s;", T, o->in[0]);
    if (!o->train) {
        line(o, 2, "for (size_t i = 0; i < %s; i++) o_[i] = a_[i]; /* identity outside training */", L);
        line(o, 1, "}");
        return;
    }
    line(o, 2, "/* inverted dropout: keep with probability %.17g, scaled by 1/(1-p) */", 1 - x->f);
    line(o, 2, "const uint64_t site = %smix(seed ^ 0x%016llXu);", o->prefix,
         (unsigned long long)(0xD1B54A32D192ED03ull * (uint64_t)(x->ia[0] + 1)));
    line(o, 2, "for (size_t i = 0; i < %s; i++)", L);
    line(o, 3, "o_[i] = %smix(site + 0x9E3779B97F4A7C15u * (uint64_t)i) >> 32 >= %luu ? a_[i] * (%s)%.17g : 0;",
         o->prefix, dropout_threshold(x->f), T, 1.0 / (1.0 - x->f));
    line(o, 1, "}");
}

void conv_emit(const OpEmit *o)
{
    Node *x = N(o->g, o->r);
    if (x->op == OP_DROPOUT || x->op == OP_DROPOUT_BWD) {
        emit_dropout(o, x);
        return;
    }
    char name[128];
    line(o, 1, "%s(%s, %s, %s, %s, n);", kernel_name(o, name, sizeof name), o->in[0],
         o->in[1] ? o->in[1] : "NULL", o->dst, o->scratch ? o->scratch : "NULL");
}

void conv_emit_kernel(const OpEmit *o)
{
    Node *x = N(o->g, o->r);
    Geo G = geo(o->g, o->r);
    OpEmit k = *o;
    k.scratch = conv_scratch(o->g, o->r) ? "scratch" : NULL;
    switch (x->op) {
    case OP_CONV2D: emit_conv(&k, &G); break;
    case OP_CONV2D_BWD_W: emit_conv_bwd_w(&k, &G); break;
    case OP_CONV2D_BWD_X: emit_conv_bwd_x(&k, &G); break;
    case OP_MAXPOOL: case OP_AVGPOOL: case OP_MAXPOOL_BWD: case OP_AVGPOOL_BWD:
        emit_pool(&k, x, &G);
        break;
    default: break; /* dropout is written in place */
    }
}

void conv_emit_helpers(FILE *out, const char *P, const char *T)
{
    int dbl = strcmp(T, "double") == 0;
    char U[256];
    size_t k = 0;
    for (; P[k] && k + 1 < sizeof U; k++)
        U[k] = (char)(P[k] >= 'a' && P[k] <= 'z' ? P[k] - 'a' + 'A' : P[k]);
    U[k] = 0;
    fprintf(out,
            "/* dropout's masks: the splitmix64 finalizer of a counter, the same on every machine */\n"
            "static uint64_t %smix(uint64_t z)\n{\n"
            "    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;\n"
            "    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;\n"
            "    return z ^ (z >> 31);\n}\n\n"
            "/* loss_grad's seed when the caller gives none: a hash of the batch, so each\n"
            " * new batch draws new masks and the function stays pure */\n"
            "static uint64_t %sbatch_seed(const %s *x, size_t n)\n{\n"
            "    uint64_t h = 0xCBF29CE484222325u ^ (uint64_t)n;\n"
            "    for (size_t i = 0; i < n * %sINPUT_SIZE; i++) {\n"
            "        union { %s f; uint%d_t u; } c;\n"
            "        c.f = x[i];\n"
            "        h = (h ^ c.u) * 0x100000001B3u;\n"
            "    }\n"
            "    return %smix(h);\n}\n\n",
            P, P, T, U, T, dbl ? 64 : 32, P);
}
