/*
 * rt_main.c: grt_main, the command line of every executable gradc builds.
 *
 *   train DATA [options]      fit the params, optionally save them
 *   eval PARAMS DATA          loss, and accuracy for class or binary targets
 *   predict PARAMS [DATA]     one line of outputs per example
 *   params PARAMS             the values in a parameter file, per tensor
 *   info                      what the descriptor says about the model
 *
 * Each command is a function that parses nothing: the options are read into
 * one struct first, by one table-driven parser, so a new option is a row of
 * the table and a field. Exit status 0 success, 1 bad data, a parameter file
 * of another model or a failed training, 2 bad command line or I/O.
 * Results go to stdout, progress and errors to stderr.
 */
#include "rt_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------- the descriptor */

/* Status 1 for an inconsistent descriptor of the model called name. */
static int bad_desc(grt_err *e, const char *name, const char *fmt, ...) GRT_PRINTF(3, 4);
static int bad_desc(grt_err *e, const char *name, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return grt_fail(e, GRT_EXIT_DATA, GRT_E_MODEL_DESC,
                    "%s: internal error: model descriptor: %s", name, what);
}

int grt_model_check(const grt_model *m, grt_err *e)
{
    const char *name = m && m->name ? m->name : "model";
    size_t sum = 0;
    int i, d;

    if (!m || !m->name)
        return bad_desc(e, name, "no model name");
    if (!m->init || !m->loss || !m->loss_grad || !m->predict)
        return bad_desc(e, name, "a generated function is missing");
    if (m->max_batch < 1)
        return bad_desc(e, name, "max_batch is 0");
    if (m->input_size + m->target_size < 1)
        return bad_desc(e, name, "no inputs and no targets");
    if (m->nparams < 0 || (m->nparams > 0 && !m->params))
        return bad_desc(e, name, "bad params table");
    for (i = 0; i < m->nparams; i++) {
        const grt_param_info *p = &m->params[i];
        size_t n = 1;
        if (p->rank < 0 || p->rank > GRT_MAXRANK)
            return bad_desc(e, name, "param %d has rank %d", i, p->rank);
        for (d = 0; d < p->rank; d++)
            n *= (size_t)(p->dim[d] > 0 ? p->dim[d] : 0);
        if (n != p->size || p->offset > m->param_count || p->size > m->param_count - p->offset)
            return bad_desc(e, name, "param '%s' has inconsistent shape, size or offset",
                            p->name ? p->name : "?");
        sum += p->size;
    }
    if (sum != m->param_count)
        return bad_desc(e, name, "params add up to %zu values, param_count is %zu", sum,
                        m->param_count);
    sum = 0;
    for (i = 0; i < m->ninputs; i++)
        sum += m->inputs[i].size;
    if (m->ninputs < 0 || (m->ninputs > 0 && !m->inputs) || sum != m->input_size)
        return bad_desc(e, name, "inputs add up to %zu values, input_size is %zu", sum,
                        m->input_size);
    sum = 0;
    for (i = 0; i < m->ntargets; i++) {
        sum += m->targets[i].size;
        if (m->targets[i].nclasses < 0 || (m->targets[i].nclasses > 0 && m->targets[i].size != 1))
            return bad_desc(e, name, "class target '%s' must have size 1",
                            m->targets[i].name ? m->targets[i].name : "?");
    }
    if (m->ntargets < 0 || (m->ntargets > 0 && !m->targets) || sum != m->target_size)
        return bad_desc(e, name, "targets add up to %zu values, target_size is %zu", sum,
                        m->target_size);
    if (m->nclasses < 0 || (m->nclasses > 0 && (size_t)m->nclasses > m->output_size))
        return bad_desc(e, name, "%d classes but %zu output values", m->nclasses, m->output_size);
    if (m->binary && (m->output_size < 1 || m->target_size < 1))
        return bad_desc(e, name, "binary target without output or target");
    if (m->train.opt < GRT_SGD || m->train.opt > GRT_ADAMW)
        return bad_desc(e, name, "unknown optimizer %d", m->train.opt);
    if (m->train.sched < GRT_CONSTANT || m->train.sched > GRT_EXPONENTIAL)
        return bad_desc(e, name, "unknown schedule %d", m->train.sched);
    return 0;
}

