/*
 * norm.c: normalization: layer_norm and batch_norm.
 *
 * Each op's knowledge sits here together, as conv.c's family does: the
 * shape rules and builders sema.c lowers the calls with, the gradient rules
 * grad.c applies, the scratch plan.c reserves, the FLOPs the stats count and
 * the C emit_c.c writes for each node. The ops are described in ops.def.
 *
 * layer_norm(x) normalizes each row of the last D elements of x:
 *
 *   LN_STATS(x)              the row's mean and 1/σ = 1/sqrt(var + eps), var
 *                            the biased variance (as PyTorch's)
 *   LAYERNORM(x, st)         x̂ = (x - mean) / σ; its kernel computes the
 *                            statistics too, in one pass over the row (sums
 *                            of x - x0 and of its squares, x0 the row's first
 *                            element, which keeps the variance's digits where
 *                            the mean is large), while the row is in cache
 *   LAYERNORM_BWD(x̂, dy, st) dx = (1/σ)(dy - mean(dy) - x̂·mean(dy·x̂)) per
 *                            row: the closed form, from the saved 1/σ and the
 *                            output itself
 *
 * batch_norm(x) of x [B, C, ...] normalizes per channel C over the batch
 * and the other axes (for [F]: per feature over the batch), as PyTorch's
 * BatchNorm1d and BatchNorm2d. In training the statistics are the batch's,
 * and the gradient goes through them (the same closed form, the means over
 * the batch and the other axes); loss_grad also updates the running mean
 * and variance in the model's state (momentum 0.1; the variance's update
 * uses the unbiased batch variance, as PyTorch). In evaluation and predict
 * the running statistics stand instead:
 *
 *   BN_STATS(x)              [3, C]: mean, 1/σ, the biased variance; in
 *                            evaluation the running mean and 1/σ of the
 *                            running variance
 *   BATCHNORM(x, st)         (x - mean) / σ per channel
 *   BN_BWD(x̂, dy, st)        dx, with 2·C elements of scratch for the means
 *
 * With one value per channel (a batch of one on [F]) the batch variance is
 * 0: the output is 0, its gradient 0, and the running variance keeps its
 * value (its unbiased estimate is undefined there; PyTorch raises).
 *
 * Every loop runs over constant sizes but the batch; sums go through eight
 * partial sums, so the C compiler vectorizes them without reassociating.
 */
#include "gradc.h"

#include <math.h>
#include <string.h>

enum { LANES = 8 }; /* partial sums of a row in double (in float twice as many): a 64-byte vector */

/* ----------------------------------------------------------- builders */

Ref g_layer_norm(Graph *g, Ref x, int d, double eps, Loc loc)
{
    Shape xs = N(g, x)->shape, ss = xs;
    /* the statistics' shape: x's leading axes (those not normalized), then 2 */
    int k = xs.rank, prod = 1;
    while (k > 0 && prod < d && xs.dim[k - 1] != DIM_B)
        prod *= xs.dim[--k];
    ss.rank = k + 1;
    ss.dim[k] = 2;
    int ia[4] = {d, 0, 0, 0};
    Ref in1[1] = {x};
    Ref st = node_make(g, OP_LN_STATS, ss, in1, eps, ia, loc);
    Ref in2[2] = {x, st};
    return node_make(g, OP_LAYERNORM, xs, in2, eps, ia, loc);
}

Ref g_batch_norm(Graph *g, Ref x, double eps, double momentum, size_t state_off, int site, Loc loc)
{
    Shape xs = N(g, x)->shape;
    int C = xs.dim[1], P = 1;
    for (int i = 2; i < xs.rank; i++)
        P *= xs.dim[i];
    int ia[4] = {C, P, (int)state_off, site};
    Ref in1[1] = {x};
    Ref st = node_make2(g, OP_BN_STATS, shape2(3, C), in1, eps, momentum, ia, loc);
    Ref in2[2] = {x, st};
    return node_make2(g, OP_BATCHNORM, xs, in2, eps, momentum, ia, loc);
}

int norm_op(Op op)
{
    return op >= OP_LN_STATS && op <= OP_BN_BWD;
}

int norm_has_state(const Model *m)
{
    return m->state_count > 0;
}

