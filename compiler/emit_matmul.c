/*
 * emit_matmul.c: matrix products in the generated C. Small ones as loops
 * with constant sizes (or vgemm, register tiles in vector extensions),
 * others through gk_gemm (gemm_kernel.c), with what fuse.c decided they
 * compute along (a scale, a bias, relu) in their epilogue; the workspace
 * their panels need.
 */
#include "emit_c.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The sizes of a matrix product: rows, columns, inner; whether it has
 * leading axes (a batch of products, looped over), and whether they are
 * summed. */
typedef struct MM {
    int M, N, K, lead;
    int sum;                /* the products summed over the leading axes */
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
    s.lead = ra >= 3 || rb >= 3; /* tokens and sequences: any leading axes */
    s.sum = x->ia[2];
    s.ai_ = ta ? 1 : lda;
    s.ak_ = ta ? lda : 1;
    s.bk_ = tb ? 1 : ldb;
    s.bj_ = tb ? ldb : 1;
    return s;
}

/* whether t carries every leading axis of C's (lc), none broadcast */
static int full_lead(Shape t, Shape lc)
{
    if (t.rank - 2 != lc.rank)
        return 0;
    for (int k = 0; k < lc.rank; k++)
        if (t.dim[k] != lc.dim[k])
            return 0;
    return 1;
}

/* A batch of products that is one product. MM_FLAT_ROWS: B is the same
 * matrix for all and A, not transposed, has every leading axis, so that its
 * rows run on from one product to the next, as do C's: one product over
 * all the rows (x·W over [B,T,D]). MM_FLAT_INNER: the products are summed,
 * A transposed and B not, both with every leading axis: one product whose
 * inner axis runs over all of them (the gradient of W, xᵀ·dy). The count of
 * products goes to *lead (the batch axis as batch). */
enum { MM_FLAT_NONE, MM_FLAT_ROWS, MM_FLAT_INNER };

static int mm_flat(Graph *g, Ref r, int batch, long *lead)
{
    Node *x = N(g, r);
    Shape sa = N(g, x->in[0])->shape, sb = N(g, x->in[1])->shape, lc;
    if (!(sa.rank >= 3 || sb.rank >= 3) || !matmul_lead(sa, sb, &lc))
        return MM_FLAT_NONE;
    *lead = 1;
    for (int k = 0; k < lc.rank; k++)
        *lead *= lc.dim[k] == DIM_B ? batch : lc.dim[k];
    int b_none = 1;
    for (int k = 0; k < sb.rank - 2; k++)
        b_none &= sb.dim[k] == 1;
    if (!x->ia[2] && !x->ia[0] && full_lead(sa, lc) && b_none)
        return MM_FLAT_ROWS;
    if (x->ia[2] && x->ia[0] && !x->ia[1] && full_lead(sa, lc) && full_lead(sb, lc))
        return MM_FLAT_INNER;
    return MM_FLAT_NONE;
}

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
size_t gemm_needs(Model *m, const Plan *p, const EmitOptions *o, int *kernel, int *vec)
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
        long lead;
        int flat = mm_small(s, m->batch) ? MM_FLAT_NONE : mm_flat(&m->g, r, m->batch, &lead);
        if (flat == MM_FLAT_ROWS)
            s.M = (int)(lead * s.M);
        else if (flat == MM_FLAT_INNER)
            s.K = (int)(lead * s.K);
        size_t k = mm_pack(s, m->batch);
        if (k > need)
            need = k;
        if (!mm_small(s, m->batch))
            *kernel = 1;
        else if (mm_vec(s, m->batch))
            *vec |= 3;
    }
    return need;
}