/* ---------------------------------------------------------------- options */

/* Commands, as bits for the options table. */
enum { C_TRAIN = 1, C_EVAL = 2, C_PREDICT = 4, C_INFO = 8, C_PARAMS = 16 };

/* The command line, read once for every command. */
typedef struct opts {
    const char *prog;     /* the executable's name, for messages */
    const char *cmd;      /* the command word */
    const char *pos[4];   /* positional arguments */
    int npos;             /* how many */
    const char *valid;    /* --valid DATA */
    const char *save;     /* --save PARAMS */
    const char *resume;   /* --resume PARAMS */
    const char *epochs;   /* --epochs N, as given */
    const char *lr;       /* --lr X */
    const char *batch;    /* --batch N */
    const char *seed;     /* --seed S */
    int standardize;      /* --standardize */
    int quiet;            /* -q */
    int help;             /* --help anywhere */
} opts;

/* One option: its spellings, the field it sets, the commands it belongs to. */
typedef struct option {
    const char *name;  /* "--lr" */
    const char *alias; /* "-q", or NULL */
    int has_value;     /* takes the next argument (or =VALUE) */
    size_t field;      /* offsetof the const char * or int field of opts */
    int commands;      /* C_* bits of the commands accepting it */
} option;

#define OPT(f) offsetof(opts, f)
static const option OPTIONS[] = {
    {"--valid", NULL, 1, OPT(valid), C_TRAIN},
    {"--epochs", NULL, 1, OPT(epochs), C_TRAIN},
    {"--lr", NULL, 1, OPT(lr), C_TRAIN},
    {"--batch", NULL, 1, OPT(batch), C_TRAIN},
    {"--seed", NULL, 1, OPT(seed), C_TRAIN},
    {"--standardize", NULL, 0, OPT(standardize), C_TRAIN},
    {"--save", NULL, 1, OPT(save), C_TRAIN},
    {"--resume", NULL, 1, OPT(resume), C_TRAIN},
    {"--quiet", "-q", 0, OPT(quiet), C_TRAIN | C_EVAL | C_PREDICT | C_INFO | C_PARAMS},
};
#undef OPT

static void usage(FILE *f, const char *prog)
{
    fprintf(f,
            "usage: %s COMMAND [ARGS]\n"
            "\n"
            "  %s train DATA [--valid DATA] [--epochs N] [--lr X] [--batch N] [--seed S]\n"
            "        [--standardize] [--save PARAMS] [--resume PARAMS] [-q]\n"
            "      train the model on the CSV file DATA; --batch 0 (or all) is full batch;\n"
            "      --standardize scales every input to mean 0, std 1 over DATA and saves\n"
            "      the scaling with the params; --resume starts from a parameter file\n"
            "  %s eval PARAMS DATA\n"
            "      loss (mean objective) and accuracy for class or binary targets\n"
            "  %s predict PARAMS [DATA]\n"
            "      one line of outputs per example; DATA '-' or none: stdin\n"
            "  %s params PARAMS\n"
            "      the values in a parameter file: each param's name and shape, then\n"
            "      its values, one row (last axis) a line\n"
            "  %s info\n"
            "      the model's inputs, targets, params and train settings\n"
            "\n"
            "DATA is CSV: the inputs' values in declaration order, then the targets'\n"
            "(a class target is one column holding the class index); a header row is\n"
            "optional. Exit status: 0 ok, 1 bad data, model mismatch or failed training,\n"
            "2 bad command line or I/O error.\n",
            prog, prog, prog, prog, prog, prog);
}

/* Status 2 with "PROG: error: ..." and a pointer to --help. */
static int bad_usage(grt_err *e, const opts *o, const char *fmt, ...) GRT_PRINTF(3, 4);
static int bad_usage(grt_err *e, const opts *o, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return grt_fail(e, GRT_EXIT_USAGE, GRT_E_USAGE, "%s: error: %s (see '%s --help')", o->prog,
                    what, o->prog);
}

