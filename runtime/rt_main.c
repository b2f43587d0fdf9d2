/*
 * rt_main.c: grt_main, the command line of every executable gradc builds.
 *
 *   train DATA [options]      fit the params, optionally save them
 *   eval PARAMS DATA          loss, and accuracy for class or binary targets
 *   predict PARAMS [DATA]     one line of outputs (or, --labels, classes) per example
 *   params PARAMS             the values in a parameter file, per tensor
 *   export PARAMS OUT         the params as NumPy .npy files, or one .npz
 *   plot LOG [-o SVG]         the loss curves of a --log file, as SVG
 *   gradcheck [DATA]          loss_grad against central differences
 *   info                      what the descriptor says about the model
 *
 * DATA is a CSV file, or IDX files given by --images and --labels.
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
#include <sys/stat.h>
#include <unistd.h>

/* In a data-parallel run, only rank 0 prints and writes files. */
#define RANK0 (grt_comm_rank() == 0)

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
    for (i = 0; i < m->ninputs; i++) {
        sum += m->inputs[i].size;
        if (m->inputs[i].vocab < 0)
            return bad_desc(e, name, "input '%s' has vocabulary %d",
                            m->inputs[i].name ? m->inputs[i].name : "?", m->inputs[i].vocab);
    }
    if (m->ninputs < 0 || (m->ninputs > 0 && !m->inputs) || sum != m->input_size)
        return bad_desc(e, name, "inputs add up to %zu values, input_size is %zu", sum,
                        m->input_size);
    sum = 0;
    for (i = 0; i < m->ntargets; i++) {
        sum += m->targets[i].size;
        /* class(n)[T]: T class indices, scored against T rows of n outputs */
        if (m->targets[i].nclasses < 0 ||
            (m->targets[i].nclasses > 0 &&
             (m->targets[i].size < 1 ||
              m->targets[i].size > m->output_size / (size_t)m->targets[i].nclasses)))
            return bad_desc(e, name, "class target '%s' of %zu value%s needs %d outputs each, "
                            "the model has %zu",
                            m->targets[i].name ? m->targets[i].name : "?", m->targets[i].size,
                            m->targets[i].size == 1 ? "" : "s", m->targets[i].nclasses,
                            m->output_size);
    }
    if (m->ntargets < 0 || (m->ntargets > 0 && !m->targets) || sum != m->target_size)
        return bad_desc(e, name, "targets add up to %zu values, target_size is %zu", sum,
                        m->target_size);
    if (m->nclasses < 0 || (m->nclasses > 0 && (size_t)m->nclasses > m->output_size))
        return bad_desc(e, name, "%d classes but %zu output values", m->nclasses, m->output_size);
    if (m->binary && (m->output_size < 1 || m->target_size < 1))
        return bad_desc(e, name, "binary target without output or target");
    if (m->train.opt < 0 || m->train.opt >= GRT_OPT_COUNT)
        return bad_desc(e, name, "unknown optimizer %d", m->train.opt);
    if (m->train.sched < 0 || m->train.sched >= GRT_SCHED_COUNT)
        return bad_desc(e, name, "unknown schedule %d", m->train.sched);
    return 0;
}

/* ---------------------------------------------------------------- options */

/* Commands, as bits for the options table. */
enum {
    C_TRAIN = 1, C_EVAL = 2, C_PREDICT = 4, C_INFO = 8, C_PARAMS = 16, C_EXPORT = 32,
    C_PLOT = 64, C_GRADCHECK = 128, C_SAMPLE = 256,
    C_ALL = 511
};

/* The command line, read once for every command. */
typedef struct opts {
    const char *prog;     /* the executable's name, for messages */
    const char *cmd;      /* the command word */
    const char *pos[4];   /* positional arguments */
    int npos;             /* how many */
    const char *valid;    /* --valid DATA */
    const char *images;   /* --images IDX */
    const char *labels;   /* --labels IDX */
    const char *valid_images; /* --valid-images IDX */
    const char *valid_labels; /* --valid-labels IDX */
    const char *save;     /* --save PARAMS */
    const char *resume;   /* --resume PARAMS */
    const char *epochs;   /* --epochs N, as given */
    const char *lr;       /* --lr X */
    const char *batch;    /* --batch N */
    const char *seed;     /* --seed S */
    const char *optimizer;/* --optimizer SPEC */
    const char *schedule; /* --schedule SPEC */
    const char *clip;     /* --clip X */
    const char *weight_decay; /* --weight-decay X */
    const char *validate; /* --validate F */
    const char *patience; /* --patience N */
    const char *shuffle;  /* --shuffle on|off */
    const char *checkpoint; /* --checkpoint N */
    const char *stop_after; /* --stop-after N */
    const char *log;      /* --log CSV */
    const char *plot;     /* --plot SVG */
    const char *output;   /* -o FILE (plot) */
    const char *params;   /* --params PARAMS (gradcheck) */
    const char *examples; /* --examples N (gradcheck) */
    const char *tol;      /* --tol X (gradcheck) */
    const char *text;     /* --text FILE (train, eval): a text model's text */
    const char *steps;    /* --steps N (train --text) */
    const char *prompt;   /* --prompt TEXT (sample) */
    const char *tokens;   /* --tokens N (sample) */
    const char *temperature; /* --temperature X (sample) */
    const char *top_k;    /* --top-k K (sample) */
    int all;              /* --all (gradcheck) */
    int class_labels;     /* --labels (predict): classes, not outputs */
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
    {"--images", NULL, 1, OPT(images), C_TRAIN | C_EVAL | C_PREDICT | C_GRADCHECK},
    {"--labels", NULL, 1, OPT(labels), C_TRAIN | C_EVAL | C_GRADCHECK},
    {"--valid-images", NULL, 1, OPT(valid_images), C_TRAIN},
    {"--valid-labels", NULL, 1, OPT(valid_labels), C_TRAIN},
    {"--epochs", NULL, 1, OPT(epochs), C_TRAIN},
    {"--lr", NULL, 1, OPT(lr), C_TRAIN},
    {"--batch", NULL, 1, OPT(batch), C_TRAIN},
    {"--seed", NULL, 1, OPT(seed), C_TRAIN | C_GRADCHECK | C_SAMPLE},
    {"--text", NULL, 1, OPT(text), C_TRAIN | C_EVAL},
    {"--steps", NULL, 1, OPT(steps), C_TRAIN},
    {"--prompt", NULL, 1, OPT(prompt), C_SAMPLE},
    {"--tokens", NULL, 1, OPT(tokens), C_SAMPLE},
    {"--temperature", NULL, 1, OPT(temperature), C_SAMPLE},
    {"--top-k", "--top_k", 1, OPT(top_k), C_SAMPLE},
    {"--optimizer", NULL, 1, OPT(optimizer), C_TRAIN},
    {"--schedule", NULL, 1, OPT(schedule), C_TRAIN},
    {"--clip", NULL, 1, OPT(clip), C_TRAIN},
    {"--weight-decay", "--weight_decay", 1, OPT(weight_decay), C_TRAIN},
    {"--validate", NULL, 1, OPT(validate), C_TRAIN},
    {"--patience", NULL, 1, OPT(patience), C_TRAIN},
    {"--shuffle", NULL, 1, OPT(shuffle), C_TRAIN},
    {"--standardize", NULL, 0, OPT(standardize), C_TRAIN},
    {"--save", NULL, 1, OPT(save), C_TRAIN},
    {"--resume", NULL, 1, OPT(resume), C_TRAIN},
    {"--checkpoint", NULL, 1, OPT(checkpoint), C_TRAIN},
    {"--stop-after", NULL, 1, OPT(stop_after), C_TRAIN},
    {"--log", NULL, 1, OPT(log), C_TRAIN},
    {"--plot", NULL, 1, OPT(plot), C_TRAIN},
    {"--output", "-o", 1, OPT(output), C_PLOT},
    {"--params", NULL, 1, OPT(params), C_GRADCHECK},
    {"--examples", NULL, 1, OPT(examples), C_GRADCHECK},
    {"--tol", NULL, 1, OPT(tol), C_GRADCHECK},
    {"--all", NULL, 0, OPT(all), C_GRADCHECK},
    {"--quiet", "-q", 0, OPT(quiet), C_ALL},
};
#undef OPT

