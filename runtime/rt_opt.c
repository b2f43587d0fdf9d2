/*
 * rt_opt.c: optimizers and learning-rate schedules.
 *
 * A step turns the mean gradient g of a batch into an update of the params.
 * The direction to descend is d = g (minimize) or d = -g (maximize: the
 * generated loss_grad returns the objective's own gradient), then, in the
 * order PyTorch applies them: clip d to the global norm `clip`; add the L2
 * term weight_decay * p; update with the rule of the optimizer kind. The
 * rules are PyTorch's (torch.optim), so results can be compared:
 *
 *   sgd       p -= lr d
 *   momentum  v = beta v + d;                      p -= lr v
 *   nesterov  v = beta v + d;                      p -= lr (d + beta v)
 *   rmsprop   s = rho s + (1-rho) d^2;             p -= lr d / (sqrt(s) + eps)
 *   adam      m = b1 m + (1-b1) d; s = b2 s + (1-b2) d^2;
 *             p -= lr (m / (1-b1^t)) / (sqrt(s / (1-b2^t)) + eps)
 *   adamw     p -= lr wd p, then adam
 *
 * Per param (grt_param_info.flags): a `nodecay` param gets neither the L2
 * term nor adamw's decoupled decay; a `frozen` one is never updated, its
 * gradient is left out of the clipping norm and its moments stay 0.
 *
 * The state (v, m, s) is kept in grt_real, like the params. The kinds, their
 * names, arguments and defaults come from grt_train.def, the table gradc
 * shares; adding a kind is a row there, a case in grt_opt_init (its state)
 * and one in grt_opt_step.
 */
#include "rt_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The optimizers of grt_train.def, in enum grt_opt's order. */
static const struct {
    const char *name;     /* as the train block writes it */
    double lr;            /* its default rate */
    double wd;            /* its default decoupled weight decay */
    const char *args[8];  /* its arguments, positional order, NULL-terminated */
} OPTS[GRT_OPT_COUNT] = {
#define GRT_OPT(ID, NAME, LR, WD, ...) {NAME, LR, WD, {__VA_ARGS__}},
#include "grt_train.def"
};

/* The schedules, in enum grt_sched's order. */
static const struct {
    const char *name;     /* as the train block writes it */
    int required;         /* arguments that must be given */
    const char *args[4];  /* its arguments: a and b in order, NULL-terminated */
} SCHEDS[GRT_SCHED_COUNT] = {
#define GRT_SCHED(ID, NAME, REQUIRED, ...) {NAME, REQUIRED, {__VA_ARGS__}},
#include "grt_train.def"
};

const char *grt_opt_name(int kind)
{
    return kind >= 0 && kind < GRT_OPT_COUNT ? OPTS[kind].name : "?";
}

const char *grt_sched_name(int kind)
{
    return kind >= 0 && kind < GRT_SCHED_COUNT ? SCHEDS[kind].name : "?";
}

/* Which setting an argument fills. */
enum { SLOT_LR, SLOT_BETA1, SLOT_BETA2, SLOT_EPS, SLOT_WD, SLOT_SCHED };

static int arg_slot(const char *name)
{
#define GRT_ARG(NAME, SLOT, OK, TEXT) if (strcmp(name, NAME) == 0) return SLOT_##SLOT;
#include "grt_train.def"
    return -1;
}

/* The message when value v breaks the rule of argument name, else NULL. */
static const char *arg_problem(const char *name, double v)
{
#define GRT_ARG(NAME, SLOT, OK, TEXT) if (strcmp(name, NAME) == 0 && !(OK)) return TEXT;
#include "grt_train.def"
    return NULL;
}