static int parse_args(opts *o, int argc, char **argv, int cmd, grt_err *e)
{
    int i, k, dashdash = 0;
    for (i = 2; i < argc; i++) {
        const char *a = argv[i];
        const option *op = NULL;
        const char *val = NULL;
        size_t len;
        if (dashdash || a[0] != '-' || strcmp(a, "-") == 0) {
            if (o->npos == (int)(sizeof o->pos / sizeof o->pos[0]))
                return bad_usage(e, o, "too many arguments to %s", o->cmd);
            o->pos[o->npos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            dashdash = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            o->help = 1;
            continue;
        }
        len = strcspn(a, "=");
        for (k = 0; k < (int)(sizeof OPTIONS / sizeof OPTIONS[0]); k++)
            if ((strlen(OPTIONS[k].name) == len && strncmp(a, OPTIONS[k].name, len) == 0) ||
                (OPTIONS[k].alias && strcmp(a, OPTIONS[k].alias) == 0))
                op = &OPTIONS[k];
        if (!op)
            return bad_usage(e, o, "unknown option '%s'", a);
        if (!(op->commands & cmd))
            return bad_usage(e, o, "%s does not take %s", o->cmd, op->name);
        if (!op->has_value) {
            if (a[len])
                return bad_usage(e, o, "%s takes no value", op->name);
            *(int *)((char *)o + op->field) = 1;
            continue;
        }
        if (a[len])
            val = a + len + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else
            return bad_usage(e, o, "%s needs a value", op->name);
        *(const char **)((char *)o + op->field) = val;
    }
    return 0;
}

/* An integer in lo..hi written in full, into *out. */
static int int_arg(grt_err *e, const opts *o, const char *name, const char *s, long lo,
                   long hi, long *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi)
        return bad_usage(e, o, "%s: '%s' is not an integer in %ld..%ld", name, s, lo, hi);
    *out = v;
    return 0;
}

/* Applies the train options to the train block. */
static int train_overrides(grt_err *e, const opts *o, grt_train_config *c)
{
    long v;
    if (o->epochs) {
        if (int_arg(e, o, "--epochs", o->epochs, 0, 1000000000L, &v))
            return e->status;
        c->epochs = (int)v;
    }
    if (o->batch) {
        if (strcmp(o->batch, "all") == 0)
            c->batch = 0;
        else if (int_arg(e, o, "--batch", o->batch, 0, 2147483647L, &v))
            return e->status;
        else
            c->batch = v;
    }
    if (o->lr) {
        char *end;
        double x;
        errno = 0;
        x = strtod(o->lr, &end);
        if (!*o->lr || *end || errno || !isfinite(x) || x <= 0)
            return bad_usage(e, o, "--lr: '%s' is not a positive number", o->lr);
        c->lr = x;
    }
    if (o->seed) {
        char *end;
        unsigned long long s;
        errno = 0;
        s = strtoull(o->seed, &end, 10);
        if (!*o->seed || *end || errno || o->seed[0] == '-' || o->seed[0] == '+' ||
            o->seed[0] == ' ')
            return bad_usage(e, o, "--seed: '%s' is not an integer in 0..%" PRIu64, o->seed,
                             UINT64_MAX);
        c->seed = (uint64_t)s;
    }
    return 0;
}

/* Whether PARAMS could be created: its directory exists and is writable. Run
 * before training so a typo does not cost a training run. */
static int check_save_dir(grt_err *e, const char *path)
{
    char *dir = grt_xstrdup(path);
    char *slash = strrchr(dir, '/');
    int ok;
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    ok = access(dir, W_OK | X_OK) == 0;
    if (!ok)
        grt_fail(e, GRT_EXIT_USAGE, GRT_E_IO, "%s: error: cannot save there: %s: %s", path, dir,
                 strerror(errno));
    free(dir);
    return ok ? 0 : GRT_EXIT_USAGE;
}

/* ---------------------------------------------------------------- commands */

static void print_accuracy(FILE *f, const char *prefix, const grt_score *s)
{
    if (s->total)
        fprintf(f, "%saccuracy %.4f (%zu/%zu)\n", prefix, (double)s->correct / (double)s->total,
                s->correct, s->total);
}

/* Moves a random validate-fraction of d's rows into v, chosen by a shuffle
 * seeded with seed; the rest stay in file order. */