/* ------------------------------------------------------ gradient rules */

void norm_grad(Graph *g, Ref r, Ref dy, const unsigned char *needs, Ref d[2])
{
    Node x = *N(g, r); /* a copy: node_make may add chunks */
    d[0] = d[1] = 0;
    switch (x.op) {
    case OP_LAYERNORM: case OP_BATCHNORM: {
        /* the closed form through the statistics: the adjoint of x alone
         * (the statistics get none of their own) */
        if (!needs[x.in[0]])
            return;
        Ref in[3] = {r, dy, x.in[1]};
        d[0] = node_make2(g, x.op == OP_LAYERNORM ? OP_LAYERNORM_BWD : OP_BN_BWD, N(g, x.in[0])->shape, in, x.f,
                          x.f2, x.ia, x.loc);
        return;
    }
    case OP_LN_STATS: case OP_BN_STATS:
        return; /* their readers' rules include them */
    default:
        die("internal error: no gradient rule for %s", op_name[x.op]);
    }
}

/* ------------------------------------------------------ scratch, flops */

size_t norm_scratch(Graph *g, Ref r)
{
    Node *x = N(g, r);
    return x->op == OP_BN_BWD ? 2 * (size_t)x->ia[0] : 0;
}

double norm_flops(Graph *g, Ref r, int batch)
{
    Node *x = N(g, r);
    Shape s = N(g, x->in[0])->shape;
    double n = (double)shape_numel_static(s) * (shape_has_batch(s) ? batch : 1);
    switch (x->op) {
    case OP_LN_STATS: case OP_BN_STATS: return 4 * n;
    case OP_LAYERNORM: case OP_BATCHNORM: return 2 * n;
    default: return 7 * n;
    }
}

/* ------------------------------------------------------------ emission */

static void line(const NormEmit *o, int indent, const char *fmt, ...) GRADC_PRINTF(3, 4);
static void line(const NormEmit *o, int indent, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit_vline(o->out, indent, fmt, ap);
    va_end(ap);
}

static const char *fsuf(const NormEmit *o)
{
    return strcmp(o->T, "double") ? "f" : "";
}

/* "n * k", "n" or "k": the rows of k for a batched shape */
static const char *count(Shape s, long per, char *buf, size_t n)
{
    long k = (long)shape_numel_static(s) / per;
    if (shape_has_batch(s) && k == 1)
        snprintf(buf, n, "n");
    else if (shape_has_batch(s))
        snprintf(buf, n, "n * %ld", k);
    else
        snprintf(buf, n, "%ld", k);
    return buf;
}

/* sums over the d elements at row pointers: s_ += u and q_ += v (C
 * expressions of j_) through LANES partial sums, then S_ and Q_ */
static void lane_sums(const NormEmit *o, int ind, long d, const char *u, const char *v, const char *setup)
{
    const char *T = o->T;
    int LN = strcmp(T, "double") ? 2 * LANES : LANES;
    long d8 = d / LN * LN;
    line(o, ind, "%s s_[%d] = {0}, q_[%d] = {0};", T, LN, LN);
    if (d8) {
        line(o, ind, "for (size_t j_ = 0; j_ < %ld; j_ += %d)", d8, LN);
        line(o, ind + 1, "for (size_t l_ = 0; l_ < %d; l_++) {", LN);
        line(o, ind + 2, "const size_t i8_ = j_ + l_;");
        line(o, ind + 2, "%s", setup);
        line(o, ind + 2, "s_[l_] += %s;", u);
        line(o, ind + 2, "q_[l_] += %s;", v);
        line(o, ind + 1, "}");
    }
    if (d8 < d) {
        line(o, ind, "for (size_t i8_ = %ld; i8_ < %ld; i8_++) {", d8, d);
        line(o, ind + 1, "%s", setup);
        line(o, ind + 1, "s_[0] += %s;", u);
        line(o, ind + 1, "q_[0] += %s;", v);
        line(o, ind, "}");
    }
    line(o, ind, "%s S_ = 0, Q_ = 0;", T);
    line(o, ind, "for (size_t l_ = 0; l_ < %d; l_++) {", LN);
    line(o, ind + 1, "S_ += s_[l_];");
    line(o, ind + 1, "Q_ += q_[l_];");
    line(o, ind, "}");
}

