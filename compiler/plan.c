/*
 * plan.c: what each emitted function computes, in which order, and where
 * every value lives.
 *
 * A function (loss, loss_grad, predict) computes the nodes its roots reach,
 * in graph order. Params, inputs and targets are read where the caller keeps
 * them; reshapes share their operand's storage; scalar constants are written
 * into the code; a parameter's gradient is computed straight into the
 * caller's grad array and predict's output straight into out. Everything
 * else gets a slice of the one workspace, reused once its value is dead
 * (first fit over the live intervals), so the workspace is the peak of what
 * is live at once, not the sum of all buffers.
 */
#include "gradc.h"

#include <stdlib.h>
#include <string.h>

#define ALIGN_ELEMS 16 /* every buffer starts on a 64-byte line (float) */

typedef struct Interval {
    size_t off, size; /* elements */
    int end;          /* last position that reads it */
} Interval;

static size_t elems(Model *m, Shape s)
{
    size_t n = (size_t)shape_numel_static(s);
    if (shape_has_batch(s))
        n *= (size_t)m->batch;
    return n;
}

static size_t round_up(size_t n)
{
    return (n + ALIGN_ELEMS - 1) / ALIGN_ELEMS * ALIGN_ELEMS;
}

static Ref storage_of(Plan *p, Ref r)
{
    while (p->slot[r].home == H_ALIAS)
        r = p->slot[r].alias;
    return r;
}

/* Places an interval of size elements, live until position end, in the
 * lowest gap of live (sorted by offset) that fits; returns its offset. */
static size_t place(Interval *live, int *nlive, size_t size, int end)
{
    size_t off = 0;
    int at = 0;
    for (; at < *nlive; at++) {
        if (live[at].off >= off + size)
            break;
        if (live[at].off + live[at].size > off)
            off = live[at].off + live[at].size;
    }
    memmove(&live[at + 1], &live[at], sizeof(Interval) * (size_t)(*nlive - at));
    live[at].off = off;
    live[at].size = size;
    live[at].end = end;
    (*nlive)++;
    return off;
}

/* need[] holds bits at the roots: each goes down to what they reach, in
 * one sweep (operands come before their readers) */
static void reach_all(Graph *g, unsigned char *need)
{
    for (Ref r = g->n - 1; r >= 1; r--)
        if (need[r])
            for (int i = 0; i < op_nin[N(g, r)->op]; i++)
                need[N(g, r)->in[i]] |= need[r];
}

static void place_all(Model *m, Plan *p, const unsigned char *root);

void plan_build(Model *m, FnKind fn, Plan *p)
{
    Graph *g = &m->g;
    int n = g->n;
    memset(p, 0, sizeof *p);
    p->fn = fn;
    unsigned char *need = xcalloc((size_t)n, 1);
    unsigned char *root = xcalloc((size_t)n, 1);

    /* the roots and what they reach */
    if (fn == FN_PREDICT) {
        need[m->output] = root[m->output] = 1;
    } else {
        need[m->loss] = root[m->loss] = 1;
        for (int i = 0; fn == FN_LOSS_GRAD && i < m->nparams; i++)
            if (m->grads[i])
                need[m->grads[i]] = root[m->grads[i]] = 1;
    }
    need[0] = root[0] = 0;
    reach_all(g, need);
    p->order = arena_alloc(g->arena, sizeof(Ref) * (size_t)n);
    for (Ref r = 1; r < n; r++)
        if (need[r])
            p->order[p->norder++] = r;
    place_all(m, p, root);
    free(need);
    free(root);
}

/* The functions together: the nodes in the order forward (what both the
 * prediction and the loss need), predict's own, the objective's own
 * (what the loss needs and the prediction does not) and the backward pass
 * (what only the gradients need). Each part reads only the parts before it
 * (predict's never read by the others), so loss runs forward + objective,
 * predict forward + its own, loss_grad all but predict's, in one placement.
 * With predict_only, forward and predict's own alone. */