static void hold_out(grt_data *d, grt_data *v, double fraction, uint64_t seed)
{
    size_t n = d->n, k = (size_t)(fraction * (double)n + 0.5), i;
    size_t *idx;
    char *out;
    grt_data keep;
    grt_rng r;

    memset(v, 0, sizeof *v);
    v->nx = d->nx;
    v->ny = d->ny;
    if (n < 2)
        return;
    k = k < 1 ? 1 : k > n - 1 ? n - 1 : k;
    idx = grt_xmalloc(n, sizeof(size_t));
    out = grt_xcalloc(n, 1);
    for (i = 0; i < n; i++)
        idx[i] = i;
    grt_rng_seed(&r, seed ^ UINT64_C(0x76616c6964617465)); /* "validate" */
    grt_shuffle(&r, idx, n);
    for (i = 0; i < k; i++)
        out[idx[i]] = 1;
    memset(&keep, 0, sizeof keep);
    keep.nx = d->nx;
    keep.ny = d->ny;
    for (i = 0; i < n; i++)
        grt_data_push(out[i] ? v : &keep, d, i);
    grt_data_free(d);
    *d = keep;
    free(idx);
    free(out);
}

static int cmd_train(const opts *o, const grt_model *m, grt_err *e)
{
    grt_run run;
    grt_data train = {0, 0, 0, NULL, NULL, 0}, valid = train;
    grt_stats stats = {0, NULL, NULL};
    grt_real *params = NULL;
    grt_ctx ctx;
    grt_trained res;
    int status;

    if (o->npos != 1)
        return bad_usage(e, o, "train takes one DATA file");
    memset(&run, 0, sizeof run);
    run.cfg = m->train;
    run.quiet = o->quiet;
    run.progress = stderr;
    if ((status = train_overrides(e, o, &run.cfg)))
        return status;
    if (o->save && (status = check_save_dir(e, o->save)))
        return status;

    params = grt_xaligned(m->param_count * sizeof(grt_real));
    if (o->resume) {
        if ((status = grt_params_load(o->resume, m, params, &stats, e)))
            goto out;
    } else {
        m->init(params, run.cfg.seed);
    }
    if ((status = grt_csv_load(o->pos[0], m, GRT_CSV_TARGETS, &train, e)))
        goto out;
    if (o->valid) {
        if ((status = grt_csv_load(o->valid, m, GRT_CSV_TARGETS, &valid, e)))
            goto out;
    } else if (run.cfg.validate > 0) {
        hold_out(&train, &valid, run.cfg.validate, run.cfg.seed);
    }
    /* A resumed file's scaling wins: its params were fitted to it. */
    if (o->standardize && stats.n == 0)
        grt_stats_compute(&train, &stats);
    grt_stats_apply(&stats, &train);
    grt_stats_apply(&stats, &valid);

    grt_ctx_init(&ctx, m);
    status = grt_train(&ctx, params, &train, &valid, &run, &res, e);
    grt_ctx_free(&ctx);
    if (status)
        goto out;
    if (o->save && (status = grt_params_save(o->save, m, params, &stats, e)))
        goto out;

    printf("train loss %.6g\n", res.loss);
    if (res.has_valid) {
        printf("valid loss %.6g\n", res.valid.loss);
        print_accuracy(stdout, "valid ", &res.valid);
    }
    if (o->save && !o->quiet)
        fprintf(stderr, "saved %s\n", o->save);
out:
    free(params);
    grt_stats_free(&stats);
    grt_data_free(&train);
    grt_data_free(&valid);
    return status;
}

/* Loads PARAMS (with its scaling) and DATA of mode, scaled. */
static int load_both(const opts *o, const grt_model *m, const char *data, int mode,
                     grt_real *params, grt_data *d, grt_err *e)
{
    grt_stats stats;
    int status = grt_params_load(o->pos[0], m, params, &stats, e);
    if (status)
        return status;
    status = grt_csv_load(data, m, mode, d, e);
    if (!status)
        grt_stats_apply(&stats, d);
    grt_stats_free(&stats);
    return status;
}

static int cmd_eval(const opts *o, const grt_model *m, grt_err *e)
{
    grt_real *params;
    grt_data d;
    grt_ctx ctx;
    grt_score s;
    int status;

    if (o->npos != 2)
        return bad_usage(e, o, "eval takes PARAMS and DATA");
    params = grt_xaligned(m->param_count * sizeof(grt_real));
    memset(&d, 0, sizeof d);
    status = load_both(o, m, o->pos[1], GRT_CSV_TARGETS, params, &d, e);
    if (!status) {
        grt_ctx_init(&ctx, m);
        grt_evaluate(&ctx, params, &d, &s);
        grt_ctx_free(&ctx);
        printf("loss %.6g\n", s.loss);
        print_accuracy(stdout, "", &s);
    }
    grt_data_free(&d);
    free(params);
    return status;
}