/* where the panels start: after the functions' own workspace */
size_t gemm_pack_offset(const Plan *p)
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
Fusion fusion_args(E *e, Ref r, const char **dst, const char **alpha, char *bias, size_t nb)
{
    Fusion f = e->fz[r];
    *alpha = NULL;
    bias[0] = 0;
    if (!f.last)
        return f;
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
    if ((s.lead && s.sum) || s.N == DIM_B)
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

static void emit_small_matmul(E *e, Ref r, MM s, const char *dst, const char *pa, const char *pb)
{
    Node *x = N(e->g, r);
    const char *al;
    char bias[64], p[64], q[64], M[16], K[16];
    Fusion f = fusion_args(e, r, &dst, &al, bias, sizeof bias);
    ptr(e, x->in[0], p, sizeof p);
    ptr(e, x->in[1], q, sizeof q);
    if (pa) { /* tokens and sequences: one product of a batch of them */
        snprintf(p, sizeof p, "%s", pa);
        snprintf(q, sizeof q, "%s", pb);
    }
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

void emit_matmul(E *e, Ref r, const char *dst)
{
    Node *x = N(e->g, r);
    MM s = mm_sizes(e->g, r);
    if (!s.lead && mm_small(s, e->m->batch)) {
        emit_small_matmul(e, r, s, dst, NULL, NULL);
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
    /* tokens and sequences: a loop over the leading axes of C (those of A
     * and B broadcast), each product at its operands' offsets: A's and B's
     * leading axes aligned from the right, an axis of size 1 or missing
     * read at 0 */
    (void)L;
    Shape lc;
    if (!matmul_lead(sa, sb, &lc))
        unreachable();
    const char *offs[3] = {"", "", ""};
    const Shape *ops[3] = {&sa, &sb, &sc};
    long inner = 1;
    for (int k = lc.rank - 1; k >= 0; k--) {
        const char *coord = k == 0 ? arena_printf(e->g->arena, "l / %ld", inner)
                                   : arena_printf(e->g->arena, "(l / %ld) %% %d", inner, lc.dim[k]);
        for (int o = 0; o < 3; o++) {
            const Shape *t = ops[o];
            if (o == 2 && sum)
                continue;
            int ax = k - (lc.rank - (t->rank - 2));
            if (ax < 0 || t->dim[ax] == 1)
                continue;
            long st = (long)t->dim[t->rank - 1] * t->dim[t->rank - 2];
            for (int i = ax + 1; i < t->rank - 2; i++)
                st *= t->dim[i];
            offs[o] = arena_printf(e->g->arena, "%s + %s * %ld", offs[o], coord, st);
        }
        inner *= lc.dim[k] == DIM_B ? 1 : lc.dim[k];
    }
    const char *count = lc.rank && lc.dim[0] == DIM_B ? arena_printf(e->g->arena, "n * %ld", inner)
                                                       : arena_printf(e->g->arena, "%ld", inner);
    long lead;
    int flat = !sum && mm_small(s, e->m->batch) ? MM_FLAT_NONE : mm_flat(e->g, r, e->m->batch, &lead);
    if (flat != MM_FLAT_NONE) { /* one product over all of them */
        const char *all = arena_printf(e->g->arena, "(long)(%s) * %s", count, flat == MM_FLAT_ROWS ? M : K);
        emitf(e, 1, "%sgk_gemm(%s, %s, %s, 1, %s, %s, %s, %s, %s, %s, 0, %s, %s, NULL, 0, w + %zu);", e->prefix,
              flat == MM_FLAT_ROWS ? all : M, Ns, flat == MM_FLAT_INNER ? all : K, p, st[0], st[1], q, st[2], st[3],
              dst, Ns, e->pack_off);
        return;
    }
    emitf(e, 1, "for (size_t l = 0; l < %s; l++)%s", count, sum ? "" : " {");
    if (!sum && mm_small(s, e->m->batch)) {
        emit_small_matmul(e, r, s, arena_printf(e->g->arena, "(%s%s)", dst, offs[2]),
                          arena_printf(e->g->arena, "(%s%s)", p, offs[0]), arena_printf(e->g->arena, "(%s%s)", q, offs[1]));
        emitf(e, 1, "}");
        return;
    }
    emitf(e, 2, "%sgk_gemm(%s, %s, %s, 1, %s%s, %s, %s, %s%s, %s, %s, %s, %s%s, %s, NULL, 0, w + %zu);", e->prefix, M,
          Ns, K, p, offs[0], st[0], st[1], q, offs[1], st[2], st[3], sum ? "l > 0" : "0", dst, offs[2], Ns, e->pack_off);
    if (!sum)
        emitf(e, 1, "}");
}