/* The help of each command: its synopsis (after "PROG "), then what it
 * does, each line of the text indented under it. */
static const struct {
    const char *cmd;      /* command word */
    const char *synopsis; /* its arguments */
    const char *text;     /* what it does, and its options */
} HELP[] = {
    {"train",
     "train DATA [--valid DATA] [--epochs N] [--lr X] [--batch N] [--seed S]\n"
     "        [--standardize] [--save PARAMS] [--resume PARAMS] [--log CSV] [-q]",
     "train the model on DATA; the train block's settings can be overridden:\n"
     "  --optimizer SPEC    sgd | momentum | nesterov | rmsprop | adam | adamw,\n"
     "                      with arguments as in the model: 'adam(lr=1e-3)'\n"
     "  --lr X  --batch N|all  --epochs N  --seed S  --shuffle on|off\n"
     "  --schedule SPEC     constant | step(every, gamma) | cosine |\n"
     "                      cosine(warmup, min_lr) | exponential(gamma)\n"
     "  --clip X  --weight-decay X  --validate F  --patience N   (0: off)\n"
     "--standardize scales every input to mean 0, std 1 over DATA and saves\n"
     "the scaling with the params; --resume PARAMS goes on where the run that\n"
     "saved PARAMS stopped (--epochs counts from that run's start);\n"
     "--checkpoint N saves every N epochs; --stop-after N ends after epoch N;\n"
     "--log CSV writes a row per epoch; --plot SVG draws the loss curves.\n"
     "A line per epoch on stderr: loss, acc (scored targets), val_loss and\n"
     "val_acc (with validation data), examples/s, the epoch's time; a run\n"
     "that diverges leaves PARAMS as it was and saves its last good params\n"
     "to PARAMS.diverged.\n"
     "A text model (input int(V)[T], target class(V)[T]) trains on text:\n"
     "  train --text FILE [--steps N] [--save PARAMS] ...\n"
     "each step draws --batch windows of T+1 characters at random offsets\n"
     "(the first T the input, the last T the target); --steps N (default:\n"
     "the train block's steps, else 1000) counts optimizer steps; with\n"
     "--validate F the last F of FILE is scored as validation text; a line\n"
     "about every tenth of the run: loss, val_loss, lr, tokens/s. V = 256\n"
     "reads bytes; a smaller V takes the file's sorted characters as the\n"
     "vocabulary, saved with the params"},
    {"eval", "eval PARAMS DATA | eval PARAMS --text FILE",
     "loss (mean objective) and accuracy for class or binary targets;\n"
     "--text (a text model): the mean loss per character in nats, and bits\n"
     "per character, over the windows at offsets 0, T, 2T, ..."},
    {"sample", "sample PARAMS [--prompt TEXT] [--tokens N] [--temperature X] [--top-k K] [--seed S]",
     "text from a text model: the prompt, then N characters (default 200),\n"
     "each drawn from the model's prediction after the last T characters,\n"
     "its logits divided by X (default 1; 0: always the likeliest), among\n"
     "the K likeliest (default: all); --seed S: the draws (default: the train\n"
     "block's seed)"},
    {"predict", "predict PARAMS [DATA] [--labels]",
     "one line of outputs per example; DATA '-' or none: stdin;\n"
     "--labels: the class index (a class target) or 0/1 (a binary target)\n"
     "instead of the outputs"},
    {"params", "params PARAMS",
     "the values in a parameter file: each param's name and shape, then\n"
     "its values, one row (last axis) a line"},
    {"export", "export PARAMS OUT",
     "the params as NumPy files: OUT/NAME.npy per param, or one archive when\n"
     "OUT ends in .npz (np.load reads both)"},
    {"plot", "plot LOG [-o SVG]", "the loss curves of a --log file as an SVG chart (default: LOG.svg)"},
    {"gradcheck", "gradcheck [DATA] [--params PARAMS] [--examples N] [--all] [--tol X]",
     "the gradients of loss_grad against central differences, per param;\n"
     "without DATA on random examples"},
    {"info", "info", "the model's inputs, targets, params and train settings"},
};