static int cmd_predict(const opts *o, const grt_model *m, grt_err *e)
{
    grt_real *params;
    grt_data d;
    grt_ctx ctx;
    int status;

    if (o->npos < 1 || o->npos > 2)
        return bad_usage(e, o, "predict takes PARAMS and an optional DATA");
    params = grt_xaligned(m->param_count * sizeof(grt_real));
    memset(&d, 0, sizeof d);
    status = load_both(o, m, o->npos == 2 ? o->pos[1] : "-", GRT_CSV_INPUTS, params, &d, e);
    if (!status) {
        grt_ctx_init(&ctx, m);
        status = grt_predict_write(&ctx, params, &d, stdout, "<stdout>", e);
        grt_ctx_free(&ctx);
    }
    grt_data_free(&d);
    free(params);
    return status;
}

static int cmd_params(const opts *o, const grt_model *m, grt_err *e)
{
    grt_real *params;
    grt_stats stats;
    int status, i, d;

    if (o->npos != 1)
        return bad_usage(e, o, "params takes one PARAMS file");
    params = grt_xaligned(m->param_count * sizeof(grt_real));
    status = grt_params_load(o->pos[0], m, params, &stats, e);
    for (i = 0; !status && i < m->nparams; i++) {
        const grt_param_info *p = &m->params[i];
        size_t row = p->rank > 0 && p->dim[p->rank - 1] > 0 ? (size_t)p->dim[p->rank - 1] : 1;
        size_t k;
        /* "W1[16,3]": one token, so tools can tell names from numbers */
        printf("%s[", p->name ? p->name : "?");
        for (d = 0; d < p->rank; d++)
            printf(d ? ",%d" : "%d", p->dim[d]);
        printf("]\n");
        for (k = 0; k < p->size; k++) {
            fputs(k % row ? " " : "  ", stdout);
            printf(GRT_REAL_FMT, (double)params[p->offset + k]);
            if ((k + 1) % row == 0)
                putchar('\n');
        }
    }
    grt_stats_free(&stats);
    free(params);
    return status;
}

static void print_io(const char *title, int n, const grt_io_info *io, size_t total)
{
    int i;
    printf("%-10s %zu value%s per example\n", title, total, total == 1 ? "" : "s");
    for (i = 0; i < n; i++) {
        printf("  %-16s %zu", io[i].name ? io[i].name : "?", io[i].size);
        if (io[i].nclasses > 0)
            printf("  class(%d)", io[i].nclasses);
        putchar('\n');
    }
}

