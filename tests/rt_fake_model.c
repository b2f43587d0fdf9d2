/*
 * rt_fake_model.c: hand-written models for testing the runtime without the
 * compiler: the init/loss/loss_grad/predict functions gradc generates, and
 * the grt_model descriptors its glue fills, written out by hand.
 *
 *   fake_linear     y = w . x + b, 3 inputs, mean squared error
 *   fake_softmax    3-class softmax regression on 2 inputs, cross-entropy
 *   fake_logistic   binary logistic regression on 2 inputs, bce, p > 0.5
 *   fake_recorder   1 input, 1 param, gradient 1: logs every example and
 *                   chunk it is called with, so tests can see the batching
 *   fake_l1         y = w . x + b, 3 inputs, mean absolute error: kinks,
 *                   for the gradient check
 *
 * Hooks for failure tests, counted over loss_grad calls of fake_linear and
 * fake_softmax (fake_calls): fake_nan_at makes that call's gradient NaN in
 * one value, fake_inf_loss_at makes fake_linear's loss infinite in that
 * call, fake_kill_at kills the process (SIGKILL) in that call, as a power
 * cut would; fake_grad_scale scales fake_linear's gradient of w[0]
 * (1: right), a wrong gradient for gradcheck to find.
 *
 * Written in grt_real, so the same tests run against the float runtime (as
 * the Makefile builds them) and against the double one (-DGRT_DOUBLE).
 * Included by test_runtime.c: the Makefile builds each test from one file.
 *
 * Like the generated code, every function checks nothing and trusts n; the
 * checks that the runtime keeps its side of the contract (1 <= n <=
 * max_batch, an aligned workspace of the promised size) are counted in
 * fake_violations, which every test expects to stay 0.
 */
#include "gradc_rt.h"

#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

static size_t fake_max_batch = 8; /* the compiled batch the descriptors claim */
static long fake_violations;      /* calls that broke the runtime's contract */

/* What fake_recorder saw, in call order. */
#define FAKE_LOG_MAX 4096
static double fake_log_x[FAKE_LOG_MAX]; /* the x of every example passed */
static size_t fake_log_nx;              /* entries in fake_log_x */
static size_t fake_log_chunk[FAKE_LOG_MAX]; /* n of every loss_grad call */
static size_t fake_log_nchunk;              /* entries in fake_log_chunk */

static long fake_calls;          /* loss_grad calls of fake_linear and fake_softmax */
static long fake_nan_at;         /* that call's gradient gets a NaN; 0: never */
static long fake_inf_loss_at;    /* fake_linear's loss of that call is inf; 0: never */
static long fake_kill_at;        /* SIGKILL in that call; 0: never */
static double fake_grad_scale = 1; /* fake_linear's d/dw0 times this */

/* One loss_grad call: counts it and applies the hooks to g[which]. */
static void fake_hooks(grt_real *g, int which)
{
    fake_calls++;
    if (fake_kill_at && fake_calls == fake_kill_at)
        raise(SIGKILL);
    if (fake_nan_at && fake_calls == fake_nan_at)
        g[which] = (grt_real)NAN;
}

static void fake_check(size_t n, const void *work)
{
    if (n == 0 || n > fake_max_batch || ((uintptr_t)work % 64) != 0)
        fake_violations++;
}

/* Deterministic small initial values, different per seed. */
static void fake_init(grt_real *p, size_t n, uint64_t seed)
{
    size_t i;
    for (i = 0; i < n; i++)
        p[i] = (grt_real)(0.01 * (double)((seed + 3 * i) % 7) - 0.03);
}

static grt_train_config fake_config(void)
{
    grt_train_config c;
    memset(&c, 0, sizeof c);
    c.opt = GRT_SGD;
    c.lr = 0.1;
    c.beta1 = 0.9;
    c.beta2 = 0.999;
    c.eps = 1e-8;
    c.batch = 4;
    c.epochs = 10;
    c.shuffle = 1;
    c.seed = 42;
    c.sched = GRT_CONSTANT;
    return c;
}

/* ------------------------------------------------------------------ linear */

static void lin_init(grt_real *p, uint64_t seed) { fake_init(p, 4, seed); }