void grt_opt_init(grt_optimizer *o, const grt_train_config *c, size_t n, int maximize)
{
    o->kind = c->opt;
    o->n = n;
    o->sign = maximize ? -1.0 : 1.0;
    o->beta1 = c->beta1;
    o->beta2 = c->beta2;
    o->eps = c->eps;
    o->decoupled = c->opt == GRT_ADAMW ? c->opt_weight_decay : 0;
    o->l2 = c->weight_decay;
    o->clip = c->clip;
    o->m = o->v = NULL;
    o->flags = NULL;
    o->parallel = NULL;
    o->t = 0;
    switch (o->kind) {
    case GRT_MOMENTUM:
    case GRT_NESTEROV:
        o->m = grt_xcalloc(n, sizeof(grt_real));
        break;
    case GRT_RMSPROP:
        o->v = grt_xcalloc(n, sizeof(grt_real));
        break;
    case GRT_ADAM:
    case GRT_ADAMW:
        o->m = grt_xcalloc(n, sizeof(grt_real));
        o->v = grt_xcalloc(n, sizeof(grt_real));
        break;
    default:
        o->kind = GRT_SGD; /* grt_model_check refuses unknown kinds */
        break;
    }
}

void grt_opt_flags(grt_optimizer *o, const grt_model *m)
{
    int t;
    free(o->flags);
    o->flags = NULL;
    for (t = 0; t < m->nparams; t++) {
        const grt_param_info *p = &m->params[t];
        unsigned f = p->flags & (GRT_PARAM_NODECAY | GRT_PARAM_FROZEN);
        if (!f || p->offset > o->n || p->size > o->n - p->offset)
            continue;
        if (!o->flags)
            o->flags = grt_xcalloc(o->n, 1);
        memset(o->flags + p->offset, (int)f, p->size);
    }
}

void grt_opt_ignore_frozen(const grt_optimizer *o, grt_real *g)
{
    size_t i;
    if (o->flags)
        for (i = 0; i < o->n; i++)
            if (o->flags[i] & GRT_PARAM_FROZEN)
                g[i] = 0;
}

void grt_opt_free(grt_optimizer *o)
{
    free(o->m);
    free(o->v);
    free(o->flags);
    o->m = o->v = NULL;
    o->flags = NULL;
}

/* The flags of element i. */
#define FLAGS(o, i) ((o)->flags ? (unsigned)(o)->flags[i] : 0u)
/* The L2 and decoupled decay of element i: none for nodecay. */
#define L2(o, i) (FLAGS(o, i) & GRT_PARAM_NODECAY ? 0.0 : (o)->l2)
#define DECOUPLED(o, i) (FLAGS(o, i) & GRT_PARAM_NODECAY ? 0.0 : (o)->decoupled)

void grt_opt_threads(grt_optimizer *o, const grt_model *m)
{
    o->parallel = m->parallel && m->max_threads && m->max_threads() > 1 ? m->parallel : NULL;
}

/* The update of elements lo..hi-1, with the direction's scale (the sign,
 * and the clipping) and Adam's bias corrections c1, c2. */
static void step_range(grt_optimizer *o, grt_real *p, const grt_real *g, double lr, double scale, double c1,
                       double c2, size_t lo, size_t hi)
{
    size_t i;
    switch (o->kind) {
    case GRT_SGD:
        for (i = lo; i < hi; i++) {
            double d;
            if (FLAGS(o, i) & GRT_PARAM_FROZEN)
                continue;
            d = scale * g[i] + L2(o, i) * p[i];
            p[i] = (grt_real)(p[i] - lr * d);
        }
        break;
    case GRT_MOMENTUM:
    case GRT_NESTEROV:
        for (i = lo; i < hi; i++) {
            double d;
            if (FLAGS(o, i) & GRT_PARAM_FROZEN)
                continue;
            d = scale * g[i] + L2(o, i) * p[i];
            double v = o->beta1 * o->m[i] + d;
            o->m[i] = (grt_real)v;
            p[i] = (grt_real)(p[i] - lr * (o->kind == GRT_NESTEROV ? d + o->beta1 * v : v));
        }
        break;
    case GRT_RMSPROP:
        for (i = lo; i < hi; i++) {
            double d;
            if (FLAGS(o, i) & GRT_PARAM_FROZEN)
                continue;
            d = scale * g[i] + L2(o, i) * p[i];
            double s = o->beta1 * o->v[i] + (1 - o->beta1) * d * d;
            o->v[i] = (grt_real)s;
            p[i] = (grt_real)(p[i] - lr * d / (sqrt(s) + o->eps));
        }
        break;
    case GRT_ADAM:
    case GRT_ADAMW: {
        for (i = lo; i < hi; i++) {
            double pi, d, m, s;
            if (FLAGS(o, i) & GRT_PARAM_FROZEN)
                continue;
            pi = p[i] * (1 - lr * DECOUPLED(o, i));
            d = scale * g[i] + L2(o, i) * p[i];
            m = o->beta1 * o->m[i] + (1 - o->beta1) * d;
            s = o->beta2 * o->v[i] + (1 - o->beta2) * d * d;
            o->m[i] = (grt_real)m;
            o->v[i] = (grt_real)s;
            p[i] = (grt_real)(pi - lr * (m / c1) / (sqrt(s / c2) + o->eps));
        }
        break;
    }
    }
}

