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
 * A convolution is lowered to three ops, each emitted as a kernel of its own
 * (a static function specialized to the constant shapes) that turns the op
 * into one matrix product per example, K = C·k·k, P = Ho·Wo:
 *
 *   CONV2D(x, W)        im2col col[K][P] (through a zero-padded copy xp of
 *                       the example when the convolution pads, so that every
 *                       copy has a constant length), then y[O][P] = W[O][K]
 *                       · col; a bias per channel and relu, when the graph
 *                       adds them next, in the epilogue (emit_c.c fusion_of)
 *   CONV2D_BWD_W(x, dy) the example copied channels last, xh[H][W][C], and
 *                       its im2row matrix row[P][K] with K in (ky,kx,c)
 *                       order (k runs of k·C contiguous elements per pixel),
 *                       then dw[O][K] += dy · row summed over the batch, dy
 *                       read in place; dW = dw's columns put back in
 *                       (c,ky,kx) order at the end
 *   CONV2D_BWD_X(dy, W) drow[P][K] = dyᵀ · wr (wr: W's columns in (ky,kx,c)
 *                       order, once per call), then row2im adds each row's
 *                       k runs back onto dxh[H][W][C] (channels last,
 *                       padded), and dx is dxh channels first again
 *
 * (A 1x1 convolution of stride 1 without padding reads x as its own im2col
 * matrix: its dW is dWT[K][O] += x · dyT, dy transposed, and its dx = Wᵀ · dy.)
 *
 * The products (emit_gemm) keep a register tile of 8 rows by one or two
 * vectors of C in registers across the whole sum (a tile of one row in
 * four sets of accumulators along k); with GCC or Clang the vectors are
 * vector extensions as wide as the target's (AVX-512, AVX, SSE/NEON: chosen
 * by the C compiler that builds the generated file), the last columns fewer
 * than a vector through a zero-padded copy of B's last rows; other
 * compilers get plain loops. Every C row of a product is contiguous (y's
 * pixels, dw's and drow's (ky,kx,c) columns), so the vector loads and stores
 * are too.
 *
 * The scratch is one example's worth (im2col or im2row matrix, padded or
 * channels-last image, the packed last columns) plus the reordered weights
 * or dw, taken from the planned workspace and live only while the op runs.
 * No buffer is as large as the batch's im2col.
 *
 * MAXPOOL_BWD writes each window whole (the windows do not overlap) with
 * bit masks instead of branches; when the graph applies relu's adjoint to
 * it next, with relu's input the pooled tensor itself, it does that too.
 *
 * Dropout is inverted dropout: in training y = x · mask / (1 - p), and
 * its adjoint dy · mask / (1 - p), mask recomputed from a counter-based
 * hash (splitmix64) of the call's seed, the dropout's site number and the
 * element's index, so forward and backward agree without storing the mask
 * and a given seed gives the same masks every time (finite differences see
 * the same function). In predict and in loss (eval) dropout is a copy.
 */
#include "gradc.h"

#include <ctype.h>

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
    *H = s.rank >= 2 ? s.dim[s.rank - 2] : 1; /* dropout of a vector or scalar */
    *W = s.rank >= 1 ? s.dim[s.rank - 1] : 1;
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

static size_t gemm_scratch(long Kd);
static long pad_size(const struct Geo *G);
static long row_scratch(const struct Geo *G);
static long rowx_scratch(const struct Geo *G);

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
        if (N(g, r)->op == OP_DROPOUT)
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
    int direct = G.k == 1 && G.s == 1 && G.pt == 0 && G.pl == 0 && G.H == G.Ho && G.W == G.Wo;
    size_t col = direct ? 0 : (size_t)(G.K * G.P); /* one example's im2col matrix */
    col += (size_t)pad_size(&G);                     /* and its padded image */
    switch (x->op) {
    case OP_CONV2D: return col + gemm_scratch(G.K) + (size_t)(G.K * G.O); /* and the weights transposed */
    case OP_CONV2D_BWD_X: return direct ? gemm_scratch(G.O) : (size_t)rowx_scratch(&G) + gemm_scratch(G.O);
    default:
        if (!direct) /* im2row, see emit_conv_bwd_w */
            return (size_t)row_scratch(&G) + gemm_scratch(G.K);
        /* and dy transposed, dW transposed */
        return col + (size_t)(G.P * G.O) + (size_t)(G.K * G.O) + gemm_scratch(G.P);
    }
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
    va_list ap;
    va_start(ap, fmt);
    emit_vline(o->out, indent, fmt, ap);
    va_end(ap);
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
    if (o->kernel)
        snprintf(buf, n, "%s", o->kernel);
    else
        snprintf(buf, n, "%s%s_%d", o->prefix, op_name[N(o->g, o->r)->op], o->r);
    return buf;
}

const char **conv_kernel_names(Model *m, const char *prefix)
{
    Graph *g = &m->g;
    Arena *a = g->arena;
    const char **name = arena_alloc(a, sizeof(char *) * (size_t)g->n);
    memset(name, 0, sizeof(char *) * (size_t)g->n);
    const char **bind = graph_line_names(g, NULL);
    for (Ref r = 1; r < g->n; r++) {
        Node *x = N(g, r);
        const char *kind, *sfx = "";
        switch (x->op) {
        case OP_CONV2D: kind = "conv"; break;
        case OP_CONV2D_BWD_X: kind = "conv"; sfx = "_backward_input"; break;
        case OP_CONV2D_BWD_W: kind = "conv"; sfx = "_backward_weights"; break;
        case OP_MAXPOOL: kind = "maxpool"; break;
        case OP_MAXPOOL_BWD: kind = "maxpool"; sfx = "_backward"; break;
        case OP_AVGPOOL: kind = "avgpool"; break;
        case OP_AVGPOOL_BWD: kind = "avgpool"; sfx = "_backward"; break;
        default: continue;
        }
        const char *b = x->loc.first_line > 0 ? bind[x->loc.first_line] : NULL;
        char base[160];
        size_t k = (size_t)snprintf(base, sizeof base, "%s%s_", prefix, kind);
        for (const char *q = b ? b : "line"; *q && k + 1 < sizeof base; q++)
            base[k++] = isalnum((unsigned char)*q) ? *q : '_';
        base[k] = 0;
        if (!b)
            snprintf(base + k, sizeof base - k, "%d", x->loc.first_line);
        const char *nm = arena_printf(a, "%s%s", base, sfx);
        for (int u = 2;; u++) {
            int clash = 0;
            for (Ref q = 1; q < r && !clash; q++)
                clash = name[q] && !strcmp(name[q], nm);
            if (!clash)
                break;
            nm = arena_printf(a, "%s_%d%s", base, u, sfx);
        }
        name[r] = nm;
    }
    free(bind);
    return name;
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
    if (x->op == OP_CONV2D) /* its epilogue (conv_fusable) */
        line(o, 0, "    %s *restrict %s, size_t n, const %s *restrict bias_, int relu_)", T,
             scratch ? scratch : "noscratch_", T);
    else if (x->op == OP_MAXPOOL_BWD)
        line(o, 0, "    %s *restrict %s, size_t n, int relu_)", T, scratch ? scratch : "noscratch_");
    else
        line(o, 0, "    %s *restrict %s, size_t n)", T, scratch ? scratch : "noscratch_");
    line(o, 0, "{");
    if (!b || !scratch || !G.nb)
        line(o, 1, "%s%s%s", !b ? "(void)unused_; " : "", !scratch ? "(void)noscratch_; " : "",
             !G.nb ? "(void)n;" : "");
}

/* for (q < n) D[q] OP S[q], D and S pointer expressions (printf formats
 * of one long each, 0 when they take none): in vectors of the target's
 * width when n is a multiple of every width, so that it does not depend on
 * the C compiler's vectorizer (gcc -O2 leaves such copies scalar) */
