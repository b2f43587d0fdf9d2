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
 * The state (v, m, s) is kept in grt_real, like the params. Adding a kind is
 * a case in grt_opt_init (its state) and one in grt_opt_step.
 */
#include "rt_internal.h"

#include <math.h>
#include <stdlib.h>

const char *grt_opt_name(int kind)
{
    switch (kind) {
    case GRT_SGD: return "sgd";
    case GRT_MOMENTUM: return "momentum";
    case GRT_NESTEROV: return "nesterov";
    case GRT_RMSPROP: return "rmsprop";
    case GRT_ADAM: return "adam";
    case GRT_ADAMW: return "adamw";
    }
    return "?";
}

const char *grt_sched_name(int kind)
{
    switch (kind) {
    case GRT_CONSTANT: return "constant";
    case GRT_STEP: return "step";
    case GRT_COSINE: return "cosine";
    case GRT_EXPONENTIAL: return "exponential";
    }
    return "?";
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

void grt_opt_free(grt_optimizer *o)
{
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

void grt_opt_step(grt_optimizer *o, grt_real *p, grt_real *g, double lr)
{
    size_t i, n = o->n;
    double scale = o->sign;

    if (o->clip > 0) {
        double sq = 0;
        for (i = 0; i < n; i++)
            sq += (double)g[i] * g[i];
        if (sqrt(sq) > o->clip)
            scale *= o->clip / sqrt(sq);
    }
    o->t++;

    switch (o->kind) {
    case GRT_SGD:
        for (i = 0; i < n; i++) {
            double d = scale * g[i] + o->l2 * p[i];
            p[i] = (grt_real)(p[i] - lr * d);
        }
        break;
    case GRT_MOMENTUM:
    case GRT_NESTEROV:
        for (i = 0; i < n; i++) {
            double d = scale * g[i] + o->l2 * p[i];
            double v = o->beta1 * o->m[i] + d;
            o->m[i] = (grt_real)v;
            p[i] = (grt_real)(p[i] - lr * (o->kind == GRT_NESTEROV ? d + o->beta1 * v : v));
        }
        break;
    case GRT_RMSPROP:
        for (i = 0; i < n; i++) {
            double d = scale * g[i] + o->l2 * p[i];
            double s = o->beta1 * o->v[i] + (1 - o->beta1) * d * d;
            o->v[i] = (grt_real)s;
            p[i] = (grt_real)(p[i] - lr * d / (sqrt(s) + o->eps));
        }
        break;
    case GRT_ADAM:
    case GRT_ADAMW: {
        double c1 = 1 - pow(o->beta1, (double)o->t);
        double c2 = 1 - pow(o->beta2, (double)o->t);
        for (i = 0; i < n; i++) {
            double pi = p[i] * (1 - lr * o->decoupled);
            double d = scale * g[i] + o->l2 * p[i];
            double m = o->beta1 * o->m[i] + (1 - o->beta1) * d;
            double s = o->beta2 * o->v[i] + (1 - o->beta2) * d * d;
            o->m[i] = (grt_real)m;
            o->v[i] = (grt_real)s;
            p[i] = (grt_real)(pi - lr * (m / c1) / (sqrt(s / c2) + o->eps));
        }
        break;
    }
    }
}

double grt_sched_lr(const grt_train_config *c, double lr, int e, int E)
{
    switch (c->sched) {
    case GRT_STEP:
        /* step(every, gamma): lr gamma^floor(e / every) */
        return c->sched_a >= 1 ? lr * pow(c->sched_b, floor(e / c->sched_a)) : lr;
    case GRT_COSINE:
        /* from lr at the first epoch toward 0 after the last */
        return E > 0 ? lr * 0.5 * (1 + cos(3.14159265358979323846 * e / E)) : lr;
    case GRT_EXPONENTIAL:
        /* exponential(gamma): lr gamma^e */
        return lr * pow(c->sched_a, e);
    default:
        return lr;
    }
}