/* The help of command cmd (with "usage: "), or of all of them (cmd NULL). */
static void usage(FILE *f, const char *prog, const char *cmd)
{
    size_t i;
    if (!cmd)
        fprintf(f, "usage: %s COMMAND [ARGS]\n\n", prog);
    for (i = 0; i < sizeof HELP / sizeof HELP[0]; i++) {
        const char *t = HELP[i].text;
        if (cmd && strcmp(cmd, HELP[i].cmd) != 0)
            continue;
        fprintf(f, cmd ? "usage: %s %s\n" : "  %s %s\n", prog, HELP[i].synopsis);
        while (*t) {
            size_t n = strcspn(t, "\n");
            fprintf(f, "%s%.*s\n", cmd ? "  " : "      ", (int)n, t);
            t += n + (t[n] != 0);
        }
    }
    if (cmd && strcmp(cmd, "info") && strcmp(cmd, "params") && strcmp(cmd, "export") &&
        strcmp(cmd, "plot") && strcmp(cmd, "sample"))
        fprintf(f, "DATA is CSV (see '%s --help'), or --images FILE%s (IDX).\n", prog,
                strcmp(cmd, "predict") ? " --labels FILE" : "");
    if (cmd)
        return;
    fprintf(f,
            "\n"
            "DATA is CSV: the inputs' values in declaration order, then the targets'\n"
            "(a class target is one column holding the class index); a header row is\n"
            "optional. Or IDX (MNIST's format, gzipped or not): --images FILE --labels\n"
            "FILE instead of DATA, --valid-images and --valid-labels instead of --valid.\n"
            "'%s COMMAND --help' shows one command's help.\n"
            "Exit status: 0 ok, 1 bad data, model mismatch, failed training or gradient\n"
            "check, 2 bad command line or I/O error.\n",
            prog);
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
        if (cmd == C_PREDICT && strcmp(a, "--labels") == 0) {
            /* predict reads no labels: there the word asks for them */
            o->class_labels = 1;
            continue;
        }
        len = strcspn(a, "=");
        for (k = 0; k < (int)(sizeof OPTIONS / sizeof OPTIONS[0]); k++)
            if ((strlen(OPTIONS[k].name) == len && strncmp(a, OPTIONS[k].name, len) == 0) ||
                (OPTIONS[k].alias && strlen(OPTIONS[k].alias) == len &&
                 strncmp(a, OPTIONS[k].alias, len) == 0))
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

/* A finite number >= lo (and < hi when hi > lo), into *out; what says so. */
static int num_arg(grt_err *e, const opts *o, const char *name, const char *s, double lo,
                   double hi, const char *what, double *out)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v < lo || (hi > lo && v >= hi))
        return bad_usage(e, o, "%s: '%s' is not %s", name, s, what);
    *out = v;
    return 0;
}

/* Applies the train options to the train block: the optimizer first, so
 * that --lr wins over the rate of --optimizer's kind, whatever the order. */
static int train_overrides(grt_err *e, const opts *o, grt_train_config *c)
{
    char msg[256];
    long v;
    double x;
    if (o->optimizer && grt_parse_optimizer(o->optimizer, c, msg, sizeof msg))
        return bad_usage(e, o, "--optimizer: %s", msg);
    if (o->schedule && grt_parse_schedule(o->schedule, c, msg, sizeof msg))
        return bad_usage(e, o, "--schedule: %s", msg);
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
        if (num_arg(e, o, "--lr", o->lr, 0, 0, "a positive number", &x))
            return e->status;
        if (!(x > 0))
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
    if (o->clip && num_arg(e, o, "--clip", o->clip, 0, 0, "a number >= 0 (0: no clipping)",
                           &c->clip))
        return e->status;
    if (o->weight_decay && num_arg(e, o, "--weight-decay", o->weight_decay, 0, 0,
                                   "a number >= 0 (0: none)", &c->weight_decay))
        return e->status;
    if (o->validate &&
        num_arg(e, o, "--validate", o->validate, 0, 1, "a fraction in [0, 1) (0: none)",
                &c->validate))
        return e->status;
    if (o->patience) {
        if (int_arg(e, o, "--patience", o->patience, 0, 1000000000L, &v))
            return e->status;
        c->patience = (int)v;
    }
    if (o->shuffle) {
        if (strcmp(o->shuffle, "on") && strcmp(o->shuffle, "off"))
            return bad_usage(e, o, "--shuffle: '%s' is not 'on' or 'off'", o->shuffle);
        c->shuffle = strcmp(o->shuffle, "on") == 0;
    }
    return 0;
}

/* Whether path may be written as an output (grt_output.h): not a
 * directory, writable. Run before training so a typo does not cost a
 * training run. */
static int check_save_dir(grt_err *e, const char *path)
{
    grt_outset none;
    char msg[sizeof e->msg];
    grt_outset_init(&none);
    if (grt_outset_check(&none, path, msg, sizeof msg))
        return 0;
    return grt_fail(e, GRT_EXIT_USAGE, GRT_E_IO, "%s", msg);
}

/* ---------------------------------------------------------------- commands */

static void print_accuracy(FILE *f, const char *prefix, const grt_score *s)
{
    if (s->total)
        fprintf(f, "%saccuracy %.4f (%zu/%zu)\n", prefix, (double)s->correct / (double)s->total,
                s->correct, s->total);
}

/* Reads a command's data: the CSV file csv, or the IDX files images and
 * labels (labels may be NULL when mode is GRT_CSV_INPUTS); in a
 * data-parallel run, this rank's part of it. */
static int load_data(const char *csv, const char *images, const char *labels,
                     const grt_model *m, int mode, grt_data *d, grt_err *e)
{
    int rank = grt_comm_rank(), size = grt_comm_size(), status;
    double n[2];
    if (images) {
        /* IDX files are read whole, then cut to the part */
        status = grt_idx_load(images, mode == GRT_CSV_TARGETS ? labels : NULL, m, d, e);
        if (!status)
            grt_data_keep_part(d, rank, size);
    } else {
        status = grt_csv_load_part(csv, m, mode, rank, size, d, e);
    }
    if (status || size == 1)
        return status; /* an error of this rank's: it says so and ends the run */
    /* every rank must have read the same file */
    n[0] = (double)grt_data_total(d);
    n[1] = -n[0];
    grt_comm_min(n, 2);
    if (n[0] != (double)grt_data_total(d) || -n[1] != n[0]) {
        grt_fail(e, GRT_EXIT_DATA, GRT_E_FIELDS,
                 "%s: error: the ranks read different numbers of examples (%.0f to %.0f); "
                 "every rank must see the same file",
                 images ? images : csv, n[0], -n[1]);
        e->shared = 1;
        return e->status;
    }
    return 0;
}