static void vec_run(const OpEmit *o, int ind, long n, const char *dfmt, long darg, const char *op, const char *sfmt,
                    ...)
{
    char d[96], src[96];
    snprintf(d, sizeof d, dfmt, darg);
    va_list ap;
    va_start(ap, sfmt);
    vsnprintf(src, sizeof src, sfmt, ap);
    va_end(ap);
    if (n % 16 == 0) {
        line(o, 0, "#ifdef GRADC_VEC");
        line(o, ind, "for (size_t q = 0; q < %ld; q += GRADC_VBYTES / sizeof(%s))", n, o->T);
        line(o, ind + 1, "*(gradc_v%s *)(%s + q) %s *(const gradc_v%s *)(%s + q);", o->T, d, op, o->T, src);
        line(o, 0, "#else");
    }
    line(o, ind, "for (size_t q = 0; q < %ld; q++) (%s)[q] %s (%s)[q];", n, d, op, src);
    if (n % 16 == 0)
        line(o, 0, "#endif");
}

/* n contiguous elements from src to dst (pointer expressions): a short run
 * as one assignment of a struct of n elements (moves whatever the
 * optimizer's flags; gcc -O2 does not vectorize a 14-element loop), a
 * longer one as a loop */
static void copy_run(const OpEmit *o, int ind, long n, const char *dst, const char *src)
{
    if (n >= 4 && n * (long)(strcmp(o->T, "double") ? 4 : 8) <= 128) {
        line(o, ind, "{");
        line(o, ind + 1, "typedef struct { %s v[%ld]; } run_t;", o->T, n);
        line(o, ind + 1, "*(run_t *)(%s) = *(const run_t *)(%s);", dst, src);
        line(o, ind, "}");
    } else {
        line(o, ind, "for (size_t q = 0; q < %ld; q++) (%s)[q] = (%s)[q];", n, dst, src);
    }
}

/* ---------------------------------------------------- vectors and GEMM */

/* Once per generated file, before the first kernel: with GCC or Clang
 * (unless GRADC_NO_VEC is defined) the kernels' matrix products use vector
 * extensions as wide as the target's registers, chosen by the compiler
 * that builds the generated C, not by gradc; otherwise plain loops. The
 * guards let several generated files share one translation unit. */
static void emit_vec_prelude(const OpEmit *o)
{
    /* only before the first kernel of a file; should this miss a new file,
     * its kernels fall back to the plain loops, slower but right */
    static const FILE *last_out;
    static const Graph *last_g;
    if (o->out == last_out && o->g == last_g)
        return;
    last_out = o->out;
    last_g = o->g;
    const char *T = o->T;
    line(o, 0, "#if !defined(GRADC_VEC_PRELUDE)");
    line(o, 0, "#define GRADC_VEC_PRELUDE 1");
    line(o, 0, "#if defined(__GNUC__) && !defined(GRADC_NO_VEC)");
    line(o, 0, "#define GRADC_VEC 1");
    line(o, 0, "#if defined(__AVX512F__)");
    line(o, 0, "#define GRADC_VBYTES 64");
    line(o, 0, "#define GRADC_NV 2 /* vectors per row of a register tile */");
    line(o, 0, "#elif defined(__AVX__)");
    line(o, 0, "#define GRADC_VBYTES 32");
    line(o, 0, "#define GRADC_NV 1");
    line(o, 0, "#else");
    line(o, 0, "#define GRADC_VBYTES 16");
    line(o, 0, "#define GRADC_NV 1");
    line(o, 0, "#endif");
    line(o, 0, "#endif");
    line(o, 0, "#endif");
    line(o, 0, "#if defined(GRADC_VEC) && !defined(GRADC_VEC_%s)", T);
    line(o, 0, "#define GRADC_VEC_%s 1", T);
    line(o, 0, "/* a vector of %s that may sit at any %s's address */", T, T);
    line(o, 0, "typedef %s gradc_v%s __attribute__((vector_size(GRADC_VBYTES), aligned(sizeof(%s)), may_alias));", T,
         T, T);
    /* c + s*b as one fused multiply-add whatever the build's flags: ISO
     * mode (-std=c99) turns gcc's contraction of a*b + c off, and the
     * kernels' speed must not depend on that */
    const char *sfx = strcmp(T, "double") == 0 ? "pd" : "ps";
    line(o, 0, "/* c + s * b (b a vector, s a scalar), fused where the target has FMA */");
    line(o, 0, "#if defined(__FMA__) && GRADC_VBYTES == 64");
    line(o, 0, "#include <immintrin.h>");
    line(o, 0, "#define GRADC_VFMA_%s(c, s, b) ((gradc_v%s)_mm512_fmadd_%s(_mm512_set1_%s(s), (__m512%s)(b), (__m512%s)(c)))",
         T, T, sfx, sfx, sfx[1] == 'd' ? "d" : "", sfx[1] == 'd' ? "d" : "");
    line(o, 0, "#elif defined(__FMA__) && GRADC_VBYTES == 32");
    line(o, 0, "#include <immintrin.h>");
    line(o, 0, "#define GRADC_VFMA_%s(c, s, b) ((gradc_v%s)_mm256_fmadd_%s(_mm256_set1_%s(s), (__m256%s)(b), (__m256%s)(c)))",
         T, T, sfx, sfx, sfx[1] == 'd' ? "d" : "", sfx[1] == 'd' ? "d" : "");
    line(o, 0, "#else");
    line(o, 0, "#define GRADC_VFMA_%s(c, s, b) ((c) + (s) * (b))", T);
    line(o, 0, "#endif");
    line(o, 0, "#endif\n");
}

/* One matrix product of a kernel, its sizes constant:
 *   C(i,j) (+)= sum over k < Kd of A(i,k) B(k,j),  i < M, j < N
 * with A(i,k) = a[i*lda + k*ska] (any strides: it is read one scalar at a
 * time and broadcast), B(k,j) = b[k*ldb + j] and C(i,j) = c[i*ldc + j]
 * (contiguous in j: vector loads and stores). */
typedef struct Gemm {
    const char *a, *b, *c; /* base pointers, C expressions */
    long M, N, Kd;         /* sizes */
    long lda, ska;         /* A's strides along i and k */
    long ldb, ldc;         /* B's and C's row strides */
    int acc;               /* C += the product, else C = */
    int sym;               /* sizes and strides are the variables M, N, K, lda, ... */
    const char *at;        /* A transposed, at[k*M + i], or NULL: see emit_tail_t */
} Gemm;

enum { GEMM_MR = 8 };   /* rows of a register tile */
enum { GEMM_VMAX = 16 }; /* elements of the widest vector (64 bytes of float) */

/* The elements of scratch a product needs for its last columns: B's, packed
 * GEMM_VMAX to a row. */
static size_t gemm_scratch(long Kd)
{
    return (size_t)Kd * GEMM_VMAX;
}

/* a size or stride of a product as C text: the number, or its variable */
typedef struct GemmText {
    char M[24], N[24], K[24], lda[24], ska[24], ldb[24], ldc[24];
} GemmText;

static GemmText gemm_text(const Gemm *m)
{
    GemmText t;
    if (m->sym) {
        snprintf(t.M, sizeof t.M, "M");
        snprintf(t.N, sizeof t.N, "N");
        snprintf(t.K, sizeof t.K, "K");
        snprintf(t.lda, sizeof t.lda, "lda");
        snprintf(t.ska, sizeof t.ska, "ska");
        snprintf(t.ldb, sizeof t.ldb, "ldb");
        snprintf(t.ldc, sizeof t.ldc, "ldc");
    } else {
        snprintf(t.M, sizeof t.M, "%ld", m->M);
        snprintf(t.N, sizeof t.N, "%ld", m->N);
        snprintf(t.K, sizeof t.K, "%ld", m->Kd);
        snprintf(t.lda, sizeof t.lda, "%ld", m->lda);
        snprintf(t.ska, sizeof t.ska, "%ld", m->ska);
        snprintf(t.ldb, sizeof t.ldb, "%ld", m->ldb);
        snprintf(t.ldc, sizeof t.ldc, "%ld", m->ldc);
    }
    return t;
}