void plan_build_all(Model *m, int predict_only, Plan *p)
{
    Graph *g = &m->g;
    int n = g->n;
    memset(p, 0, sizeof *p);
    p->fn = FN_ALL;
    enum { NP = 1, NL = 2, NG = 4 };
    unsigned char *need = xcalloc((size_t)n, 1);
    unsigned char *root = xcalloc((size_t)n, 1);
    need[m->output] |= NP;
    root[m->output] = 1;
    if (!predict_only) {
        need[m->loss] |= NL;
        root[m->loss] = 1;
        for (int i = 0; i < m->nparams; i++)
            if (m->grads[i]) {
                need[m->grads[i]] |= NG;
                root[m->grads[i]] = 1;
            }
    }
    need[0] = root[0] = 0;
    reach_all(g, need);
    p->seg = arena_alloc(g->arena, (size_t)n);
    memset(p->seg, SEG_NONE, (size_t)n);
    for (Ref r = 1; r < n; r++) {
        unsigned char k = need[r];
        if (!k)
            continue;
        if (k & NP)
            p->seg[r] = predict_only || (k & (NL | NG)) ? SEG_FORWARD : SEG_PREDICT;
        else
            p->seg[r] = k & NL ? SEG_OBJECTIVE : SEG_BACKWARD;
    }
    p->order = arena_alloc(g->arena, sizeof(Ref) * (size_t)n);
    for (int s = SEG_FORWARD; s <= SEG_BACKWARD; s++) {
        p->seg_start[s] = p->norder;
        for (Ref r = 1; r < n; r++)
            if (p->seg[r] == s)
                p->order[p->norder++] = r;
    }
    p->seg_start[SEG_BACKWARD + 1] = p->norder;
    place_all(m, p, root);
    free(need);
    free(root);
}