/* Checks a command's choice between CSV DATA (positional argument `at`)
 * and --images/--labels; *csv gets the CSV path or NULL. */
static int data_args(grt_err *e, const opts *o, int at, int need_labels, int optional,
                     const char **csv)
{
    *csv = o->npos > at ? o->pos[at] : NULL;
    if (o->images && *csv)
        return bad_usage(e, o, "%s takes DATA or --images, not both", o->cmd);
    if (o->labels && !o->images)
        return bad_usage(e, o, "--labels needs --images");
    if (o->images && need_labels && !o->labels)
        return bad_usage(e, o, "--images needs --labels (the targets) for %s", o->cmd);
    if (!o->images && !*csv && !optional)
        return bad_usage(e, o, "%s needs DATA (a CSV file) or --images and --labels", o->cmd);
    return 0;
}

/* Writes the SVG of h (or of the log at path logpath, when given) to out. */
static int write_plot(grt_err *e, const grt_model *m, const grt_history *h, const char *out)
{
    char title[200];
    size_t size;
    char *svg;
    int status;
    snprintf(title, sizeof title, "%s: loss per epoch", m->name);
    svg = grt_plot_svg(h, title, &size);
    if (strcmp(out, "-") == 0) {
        fwrite(svg, 1, size, stdout);
        status = 0;
    } else {
        status = grt_write_atomic(out, svg, size, e);
    }
    free(svg);
    return status;
}

/* "x[23]" for input value j, or "x" for an input of one value. */
static void input_name(char *dst, size_t cap, const grt_model *m, size_t j)
{
    size_t off = 0;
    int t;
    for (t = 0; t < m->ninputs; t++) {
        const grt_io_info *io = &m->inputs[t];
        if (j < off + io->size) {
            if (io->size == 1)
                snprintf(dst, cap, "%s", io->name ? io->name : "?");
            else
                snprintf(dst, cap, "%s[%zu]", io->name ? io->name : "?", j - off);
            return;
        }
        off += io->size;
    }
    snprintf(dst, cap, "?");
}

/* Inputs whose ranges differ a hundredfold or more train badly without
 * --standardize: gradient descent's one rate is too large for the wide
 * columns' weights or too small for the narrow ones'. Said before
 * training, naming the two columns. (Every rank computes the ranges, a
 * collective; rank 0 speaks.) */
static void scale_warning(const opts *o, const grt_model *m, const grt_data *d, const char *csv)
{
    size_t a, b;
    double r[4], ratio = grt_data_spread(d, &a, &b, r);
    char na[128], nb[128];
    if (ratio < 100 || o->quiet)
        return;
    input_name(na, sizeof na, m, a);
    input_name(nb, sizeof nb, m, b);
    fprintf(stderr,
            "%s: warning: the inputs' ranges differ %.0f-fold: column %zu (%s) spans "
            "%.4g..%.4g, column %zu (%s) %.4g..%.4g; use --standardize to scale every input "
            "to mean 0, std 1 (the scaling is saved with the params)\n",
            csv, ratio, a + 1, na, r[0], r[1], b + 1, nb, r[2], r[3]);
}

/* train --text FILE: a text model on the windows of a text (rt_text.c). */
/* The end of a training run, text or rows: the running statistics it ends
 * with kept (they are saved with its params), the context freed, and its
 * log put in place, a failed run's too (it is what happened). Returns the
 * run's status, or the log's failure where the run succeeded. */
static int end_run(const grt_model *m, grt_ctx *ctx, grt_stats *stats, grt_log *log, int status, grt_err *e)
{
    if (ctx->state) {
        free(stats->state);
        stats->nstate = m->state_count;
        stats->state = grt_xmalloc(stats->nstate, sizeof(grt_real));
        memcpy(stats->state, ctx->state, stats->nstate * sizeof(grt_real));
    }
    grt_ctx_free(ctx);
    if (log) {
        grt_err le;
        memset(&le, 0, sizeof le);
        if (grt_log_close(log, &le) && !status)
            *e = le, status = le.status;
    }
    return status;
}

/* train and eval --text: *T of a text model, else a usage error */
static int text_model(const opts *o, const grt_model *m, size_t *T, grt_err *e)
{
    if (grt_text_model(m, T, NULL))
        return 0;
    return bad_usage(e, o, "--text needs a model whose input is int(V)[T] and whose target "
                           "is class(V)[T]; model '%s' is not one",
                     m->name);
}

/* What train and train --text share. Under MPI the other ranks print
 * nothing and write no log or plot: the options as a rank sees them. */
static opts rank_opts(const opts *o)
{
    opts mine = *o;
    if (!RANK0) {
        mine.log = mine.plot = NULL;
        mine.quiet = 1;
    }
    return mine;
}

/* The run from the model's train block and the command line's overrides. */
static int run_begin(const opts *o, const grt_model *m, grt_run *run, grt_err *e)
{
    memset(run, 0, sizeof *run);
    run->cfg = m->train;
    run->quiet = o->quiet;
    run->progress = stderr;
    return train_overrides(e, o, &run->cfg);
}

/* --stop-after (1..max), then whether --save, --plot and --log can be written. */
static int run_outputs(const opts *o, grt_run *run, long max, grt_err *e)
{
    long v;
    int status;
    if (o->stop_after) {
        if (int_arg(e, o, "--stop-after", o->stop_after, 1, max, &v))
            return e->status;
        run->stop_after = (int)v;
    }
    if (RANK0 && o->save && (status = check_save_dir(e, o->save)))
        return status;
    if (o->plot && (status = check_save_dir(e, o->plot)))
        return status;
    if (o->log && (status = check_save_dir(e, o->log)))
        return status;
    return 0;
}

/* The run's state, scaling, log and history, and the context with the
 * resumed run's running statistics. */
static void run_attach(const opts *o, const grt_model *m, grt_run *run, grt_state *state, grt_stats *stats,
                       grt_log *log, grt_history *hist, grt_ctx *ctx)
{
    run->state = state;
    run->save = o->save;
    run->stats = stats;
    run->log = o->log ? log : NULL;
    run->history = o->plot ? hist : NULL;
    grt_ctx_init(ctx, m);
    grt_ctx_take_state(ctx, stats);
}