static void emit_layer_norm(const NormEmit *o, Node *x)
{
    const char *T = o->T, *f = fsuf(o);
    long D = x->ia[0];
    char R[64];
    count(x->shape, D, R, sizeof R);
    line(o, 1, "{");
    line(o, 2, "/* per row of %ld: the sums of x - x0 and of its squares in one pass (x0 the row's", D);
    line(o, 2, " * first element), then (x - mean) / sqrt(var + %g) */", x->f);
    line(o, 2, "const %s *restrict a_ = %s;", T, o->in[0]);
    line(o, 2, "%s *restrict st_ = %s;", T, o->in[1]);
    line(o, 2, "%s *restrict o_ = %s;", T, o->dst);
    line(o, 2, "for (size_t i_ = 0; i_ < %s; i_++) {", R);
    line(o, 3, "const %s *restrict xr_ = a_ + i_ * %ld;", T, D);
    line(o, 3, "%s *restrict yr_ = o_ + i_ * %ld;", T, D);
    line(o, 3, "const %s k0_ = xr_[0];", T);
    lane_sums(o, 3, D, "u_", "u_ * u_", arena_printf(o->g->arena, "const %s u_ = xr_[i8_] - k0_;", T));
    line(o, 3, "const %s m_ = S_ * (%s)%.17g;", T, T, 1.0 / (double)D);
    line(o, 3, "const %s var_ = Q_ * (%s)%.17g - m_ * m_;", T, T, 1.0 / (double)D);
    line(o, 3, "const %s mean_ = k0_ + m_;", T);
    line(o, 3, "const %s rstd_ = 1 / sqrt%s((var_ > 0 ? var_ : 0) + (%s)%.17g);", T, f, T, x->f);
    line(o, 3, "st_[2 * i_] = mean_;");
    line(o, 3, "st_[2 * i_ + 1] = rstd_;");
    line(o, 3, "for (size_t j_ = 0; j_ < %ld; j_++)", D);
    line(o, 4, "yr_[j_] = (xr_[j_] - mean_) * rstd_;");
    line(o, 2, "}");
    line(o, 1, "}");
}

static void emit_layer_norm_bwd(const NormEmit *o, Node *x)
{
    const char *T = o->T;
    long D = x->ia[0];
    char R[64];
    count(x->shape, D, R, sizeof R);
    line(o, 1, "{");
    line(o, 2, "/* per row: dx = (1/σ)(dy - mean(dy) - x̂·mean(dy·x̂)), x̂ the output, 1/σ saved */");
    line(o, 2, "const %s *restrict y_ = %s;", T, o->in[0]);
    line(o, 2, "const %s *restrict dy_ = %s;", T, o->in[1]);
    line(o, 2, "const %s *restrict st_ = %s;", T, o->in[2]);
    line(o, 2, "%s *restrict o_ = %s;", T, o->dst);
    line(o, 2, "for (size_t i_ = 0; i_ < %s; i_++) {", R);
    line(o, 3, "const %s *restrict yr_ = y_ + i_ * %ld;", T, D);
    line(o, 3, "const %s *restrict dyr_ = dy_ + i_ * %ld;", T, D);
    line(o, 3, "%s *restrict dxr_ = o_ + i_ * %ld;", T, D);
    lane_sums(o, 3, D, "dyr_[i8_]", "dyr_[i8_] * yr_[i8_]", "/* the sums of dy and dy·x̂ */");
    line(o, 3, "const %s m1_ = S_ * (%s)%.17g, m2_ = Q_ * (%s)%.17g, rstd_ = st_[2 * i_ + 1];", T, T,
         1.0 / (double)D, T, 1.0 / (double)D);
    line(o, 3, "for (size_t j_ = 0; j_ < %ld; j_++)", D);
    line(o, 4, "dxr_[j_] = rstd_ * (dyr_[j_] - m1_ - yr_[j_] * m2_);");
    line(o, 2, "}");
    line(o, 1, "}");
}

/* the loops over the batch and the channels of x [n, C, P], with the body
 * over p (or the element, for P = 1) at e_ = (b_ * C + c_) * P + p_ */