typedef struct step_job {
    grt_optimizer *o;
    grt_real *p;
    const grt_real *g;
    double lr, scale, c1, c2;
} step_job;

static void step_part(void *arg, int t, int T)
{
    step_job *j = arg;
    size_t n = j->o->n;
    step_range(j->o, j->p, j->g, j->lr, j->scale, j->c1, j->c2, n * (size_t)t / (size_t)T,
               n * (size_t)(t + 1) / (size_t)T);
}

void grt_opt_step(grt_optimizer *o, grt_real *p, grt_real *g, double lr)
{
    size_t i, n = o->n;
    double scale = o->sign;
    step_job j;

    if (o->clip > 0) {
        double sq = 0;
        for (i = 0; i < n; i++)
            if (!(FLAGS(o, i) & GRT_PARAM_FROZEN))
                sq += (double)g[i] * g[i];
        if (sqrt(sq) > o->clip)
            scale *= o->clip / sqrt(sq);
    }
    o->t++;
    j.o = o;
    j.p = p;
    j.g = g;
    j.lr = lr;
    j.scale = scale;
    j.c1 = 1 - pow(o->beta1, (double)o->t);
    j.c2 = 1 - pow(o->beta2, (double)o->t);
    /* threads for big models only: a region costs some microseconds */
    if (o->parallel && n >= 65536)
        o->parallel(step_part, &j);
    else
        step_range(o, p, g, lr, scale, j.c1, j.c2, 0, n);
}

double grt_sched_lr(const grt_train_config *c, double lr, int e, int E)
{
    switch (c->sched) {
    case GRT_STEP:
        /* step(every, gamma): lr gamma^floor(e / every) */
        return c->sched_a >= 1 ? lr * pow(c->sched_b, floor(e / c->sched_a)) : lr;
    case GRT_COSINE: {
        /* cosine(warmup = W, min_lr = X): lr (e + 1) / W over the first W
         * steps, then half a cosine from lr at step W down to X at the
         * last step, E - 1. Plain cosine (W = X = 0) is PyTorch's
         * CosineAnnealingLR(T_max = E): from lr toward 0 after the last. */
        const double pi = 3.14159265358979323846;
        double W = c->sched_a, X = c->sched_b, span;
        if (W <= 0 && X <= 0)
            return E > 0 ? lr * 0.5 * (1 + cos(pi * e / E)) : lr;
        if (e < W)
            return lr * (e + 1) / W;
        span = (double)E - 1 - W;
        if (span <= 0)
            return lr; /* no step after the warm-up but the last */
        return X + (lr - X) * 0.5 * (1 + cos(pi * ((double)e - W) / span));
    }
    case GRT_EXPONENTIAL:
        /* exponential(gamma): lr gamma^e */
        return lr * pow(c->sched_a, e);
    default:
        return lr;
    }
}

/* ------------------------------------------------------ specs on the command line */