static int cmd_train_text(const opts *o, const grt_model *m, grt_err *e)
{
    grt_run run;
    grt_text train, valid;
    grt_stats stats;
    grt_state state;
    grt_history hist;
    grt_real *params = NULL;
    grt_ctx ctx;
    grt_trained res;
    grt_log log;
    size_t T;
    long v;
    int status;
    opts mine = rank_opts(o);
    o = &mine;

    memset(&state, 0, sizeof state);
    memset(&stats, 0, sizeof stats);
    memset(&hist, 0, sizeof hist);
    memset(&log, 0, sizeof log);
    memset(&train, 0, sizeof train);
    memset(&valid, 0, sizeof valid);
    state.opt_kind = -1;
    if ((status = text_model(o, m, &T, e)))
        return status;
    if (o->npos || o->images || o->valid || o->valid_images)
        return bad_usage(e, o, "train --text FILE takes no other data (the validation text is "
                               "the last --validate fraction of FILE)");
    if (o->standardize || o->checkpoint || o->patience)
        return bad_usage(e, o, "%s is for rows of data, not for train --text",
                         o->standardize ? "--standardize"
                         : o->checkpoint ? "--checkpoint"
                                         : "--patience");
    if ((status = run_begin(o, m, &run, e)))
        return status;
    if (o->steps) {
        if (int_arg(e, o, "--steps", o->steps, 0, 2000000000L, &v))
            return e->status;
        run.cfg.steps = v;
    }
    if ((status = run_outputs(o, &run, 2000000000L, e)))
        return status;

    params = grt_xaligned(m->param_count * sizeof(grt_real));
    if (o->resume) {
        /* its vocabulary and state come along */
        if ((status = grt_params_load(o->resume, m, params, &stats, &state, e)))
            goto out;
        if (state.valid && state.step == 0)
            state.valid = 0; /* a run of epochs: its params, not its steps */
    } else {
        m->init(params, run.cfg.seed);
    }
    if ((status = grt_text_load(o->text, m, &stats, 1, o->resume ? o->resume : o->text, &train,
                                e)))
        goto out;
    if (run.cfg.validate > 0) {
        if ((status = grt_text_split(&train, &valid, run.cfg.validate, T, e)))
            goto out;
    } else if ((status = grt_text_long_enough(&train, T, "the text", e))) {
        goto out;
    }
    if (o->log && (status = grt_log_open(&log, o->log, o->resume != NULL, 1, e)))
        goto out;
    run_attach(o, m, &run, &state, &stats, &log, &hist, &ctx);
    status = grt_train_text(&ctx, params, &train, run.cfg.validate > 0 ? &valid : NULL, &run,
                            &res, e);
    status = end_run(m, &ctx, &stats, o->log ? &log : NULL, status, e);
    if (status)
        goto out;
    if (o->save && (status = grt_params_save(o->save, m, params, &stats, &state, e)))
        goto out;
    if (o->plot) {
        hist.by_step = 1;
        if ((status = write_plot(e, m, &hist, o->plot)))
            goto out;
    }
    if (!RANK0)
        goto out;
    printf("train loss %.6g\n", res.loss);
    if (res.has_valid)
        printf("valid loss %.6g\nvalid bits per character %.6g\n", res.valid.loss,
               res.valid.loss / 0.69314718055994530942);
    if (o->save && !o->quiet)
        fprintf(stderr, "saved %s\n", o->save);
out:
    grt_log_abort(&log);
    free(params);
    grt_stats_free(&stats);
    grt_state_free(&state);
    grt_history_free(&hist);
    grt_text_free(&train);
    grt_text_free(&valid);
    return status;
}

