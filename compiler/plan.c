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

void plan_build(Model *m, FnKind fn, Plan *p)
{
    Graph *g = &m->g;
    int n = g->n;
    memset(p, 0, sizeof *p);
    p->fn = fn;
    p->slot = arena_alloc(g->arena, sizeof(Slot) * (size_t)n);
    unsigned char *need = xcalloc((size_t)n, 1);
    unsigned char *root = xcalloc((size_t)n, 1);

    /* the roots and what they reach */
    int nroots = 0;
    Ref *rootv = xmalloc(sizeof(Ref) * (size_t)(m->nparams + 2));
    if (fn == FN_PREDICT) {
        rootv[nroots++] = m->output;
    } else {
        rootv[nroots++] = m->loss;
        for (int i = 0; fn == FN_LOSS_GRAD && i < m->nparams; i++)
            if (m->grads[i])
                rootv[nroots++] = m->grads[i];
    }
    for (int i = 0; i < nroots; i++)
        if (rootv[i])
            need[rootv[i]] = root[rootv[i]] = 1;
    for (Ref r = n - 1; r >= 1; r--)
        if (need[r])
            for (int i = 0; i < op_nin[N(g, r)->op]; i++)
                need[N(g, r)->in[i]] = 1;

    p->order = arena_alloc(g->arena, sizeof(Ref) * (size_t)n);
    int *pos = xcalloc((size_t)n, sizeof(int));
    for (Ref r = 1; r < n; r++)
        if (need[r]) {
            pos[r] = p->norder;
            p->order[p->norder++] = r;
        }

    /* which nodes have only elementwise users: constants can be inlined */
    unsigned char *nonelem = xcalloc((size_t)n, 1);
    int *last = xcalloc((size_t)n, sizeof(int));
    for (int i = 0; i < p->norder; i++) {
        Node *x = N(g, p->order[i]);
        for (int k = 0; k < op_nin[x->op]; k++) {
            if (!(op_flags[x->op] & OPF_ELEMWISE) && x->op != OP_EXPAND)
                nonelem[x->in[k]] = 1;
            last[x->in[k]] = i;
        }
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
    /* gradients and outputs straight into the caller's arrays */
    if (fn == FN_LOSS_GRAD)
        for (int i = 0; i < m->nparams; i++) {
            Ref r = m->grads[i];
            if (r && p->slot[r].home == H_WORK) {
                p->slot[r].home = H_GRAD;
                p->slot[r].offset = m->params[i]->offset;
            }
        }
    if (fn == FN_PREDICT && m->output && p->slot[m->output].home == H_WORK &&
        shape_has_batch(N(g, m->output)->shape))
        p->slot[m->output].home = H_OUT;

    /* storage lifetimes: an alias keeps its storage alive */
    int *end = xcalloc((size_t)n, sizeof(int));
    for (int i = 0; i < p->norder; i++) {
        Ref r = p->order[i];
        int e = root[r] ? p->norder : last[r];
        if (e < i)
            e = i;
        Ref st = storage_of(p, r);
        if (e > end[st])
            end[st] = e;
        if (end[r] < e)
            end[r] = e;
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
        Ref r = p->order[i];
        if (p->slot[r].home == H_WORK) {
            size_t size = round_up(elems(m, N(g, r)->shape));
            total = total < max - size ? total + size : max;
            p->slot[r].offset = place(live, &nlive, size, end[r]);
            if (p->slot[r].offset + size > peak)
                peak = p->slot[r].offset + size;
        }
        size_t scratch = round_up(conv_scratch(g, r));
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
    (void)pos;
    p->work_elems = peak;
    p->work_noreuse = total;
    free(live);
    free(end);
    free(last);
    free(nonelem);
    free(pos);
    free(need);
    free(root);
    free(rootv);
}