/* homes and workspace offsets of p's nodes, in p->order */
static void place_all(Model *m, Plan *p, const unsigned char *root)
{
    Graph *g = &m->g;
    int n = g->n;
    FnKind fn = p->fn;
    p->slot = arena_alloc(g->arena, sizeof(Slot) * (size_t)n);
    memset(p->slot, 0, sizeof(Slot) * (size_t)n);

    /* which nodes have only elementwise users: constants can be inlined */
    unsigned char *nonelem = xcalloc((size_t)n, 1);
    for (int i = 0; i < p->norder; i++) {
        Node *x = N(g, p->order[i]);
        for (int k = 0; k < op_nin[x->op]; k++)
            if (!(op_flags[x->op] & OPF_ELEMWISE) && x->op != OP_EXPAND)
                nonelem[x->in[k]] = 1;
    }

    /* homes */
    for (int i = 0; i < p->norder; i++) {
        Ref r = p->order[i];
        Node *x = N(g, r);
        Slot *s = &p->slot[r];
        switch (x->op) {
        case OP_PARAM:
            s->home = H_PARAMS;
            s->offset = m->params[x->ia[0]]->offset;
            continue;
        case OP_INPUT:
            if (m->ninputs == 1) {
                s->home = H_X;
                continue;
            }
            break;
        case OP_TARGET:
            if (m->ntargets == 1) {
                s->home = H_Y;
                continue;
            }
            break;
        case OP_CONST: case OP_BATCHN:
            if (!nonelem[r] && !root[r]) {
                s->home = H_INLINE;
                continue;
            }
            break;
        case OP_RESHAPE:
            if (p->slot[x->in[0]].home != H_INLINE) {
                s->home = H_ALIAS;
                s->alias = x->in[0];
                continue;
            }
            break;
        default:
            break;
        }
        s->home = H_WORK; /* placed below */
    }
    /* gradients and outputs straight into the caller's arrays (in the
     * functions together, only where no other function computes them) */
    if (fn == FN_LOSS_GRAD || fn == FN_ALL)
        for (int i = 0; i < m->nparams; i++) {
            Ref r = m->grads[i];
            if (r && p->slot[r].home == H_WORK && (fn != FN_ALL || p->seg[r] == SEG_BACKWARD)) {
                p->slot[r].home = H_GRAD;
                p->slot[r].offset = m->params[i]->offset;
            }
        }
    if ((fn == FN_PREDICT || (fn == FN_ALL && p->seg[m->output] == SEG_PREDICT)) && m->output &&
        p->slot[m->output].home == H_WORK && shape_has_batch(N(g, m->output)->shape))
        p->slot[m->output].home = H_OUT;

    /* the fusions, before any storage is placed (fuse.c) */
    p->fused = arena_alloc(g->arena, sizeof(Ref) * (size_t)n);
    memset(p->fused, 0, sizeof(Ref) * (size_t)n);
    p->fz = arena_alloc(g->arena, sizeof(Fusion) * (size_t)n);
    memset(p->fz, 0, sizeof(Fusion) * (size_t)n);
    if (fn == FN_ALL)
        fuse_plan(m, p, root);

    /* where each node is computed: a node computed along with another at
     * that one's position (a product's readers at the product's, an
     * element-wise producer at its reader's) */
    int *at = xcalloc((size_t)n, sizeof(int));
    for (int i = 0; i < p->norder; i++)
        at[p->order[i]] = i;
    for (int i = p->norder - 1; i >= 0; i--) { /* readers come later */
        Ref r = p->order[i], f = p->fused[r];
        if (f && at[f] > i)
            at[r] = at[f];
    }
    for (int i = 0; i < p->norder; i++) { /* a product's readers, at the product */
        Ref r = p->order[i], f = p->fused[r];
        if (f && at[f] < i)
            at[r] = at[f];
    }
    /* storage lifetimes: from where a value is computed to where it is
     * last read; an alias keeps its storage alive */
    int *last = xcalloc((size_t)n, sizeof(int));
    for (int i = 0; i < p->norder; i++) {
        Ref c = p->order[i];
        Node *x = N(g, c);
        for (int k = 0; k < op_nin[x->op]; k++)
            if (last[x->in[k]] < at[c])
                last[x->in[k]] = at[c];
        if (p->fz[c].bias && last[p->fz[c].bias] < at[c])
            last[p->fz[c].bias] = at[c];
    }
    int *end = xcalloc((size_t)n, sizeof(int));
    for (int i = 0; i < p->norder; i++) {
        Ref r = p->order[i];
        int e = root[r] ? p->norder : last[r];
        if (e < at[r])
            e = at[r];
        Ref st = storage_of(p, r);
        if (e > end[st])
            end[st] = e;
        if (end[r] < e)
            end[r] = e;
    }
    /* the nodes whose storage starts at each position */
    int *first = xmalloc(sizeof(int) * (size_t)(p->norder + 1)), *next = xmalloc(sizeof(int) * (size_t)p->norder);
    for (int i = 0; i <= p->norder; i++)
        first[i] = -1;
    for (int i = p->norder - 1; i >= 0; i--) {
        Ref r = p->order[i];
        next[i] = first[at[r]];
        first[at[r]] = i;
    }

    /* first fit over live intervals; an op's scratch (conv.c) is an
     * interval of its own that dies as soon as the op has run */
    Interval *live = xmalloc(sizeof(Interval) * (size_t)(2 * p->norder + 2));
    int nlive = 0;
    size_t peak = 0, total = 0;
    /* in elements: a tensor has at most 2^28 per example times a batch of at
     * most 2^20, so an offset below max plus a size never wraps */
    size_t max = PLAN_MAX_BYTES / (m->is_double ? 8 : 4);
    for (int i = 0; i < p->norder; i++) {
        /* free what died before this position */
        int k = 0;
        for (int j = 0; j < nlive; j++)
            if (live[j].end >= i)
                live[k++] = live[j];
        nlive = k;
        for (int j = first[i]; j >= 0; j = next[j]) {
            Ref t = p->order[j];
            if (p->slot[t].home != H_WORK || fuse_away(p, t))
                continue;
            size_t size = round_up(elems(m, N(g, t)->shape));
            total = total < max - size ? total + size : max;
            p->slot[t].offset = place(live, &nlive, size, end[t]);
            if (p->slot[t].offset + size > peak)
                peak = p->slot[t].offset + size;
        }
        Ref r = p->order[i];
        size_t scratch = round_up(conv_scratch(g, r) + norm_scratch(g, r)); /* norm.c: batch_norm's adjoint */
        if (scratch && p->slot[r].home != H_PARAMS && p->slot[r].home != H_X &&
            p->slot[r].home != H_Y && p->slot[r].home != H_INLINE && p->slot[r].home != H_ALIAS) {
            total = total < max - scratch ? total + scratch : max;
            p->slot[r].scratch = place(live, &nlive, scratch, i);
            if (p->slot[r].scratch + scratch > peak)
                peak = p->slot[r].scratch + scratch;
        }
        if (peak > max) { /* the plan stops here: main.c reports it */
            p->too_big = r;
            peak = max;
            break;
        }
    }
    p->work_elems = peak;
    p->work_noreuse = total;
    free(first);
    free(next);
    free(at);
    free(live);
    free(end);
    free(last);
    free(nonelem);
}