/* A call as the train block writes one: NAME or NAME(ARG, ...), each ARG a
 * number or KEY = number, positional ones first. */
typedef struct call {
    char name[32];        /* the callee */
    int n;                /* arguments given */
    char key[8][32];      /* their keys, "" when positional */
    double val[8];        /* their values */
} call;

static const char *skip_blanks(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static int is_ident(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (c >= '0' && c <= '9');
}

/* Parses spec into c; -1 with a message on a syntax error. */
static int parse_call(const char *spec, call *c, char *err, size_t cap)
{
    const char *p = skip_blanks(spec);
    size_t k = 0;
    memset(c, 0, sizeof *c);
    while (is_ident(*p) && k + 1 < sizeof c->name)
        c->name[k++] = *p++;
    if (k == 0 || is_ident(*p)) {
        snprintf(err, cap, "'%s' is not a name or a call like name(1, x=2)", spec);
        return -1;
    }
    p = skip_blanks(p);
    if (*p == '\0')
        return 0;
    if (*p != '(') {
        snprintf(err, cap, "unexpected '%c' after '%s'", *p, c->name);
        return -1;
    }
    p = skip_blanks(p + 1);
    if (*p == ')')
        p++;
    else
        for (;;) {
            const char *q = p;
            char *end;
            double v;
            if (c->n == 8) {
                snprintf(err, cap, "too many arguments to %s", c->name);
                return -1;
            }
            while (is_ident(*q) && !(q == p && ((*q >= '0' && *q <= '9'))))
                q++;
            if (q > p && *skip_blanks(q) == '=') {
                size_t len = (size_t)(q - p);
                if (len >= sizeof c->key[0])
                    len = sizeof c->key[0] - 1;
                memcpy(c->key[c->n], p, len);
                c->key[c->n][len] = '\0';
                p = skip_blanks(skip_blanks(q) + 1);
            } else if (c->n > 0 && c->key[c->n - 1][0]) {
                snprintf(err, cap, "a positional argument after a named one in '%s'", spec);
                return -1;
            }
            errno = 0;
            v = strtod(p, &end);
            if (end == p || errno || !isfinite(v)) {
                snprintf(err, cap, "expected a number at '%.20s' in '%s'", p, spec);
                return -1;
            }
            c->val[c->n++] = v;
            p = skip_blanks(end);
            if (*p == ',') {
                p = skip_blanks(p + 1);
                continue;
            }
            if (*p == ')') {
                p++;
                break;
            }
            snprintf(err, cap, "expected ',' or ')' at '%.20s' in '%s'", p, spec);
            return -1;
        }
    if (*skip_blanks(p)) {
        snprintf(err, cap, "unexpected text after ')' in '%s'", spec);
        return -1;
    }
    return 0;
}

/* Matches c's arguments to names (positional in that order, or by key):
 * slot[i] is the index into c->val of names[i], or -1. */
static int bind(const call *c, const char *const *names, int *slot, char *err, size_t cap)
{
    int i, j, nn = 0;
    while (names[nn])
        nn++;
    for (i = 0; i < nn; i++)
        slot[i] = -1;
    for (j = 0; j < c->n; j++) {
        if (!c->key[j][0]) {
            if (j >= nn) {
                snprintf(err, cap, "%s takes at most %d argument%s", c->name, nn,
                         nn == 1 ? "" : "s");
                return -1;
            }
            slot[j] = j;
            continue;
        }
        for (i = 0; i < nn && strcmp(names[i], c->key[j]) != 0; i++)
            ;
        if (i == nn) {
            char list[128] = "";
            int k;
            for (k = 0; k < nn; k++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                         k ? (k == nn - 1 ? " and " : ", ") : "", names[k]);
            snprintf(err, cap, "%s has no argument '%s'; it takes %s", c->name, c->key[j],
                     nn ? list : "none");
            return -1;
        }
        if (slot[i] >= 0) {
            snprintf(err, cap, "%s's '%s' is given twice", c->name, names[i]);
            return -1;
        }
        slot[i] = j;
    }
    return 0;
}

/* "sgd, momentum, ... or adamw": the n names name(0..n) as a list. */
static void name_list(char *dst, size_t cap, const char *(*name)(int), int n)
{
    int k;
    dst[0] = '\0';
    for (k = 0; k < n; k++)
        snprintf(dst + strlen(dst), cap - strlen(dst), "%s%s",
                 k ? (k == n - 1 ? " or " : ", ") : "", name(k));
}

int grt_parse_optimizer(const char *spec, grt_train_config *c, char *err, size_t cap)
{
    call cl;
    grt_train_config t = *c;
    int k, i, slot[8];

    if (parse_call(spec, &cl, err, cap))
        return -1;
    for (k = 0; k < GRT_OPT_COUNT; k++)
        if (strcmp(OPTS[k].name, cl.name) == 0)
            break;
    if (k == GRT_OPT_COUNT) {
        char list[128];
        name_list(list, sizeof list, grt_opt_name, GRT_OPT_COUNT);
        snprintf(err, cap, "unknown optimizer '%s'; expected %s", cl.name, list);
        return -1;
    }
    if (bind(&cl, OPTS[k].args, slot, err, cap))
        return -1;
    if (t.opt != k) {
        /* another kind: its defaults, as `optimizer NAME` in the block */
        t.opt = k;
        t.lr = OPTS[k].lr;
        t.beta1 = 0.9;
        t.beta2 = 0.999;
        t.eps = 1e-8;
        t.opt_weight_decay = OPTS[k].wd;
    }
    for (i = 0; OPTS[k].args[i]; i++) {
        const char *a = OPTS[k].args[i], *why;
        double v;
        if (slot[i] < 0)
            continue;
        v = cl.val[slot[i]];
        if ((why = arg_problem(a, v))) {
            snprintf(err, cap, "%s", why);
            return -1;
        }
        switch (arg_slot(a)) {
        case SLOT_LR: t.lr = v; break;
        case SLOT_BETA1: t.beta1 = v; break;
        case SLOT_BETA2: t.beta2 = v; break;
        case SLOT_EPS: t.eps = v; break;
        case SLOT_WD: t.opt_weight_decay = v; break;
        }
    }
    *c = t;
    return 0;
}

int grt_parse_schedule(const char *spec, grt_train_config *c, char *err, size_t cap)
{
    call cl;
    int k, i, n = 0, slot[4];
    double ab[2] = {0, 0};

    if (parse_call(spec, &cl, err, cap))
        return -1;
    for (k = 0; k < GRT_SCHED_COUNT; k++)
        if (strcmp(SCHEDS[k].name, cl.name) == 0)
            break;
    if (k == GRT_SCHED_COUNT) {
        snprintf(err, cap,
                 "unknown schedule '%s'; expected constant, step(every, gamma), cosine, "
                 "cosine(warmup, min_lr) or exponential(gamma)",
                 cl.name);
        return -1;
    }
    if (bind(&cl, SCHEDS[k].args, slot, err, cap))
        return -1;
    for (i = 0; SCHEDS[k].args[i]; i++) {
        const char *why;
        if (slot[i] < 0)
            continue;
        n++;
        ab[i] = cl.val[slot[i]];
        if ((why = arg_problem(SCHEDS[k].args[i], ab[i]))) {
            snprintf(err, cap, "%s", why);
            return -1;
        }
    }
    if (n < SCHEDS[k].required) {
        char list[64] = "";
        for (i = 0; SCHEDS[k].args[i]; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                     SCHEDS[k].args[i]);
        snprintf(err, cap, "%s takes %d argument%s: %s(%s)", cl.name, SCHEDS[k].required,
                 SCHEDS[k].required == 1 ? "" : "s", cl.name, list);
        return -1;
    }
    c->sched = k;
    c->sched_a = ab[0];
    c->sched_b = ab[1];
    return 0;
}