/* Residuals w . x + b - y into r. */
static void lin_resid(const grt_real *p, const grt_real *x, const grt_real *y, size_t n,
                      grt_real *r)
{
    size_t k;
    for (k = 0; k < n; k++) {
        const grt_real *xi = x + 3 * k;
        r[k] = p[0] * xi[0] + p[1] * xi[1] + p[2] * xi[2] + p[3] - y[k];
    }
}

static grt_real lin_loss(const grt_real *p, const grt_real *st, const grt_real *x, const grt_real *y, size_t n,
                         void *work)
{
    (void)st;
    grt_real *r = work, s = 0;
    size_t k;
    fake_check(n, work);
    lin_resid(p, x, y, n, r);
    for (k = 0; k < n; k++)
        s += r[k] * r[k];
    return s / (grt_real)n;
}

static grt_real lin_loss_grad(const grt_real *p, grt_real *st, const grt_real *x, const grt_real *y, size_t n,
                              grt_real *g, void *work)
{
    (void)st;
    grt_real *r = work, s = 0;
    size_t k, j;
    fake_check(n, work);
    lin_resid(p, x, y, n, r);
    for (j = 0; j < 4; j++)
        g[j] = 0;
    for (k = 0; k < n; k++) {
        s += r[k] * r[k];
        for (j = 0; j < 3; j++)
            g[j] += 2 * r[k] * x[3 * k + j] / (grt_real)n;
        g[3] += 2 * r[k] / (grt_real)n;
    }
    g[0] = (grt_real)(g[0] * fake_grad_scale);
    fake_hooks(g, 2);
    if (fake_inf_loss_at && fake_calls == fake_inf_loss_at)
        s = (grt_real)INFINITY;
    return s / (grt_real)n;
}

static void lin_predict(const grt_real *p, const grt_real *st, const grt_real *x, size_t n, grt_real *out,
                        void *work)
{
    (void)st;
    size_t k;
    fake_check(n, work);
    for (k = 0; k < n; k++)
        out[k] = p[0] * x[3 * k] + p[1] * x[3 * k + 1] + p[2] * x[3 * k + 2] + p[3];
}

static const grt_param_info lin_params[] = {
    {"W", 2, {1, 3}, 0, 3, 0, 0},
    {"b", 1, {1}, 3, 1, 0, 0},
};
static const grt_io_info lin_inputs[] = {{"x", 3, 0, 0}};
static const grt_io_info lin_targets[] = {{"y", 1, 0, 0}};

static grt_model fake_linear(size_t max_batch)
{
    grt_model m;
    memset(&m, 0, sizeof m);
    fake_max_batch = max_batch;
    m.name = "lin";
    m.hash = UINT64_C(0x1111222233334444);
    m.param_count = 4;
    m.input_size = 3;
    m.target_size = 1;
    m.output_size = 1;
    m.max_batch = max_batch;
    m.workspace_bytes = max_batch * sizeof(grt_real);
    m.nparams = 2;
    m.params = lin_params;
    m.ninputs = 1;
    m.inputs = lin_inputs;
    m.ntargets = 1;
    m.targets = lin_targets;
    m.target_kind = GRT_TARGET_REAL;
    m.train = fake_config();
    m.init = lin_init;
    m.loss = lin_loss;
    m.loss_grad = lin_loss_grad;
    m.predict = lin_predict;
    return m;
}

/* ------------------------------------------------------------------ softmax */

static void soft_init(grt_real *p, uint64_t seed) { fake_init(p, 9, seed); }

/* Logits W x + b of one example into z[3]. */
static void soft_logits(const grt_real *p, const grt_real *x, grt_real *z)
{
    int c;
    for (c = 0; c < 3; c++)
        z[c] = p[2 * c] * x[0] + p[2 * c + 1] * x[1] + p[6 + c];
}

/* Cross-entropy of one example, and softmax(z) into q. */
static grt_real soft_ce(const grt_real *z, int label, grt_real *q)
{
    grt_real mx = z[0], s = 0;
    int c;
    for (c = 1; c < 3; c++)
        mx = z[c] > mx ? z[c] : mx;
    for (c = 0; c < 3; c++)
        s += (q[c] = (grt_real)exp(z[c] - mx));
    for (c = 0; c < 3; c++)
        q[c] /= s;
    return (grt_real)(mx + log(s)) - z[label];
}