/* a tile's accumulators acc[R][nv] written to (or added to) C */
static void emit_tile_store(const OpEmit *o, const Gemm *m, int R, const char *nv, const char *cols, int ind)
{
    char V[32];
    GemmText t = gemm_text(m);
    snprintf(V, sizeof V, "gradc_v%s", o->T);
    line(o, 0, "#pragma GCC unroll 16");
    line(o, ind, "for (size_t r = 0; r < %d; r++) {", R);
    if (cols) {
        line(o, ind + 1, "%s *restrict cr = %s + (i0 + r) * %s + j0;", o->T, m->c, t.ldc);
        line(o, ind + 1, "for (size_t v = 0; v < %s; v++) cr[v] %s= acc[r][0][v];", cols, m->acc ? "+" : "");
    } else {
        line(o, 0, "#pragma GCC unroll 16");
        line(o, ind + 1, "for (int v = 0; v < %s; v++) {", nv);
        line(o, ind + 2, "%s *cp = (%s *)(%s + (i0 + r) * %s + j0 + v * VL);", V, V, m->c, t.ldc);
        line(o, ind + 2, "*cp %s= acc[r][v];", m->acc ? "+" : "");
        line(o, ind + 1, "}");
    }
    line(o, ind, "}");
}

/* B's row k, from column j0, as the tile code reads it: in place, or
 * packed in pk for the last columns */
static void emit_bk(const OpEmit *o, const Gemm *m, const char *cols, const char *k, int ind)
{
    GemmText t = gemm_text(m);
    if (cols)
        line(o, ind, "const %s *restrict bk = %s < kf ? %s + %s * %s + j0 : pk + %s * VL;", o->T, k, m->b, k, t.ldb, k);
    else
        line(o, ind, "const %s *restrict bk = %s + %s * %s + j0;", o->T, m->b, k, t.ldb);
}

/* A tile of one row: its products along k go to four sets of accumulators
 * in turn, added at the end, so that each add does not wait for the one
 * before (one row is a single chain otherwise: a weight gradient summed
 * over the batch). */
static void emit_row_tile(const OpEmit *o, const Gemm *m, const char *nv, const char *cols, int ind)
{
    char V[32];
    GemmText t = gemm_text(m);
    snprintf(V, sizeof V, "gradc_v%s", o->T);
    line(o, ind, "{");
    line(o, ind + 1, "%s acc[1][%s], acc1[%s], acc2[%s], acc3[%s];", V, nv, nv, nv, nv);
    line(o, 0, "#pragma GCC unroll 16");
    line(o, ind + 1, "for (int v = 0; v < %s; v++) acc[0][v] = acc1[v] = acc2[v] = acc3[v] = zero;", nv);
    line(o, ind + 1, "const %s *restrict ar = %s + i0 * %s;", o->T, m->a, t.lda);
    /* the rest starts where the fours end, stated: gcc then sees an empty
     * rest as empty (else -Waggressive-loop-optimizations on a clone of
     * vgemm whose K is a multiple of four) */
    line(o, ind + 1, "const size_t k4 = (%s) / 4 * 4;", t.K);
    line(o, ind + 1, "size_t k = 0;");
    line(o, ind + 1, "for (; k < k4; k += 4) {");
    static const char *set[4] = {"acc[0]", "acc1", "acc2", "acc3"};
    for (int u = 0; u < 4; u++) {
        char kk[32];
        snprintf(kk, sizeof kk, "(k + %d)", u);
        line(o, ind + 2, "{");
        emit_bk(o, m, cols, kk, ind + 3);
        line(o, ind + 3, "const %s s = ar[%s * %s];", o->T, kk, t.ska);
        line(o, 0, "#pragma GCC unroll 16");
        line(o, ind + 3, "for (int v = 0; v < %s; v++) %s[v] = GRADC_VFMA_%s(%s[v], s, *(const %s *)(bk + v * VL));", nv,
             set[u], o->T, set[u], V);
        line(o, ind + 2, "}");
    }
    line(o, ind + 1, "}");
    line(o, ind + 1, "for (k = k4; k < %s; k++) {", t.K);
    emit_bk(o, m, cols, "k", ind + 2);
    line(o, ind + 2, "const %s s = ar[k * %s];", o->T, t.ska);
    line(o, 0, "#pragma GCC unroll 16");
    line(o, ind + 2, "for (int v = 0; v < %s; v++) acc[0][v] = GRADC_VFMA_%s(acc[0][v], s, *(const %s *)(bk + v * VL));",
         nv, o->T, V);
    line(o, ind + 1, "}");
    line(o, 0, "#pragma GCC unroll 16");
    line(o, ind + 1, "for (int v = 0; v < %s; v++) acc[0][v] = (acc[0][v] + acc1[v]) + (acc2[v] + acc3[v]);", nv);
    emit_tile_store(o, m, 1, nv, cols, ind + 1);
    line(o, ind, "}");
}

/* A register tile: rows R from row i0, nv vectors from column j0, the
 * accumulators held in registers across the whole k loop; one broadcast
 * of A and nv loads of B feed R·nv fused multiply-adds. With cols (the
 * last columns, fewer than a vector) B's rows from kf on are the packed pk
 * and only cols columns of C are written. */
static void emit_tile(const OpEmit *o, const Gemm *m, int R, const char *nv, const char *cols, int ind)
{
    char V[32];
    GemmText t = gemm_text(m);
    snprintf(V, sizeof V, "gradc_v%s", o->T);
    if (R == 1) {
        emit_row_tile(o, m, nv, cols, ind);
        return;
    }
    line(o, ind, "{");
    line(o, ind + 1, "%s acc[%d][%s];", V, R, nv);
    line(o, 0, "#pragma GCC unroll 16");
    line(o, ind + 1, "for (size_t r = 0; r < %d; r++) {", R);
    line(o, 0, "#pragma GCC unroll 16");
    line(o, ind + 2, "for (int v = 0; v < %s; v++) acc[r][v] = zero;", nv);
    line(o, ind + 1, "}");
    line(o, ind + 1, "for (size_t k = 0; k < %s; k++) {", t.K);
    emit_bk(o, m, cols, "k", ind + 2);
    line(o, ind + 2, "const %s *restrict ak = %s + i0 * %s + k * %s;", o->T, m->a, t.lda, t.ska);
    line(o, ind + 2, "%s bv[%s];", V, nv);
    line(o, 0, "#pragma GCC unroll 16");
    line(o, ind + 2, "for (int v = 0; v < %s; v++) bv[v] = *(const %s *)(bk + v * VL);", nv, V);
    line(o, 0, "#pragma GCC unroll 16");
    line(o, ind + 2, "for (size_t r = 0; r < %d; r++) {", R);
    line(o, ind + 3, "const %s s = ak[r * %s];", o->T, t.lda);
    line(o, 0, "#pragma GCC unroll 16");
    line(o, ind + 3, "for (int v = 0; v < %s; v++) acc[r][v] = GRADC_VFMA_%s(acc[r][v], s, bv[v]);", nv, o->T);
    line(o, ind + 2, "}");
    line(o, ind + 1, "}");
    emit_tile_store(o, m, R, nv, cols, ind + 1);
    line(o, ind, "}");
}

/* every full tile of GEMM_MR rows at column j0, then one tile of the rows
 * left (with variable sizes: then one row at a time) */