static void bn_loops_open(const NormEmit *o, long C, long P)
{
    line(o, 2, "for (size_t b_ = 0; b_ < n; b_++)");
    line(o, 3, "for (size_t c_ = 0; c_ < %ld; c_++) {", C);
    if (P == 1)
        line(o, 4, "const size_t e_ = b_ * %ld + c_;", C);
}

static void emit_bn_stats(const NormEmit *o, Node *x)
{
    const char *T = o->T, *f = fsuf(o);
    long C = x->ia[0], P = x->ia[1], so = x->ia[2];
    double eps = x->f, mom = x->f2;
    line(o, 1, "{");
    line(o, 2, "%s *restrict mu_ = %s, *restrict rs_ = %s + %ld, *restrict va_ = %s + %ld;", T, o->dst, o->dst, C,
         o->dst, 2 * C);
    int ind = 2;
    if (o->mode == 2) {
        line(o, 2, "if (!mode) {");
        ind = 3;
    }
    if (o->mode != 1) {
        line(o, ind, "/* evaluation: the running statistics */");
        line(o, ind, "for (size_t c_ = 0; c_ < %ld; c_++) {", C);
        line(o, ind + 1, "mu_[c_] = state[%ld + c_];", so);
        line(o, ind + 1, "va_[c_] = state[%ld + c_];", so + C);
        line(o, ind + 1, "rs_[c_] = 1 / sqrt%s(va_[c_] + (%s)%.17g);", f, T, eps);
        line(o, ind, "}");
    }
    if (o->mode == 2)
        line(o, 2, "} else {");
    if (o->mode != 0) {
        line(o, ind, "/* training: the batch's, per channel over the batch%s: sums of x - x0 and", P > 1 ? " and the pixels" : "");
        line(o, ind, " * its squares (x0 the first example's), rs_ holding x0 meanwhile */");
        line(o, ind, "const %s *restrict a_ = %s;", T, o->in[0]);
        line(o, ind, "for (size_t c_ = 0; c_ < %ld; c_++) {", C);
        line(o, ind + 1, "rs_[c_] = a_[c_ * %ld];", P);
        line(o, ind + 1, "mu_[c_] = 0;");
        line(o, ind + 1, "va_[c_] = 0;");
        line(o, ind, "}");
        line(o, ind, "for (size_t b_ = 0; b_ < n; b_++)");
        if (P == 1) {
            line(o, ind + 1, "for (size_t c_ = 0; c_ < %ld; c_++) {", C);
            line(o, ind + 2, "const %s u_ = a_[b_ * %ld + c_] - rs_[c_];", T, C);
            line(o, ind + 2, "mu_[c_] += u_;");
            line(o, ind + 2, "va_[c_] += u_ * u_;");
            line(o, ind + 1, "}");
        } else {
            line(o, ind + 1, "for (size_t c_ = 0; c_ < %ld; c_++) {", C);
            line(o, ind + 2, "const %s *restrict xr_ = a_ + (b_ * %ld + c_) * %ld;", T, C, P);
            line(o, ind + 2, "const %s k0_ = rs_[c_];", T);
            lane_sums(o, ind + 2, P, "u_", "u_ * u_", arena_printf(o->g->arena, "const %s u_ = xr_[i8_] - k0_;", T));
            line(o, ind + 2, "mu_[c_] += S_;");
            line(o, ind + 2, "va_[c_] += Q_;");
            line(o, ind + 1, "}");
        }
        line(o, ind, "const %s cnt_ = (%s)(n * %ld);", T, T, P);
        line(o, ind, "for (size_t c_ = 0; c_ < %ld; c_++) {", C);
        line(o, ind + 1, "const %s m_ = mu_[c_] / cnt_, v_ = va_[c_] / cnt_ - m_ * m_;", T);
        line(o, ind + 1, "mu_[c_] = rs_[c_] + m_;");
        line(o, ind + 1, "va_[c_] = v_ > 0 ? v_ : 0;");
        line(o, ind + 1, "rs_[c_] = 1 / sqrt%s(va_[c_] + (%s)%.17g);", f, T, eps);
        line(o, ind, "}");
        if (o->mode == 2) {
            line(o, ind, "if (mode == 2) /* the running statistics, momentum %g; the variance unbiased, and", mom);
            line(o, ind, "                  left as it is with one value per channel */");
            line(o, ind + 1, "for (size_t c_ = 0; c_ < %ld; c_++) {", C);
            line(o, ind + 2, "state[%ld + c_] = (%s)%.17g * state[%ld + c_] + (%s)%.17g * mu_[c_];", so, T,
                 1 - mom, so, T, mom);
            line(o, ind + 2, "if (cnt_ > 1)");
            line(o, ind + 3, "state[%ld + c_] = (%s)%.17g * state[%ld + c_] + (%s)%.17g * va_[c_] * cnt_ / (cnt_ - 1);",
                 so + C, T, 1 - mom, so + C, T, mom);
            line(o, ind + 1, "}");
        }
    }
    if (o->mode == 2)
        line(o, 2, "}");
    line(o, 1, "}");
}