static grt_real soft_loss(const grt_real *p, const grt_real *st, const grt_real *x, const grt_real *y, size_t n,
                          void *work)
{
    (void)st;
    grt_real z[3], q[3], s = 0;
    size_t k;
    fake_check(n, work);
    for (k = 0; k < n; k++) {
        soft_logits(p, x + 2 * k, z);
        s += soft_ce(z, (int)y[k], q);
    }
    return s / (grt_real)n;
}

static grt_real soft_loss_grad(const grt_real *p, grt_real *st, const grt_real *x, const grt_real *y,
                               size_t n, grt_real *g, void *work)
{
    (void)st;
    grt_real z[3], q[3], s = 0;
    size_t k;
    int c;
    fake_check(n, work);
    for (c = 0; c < 9; c++)
        g[c] = 0;
    for (k = 0; k < n; k++) {
        const grt_real *xi = x + 2 * k;
        soft_logits(p, xi, z);
        s += soft_ce(z, (int)y[k], q);
        for (c = 0; c < 3; c++) {
            grt_real dz = (q[c] - (c == (int)y[k])) / (grt_real)n;
            g[2 * c] += dz * xi[0];
            g[2 * c + 1] += dz * xi[1];
            g[6 + c] += dz;
        }
    }
    fake_hooks(g, 4);
    return s / (grt_real)n;
}

static void soft_predict(const grt_real *p, const grt_real *st, const grt_real *x, size_t n, grt_real *out,
                         void *work)
{
    (void)st;
    size_t k;
    fake_check(n, work);
    for (k = 0; k < n; k++)
        soft_logits(p, x + 2 * k, out + 3 * k);
}

static const grt_param_info soft_params[] = {
    {"W", 2, {3, 2}, 0, 6, 0, 0},
    {"b", 1, {3}, 6, 3, 0, 0},
};
static const grt_io_info soft_inputs[] = {{"x", 2, 0, 0}};
static const grt_io_info soft_targets[] = {{"label", 1, 3, 0}};

static grt_model fake_softmax(size_t max_batch)
{
    grt_model m;
    memset(&m, 0, sizeof m);
    fake_max_batch = max_batch;
    m.name = "soft3";
    m.hash = UINT64_C(0x5555666677778888);
    m.param_count = 9;
    m.input_size = 2;
    m.target_size = 1;
    m.output_size = 3;
    m.max_batch = max_batch;
    m.workspace_bytes = 0;
    m.nparams = 2;
    m.params = soft_params;
    m.ninputs = 1;
    m.inputs = soft_inputs;
    m.ntargets = 1;
    m.targets = soft_targets;
    m.target_kind = GRT_TARGET_CLASS;
    m.nclasses = 3;
    m.train = fake_config();
    m.init = soft_init;
    m.loss = soft_loss;
    m.loss_grad = soft_loss_grad;
    m.predict = soft_predict;
    return m;
}

/* ----------------------------------------------------------------- logistic */

static void logi_init(grt_real *p, uint64_t seed) { fake_init(p, 3, seed); }

static grt_real logi_p(const grt_real *p, const grt_real *x)
{
    return (grt_real)(1 / (1 + exp(-(p[0] * x[0] + p[1] * x[1] + p[2]))));
}

static grt_real logi_loss(const grt_real *p, const grt_real *st, const grt_real *x, const grt_real *y, size_t n,
                          void *work)
{
    (void)st;
    grt_real s = 0;
    size_t k;
    fake_check(n, work);
    for (k = 0; k < n; k++) {
        grt_real q = logi_p(p, x + 2 * k);
        s -= (grt_real)(y[k] * log(q + 1e-12) + (1 - y[k]) * log(1 - q + 1e-12));
    }
    return s / (grt_real)n;
}

static grt_real logi_loss_grad(const grt_real *p, grt_real *st, const grt_real *x, const grt_real *y,
                               size_t n, grt_real *g, void *work)
{
    (void)st;
    size_t k;
    g[0] = g[1] = g[2] = 0;
    for (k = 0; k < n; k++) {
        grt_real d = (logi_p(p, x + 2 * k) - y[k]) / (grt_real)n;
        g[0] += d * x[2 * k];
        g[1] += d * x[2 * k + 1];
        g[2] += d;
    }
    return logi_loss(p, st, x, y, n, work);
}