static void emit_rows(const OpEmit *o, const Gemm *m, const char *nv, const char *cols, int ind)
{
    if (m->sym) {
        line(o, ind - 1, "{");
        line(o, ind, "const size_t mfull = M / %d * %d;", GEMM_MR, GEMM_MR);
        line(o, ind, "size_t i0 = 0;");
        line(o, ind, "for (; i0 < mfull; i0 += %d)", GEMM_MR);
        emit_tile(o, m, GEMM_MR, nv, cols, ind + 1);
        line(o, ind, "for (i0 = mfull; i0 < M; i0++)");
        emit_tile(o, m, 1, nv, cols, ind + 1);
        line(o, ind - 1, "}");
        return;
    }
    int R = m->M < GEMM_MR ? (int)m->M : GEMM_MR;
    long full = m->M / R * R;
    line(o, ind - 1, "{");
    line(o, ind, "for (size_t i0 = 0; i0 < %ld; i0 += %d)", full, R);
    emit_tile(o, m, R, nv, cols, ind + 1);
    if (full < m->M) {
        line(o, ind, "{");
        line(o, ind + 1, "const size_t i0 = %ld;", full);
        emit_tile(o, m, (int)(m->M - full), nv, cols, ind + 1);
        line(o, ind, "}");
    }
    line(o, ind - 1, "}");
}

/* The last columns (fewer than a vector) computed transposed, when A is
 * also at hand transposed (m->at) and M is a multiple of 4 vectors:
 * Cᵀ(j,i) = sum over k of B(k,j) Aᵀ(k,i), tiles of 4 columns of C by 4
 * vectors along i, so that the few columns cost a quarter of the work (and
 * of the time) of a tile of one vector along j whose lanes past them are
 * wasted. A convolution's 14 x 14 = 196 pixels are 12 vectors and 4. */
static void emit_tail_t(const OpEmit *o, const Gemm *m, int ind)
{
    char V[32];
    GemmText t = gemm_text(m);
    snprintf(V, sizeof V, "gradc_v%s", o->T);
    line(o, ind, "for (size_t jj = j0; jj < %s; jj += 4) {", t.N);
    line(o, ind + 1, "const size_t nj = %s - jj < 4 ? %s - jj : 4;", t.N, t.N);
    line(o, ind + 1, "for (size_t i0 = 0; i0 < %s; i0 += 4 * VL) {", t.M);
    line(o, ind + 2, "%s acc[4][4];", V);
    line(o, 0, "#pragma GCC unroll 16");
    line(o, ind + 2, "for (size_t r = 0; r < 4; r++) {");
    line(o, 0, "#pragma GCC unroll 16");
    line(o, ind + 3, "for (int v = 0; v < 4; v++) acc[r][v] = zero;");
    line(o, ind + 2, "}");
    line(o, ind + 2, "for (size_t k = 0; k < %s; k++) {", t.K);
    line(o, ind + 3, "const %s *restrict ak = %s + k * %s + i0;", o->T, m->at, t.M);
    line(o, ind + 3, "const %s *restrict bk = %s + k * %s + jj;", o->T, m->b, t.ldb);
    line(o, ind + 3, "%s av[4];", V);
    line(o, 0, "#pragma GCC unroll 16");
    line(o, ind + 3, "for (int v = 0; v < 4; v++) av[v] = *(const %s *)(ak + v * VL);", V);
    line(o, 0, "#pragma GCC unroll 16");
    line(o, ind + 3, "for (size_t r = 0; r < 4; r++) {");
    line(o, ind + 4, "const %s s = r < nj ? bk[r] : 0;", o->T);
    line(o, 0, "#pragma GCC unroll 16");
    line(o, ind + 4, "for (int v = 0; v < 4; v++) acc[r][v] = GRADC_VFMA_%s(acc[r][v], s, av[v]);", o->T);
    line(o, ind + 3, "}");
    line(o, ind + 2, "}");
    line(o, ind + 2, "for (size_t r = 0; r < nj; r++)");
    line(o, ind + 3, "for (int v = 0; v < 4; v++)");
    line(o, ind + 4, "for (int e = 0; e < VL; e++)");
    line(o, ind + 5, "%s[(i0 + (size_t)(v * VL + e)) * %s + jj + r] %s= acc[r][v][e];", m->c, t.ldc,
         m->acc ? "+" : "");
    line(o, ind + 1, "}");
    line(o, ind, "}");
}

/* The product; pk names gemm_scratch(Kd) elements of scratch. */
static void emit_gemm(const OpEmit *o, const Gemm *m, const char *pk, int ind)
{
    const char *T = o->T;
    GemmText t = gemm_text(m);
    line(o, ind, "/* %s[%s][%s] %s= sum over k < %s of %s(i,k) %s(k,j) */", m->c, t.M, t.N, m->acc ? "+" : "", t.K,
         m->a, m->b);
    line(o, 0, "#ifdef GRADC_VEC");
    line(o, ind, "{");
    line(o, ind + 1, "enum { VL = GRADC_VBYTES / (int)sizeof(%s) };", T);
    line(o, ind + 1, "const gradc_v%s zero = {0};", T);
    line(o, ind + 1, "size_t j0 = 0;");
    line(o, ind + 1, "/* register tiles of %d rows by GRADC_NV vectors, then by one vector */",
         m->sym || m->M >= GEMM_MR ? GEMM_MR : (int)m->M);
    line(o, ind + 1, "for (; j0 + GRADC_NV * VL <= %s; j0 += GRADC_NV * VL)", t.N);
    emit_rows(o, m, "GRADC_NV", NULL, ind + 2);
    line(o, 0, "#if GRADC_NV > 1");
    line(o, ind + 1, "for (; j0 + VL <= %s; j0 += VL)", t.N);
    emit_rows(o, m, "1", NULL, ind + 2);
    line(o, 0, "#endif");
    line(o, ind + 1, "if (j0 < %s) { /* the last columns, fewer than a vector */", t.N);
    if (m->at && !m->sym) {
        line(o, ind + 2, "if (%s %% (4 * VL) == 0) {", t.M);
        emit_tail_t(o, m, ind + 3);
        line(o, ind + 2, "} else {");
        ind++;
    }
    line(o, ind + 2, "const size_t nt = %s - j0;", t.N);
    line(o, ind + 2, "%s *restrict pk = %s;", T, pk);
    line(o, ind + 2, "/* rows of B whose whole vector lies inside B are read in place (the lanes");
    line(o, ind + 2, "   past nt are never written), the last ones packed in pk, zeros after */");
    line(o, ind + 2, "const size_t bend = (size_t)(%s - 1) * %s + %s; /* B's elements */", t.K, t.ldb, t.N);
    line(o, ind + 2, "size_t kf = bend >= j0 + VL ? (bend - j0 - VL) / %s + 1 : 0;", t.ldb);
    line(o, ind + 2, "if (kf > (size_t)%s) kf = (size_t)%s;", t.K, t.K);
    line(o, ind + 2, "for (size_t k = kf; k < %s; k++)", t.K);
    line(o, ind + 3, "for (size_t v = 0; v < VL; v++) pk[k * VL + v] = v < nt ? %s[k * %s + j0 + v] : 0;", m->b,
         t.ldb);
    emit_rows(o, m, "1", "nt", ind + 2);
    if (m->at && !m->sym) {
        ind--;
        line(o, ind + 2, "}");
    }
    line(o, ind + 1, "}");
    line(o, ind, "}");
    line(o, 0, "#else");
    line(o, ind, "for (size_t i = 0; i < %s; i++) {", t.M);
    line(o, ind + 1, "%s *restrict cr = %s + i * %s;", T, m->c, t.ldc);
    if (!m->acc)
        line(o, ind + 1, "for (size_t j = 0; j < %s; j++) cr[j] = 0;", t.N);
    line(o, ind + 1, "for (size_t k = 0; k < %s; k++) {", t.K);
    line(o, ind + 2, "const %s s = %s[i * %s + k * %s];", T, m->a, t.lda, t.ska);
    line(o, ind + 2, "const %s *restrict br = %s + k * %s;", T, m->b, t.ldb);
    line(o, ind + 2, "for (size_t j = 0; j < %s; j++) cr[j] += s * br[j];", t.N);
    line(o, ind + 1, "}");
    line(o, ind, "}");
    line(o, 0, "#endif");
}