static int cmd_train(const opts *o, const grt_model *m, grt_err *e)
{
    grt_run run;
    grt_data train, valid;
    grt_stats stats;
    grt_state state;
    grt_history hist;
    grt_real *params = NULL;
    grt_ctx ctx;
    grt_trained res;
    grt_log log;
    const char *csv;
    char *diverged_path = NULL;
    long v;
    int status;
    opts mine;
    if (o->text)
        return cmd_train_text(o, m, e);
    mine = rank_opts(o);
    o = &mine;

    memset(&state, 0, sizeof state);
    memset(&stats, 0, sizeof stats);
    memset(&hist, 0, sizeof hist);
    memset(&log, 0, sizeof log);
    memset(&train, 0, sizeof train);
    memset(&valid, 0, sizeof valid);
    state.opt_kind = -1;
    if (o->standardize) {
        int *vocab = grt_input_vocab(m), ids = 0;
        size_t j;
        for (j = 0; j < m->input_size; j++)
            ids |= vocab[j] > 0;
        free(vocab);
        if (ids)
            return bad_usage(e, o, "--standardize would scale token ids; model '%s' has an "
                                   "int(V) input",
                             m->name);
    }
    if (o->steps)
        return bad_usage(e, o, "--steps counts the steps of train --text; rows of data train "
                               "for --epochs");
    if (o->npos > 1)
        return bad_usage(e, o, "train takes one DATA file");
    if ((status = data_args(e, o, 0, 1, 0, &csv)))
        return status;
    if (o->valid && o->valid_images)
        return bad_usage(e, o, "train takes --valid or --valid-images, not both");
    if (!o->valid_images != !o->valid_labels)
        return bad_usage(e, o, "--valid-images and --valid-labels go together");
    if ((status = run_begin(o, m, &run, e)))
        return status;
    if (o->checkpoint) {
        if (int_arg(e, o, "--checkpoint", o->checkpoint, 0, 1000000000L, &v))
            return e->status;
        if (v > 0 && !o->save)
            return bad_usage(e, o, "--checkpoint needs --save (where to write)");
        run.checkpoint = (int)v;
    }
    if ((status = run_outputs(o, &run, 1000000000L, e)))
        return status;

    params = grt_xaligned(m->param_count * sizeof(grt_real));
    if (o->resume) {
        if ((status = grt_params_load(o->resume, m, params, &stats, &state, e)))
            goto out;
        if (!o->quiet) {
            if (!state.valid)
                fprintf(stderr, "note: %s holds no training state; training starts at epoch 1 "
                                "from its params\n", o->resume);
            else if (state.stopped)
                fprintf(stderr, "note: early stopping ended the run of %s at epoch %ld; "
                                "nothing to train\n", o->resume, state.epoch);
            else if (state.epoch >= run.cfg.epochs)
                fprintf(stderr, "note: %s has done %ld epochs of %d; nothing to train (raise "
                                "--epochs to go on)\n", o->resume, state.epoch, run.cfg.epochs);
            if (state.valid && state.opt_kind >= 0 && state.opt_kind != run.cfg.opt)
                fprintf(stderr, "note: the %s state in %s does not apply to %s, which starts "
                                "afresh\n", grt_opt_name(state.opt_kind), o->resume,
                        grt_opt_name(run.cfg.opt));
        }
    } else {
        m->init(params, run.cfg.seed);
    }
    if ((status = load_data(csv, o->images, o->labels, m, GRT_CSV_TARGETS, &train, e)))
        goto out;
    if (o->valid || o->valid_images) {
        if ((status = load_data(o->valid, o->valid_images, o->valid_labels, m, GRT_CSV_TARGETS,
                                &valid, e)))
            goto out;
    } else if (run.cfg.validate > 0) {
        grt_data_hold_out(&train, &valid, run.cfg.validate, run.cfg.seed);
    }
    /* A resumed file's scaling wins: its params were fitted to it. */
    if (o->standardize && stats.n == 0)
        grt_stats_compute(&train, &stats);
    else if (stats.n == 0 && !o->images)
        scale_warning(o, m, &train, csv);
    grt_stats_apply(&stats, &train);
    grt_stats_apply(&stats, &valid);

    if (o->log && (status = grt_log_open(&log, o->log, o->resume != NULL, 0, e)))
        goto out;
    run_attach(o, m, &run, &state, &stats, &log, &hist, &ctx); /* with a resumed run's statistics */
    if (o->save) {
        /* a diverged run leaves SAVE alone; its last good params go beside
         * it (not beside a device or a FIFO, which have no "beside") */
        struct stat sb;
        if (stat(o->save, &sb) != 0 || S_ISREG(sb.st_mode)) {
            diverged_path = grt_xmalloc(strlen(o->save) + sizeof ".diverged", 1);
            strcpy(diverged_path, o->save);
            strcat(diverged_path, ".diverged");
            run.save_diverged = diverged_path;
        }
    }
    status = grt_train(&ctx, params, &train, &valid, &run, &res, e);
    status = end_run(m, &ctx, &stats, o->log ? &log : NULL, status, e);
    if (status)
        goto out;
    if (o->save && (status = grt_params_save(o->save, m, params, &stats, &state, e)))
        goto out;
    if (o->plot) {
        /* with --log, the log (a resumed run appends to it) has every epoch */
        grt_history whole;
        if (o->log && grt_log_read(o->log, &whole, e) == 0) {
            whole.kept = res.kept ? res.best_epoch : 0;
            status = write_plot(e, m, &whole, o->plot);
            grt_history_free(&whole);
        } else {
            memset(e, 0, sizeof *e);
            hist.kept = res.kept ? res.best_epoch : 0; /* marked on the chart */
            status = write_plot(e, m, &hist, o->plot);
        }
        if (status)
            goto out;
    }

    if (!RANK0)
        goto out;
    /* the figures of the epoch whose params are the result */
    if (res.kept && res.best_epoch < res.epochs)
        printf("kept epoch %d of %d: the lowest val_loss (early stopping)\n", res.best_epoch,
               res.epochs);
    printf("train loss %.6g\n", res.loss);
    if (isfinite(res.acc))
        printf("train accuracy %.4f\n", res.acc);
    if (res.has_valid) {
        printf("valid loss %.6g\n", res.valid.loss);
        print_accuracy(stdout, "valid ", &res.valid);
    }
    if (o->save && !o->quiet)
        fprintf(stderr, "saved %s\n", o->save);
    if (o->plot && !o->quiet && strcmp(o->plot, "-") != 0)
        fprintf(stderr, "wrote %s\n", o->plot);
out:
    grt_log_abort(&log);
    free(diverged_path);
    free(params);
    grt_stats_free(&stats);
    grt_state_free(&state);
    grt_history_free(&hist);
    grt_data_free(&train);
    grt_data_free(&valid);
    return status;
}

/* Loads PARAMS (with its scaling and state, into stats: free it) and the
 * data of mode, scaled. */
static int load_both(const opts *o, const grt_model *m, const char *csv, int mode,
                     grt_real *params, grt_stats *stats, grt_data *d, grt_err *e)
{
    int status = grt_params_load(o->pos[0], m, params, stats, NULL, e);
    if (status)
        return status;
    status = load_data(csv, o->images, o->labels, m, mode, d, e);
    if (!status)
        grt_stats_apply(stats, d);
    return status;
}

/* eval PARAMS --text FILE: loss per character, and bits. */
static int cmd_eval_text(const opts *o, const grt_model *m, grt_err *e)
{
    grt_real *params;
    grt_stats stats;
    grt_text t;
    grt_ctx ctx;
    size_t T, W;
    double loss;
    int status;

    if (o->npos != 1 || o->images)
        return bad_usage(e, o, "eval --text FILE takes PARAMS and no other data");
    if ((status = text_model(o, m, &T, e)))
        return status;
    memset(&t, 0, sizeof t);
    params = grt_xaligned(m->param_count * sizeof(grt_real));
    status = grt_params_load(o->pos[0], m, params, &stats, NULL, e);
    if (!status)
        status = grt_text_load(o->text, m, &stats, 0, o->pos[0], &t, e);
    if (!status)
        status = grt_text_long_enough(&t, T, "the text", e);
    if (!status) {
        grt_ctx_init(&ctx, m);
        grt_ctx_take_state(&ctx, &stats);
        loss = grt_text_loss(&ctx, params, &t, &W);
        grt_ctx_free(&ctx);
        printf("loss %.6g\nbits per character %.6g\n", loss, loss / log(2.0));
        if (!o->quiet)
            fprintf(stderr, "%s: %zu windows of %zu characters (%zu of %zu characters scored)\n",
                    o->text, W, T + 1, W * T, t.n);
    }
    grt_text_free(&t);
    grt_stats_free(&stats);
    free(params);
    return status;
}