static void logi_predict(const grt_real *p, const grt_real *st, const grt_real *x, size_t n, grt_real *out,
                         void *work)
{
    (void)st;
    size_t k;
    fake_check(n, work);
    for (k = 0; k < n; k++)
        out[k] = logi_p(p, x + 2 * k);
}

static const grt_param_info logi_params[] = {
    {"w", 1, {2}, 0, 2, 0, 0},
    {"b", 1, {1}, 2, 1, 0, 0},
};
static const grt_io_info logi_inputs[] = {{"x", 2, 0, 0}};
static const grt_io_info logi_targets[] = {{"y", 1, 0, 0}};

static grt_model fake_logistic(size_t max_batch)
{
    grt_model m;
    memset(&m, 0, sizeof m);
    fake_max_batch = max_batch;
    m.name = "logi";
    m.hash = UINT64_C(0x9999aaaabbbbcccc);
    m.param_count = 3;
    m.input_size = 2;
    m.target_size = 1;
    m.output_size = 1;
    m.max_batch = max_batch;
    m.workspace_bytes = 16;
    m.nparams = 2;
    m.params = logi_params;
    m.ninputs = 1;
    m.inputs = logi_inputs;
    m.ntargets = 1;
    m.targets = logi_targets;
    m.target_kind = GRT_TARGET_REAL;
    m.binary = 1;
    m.threshold = 0.5;
    m.train = fake_config();
    m.init = logi_init;
    m.loss = logi_loss;
    m.loss_grad = logi_loss_grad;
    m.predict = logi_predict;
    return m;
}

/* ----------------------------------------------------------------- recorder */

static void rec_init(grt_real *p, uint64_t seed)
{
    (void)seed;
    p[0] = 100;
}

static grt_real rec_loss(const grt_real *p, const grt_real *st, const grt_real *x, const grt_real *y, size_t n,
                         void *work)
{
    (void)st;
    (void)x;
    (void)y;
    fake_check(n, work);
    return p[0];
}

static grt_real rec_loss_grad(const grt_real *p, grt_real *st, const grt_real *x, const grt_real *y,
                              size_t n, grt_real *g, void *work)
{
    (void)st;
    size_t k;
    (void)y;
    fake_check(n, work);
    for (k = 0; k < n && fake_log_nx < FAKE_LOG_MAX; k++)
        fake_log_x[fake_log_nx++] = x[k];
    if (fake_log_nchunk < FAKE_LOG_MAX)
        fake_log_chunk[fake_log_nchunk++] = n;
    g[0] = 1;
    return p[0];
}

static void rec_predict(const grt_real *p, const grt_real *st, const grt_real *x, size_t n, grt_real *out,
                        void *work)
{
    (void)st;
    size_t k;
    fake_check(n, work);
    for (k = 0; k < n; k++)
        out[k] = x[k] + p[0];
}

static const grt_param_info rec_params[] = {{"p", 0, {0}, 0, 1, 0, 0}};
static const grt_io_info rec_inputs[] = {{"x", 1, 0, 0}};
static const grt_io_info rec_targets[] = {{"y", 1, 0, 0}};

static grt_model fake_recorder(size_t max_batch)
{
    grt_model m;
    memset(&m, 0, sizeof m);
    fake_max_batch = max_batch;
    fake_log_nx = fake_log_nchunk = 0;
    m.name = "rec";
    m.hash = 7;
    m.param_count = 1;
    m.input_size = 1;
    m.target_size = 1;
    m.output_size = 1;
    m.max_batch = max_batch;
    m.workspace_bytes = 100;
    m.nparams = 1;
    m.params = rec_params;
    m.ninputs = 1;
    m.inputs = rec_inputs;
    m.ntargets = 1;
    m.targets = rec_targets;
    m.target_kind = GRT_TARGET_REAL;
    m.train = fake_config();
    m.init = rec_init;
    m.loss = rec_loss;
    m.loss_grad = rec_loss_grad;
    m.predict = rec_predict;
    return m;
}

/* ----------------------------------------------------------------------- l1 */