void vec_prelude(FILE *out, const char *T, Graph *g)
{
    OpEmit o = {out, T, "", g, 0, NULL, {NULL, NULL}, NULL, 0, NULL, 0, NULL};
    emit_vec_prelude(&o);
}

void vec_gemm_function(FILE *out, const char *T, const char *prefix)
{
    OpEmit o = {out, T, prefix, NULL, 0, NULL, {NULL, NULL}, NULL, 0, NULL, 0, NULL};
    Gemm m = {"a", "b", "c", 0, 0, 0, 0, 0, 0, 0, 0, 1, NULL};
    line(&o, 0, "/* C = A·B for the small products: A(i,k) = a[i*lda + k*ska], B(k,j) = b[k*ldb + j],");
    line(&o, 0, "   C(i,j) = c[i*ldc + j]; scratch: K*16 elements */");
    line(&o, 0, "static void %svgemm(size_t M, size_t N, size_t K, const %s *a, size_t lda, size_t ska,", prefix, T);
    line(&o, 0, "    const %s *b, size_t ldb, %s *restrict c, size_t ldc, %s *restrict scratch)", T, T, T);
    line(&o, 0, "{");
    line(&o, 0, "#ifndef GRADC_VEC");
    line(&o, 1, "(void)scratch;");
    line(&o, 0, "#endif");
    emit_gemm(&o, &m, "scratch", 1);
    line(&o, 0, "}\n");
}

/* ------------------------------------------------------ im2col, col2im */

/* a 1x1 convolution of stride 1 without padding: x is its own im2col
 * matrix, and the input gradient is the product itself */
static int conv_direct(const Geo *G)
{
    return G->k == 1 && G->s == 1 && G->pt == 0 && G->pl == 0 && G->H == G->Ho && G->W == G->Wo;
}

static int conv_padded(const Geo *G)
{
    return G->pt > 0 || G->pl > 0 || (G->Ho - 1) * G->s + G->k > G->H || (G->Wo - 1) * G->s + G->k > G->W;
}

/* " * s" after an index, nothing for stride 1 */
static const char *stride_mul(int s)
{
    static char buf[32];
    if (s == 1)
        return "";
    snprintf(buf, sizeof buf, " * %d", s);
    return buf;
}

/* The rows and columns of the image the windows read, padding included:
 * the zero-padded copy xp of one example that im2col reads and col2im
 * writes when the convolution pads, else x itself. */
static int pad_rows(const Geo *G) { return (G->Ho - 1) * G->s + G->k; }
static int pad_cols(const Geo *G) { return (G->Wo - 1) * G->s + G->k; }

static long pad_size(const Geo *G)
{
    return conv_padded(G) ? (long)G->C * pad_rows(G) * pad_cols(G) : 0;
}

/* the rows and columns of the image the windows read from: the padded
 * copy's when the convolution pads, else x's */
static int read_rows(const Geo *G) { return conv_padded(G) ? pad_rows(G) : G->H; }
static int read_cols(const Geo *G) { return conv_padded(G) ? pad_cols(G) : G->W; }

/* the rows and columns of x that land inside them (x's last rows may lie
 * past every window) */
static int inside_rows(const Geo *G) { return G->H < read_rows(G) - G->pt ? G->H : read_rows(G) - G->pt; }
static int inside_cols(const Geo *G) { return G->W < read_cols(G) - G->pl ? G->W : read_cols(G) - G->pl; }

/* dst = src, each of O rows with its C·k·k columns moved between W's order
 * (c,ky,kx) and im2row's (ky,kx,c): to_row 1 writes dst in im2row's order */
static void emit_reorder(const OpEmit *o, const Geo *G, const char *dst, const char *src, int to_row)
{
    char w[96], r[96];
    snprintf(w, sizeof w, "[(o * %d + c) * %d + kk]", G->C, G->k * G->k);
    snprintf(r, sizeof r, "[o * %ld + kk * %d + c]", G->K, G->C);
    line(o, 1, "for (size_t o = 0; o < %d; o++)", G->O);
    line(o, 2, "for (size_t c = 0; c < %d; c++)", G->C);
    line(o, 3, "for (size_t kk = 0; kk < %d; kk++) /* (ky,kx) */", G->k * G->k);
    line(o, 4, "%s%s = %s%s;", dst, to_row ? r : w, src, to_row ? w : r);
}

/* xp[c][r][q] = x[c][r-pt][q-pl], 0 outside x: the zeros are written once
 * per call (emit_xp_decl), each example copies only the rows of x the
 * windows read, each of constant length. (A first version wrote each row's
 * zeros per example behind an `if (r < pt || ...) continue;`: gcc 12.2 at
 * -O3 -march=native vectorized that loop wrongly, so keep it branch-free.) */
static void emit_pad(const OpEmit *o, const Geo *G, int ind)
{
    int Hp = pad_rows(G), Wp = pad_cols(G), nrow = inside_rows(G), ncol = inside_cols(G);
    line(o, ind, "/* xp[c][r+%d][q+%d] = x[c][r][q], the zeros around written once */", G->pt, G->pl);
    line(o, ind, "for (size_t c = 0; c < %d; c++)", G->C);
    line(o, ind + 1, "for (size_t r = 0; r < %d; r++) {", nrow);
    line(o, ind + 2, "%s *restrict pr = xp + (c * %d + r + %d) * %d + %d;", o->T, Hp, G->pt, Wp, G->pl);
    line(o, ind + 2, "const %s *restrict xr = xb + (c * %d + r) * %d;", o->T, G->H, G->W);
    copy_run(o, ind + 2, ncol, "pr", "xr");
    line(o, ind + 1, "}");
}

/* im2col: col[(c,ky,kx)][(oy,ox)] = xp[c][oy·s+ky][ox·s+kx], rows of Wo
 * elements, contiguous reads for stride 1 */
static void emit_im2col(const OpEmit *o, const Geo *G, int ind)
{
    int Hp = read_rows(G), Wp = read_cols(G);
    if (conv_padded(G))
        emit_pad(o, G, ind);
    else
        line(o, ind, "const %s *restrict xp = xb; /* no padding */", o->T);
    line(o, ind, "/* im2col: col[(c,ky,kx)][(oy,ox)] = xp[c][oy*%d+ky][ox*%d+kx] */", G->s, G->s);
    line(o, ind, "for (size_t c = 0; c < %d; c++)", G->C);
    line(o, ind + 1, "for (size_t ky = 0; ky < %d; ky++)", G->k);
    line(o, ind + 2, "for (size_t kx = 0; kx < %d; kx++) {", G->k);
    line(o, ind + 3, "%s *restrict cr = col + ((c * %d + ky) * %d + kx) * %ld;", o->T, G->k, G->k, G->P);
    line(o, ind + 3, "for (size_t oy = 0; oy < %d; oy++) {", G->Ho);
    line(o, ind + 4, "const %s *restrict src = xp + (c * %d + oy * %d + ky) * %d + kx;", o->T, Hp, G->s, Wp);
    if (G->s == 1) {
        char d[64];
        snprintf(d, sizeof d, "cr + oy * %d", G->Wo);
        copy_run(o, ind + 4, G->Wo, d, "src");
    } else {
        line(o, ind + 4, "for (size_t ox = 0; ox < %d; ox++) cr[oy * %d + ox] = src[ox%s];", G->Wo, G->Wo,
             stride_mul(G->s));
    }
    line(o, ind + 3, "}");
    line(o, ind + 2, "}");
}

/* the padded image's place in the scratch, after at elements */
static void emit_xp_decl(const OpEmit *o, const Geo *G, long at)
{
    if (conv_padded(G)) {
        line(o, 1, "%s *restrict xp = scratch_ + %ld; /* [%d][%d][%d] one example, zero-padded */", o->T, at,
             G->C, pad_rows(G), pad_cols(G));
        line(o, 1, "for (size_t i = 0; i < %ld; i++) xp[i] = 0;", pad_size(G));
    }
}