static void emit_batch_norm(const NormEmit *o, Node *x)
{
    const char *T = o->T;
    long C = x->ia[0], P = x->ia[1];
    line(o, 1, "{");
    line(o, 2, "const %s *restrict a_ = %s;", T, o->in[0]);
    line(o, 2, "const %s *restrict st_ = %s;", T, o->in[1]);
    line(o, 2, "%s *restrict o_ = %s;", T, o->dst);
    bn_loops_open(o, C, P);
    if (P == 1) {
        line(o, 4, "o_[e_] = (a_[e_] - st_[c_]) * st_[%ld + c_];", C);
    } else {
        line(o, 4, "const %s mean_ = st_[c_], rstd_ = st_[%ld + c_];", T, C);
        line(o, 4, "const size_t e_ = (b_ * %ld + c_) * %ld;", C, P);
        line(o, 4, "for (size_t p_ = 0; p_ < %ld; p_++)", P);
        line(o, 5, "o_[e_ + p_] = (a_[e_ + p_] - mean_) * rstd_;");
    }
    line(o, 3, "}");
    line(o, 1, "}");
}

static void emit_bn_bwd(const NormEmit *o, Node *x)
{
    const char *T = o->T;
    long C = x->ia[0], P = x->ia[1];
    line(o, 1, "{");
    line(o, 2, "/* dx = (1/σ)(dy - mean(dy) - x̂·mean(dy·x̂)), the means per channel over the batch%s */",
         P > 1 ? " and the pixels" : "");
    line(o, 2, "const %s *restrict y_ = %s;", T, o->in[0]);
    line(o, 2, "const %s *restrict dy_ = %s;", T, o->in[1]);
    line(o, 2, "const %s *restrict st_ = %s;", T, o->in[2]);
    line(o, 2, "%s *restrict o_ = %s;", T, o->dst);
    line(o, 2, "%s *restrict m1_ = %s, *restrict m2_ = %s + %ld;", T, o->scratch, o->scratch, C);
    line(o, 2, "for (size_t c_ = 0; c_ < %ld; c_++)", C);
    line(o, 3, "m1_[c_] = m2_[c_] = 0;");
    bn_loops_open(o, C, P);
    if (P == 1) {
        line(o, 4, "m1_[c_] += dy_[e_];");
        line(o, 4, "m2_[c_] += dy_[e_] * y_[e_];");
    } else {
        line(o, 4, "const size_t e0_ = (b_ * %ld + c_) * %ld;", C, P);
        line(o, 4, "const %s *restrict yr_ = y_ + e0_, *restrict dyr_ = dy_ + e0_;", T);
        lane_sums(o, 4, P, "dyr_[i8_]", "dyr_[i8_] * yr_[i8_]", "/* the sums of dy and dy·x̂ */");
        line(o, 4, "m1_[c_] += S_;");
        line(o, 4, "m2_[c_] += Q_;");
    }
    line(o, 3, "}");
    line(o, 2, "const %s cnt_ = (%s)(n * %ld);", T, T, P);
    line(o, 2, "for (size_t c_ = 0; c_ < %ld; c_++) {", C);
    line(o, 3, "m1_[c_] /= cnt_;");
    line(o, 3, "m2_[c_] /= cnt_;");
    line(o, 2, "}");
    bn_loops_open(o, C, P);
    if (P == 1) {
        line(o, 4, "o_[e_] = st_[%ld + c_] * (dy_[e_] - m1_[c_] - y_[e_] * m2_[c_]);", C);
    } else {
        line(o, 4, "const %s rstd_ = st_[%ld + c_], a1_ = m1_[c_], a2_ = m2_[c_];", T, C);
        line(o, 4, "const size_t e_ = (b_ * %ld + c_) * %ld;", C, P);
        line(o, 4, "for (size_t p_ = 0; p_ < %ld; p_++)", P);
        line(o, 5, "o_[e_ + p_] = rstd_ * (dy_[e_ + p_] - a1_ - y_[e_ + p_] * a2_);");
    }
    line(o, 3, "}");
    line(o, 1, "}");
}