static grt_real l1_loss(const grt_real *p, const grt_real *st, const grt_real *x, const grt_real *y, size_t n,
                        void *work)
{
    (void)st;
    grt_real *r = work, s = 0;
    size_t k;
    fake_check(n, work);
    lin_resid(p, x, y, n, r);
    for (k = 0; k < n; k++)
        s += (grt_real)fabs(r[k]);
    return s / (grt_real)n;
}

static grt_real l1_loss_grad(const grt_real *p, grt_real *st, const grt_real *x, const grt_real *y, size_t n,
                             grt_real *g, void *work)
{
    (void)st;
    grt_real *r = work, s = 0;
    size_t k, j;
    fake_check(n, work);
    lin_resid(p, x, y, n, r);
    for (j = 0; j < 4; j++)
        g[j] = 0;
    for (k = 0; k < n; k++) {
        grt_real sg = r[k] > 0 ? 1 : r[k] < 0 ? -1 : 0;
        s += (grt_real)fabs(r[k]);
        for (j = 0; j < 3; j++)
            g[j] += sg * x[3 * k + j] / (grt_real)n;
        g[3] += sg / (grt_real)n;
    }
    return s / (grt_real)n;
}

static grt_model fake_l1(size_t max_batch)
{
    grt_model m = fake_linear(max_batch);
    m.name = "l1";
    m.hash = 99;
    m.loss = l1_loss;
    m.loss_grad = l1_loss_grad;
    return m;
}

/* ------------------------------------------------------------------ bigram */

/* fake_bigram(max_batch, V, T): a text model, input int(V)[T] and target
 * class(V)[T]: the V logits at position t are row x[t] of a V x V table E,
 * a bigram model (causal: a position sees its own id alone). Its loss is the
 * mean over the T positions and the n examples of each position's
 * cross-entropy. */
static size_t big_T = 4;
static int big_V = 5;
static grt_param_info big_params[1];
static grt_io_info big_inputs[1], big_targets[1];

static void big_init(grt_real *p, uint64_t seed) { fake_init(p, (size_t)(big_V * big_V), seed); }

/* Cross-entropy of the logits z[0..V) against class y; with g, adds
 * (softmax(z) - onehot(y)) * scale into g. */
static double big_ce(const grt_real *z, int y, grt_real *g, double scale)
{
    double mx = z[0], s = 0;
    int c;
    for (c = 1; c < big_V; c++)
        mx = z[c] > mx ? z[c] : mx;
    for (c = 0; c < big_V; c++)
        s += exp(z[c] - mx);
    if (g)
        for (c = 0; c < big_V; c++)
            g[c] += (grt_real)((exp(z[c] - mx) / s - (c == y)) * scale);
    return mx + log(s) - z[y];
}

static grt_real big_loss_grad(const grt_real *p, grt_real *st, const grt_real *x,
                              const grt_real *y, size_t n, grt_real *g, void *work)
{
    double s = 0, scale = 1.0 / (double)(n * big_T);
    size_t k, t;
    (void)st;
    fake_check(n, work);
    if (g)
        memset(g, 0, (size_t)(big_V * big_V) * sizeof(grt_real));
    for (k = 0; k < n; k++)
        for (t = 0; t < big_T; t++) {
            size_t row = (size_t)x[k * big_T + t] * (size_t)big_V;
            s += big_ce(p + row, (int)y[k * big_T + t], g ? g + row : NULL, scale);
        }
    return (grt_real)(s * scale);
}

static grt_real big_loss(const grt_real *p, const grt_real *st, const grt_real *x,
                         const grt_real *y, size_t n, void *work)
{
    (void)st;
    return big_loss_grad(p, NULL, x, y, n, NULL, work);
}

static void big_predict(const grt_real *p, const grt_real *st, const grt_real *x, size_t n,
                        grt_real *out, void *work)
{
    size_t k, t;
    (void)st;
    fake_check(n, work);
    for (k = 0; k < n * big_T; k++)
        for (t = 0; t < (size_t)big_V; t++)
            out[k * (size_t)big_V + t] = p[(size_t)x[k] * (size_t)big_V + t];
}