/* -------------------------------------------------------- convolutions */

/* y[o][p] = sum over kk of W[o][kk] col[kk][p], per example */
static void emit_conv(const OpEmit *o, const Geo *G)
{
    const char *T = o->T;
    long CHW = (long)G->C * G->H * G->W, OP = (long)G->O * G->P;
    int direct = conv_direct(G);
    long ncol = direct ? 0 : G->K * G->P;
    emit_vec_prelude(o);
    head(o, "x_", "w_", "o_", "scratch_");
    if (direct)
        line(o, 1, "(void)scratch_;");
    else
        line(o, 1, "%s *restrict col = scratch_; /* [%ld][%ld] one example's im2col matrix */", T, G->K, G->P);
    emit_xp_decl(o, G, ncol);
    /* the weights transposed, once, for the last pixels (emit_tail_t) */
    line(o, 0, "#ifdef GRADC_VEC");
    line(o, 1, "%s *restrict wt = scratch_ + %ld; /* [%ld][%d] */", T, ncol + pad_size(G) + (long)gemm_scratch(G->K),
         G->K, G->O);
    line(o, 1, "if (%ld %% (GRADC_VBYTES / sizeof(%s)) != 0 && %d %% (4 * (GRADC_VBYTES / sizeof(%s))) == 0)", G->P, T,
         G->O, T);
    line(o, 2, "for (size_t o = 0; o < %d; o++)", G->O);
    line(o, 3, "for (size_t k = 0; k < %ld; k++) wt[k * %d + o] = w_[o * %ld + k];", G->K, G->O, G->K);
    line(o, 0, "#endif");
    line(o, 1, "for (size_t b = 0; b < %s; b++) {", G->nb ? "n" : "1");
    line(o, 2, "const %s *restrict xb = x_ + b * %ld;", T, CHW);
    line(o, 2, "%s *restrict yb = o_ + b * %ld;", T, OP);
    if (direct)
        line(o, 2, "const %s *restrict col = xb; /* a 1x1 convolution: x is its own im2col */", T);
    else
        emit_im2col(o, G, 2);
    char pk[64];
    snprintf(pk, sizeof pk, "scratch_ + %ld", ncol + pad_size(G));
    Gemm m = {"w_", "col", "yb", G->O, G->P, G->K, G->K, 1, G->P, G->P, 0, 0, "wt"};
    emit_gemm(o, &m, pk, 2);
    /* the epilogue: the example's output is still in cache */
    line(o, 2, "if (bias_ || relu_)");
    line(o, 3, "for (size_t o = 0; o < %d; o++) {", G->O);
    line(o, 4, "const %s bo = bias_ ? bias_[o] : 0;", T);
    line(o, 4, "%s *restrict yr = yb + o * %ld;", T, G->P);
    line(o, 4, "if (relu_)");
    line(o, 5, "for (size_t p = 0; p < %ld; p++) {", G->P);
    line(o, 6, "const %s v = yr[p] + bo;", T);
    line(o, 6, "yr[p] = v > 0 ? v : 0;");
    line(o, 5, "}");
    line(o, 4, "else");
    line(o, 5, "for (size_t p = 0; p < %ld; p++) yr[p] += bo;", G->P);
    line(o, 3, "}");
    line(o, 1, "}");
    line(o, 0, "}\n");
}

/* The example as xh[r][q][c], channels last (C > 1 or padding: a copy,
 * zero-padded like xp; else x itself), then im2row: row[(oy,ox)][(ky,kx,c)]
 * = xh[oy·s+ky][ox·s+kx][c], one row of C·k·k elements per output pixel,
 * its columns in (ky,kx,c) order. For one (pixel, ky) the k·C elements lie
 * side by side in xh: a row is k plain copies. */
static int row_copy(const Geo *G)
{
    return G->C > 1 || conv_padded(G);
}

static void emit_im2row(const OpEmit *o, const Geo *G, int ind)
{
    int Wp = read_cols(G);
    if (row_copy(G)) {
        line(o, ind, "/* xh[r+%d][q+%d][c] = x[c][r][q] */", G->pt, G->pl);
        line(o, ind, "for (size_t r = 0; r < %d; r++)", inside_rows(G));
        line(o, ind + 1, "for (size_t q = 0; q < %d; q++) {", inside_cols(G));
        line(o, ind + 2, "%s *restrict hp = xh + ((r + %d) * %d + q + %d) * %d;", o->T, G->pt, Wp, G->pl, G->C);
        line(o, ind + 2, "for (size_t c = 0; c < %d; c++) hp[c] = xb[(c * %d + r) * %d + q];", G->C, G->H, G->W);
        line(o, ind + 1, "}");
    } else {
        line(o, ind, "const %s *restrict xh = xb; /* one channel, no padding */", o->T);
    }
    long run = (long)G->k * G->C;
    line(o, ind, "/* im2row: row[(oy,ox)][(ky,kx,c)] = xh[oy*%d+ky][ox*%d+kx][c] */", G->s, G->s);
    line(o, ind, "for (size_t oy = 0; oy < %d; oy++)", G->Ho);
    line(o, ind + 1, "for (size_t ox = 0; ox < %d; ox++) {", G->Wo);
    line(o, ind + 2, "%s *restrict rr = row + (oy * %d + ox) * %ld;", o->T, G->Wo, G->K);
    line(o, ind + 2, "for (size_t ky = 0; ky < %d; ky++) {", G->k);
    line(o, ind + 3, "const %s *restrict src = xh + ((oy * %d + ky) * %d + ox * %d) * %d;", o->T, G->s, Wp, G->s, G->C);
    vec_run(o, ind + 3, run, "rr + ky * %ld", run, "=", "src");
    line(o, ind + 2, "}");
    line(o, ind + 1, "}");
}

/* dW[o][kk] = sum over the batch and p of dy[o][p] row[p][kk]: per example
 * dw += dy · row (dw: dW with its columns in row's (ky,kx,c) order, dW
 * itself for one channel), dy read in place; dW = dw's columns put back in
 * (c,ky,kx) order at the end. A 1x1 convolution of stride 1 (x is its own
 * im2col, not its own im2row) goes through emit_conv_bwd_w_direct. */
static void emit_conv_bwd_w_direct(const OpEmit *o, const Geo *G);

static long row_scratch(const Geo *G)
{
    long hwc = (long)read_rows(G) * read_cols(G) * G->C;
    return G->K * G->P + (row_copy(G) ? hwc : 0) + (G->C > 1 ? G->K * G->O : 0);
}

static void emit_conv_bwd_w(const OpEmit *o, const Geo *G)
{
    const char *T = o->T;
    long CHW = (long)G->C * G->H * G->W, OP = (long)G->O * G->P;
    if (conv_direct(G)) {
        emit_conv_bwd_w_direct(o, G);
        return;
    }
    int Hp = read_rows(G), Wp = read_cols(G);
    long at = G->K * G->P;
    emit_vec_prelude(o);
    head(o, "x_", "dy_", "o_", "scratch_");
    line(o, 1, "%s *restrict row = scratch_; /* [%ld][%ld] one example's im2row matrix */", T, G->P, G->K);
    if (row_copy(G)) {
        line(o, 1, "%s *restrict xh = scratch_ + %ld; /* [%d][%d][%d] one example, channels last */", T, at, Hp,
             Wp, G->C);
        line(o, 1, "for (size_t i = 0; i < %ld; i++) xh[i] = 0; /* the padding */", (long)Hp * Wp * G->C);
        at += (long)Hp * Wp * G->C;
    }
    if (G->C > 1) {
        line(o, 1, "%s *restrict dw = scratch_ + %ld; /* [%d][%ld] dW, columns in (ky,kx,c) order */", T, at, G->O,
             G->K);
        at += G->K * G->O;
    } else {
        line(o, 1, "%s *restrict dw = o_; /* one channel: (ky,kx,c) is (c,ky,kx) */", T);
    }
    line(o, 1, "for (size_t i = 0; i < %ld; i++) dw[i] = 0;", G->K * G->O);
    line(o, 1, "for (size_t b = 0; b < %s; b++) {", G->nb ? "n" : "1");
    line(o, 2, "const %s *restrict xb = x_ + b * %ld;", T, CHW);
    line(o, 2, "const %s *restrict dyb = dy_ + b * %ld;", T, OP);
    emit_im2row(o, G, 2);
    char pk[64];
    snprintf(pk, sizeof pk, "scratch_ + %ld", at);
    Gemm m = {"dyb", "row", "dw", G->O, G->K, G->P, G->P, 1, G->K, G->K, 1, 0, NULL};
    emit_gemm(o, &m, pk, 2);
    line(o, 1, "}");
    if (G->C > 1)
        emit_reorder(o, G, "o_", "dw", 0);
    line(o, 0, "}\n");
}