static int cmd_sample(const opts *o, const grt_model *m, grt_err *e)
{
    grt_real *params;
    grt_stats stats;
    grt_ctx ctx;
    grt_sample_opts so;
    long v;
    int status;

    if (o->npos != 1)
        return bad_usage(e, o, "sample takes one PARAMS file");
    memset(&so, 0, sizeof so);
    so.tokens = 200;
    so.temperature = 1;
    so.seed = m->train.seed;
    so.prompt = o->prompt;
    so.params_name = o->pos[0];
    if (o->tokens) {
        if (int_arg(e, o, "--tokens", o->tokens, 0, 100000000L, &v))
            return e->status;
        so.tokens = (size_t)v;
    }
    if (o->temperature &&
        num_arg(e, o, "--temperature", o->temperature, 0, 0, "a number >= 0 (0: the likeliest)",
                &so.temperature))
        return e->status;
    if (o->top_k) {
        if (int_arg(e, o, "--top-k", o->top_k, 0, 1000000L, &v))
            return e->status;
        so.top_k = (int)v;
    }
    if (o->seed) {
        grt_train_config c = m->train;
        opts only;
        memset(&only, 0, sizeof only);
        only.prog = o->prog;
        only.seed = o->seed;
        if ((status = train_overrides(e, &only, &c)))
            return status;
        so.seed = c.seed;
    }
    params = grt_xaligned(m->param_count * sizeof(grt_real));
    status = grt_params_load(o->pos[0], m, params, &stats, NULL, e);
    if (!status) {
        grt_ctx_init(&ctx, m);
        grt_ctx_take_state(&ctx, &stats);
        status = grt_sample(&ctx, params, &stats, &so, stdout, e);
        grt_ctx_free(&ctx);
    }
    grt_stats_free(&stats);
    free(params);
    return status;
}

static int cmd_eval(const opts *o, const grt_model *m, grt_err *e)
{
    grt_real *params;
    grt_data d;
    grt_stats stats;
    grt_ctx ctx;
    grt_score s;
    const char *csv;
    int status;

    if (o->text)
        return cmd_eval_text(o, m, e);
    if (o->npos < 1 || o->npos > 2)
        return bad_usage(e, o, "eval takes PARAMS and DATA");
    if ((status = data_args(e, o, 1, 1, 0, &csv)))
        return status;
    params = grt_xaligned(m->param_count * sizeof(grt_real));
    memset(&d, 0, sizeof d);
    memset(&stats, 0, sizeof stats);
    status = load_both(o, m, csv, GRT_CSV_TARGETS, params, &stats, &d, e);
    if (!status) {
        grt_ctx_init(&ctx, m);
        grt_ctx_take_state(&ctx, &stats);
        grt_evaluate(&ctx, params, &d, &s);
        grt_ctx_free(&ctx);
        printf("loss %.6g\n", s.loss);
        print_accuracy(stdout, "", &s);
    }
    grt_data_free(&d);
    grt_stats_free(&stats);
    free(params);
    return status;
}

static int cmd_predict(const opts *o, const grt_model *m, grt_err *e)
{
    grt_real *params;
    grt_data d;
    grt_stats stats;
    grt_ctx ctx;
    const char *csv;
    int status;

    if (o->npos < 1 || o->npos > 2)
        return bad_usage(e, o, "predict takes PARAMS and an optional DATA");
    if ((status = data_args(e, o, 1, 0, 1, &csv)))
        return status;
    if (o->class_labels && !grt_has_accuracy(m))
        return bad_usage(e, o, "predict --labels needs a class or a binary target; model '%s' "
                               "has neither (its outputs are the prediction)",
                         m->name);
    params = grt_xaligned(m->param_count * sizeof(grt_real));
    memset(&d, 0, sizeof d);
    memset(&stats, 0, sizeof stats);
    status = load_both(o, m, csv ? csv : "-", GRT_CSV_INPUTS, params, &stats, &d, e);
    if (!status) {
        grt_ctx_init(&ctx, m);
        grt_ctx_take_state(&ctx, &stats);
        status = grt_predict_write(&ctx, params, &d, o->class_labels, stdout, "<stdout>", e);
        grt_ctx_free(&ctx);
    }
    grt_data_free(&d);
    grt_stats_free(&stats);
    free(params);
    return status;
}

static int cmd_export(const opts *o, const grt_model *m, grt_err *e)
{
    grt_real *params;
    grt_stats stats;
    int status;

    if (o->npos != 2)
        return bad_usage(e, o, "export takes PARAMS and OUT (a directory, or FILE.npz)");
    params = grt_xaligned(m->param_count * sizeof(grt_real));
    status = grt_params_load(o->pos[0], m, params, &stats, NULL, e);
    if (!status)
        status = grt_export(o->pos[1], m, params, &stats, stdout, e);
    grt_stats_free(&stats);
    free(params);
    return status;
}

static int cmd_plot(const opts *o, const grt_model *m, grt_err *e)
{
    grt_history h;
    char *out = NULL;
    int status;

    if (o->npos != 1)
        return bad_usage(e, o, "plot takes one LOG file (written by train --log)");
    if (o->output) {
        out = grt_xstrdup(o->output);
    } else {
        /* LOG.csv -> LOG.svg */
        size_t n = strlen(o->pos[0]);
        out = grt_xmalloc(n + 5, 1);
        memcpy(out, o->pos[0], n + 1);
        if (n > 4 && strcmp(out + n - 4, ".csv") == 0)
            out[n - 4] = '\0';
        strcat(out, ".svg");
    }
    if (strcmp(out, "-") != 0 && (status = check_save_dir(e, out)))
        goto done;
    if ((status = grt_log_read(o->pos[0], &h, e)))
        goto done;
    status = write_plot(e, m, &h, out);
    grt_history_free(&h);
    if (!status && !o->quiet && strcmp(out, "-") != 0)
        fprintf(stderr, "wrote %s\n", out);
done:
    free(out);
    return status;
}