static grt_model fake_bigram(size_t max_batch, int V, size_t T)
{
    grt_model m;
    memset(&m, 0, sizeof m);
    fake_max_batch = max_batch;
    big_V = V;
    big_T = T;
    big_params[0].name = "E";
    big_params[0].rank = 2;
    big_params[0].dim[0] = big_params[0].dim[1] = V;
    big_params[0].size = (size_t)(V * V);
    big_inputs[0].name = "tok";
    big_inputs[0].size = T;
    big_inputs[0].vocab = V;
    big_targets[0].name = "next";
    big_targets[0].size = T;
    big_targets[0].nclasses = V;
    m.name = "bigram";
    m.hash = UINT64_C(0xb16a4d) + (uint64_t)V * 1000 + T;
    m.param_count = (size_t)(V * V);
    m.input_size = T;
    m.target_size = T;
    m.output_size = T * (size_t)V;
    m.max_batch = max_batch;
    m.workspace_bytes = 64;
    m.nparams = 1;
    m.params = big_params;
    m.ninputs = 1;
    m.inputs = big_inputs;
    m.ntargets = 1;
    m.targets = big_targets;
    m.target_kind = GRT_TARGET_CLASS;
    m.nclasses = V;
    m.train = fake_config();
    m.train.opt = GRT_ADAM;
    m.train.lr = 0.1;
    m.train.steps = 50;
    m.init = big_init;
    m.loss = big_loss;
    m.loss_grad = big_loss_grad;
    m.predict = big_predict;
    return m;
}

/* ----------------------------------------------------------------- running */

/* fake_running: fake_linear with state, as batch_norm keeps it: state[0] is
 * a running mean of x[0] (momentum 0.1; state[1] a running count of the
 * calls, to see every update), which the model subtracts:
 * y = w0 (x0 - state[0]) + w1 x1 + w2 x2 + b. loss_grad uses the state as
 * it finds it, then updates it. */
static void run_init_state(grt_real *s)
{
    s[0] = 0;
    s[1] = 0;
}

static void run_resid(const grt_real *p, const grt_real *s, const grt_real *x,
                      const grt_real *y, size_t n, grt_real *r)
{
    size_t k;
    for (k = 0; k < n; k++) {
        const grt_real *xi = x + 3 * k;
        r[k] = p[0] * (xi[0] - s[0]) + p[1] * xi[1] + p[2] * xi[2] + p[3] - y[k];
    }
}

static grt_real run_loss(const grt_real *p, const grt_real *st, const grt_real *x,
                         const grt_real *y, size_t n, void *work)
{
    grt_real *r = work, s = 0;
    size_t k;
    fake_check(n, work);
    run_resid(p, st, x, y, n, r);
    for (k = 0; k < n; k++)
        s += r[k] * r[k];
    return s / (grt_real)n;
}

static grt_real run_loss_grad(const grt_real *p, grt_real *st, const grt_real *x,
                              const grt_real *y, size_t n, grt_real *g, void *work)
{
    grt_real *r = work, s = 0, mean = 0;
    size_t k, j;
    fake_check(n, work);
    run_resid(p, st, x, y, n, r);
    for (j = 0; j < 4; j++)
        g[j] = 0;
    for (k = 0; k < n; k++) {
        s += r[k] * r[k];
        g[0] += 2 * r[k] * (x[3 * k] - st[0]) / (grt_real)n;
        for (j = 1; j < 3; j++)
            g[j] += 2 * r[k] * x[3 * k + j] / (grt_real)n;
        g[3] += 2 * r[k] / (grt_real)n;
        mean += x[3 * k] / (grt_real)n;
    }
    st[0] = (grt_real)(0.9 * st[0] + 0.1 * mean);
    st[1] += 1;
    return s / (grt_real)n;
}

static void run_predict(const grt_real *p, const grt_real *st, const grt_real *x, size_t n,
                        grt_real *out, void *work)
{
    size_t k;
    fake_check(n, work);
    for (k = 0; k < n; k++)
        out[k] = p[0] * (x[3 * k] - st[0]) + p[1] * x[3 * k + 1] + p[2] * x[3 * k + 2] + p[3];
}

static grt_model fake_running(size_t max_batch)
{
    grt_model m = fake_linear(max_batch);
    m.name = "running";
    m.hash = 1234;
    m.loss = run_loss;
    m.loss_grad = run_loss_grad;
    m.predict = run_predict;
    m.state_count = 2;
    m.init_state = run_init_state;
    return m;
}