/* a 1x1 convolution of stride 1: dW[o][kk] = sum over the batch and p of
 * dy[o][p] x[kk][p]: per example dWT[kk][o] += x[kk][:] · dyT[:][o], dy
 * transposed first so that the product's rows run along o; dW = dWT
 * transposed at the end */
static void emit_conv_bwd_w_direct(const OpEmit *o, const Geo *G)
{
    const char *T = o->T;
    long CHW = (long)G->C * G->H * G->W, OP = (long)G->O * G->P;
    emit_vec_prelude(o);
    head(o, "x_", "dy_", "o_", "scratch_");
    line(o, 1, "%s *restrict dyT = scratch_ + 0; /* [%ld][%d] */", T, G->P, G->O);
    line(o, 1, "%s *restrict dWT = scratch_ + %ld; /* [%ld][%d] */", T, G->P * G->O, G->K, G->O);
    line(o, 1, "for (size_t i = 0; i < %ld; i++) dWT[i] = 0;", G->K * G->O);
    line(o, 1, "for (size_t b = 0; b < %s; b++) {", G->nb ? "n" : "1");
    line(o, 2, "const %s *restrict xb = x_ + b * %ld;", T, CHW);
    line(o, 2, "const %s *restrict dyb = dy_ + b * %ld;", T, OP);
    line(o, 2, "const %s *restrict col = xb; /* a 1x1 convolution: x is its own im2col */", T);
    line(o, 2, "for (size_t p = 0; p < %ld; p++)", G->P);
    line(o, 3, "for (size_t o = 0; o < %d; o++) dyT[p * %d + o] = dyb[o * %ld + p];", G->O, G->O, G->P);
    char pk[64];
    snprintf(pk, sizeof pk, "scratch_ + %ld", G->P * G->O + G->K * G->O);
    Gemm m = {"col", "dyT", "dWT", G->K, G->O, G->P, G->P, 1, G->O, G->O, 1, 0, NULL};
    emit_gemm(o, &m, pk, 2);
    line(o, 1, "}");
    line(o, 1, "for (size_t o = 0; o < %d; o++)", G->O);
    line(o, 2, "for (size_t kk = 0; kk < %ld; kk++) o_[o * %ld + kk] = dWT[kk * %d + o];", G->K, G->K, G->O);
    line(o, 0, "}\n");
}

/* dx = the transposed convolution of dy with W. A 1x1 convolution of
 * stride 1: dx = Wᵀ · dy, per example. Otherwise, per example, the
 * gradient of the im2row matrix drow[p][(ky,kx,c)] = sum over o of dy[o][p]
 * wr[o][(ky,kx,c)] (wr: W with its columns in im2row's order, once per
 * call; dy read in place), then row2im adds each row back onto the k runs
 * of k·C elements its windows read in dxh[r][q][c] (channels last,
 * padded), and dx is the inside of dxh, channels first again. */
static long rowx_scratch(const Geo *G)
{
    return G->K * G->P + (long)read_rows(G) * read_cols(G) * G->C + G->K * G->O;
}

static void emit_conv_bwd_x(const OpEmit *o, const Geo *G)
{
    const char *T = o->T;
    long CHW = (long)G->C * G->H * G->W, OP = (long)G->O * G->P;
    emit_vec_prelude(o);
    head(o, "dy_", "w_", "o_", "scratch_");
    if (conv_direct(G)) {
        line(o, 1, "for (size_t b = 0; b < %s; b++) {", G->nb ? "n" : "1");
        line(o, 2, "const %s *restrict dyb = dy_ + b * %ld;", T, OP);
        line(o, 2, "%s *restrict dxb = o_ + b * %ld;", T, CHW);
        Gemm m = {"w_", "dyb", "dxb", G->K, G->P, G->O, 1, G->K, G->P, G->P, 0, 0, NULL};
        emit_gemm(o, &m, "scratch_", 2);
        line(o, 1, "}");
        line(o, 0, "}\n");
        return;
    }
    int Hp = read_rows(G), Wp = read_cols(G), nrow = inside_rows(G), ncol = inside_cols(G);
    long HWC = (long)Hp * Wp * G->C, run = (long)G->k * G->C;
    line(o, 1, "%s *restrict drow = scratch_; /* [%ld][%ld] the gradient of one example's im2row matrix */", T,
         G->P, G->K);
    line(o, 1, "%s *restrict dxh = scratch_ + %ld; /* [%d][%d][%d] dx, channels last, padded */", T, G->K * G->P,
         Hp, Wp, G->C);
    line(o, 1, "%s *restrict wr = scratch_ + %ld; /* [%d][%ld] W, columns in (ky,kx,c) order */", T,
         G->K * G->P + HWC, G->O, G->K);
    emit_reorder(o, G, "wr", "w_", 1);
    line(o, 1, "for (size_t b = 0; b < %s; b++) {", G->nb ? "n" : "1");
    line(o, 2, "const %s *restrict dyb = dy_ + b * %ld;", T, OP);
    line(o, 2, "%s *restrict dxb = o_ + b * %ld;", T, CHW);
    char pk[64];
    snprintf(pk, sizeof pk, "scratch_ + %ld", rowx_scratch(G));
    Gemm m = {"dyb", "wr", "drow", G->P, G->K, G->O, 1, G->P, G->K, G->K, 0, 0, NULL};
    emit_gemm(o, &m, pk, 2);
    line(o, 2, "for (size_t i = 0; i < %ld; i++) dxh[i] = 0;", HWC);
    line(o, 2, "/* row2im: dxh[oy*%d+ky][ox*%d+kx][c] += drow[(oy,ox)][(ky,kx,c)] */", G->s, G->s);
    line(o, 2, "for (size_t oy = 0; oy < %d; oy++)", G->Ho);
    line(o, 3, "for (size_t ox = 0; ox < %d; ox++) {", G->Wo);
    line(o, 4, "const %s *restrict rr = drow + (oy * %d + ox) * %ld;", T, G->Wo, G->K);
    line(o, 4, "for (size_t ky = 0; ky < %d; ky++) {", G->k);
    line(o, 5, "%s *restrict dst = dxh + ((oy * %d + ky) * %d + ox * %d) * %d;", T, G->s, Wp, G->s, G->C);
    vec_run(o, 5, run, "dst", 0, "+=", "rr + ky * %ld", run);
    line(o, 4, "}");
    line(o, 3, "}");
    line(o, 2, "/* dx[c][r][q] = dxh[r+%d][q+%d][c] (rows and columns no window reads get 0) */", G->pt, G->pl);
    if (nrow < G->H || ncol < G->W)
        line(o, 2, "for (size_t i = 0; i < %ld; i++) dxb[i] = 0;", CHW);
    line(o, 2, "for (size_t r = 0; r < %d; r++)", nrow);
    line(o, 3, "for (size_t q = 0; q < %d; q++) {", ncol);
    line(o, 4, "const %s *restrict hp = dxh + ((r + %d) * %d + q + %d) * %d;", T, G->pt, Wp, G->pl, G->C);
    line(o, 4, "for (size_t c = 0; c < %d; c++) dxb[(c * %d + r) * %d + q] = hp[c];", G->C, G->H, G->W);
    line(o, 3, "}");
    line(o, 1, "}");
    line(o, 0, "}\n");
}