static int cmd_gradcheck(const opts *o, const grt_model *m, grt_err *e)
{
    grt_real *params;
    grt_stats stats;
    grt_data d;
    grt_ctx ctx;
    grt_gc_opts gc;
    const char *csv;
    uint64_t seed = m->train.seed;
    long n = 16;
    double worst;
    int status;

    if (o->npos > 1)
        return bad_usage(e, o, "gradcheck takes at most one DATA file");
    if ((status = data_args(e, o, 0, 1, 1, &csv)))
        return status;
    memset(&gc, 0, sizeof gc);
    memset(&stats, 0, sizeof stats);
    gc.tol = GRT_REAL_BYTES == 8 ? GRT_GC_TOL_DOUBLE : GRT_GC_TOL_FLOAT;
    gc.per_tensor = o->all ? 0 : 1000;
    gc.out = stdout;
    if (o->tol && (num_arg(e, o, "--tol", o->tol, 0, 0, "a positive number", &gc.tol) ||
                   !(gc.tol > 0)))
        return bad_usage(e, o, "--tol: '%s' is not a positive number", o->tol);
    if (o->examples && int_arg(e, o, "--examples", o->examples, 1, 1000000000L, &n))
        return e->status;
    if (o->seed) {
        grt_train_config c = m->train;
        opts only;
        memset(&only, 0, sizeof only);
        only.prog = o->prog;
        only.seed = o->seed;
        if ((status = train_overrides(e, &only, &c)))
            return status;
        seed = c.seed;
    }
    gc.seed = seed;

    params = grt_xaligned(m->param_count * sizeof(grt_real));
    memset(&d, 0, sizeof d);
    if (o->params) {
        if ((status = grt_params_load(o->params, m, params, &stats, NULL, e)))
            goto done;
    } else {
        m->init(params, seed);
    }
    if (csv || o->images) {
        if ((status = load_data(csv, o->images, o->labels, m, GRT_CSV_TARGETS, &d, e)))
            goto done;
        grt_stats_apply(&stats, &d);
        if (d.n > (size_t)n)
            d.n = (size_t)n;
    } else {
        grt_random_data(m, (size_t)n, seed, &d);
    }
    printf("gradcheck %s (%s): %zu ", m->name, GRT_REAL_NAME, d.n);
    if (csv || o->images)
        printf("example%s of %s", d.n == 1 ? "" : "s", csv ? csv : o->images);
    else
        printf("random example%s (seed %" PRIu64 ")", d.n == 1 ? "" : "s", seed);
    if (o->params)
        printf(", params of %s", o->params);
    else
        printf(", params from init (seed %" PRIu64 ")", seed);
    if (m->loss_seeded && m->loss_grad_seeded)
        printf(", dropout's masks the same in both");
    putchar('\n');
    grt_ctx_init(&ctx, m);
    grt_ctx_take_state(&ctx, &stats);
    status = grt_gradcheck(&ctx, params, &d, &gc, &worst, e);
    grt_ctx_free(&ctx);
done:
    grt_data_free(&d);
    grt_stats_free(&stats);
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
    status = grt_params_load(o->pos[0], m, params, &stats, NULL, e);
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
        if (io[i].vocab > 0)
            printf("  int(%d)", io[i].vocab);
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
    if (m->parallel && m->max_threads)
        printf("threads    %d%s\n", m->max_threads(),
               m->max_threads() < 2                 ? ""
               : m->split_batch && !m->state_count ? ", each batch split among them"
                                                   : ", sharing each matrix product");

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
    printf(", epochs %d, shuffle %s, seed %" PRIu64, c->epochs, c->shuffle ? "on" : "off",
           c->seed);
    if (c->steps > 0)
        printf(", steps %ld", c->steps);
    putchar('\n');
    printf("           schedule %s", grt_sched_name(c->sched));
    if (c->sched == GRT_STEP)
        printf("(%g, %g)", c->sched_a, c->sched_b);
    else if (c->sched == GRT_EXPONENTIAL)
        printf("(%g)", c->sched_a);
    else if (c->sched == GRT_COSINE && (c->sched_a > 0 || c->sched_b > 0))
        printf("(warmup=%g, min_lr=%g)", c->sched_a, c->sched_b);
    printf(", clip %g, weight_decay %g, validate %g, patience %d\n", c->clip, c->weight_decay,
           c->validate, c->patience);
    return 0;
}

/* ------------------------------------------------------------------- main */

/* Reports e and returns status. An error every rank of a data-parallel run
 * met alike (the command line, a diverged run, rank 0's files) is said once,
 * by rank 0; an error of one rank (a bad row in its part, a file it cannot
 * open) is said by that rank, which then ends every rank: none is left
 * waiting in a collective. */
static int finish(int status, const grt_err *e)
{
    if (!status)
        return 0;
    if (grt_comm_size() == 1 || e->shared || e->code == GRT_E_USAGE ||
        e->code == GRT_E_DIVERGED) {
        if (RANK0)
            grt_report(e);
        return status;
    }
    fflush(stdout);
    fprintf(stderr, "rank %d of %d: %s; ending all ranks\n", grt_comm_rank(), grt_comm_size(),
            e->msg);
    fflush(stderr);
    grt_comm_abort(status);
    return status;
}

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
        {"export", C_EXPORT, cmd_export},
        {"plot", C_PLOT, cmd_plot},
        {"gradcheck", C_GRADCHECK, cmd_gradcheck},
        {"sample", C_SAMPLE, cmd_sample},
        {"info", C_INFO, cmd_info},
    };
    grt_err e;
    opts o;
    const char *slash;
    int i, status;

    /* A data-parallel run trains on every rank; the other commands run on
     * rank 0 alone. */
    grt_comm_init(&argc, &argv);
    if (argc < 2 || strcmp(argv[1], "train") != 0) {
        if (grt_comm_rank() != 0)
            return 0;
        grt_comm_solo();
    }
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
        usage(stderr, o.prog, NULL);
        return GRT_EXIT_USAGE;
    }
    o.cmd = argv[1];
    if (!strcmp(o.cmd, "--help") || !strcmp(o.cmd, "-h") || !strcmp(o.cmd, "help")) {
        usage(stdout, o.prog, NULL);
        return 0;
    }
    for (i = 0; i < (int)(sizeof CMDS / sizeof CMDS[0]); i++)
        if (strcmp(o.cmd, CMDS[i].name) == 0)
            break;
    if (i == (int)(sizeof CMDS / sizeof CMDS[0])) {
        bad_usage(&e, &o, "unknown command '%s'", o.cmd);
        grt_report(&e);
        return e.status;
    }
    status = parse_args(&o, argc, argv, CMDS[i].bit, &e);
    if (!status && o.help) {
        if (RANK0)
            usage(stdout, o.prog, o.cmd); /* that command's help alone */
        return 0;
    }
    if (!status)
        status = CMDS[i].run(&o, m, &e);
    if (fflush(stdout) != 0 && !status)
        status = grt_fail(&e, GRT_EXIT_USAGE, GRT_E_IO, "<stdout>: error: cannot write: %s",
                          strerror(errno));
    return finish(status, &e);
}