static int cmd_info(const opts *o, const grt_model *m, grt_err *e)
{
    const grt_train_config *c = &m->train;
    int i, d;

    if (o->npos != 0)
        return bad_usage(e, o, "info takes no arguments");
    printf("model      %s\n", m->name);
    printf("precision  %s\n", GRT_REAL_NAME);
    printf("hash       %016" PRIx64 "\n", m->hash);
    print_io("inputs", m->ninputs, m->inputs, m->input_size);
    print_io("targets", m->ntargets, m->targets, m->target_size);
    printf("output     %zu value%s per example", m->output_size, m->output_size == 1 ? "" : "s");
    if (m->nclasses > 0)
        printf(", accuracy by argmax over %d classes", m->nclasses);
    else if (m->binary)
        printf(", accuracy by output > %g", m->threshold);
    printf("\nobjective  %s\n", m->maximize ? "maximize" : "minimize");
    printf("params     %zu value%s in %d tensor%s\n", m->param_count,
           m->param_count == 1 ? "" : "s", m->nparams, m->nparams == 1 ? "" : "s");
    for (i = 0; i < m->nparams; i++) {
        const grt_param_info *p = &m->params[i];
        char shape[128];
        size_t len = 0;
        shape[len++] = '[';
        for (d = 0; d < p->rank; d++)
            len += (size_t)snprintf(shape + len, sizeof shape - len, d ? ", %d" : "%d", p->dim[d]);
        snprintf(shape + len, sizeof shape - len, "]");
        printf("  %-16s %-16s %zu\n", p->name ? p->name : "?", shape, p->size);
    }
    printf("batch      %zu examples per call, workspace %zu bytes\n", m->max_batch,
           m->workspace_bytes);
    if (m->flops_forward > 0 || m->flops_backward > 0)
        printf("flops      %.0f forward, %.0f backward per example\n", m->flops_forward,
               m->flops_backward);

    printf("train      %s(lr=%g", grt_opt_name(c->opt), c->lr);
    switch (c->opt) {
    case GRT_MOMENTUM:
    case GRT_NESTEROV: printf(", beta=%g", c->beta1); break;
    case GRT_RMSPROP: printf(", rho=%g, eps=%g", c->beta1, c->eps); break;
    case GRT_ADAM: printf(", beta1=%g, beta2=%g, eps=%g", c->beta1, c->beta2, c->eps); break;
    case GRT_ADAMW:
        printf(", beta1=%g, beta2=%g, eps=%g, weight_decay=%g", c->beta1, c->beta2, c->eps,
               c->opt_weight_decay);
        break;
    }
    printf(")\n");
    if (c->batch > 0)
        printf("           batch %ld", c->batch);
    else
        printf("           batch all");
    printf(", epochs %d, shuffle %s, seed %" PRIu64 "\n", c->epochs, c->shuffle ? "on" : "off",
           c->seed);
    printf("           schedule %s", grt_sched_name(c->sched));
    if (c->sched == GRT_STEP)
        printf("(%g, %g)", c->sched_a, c->sched_b);
    else if (c->sched == GRT_EXPONENTIAL)
        printf("(%g)", c->sched_a);
    printf(", clip %g, weight_decay %g, validate %g, patience %d\n", c->clip, c->weight_decay,
           c->validate, c->patience);
    return 0;
}

/* ------------------------------------------------------------------- main */

int grt_main(int argc, char **argv, const grt_model *m)
{
    static const struct {
        const char *name;                                  /* command word */
        int bit;                                           /* C_* */
        int (*run)(const opts *, const grt_model *, grt_err *); /* its function */
    } CMDS[] = {
        {"train", C_TRAIN, cmd_train},
        {"eval", C_EVAL, cmd_eval},
        {"predict", C_PREDICT, cmd_predict},
        {"params", C_PARAMS, cmd_params},
        {"info", C_INFO, cmd_info},
    };
    grt_err e;
    opts o;
    const char *slash;
    int i, status;

    memset(&e, 0, sizeof e);
    memset(&o, 0, sizeof o);
    o.prog = argc > 0 && argv[0] ? argv[0] : "model";
    if ((slash = strrchr(o.prog, '/')) && slash[1])
        o.prog = slash + 1;

    if (grt_model_check(m, &e)) {
        grt_report(&e);
        return e.status;
    }
    if (argc < 2) {
        usage(stderr, o.prog);
        return GRT_EXIT_USAGE;
    }
    o.cmd = argv[1];
    if (!strcmp(o.cmd, "--help") || !strcmp(o.cmd, "-h") || !strcmp(o.cmd, "help")) {
        usage(stdout, o.prog);
        return 0;
    }
    for (i = 0; i < (int)(sizeof CMDS / sizeof CMDS[0]); i++)
        if (strcmp(o.cmd, CMDS[i].name) == 0)
            break;
    if (i == (int)(sizeof CMDS / sizeof CMDS[0])) {
        if (strcmp(o.cmd, "gradcheck") == 0)
            bad_usage(&e, &o, "gradcheck is not in this runtime yet");
        else
            bad_usage(&e, &o, "unknown command '%s'", o.cmd);
        grt_report(&e);
        return e.status;
    }
    status = parse_args(&o, argc, argv, CMDS[i].bit, &e);
    if (!status && o.help) {
        usage(stdout, o.prog);
        return 0;
    }
    if (!status)
        status = CMDS[i].run(&o, m, &e);
    if (fflush(stdout) != 0 && !status)
        status = grt_fail(&e, GRT_EXIT_USAGE, GRT_E_IO, "<stdout>: error: cannot write: %s",
                          strerror(errno));
    if (status)
        grt_report(&e);
    return status;
}