/* dy to the first maximum of each window, every other element 0; with
 * relu_ the relu_bwd of the pooled input itself (x > 0 ? dy : 0, where x
 * at the maximum is the maximum m). The windows do not overlap (the
 * stride is the window), so each is written whole, without zeroing the
 * output first; only the rows and columns no window covers are zeroed,
 * when there are any. The choices are bit masks on the values' bits
 * (through a union), not conditionals: gcc turns `v > m ? v : m` into
 * branches here, mispredicted half the time, and then cannot vectorize
 * the loop over a row's windows; written with masks it does (about 8x
 * faster at -O3 -march=native for M5's first pool). */
static void emit_maxpool_bwd(const OpEmit *o, const Geo *G, int S, const char *L)
{
    const char *T = o->T;
    const char *I = strcmp(T, "double") == 0 ? "int64_t" : "int32_t";
    long HW = (long)G->H * G->W, PW = (long)G->Ho * G->Wo;
    line(o, 1, "typedef union { %s f; %s i; } bits; /* a value and its bits */", T, I);
    if (G->H % S || G->W % S)
        line(o, 1, "for (size_t i = 0; i < (%s) * %ld; i++) o_[i] = 0;", L, HW);
    line(o, 1, "const %s keep0 = -(%s)!relu_; /* all ones: no relu, every maximum passes */", I, I);
    line(o, 1, "for (size_t l = 0; l < %s; l++)", L);
    line(o, 2, "for (size_t oy = 0; oy < %d; oy++) {", G->Ho);
    line(o, 3, "const %s *restrict ar = a_ + l * %ld + oy * %ld; /* the windows' first row */", T, HW, (long)S * G->W);
    line(o, 3, "%s *restrict or_ = o_ + l * %ld + oy * %ld;", T, HW, (long)S * G->W);
    line(o, 3, "const %s *restrict dr = dy_ + l * %ld + oy * %d;", T, PW, G->Wo);
    /* clang vectorizes this loop 8 or 16 wide, and a row of windows is
     * short (14 in M5), so most of it ran in the scalar remainder */
    if (G->Wo >= 4) {
        line(o, 0, "#if defined(__clang__)");
        line(o, 0, "#pragma clang loop vectorize_width(4)");
        line(o, 0, "#endif");
    }
    line(o, 3, "for (size_t ox = 0; ox < %d; ox++) {", G->Wo);
    line(o, 4, "bits m, v;");
    line(o, 4, "m.f = ar[ox * %d];", S);
    line(o, 4, "%s best = 0; /* the first maximum: replaced only by a larger value */", I);
    line(o, 4, "for (size_t dy = 0; dy < %d; dy++)", S);
    line(o, 5, "for (size_t dx = 0; dx < %d; dx++) {", S);
    line(o, 6, "v.f = ar[dy * %d + ox * %d + dx];", G->W, S);
    line(o, 6, "const %s gt = -(%s)(v.f > m.f);", I, I);
    line(o, 6, "best ^= (best ^ (%s)(dy * %d + dx)) & gt;", I, S);
    line(o, 6, "m.i ^= (m.i ^ v.i) & gt;");
    line(o, 5, "}");
    line(o, 4, "bits g;");
    line(o, 4, "g.f = dr[ox];");
    line(o, 4, "g.i &= -(%s)(m.f > 0) | keep0;", I);
    line(o, 4, "for (size_t dy = 0; dy < %d; dy++)", S);
    line(o, 5, "for (size_t dx = 0; dx < %d; dx++) {", S);
    line(o, 6, "bits w;");
    line(o, 6, "w.i = g.i & -(%s)(best == (%s)(dy * %d + dx));", I, I, S);
    line(o, 6, "or_[dy * %d + ox * %d + dx] = w.f;", G->W, S);
    line(o, 5, "}");
    line(o, 3, "}");
    line(o, 2, "}");
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
    if (x->op == OP_MAXPOOL_BWD) {
        emit_maxpool_bwd(o, G, S, L);
        return;
    }
    if (!fwd)
        line(o, 1, "for (size_t i = 0; i < (%s) * %ld; i++) o_[i] = 0;", L, HW);
    line(o, 1, "for (size_t l = 0; l < %s; l++)", L);
    line(o, 2, "for (size_t oy = 0; oy < %d; oy++)", G->Ho);
    line(o, 3, "for (size_t ox = 0; ox < %d; ox++) {", G->Wo);
    line(o, 4, "const size_t at = l * %ld + oy * %ld + ox * %d; /* the window's corner */", HW,
         (long)S * G->W, S);
    if (x->op == OP_MAXPOOL || x->op == OP_MAXPOOL_BWD) {
        line(o, 4, "const %s *restrict wp = a_ + at;", T);
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
    if (!o->train || (o->train == 2 && x->op == OP_DROPOUT)) {
        if (o->train == 2) /* the mode is the function's argument train */
            line(o, 2, "if (!train) {");
        line(o, 2 + (o->train == 2), "for (size_t i = 0; i < %s; i++) o_[i] = a_[i]; /* identity outside training */",
             L);
        if (!o->train) {
            line(o, 1, "}");
            return;
        }
        line(o, 2, "} else {");
    }
    int in = o->train == 2 && x->op == OP_DROPOUT;
    line(o, 2 + in, "/* inverted dropout: keep with probability %.17g, scaled by 1/(1-p) */", 1 - x->f);
    line(o, 2 + in, "const uint64_t site = %smix(seed ^ 0x%016llXu);", o->prefix,
         (unsigned long long)(0xD1B54A32D192ED03ull * (uint64_t)(x->ia[0] + 1)));
    line(o, 2 + in, "for (size_t i = 0; i < %s; i++)", L);
    line(o, 3 + in, "o_[i] = %smix(site + 0x9E3779B97F4A7C15u * (uint64_t)i) >> 32 >= %luu ? a_[i] * (%s)%.17g : 0;",
         o->prefix, dropout_threshold(x->f), T, 1.0 / (1.0 - x->f));
    if (in)
        line(o, 2, "}");
    line(o, 1, "}");
}

void conv_emit(const OpEmit *o)
{
    Node *x = N(o->g, o->r);
    if (x->op == OP_DROPOUT || x->op == OP_DROPOUT_BWD) {
        emit_dropout(o, x);
        return;
    }
    char name[128], ep[96] = "";
    if (x->op == OP_CONV2D)
        snprintf(ep, sizeof ep, ", %s, %d", o->bias ? o->bias : "NULL", o->relu);
    else if (x->op == OP_MAXPOOL_BWD)
        snprintf(ep, sizeof ep, ", %d", o->relu);
    line(o, 1, "%s(%s, %s, %s, %s, n%s);", kernel_name(o, name, sizeof name), o->in[0],
         o->in[1] ? o->in[1] : "NULL", o->dst, o->scratch ? o->scratch : "NULL", ep);
}

int conv_fusable(Graph *g, Ref r, Ref b)
{
    Node *x = N(g, r);
    if (x->op == OP_MAXPOOL_BWD)
        return b == x->in[0];
    if (x->op != OP_CONV2D)
        return 0;
    Shape s = N(g, b)->shape;
    int O = x->shape.dim[x->shape.rank - 3];
    if (shape_has_batch(s))
        return 0;
    return s.rank == 3 && s.dim[0] == O && s.dim[1] == 1 && s.dim[2] == 1;
}

void conv_emit_kernel(const OpEmit *o)
{
    Node *x = N(o->g, o->r);
    Geo G = geo(o->g, o->r);
    OpEmit k = *o;
    k.scratch = conv_scratch(o->g, o->r) ? "scratch_" : NULL;
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