void norm_emit(const NormEmit *o)
{
    Node *x = N(o->g, o->r);
    switch (x->op) {
    case OP_LN_STATS: line(o, 1, "/* (written by the layer_norm statement that follows, in the same pass) */"); return;
    case OP_LAYERNORM: emit_layer_norm(o, x); return;
    case OP_LAYERNORM_BWD: emit_layer_norm_bwd(o, x); return;
    case OP_BN_STATS: emit_bn_stats(o, x); return;
    case OP_BATCHNORM: emit_batch_norm(o, x); return;
    case OP_BN_BWD: emit_bn_bwd(o, x); return;
    default: unreachable();
    }
}

/* ---------------------------------------------------------------- state */

/* the batch_norms of the model by site (those that reach the loss or the
 * output: simplification drops the others) */
static Node **bn_sites(Model *m, int *count)
{
    Graph *g = &m->g;
    int k = 0;
    for (Ref r = 1; r < g->n; r++)
        if (N(g, r)->op == OP_BN_STATS && N(g, r)->ia[3] > k)
            k = N(g, r)->ia[3];
    Node **site = arena_alloc(g->arena, sizeof(Node *) * (size_t)(k + 1));
    memset(site, 0, sizeof(Node *) * (size_t)(k + 1));
    for (Ref r = 1; r < g->n; r++)
        if (N(g, r)->op == OP_BN_STATS && !site[N(g, r)->ia[3]])
            site[N(g, r)->ia[3]] = N(g, r);
    *count = k;
    return site;
}

void norm_emit_state_macros(Model *m, const char *U, FILE *out)
{
    int k;
    Node **site = bn_sites(m, &k);
    fprintf(out, "#define %sSTATE_COUNT %zu /* reals of state: batch_norm's running statistics, not trained */\n", U,
            m->state_count);
    fprintf(out, "/* state: each batch_norm's running mean, then its running variance */\n");
    for (int i = 1; i <= k; i++) {
        Node *x = site[i];
        if (!x)
            continue;
        fprintf(out, "#define %sSTATE_BN%d_MEAN_OFFSET %d /* batch_norm at line %d, %d channels */\n", U, i, x->ia[2],
                x->loc.first_line, x->ia[0]);
        fprintf(out, "#define %sSTATE_BN%d_VAR_OFFSET %d\n", U, i, x->ia[2] + x->ia[0]);
        fprintf(out, "#define %sSTATE_BN%d_SIZE %d\n", U, i, x->ia[0]);
    }
}

void norm_emit_init_state(Model *m, const char *T, FILE *out)
{
    int k;
    Node **site = bn_sites(m, &k);
    (void)T;
    /* a batch_norm whose value reaches nothing has left the graph: 0 */
    fprintf(out, "    for (size_t i = 0; i < %zu; i++)\n        state[i] = 0;\n", m->state_count);
    for (int i = 1; i <= k; i++) {
        Node *x = site[i];
        if (!x)
            continue;
        fprintf(out, "    for (size_t i = 0; i < %d; i++) { /* batch_norm at line %d: mean 0, variance 1 */\n",
                x->ia[0], x->loc.first_line);
        fprintf(out, "        state[%d + i] = 0;\n", x->ia[2]);
        fprintf(out, "        state[%d + i] = 1;\n    }\n", x->ia[2] + x->ia[0]);
    }
}
