/*
 * gradc_rt.h: the runtime that executables built by gradc link.
 *
 * gradc writes three files for a model: MODEL.c and MODEL.h (the generated
 * pair of docs/language.md, which needs nothing but libm) and a small
 * glue file that fills a grt_model with the pair's functions and the model's
 * metadata and calls grt_main(). Everything else an executable does (reading
 * data, the optimizer loop, parameter files, eval, predict) lives here.
 *
 * The runtime is built once per precision: with GRT_DOUBLE defined,
 * grt_real is double (libgradcrt_d.a), else float (libgradcrt.a).
 */
#ifndef GRADC_RT_H
#define GRADC_RT_H

#include <stddef.h>
#include <stdint.h>

#ifdef GRT_DOUBLE
typedef double grt_real;
#else
typedef float grt_real;
#endif

#define GRT_MAXRANK 6

/* One parameter tensor of the model, in declaration order. */
typedef struct grt_param_info {
    const char *name;          /* as in the model ("W1", "h1.W") */
    int rank;                  /* number of axes */
    int dim[GRT_MAXRANK];      /* sizes */
    size_t offset;             /* first element in the params array */
    size_t size;               /* number of elements */
    int line;                  /* line of the model file that declares it, 0: unknown */
    unsigned flags;            /* GRT_PARAM_NODECAY | GRT_PARAM_FROZEN, 0: neither */
} grt_param_info;

/* grt_param_info.flags (the model's `param ... nodecay frozen`). */
enum {
    GRT_PARAM_NODECAY = 1,     /* no weight decay (L2 or adamw's decoupled) */
    GRT_PARAM_FROZEN = 2       /* never updated: its gradient is ignored */
};

/* One input or target of the model, in declaration order. */
typedef struct grt_io_info {
    const char *name;          /* as in the model */
    size_t size;               /* elements per example (a class target: one
                                  class index per element of its shape, so
                                  1 for class(n), T for class(n)[T]) */
    int nclasses;              /* class(n) target: n; else 0 */
    int vocab;                 /* int(V) input (token ids): V; else 0 */
} grt_io_info;

/* The optimizers and schedules, from the table gradc shares (grt_train.def):
 * GRT_SGD, GRT_MOMENTUM, GRT_NESTEROV, GRT_RMSPROP, GRT_ADAM, GRT_ADAMW;
 * GRT_CONSTANT, GRT_STEP, GRT_COSINE, GRT_EXPONENTIAL. */
enum grt_opt {
#define GRT_OPT(ID, NAME, LR, WD, ...) GRT_##ID,
#include "grt_train.def"
    GRT_OPT_COUNT
};
enum grt_sched {
#define GRT_SCHED(ID, NAME, REQUIRED, ...) GRT_##ID,
#include "grt_train.def"
    GRT_SCHED_COUNT
};
enum grt_target { GRT_TARGET_NONE, GRT_TARGET_REAL, GRT_TARGET_CLASS };

/* The train block of the model file, defaults filled in by gradc. */
typedef struct grt_train_config {
    int opt;                   /* enum grt_opt */
    double lr;                 /* learning rate */
    double beta1, beta2, eps;  /* momentum/nesterov beta, rmsprop rho (beta1), adam betas */
    double opt_weight_decay;   /* adamw's decoupled weight decay */
    long batch;                /* examples per step; 0 means all (full batch) */
    int epochs;                /* passes over the training data */
    int shuffle;               /* reshuffle every epoch */
    uint64_t seed;             /* of shuffling and initialisation */
    int sched;                 /* enum grt_sched */
    double sched_a, sched_b;   /* step(every, gamma): a, b; exponential(gamma): a */
    double clip;               /* global gradient norm, 0: none */
    double weight_decay;       /* L2 added to the gradient, 0: none */
    double validate;           /* fraction held out of the training file, 0: none */
    int patience;              /* early stopping, 0: none */
    long steps;                /* optimizer steps of a text run (train
                                  --text), 0: the runtime's default */
} grt_train_config;

/* Everything the runtime knows of a model. */
typedef struct grt_model {
    const char *name;          /* model name */
    uint64_t hash;             /* hash of parameter names and shapes */
    size_t param_count;        /* elements in params */
    size_t input_size;         /* elements of x per example (all inputs) */
    size_t target_size;        /* elements of y per example (all targets) */
    size_t output_size;        /* elements predict writes per example */
    size_t max_batch;          /* the generated batch: n <= it in every call */
    size_t workspace_bytes;    /* scratch for one call */
    int nparams;               /* params[] count */
    const grt_param_info *params;
    int ninputs;               /* inputs[] count */
    const grt_io_info *inputs;
    int ntargets;              /* targets[] count */
    const grt_io_info *targets;
    int target_kind;           /* enum grt_target */
    int nclasses;              /* class target: classes; accuracy by argmax of output */
    int binary;                /* binary target: accuracy by output > threshold */
    double threshold;          /* 0.5 for probabilities, 0 for logits */
    int maximize;              /* the objective is maximized: ascend */
    double flops_forward;      /* per example, for `info` */
    double flops_backward;     /* per example, for `info` */
    grt_train_config train;    /* the train block */
    /* The generated functions, in the form of a model with state (the
     * running statistics of batch_norm: state_count reals, not trained,
     * saved with the params). loss_grad updates the state; loss and predict
     * read it. For a stateless model the glue passes adapters that ignore
     * the state argument (state_count 0, state NULL). */
    void (*init)(grt_real *params, uint64_t seed);
    grt_real (*loss)(const grt_real *params, const grt_real *state, const grt_real *x,
                     const grt_real *y, size_t n, void *work);
    grt_real (*loss_grad)(const grt_real *params, grt_real *state, const grt_real *x,
                          const grt_real *y, size_t n, grt_real *grad, void *work);
    void (*predict)(const grt_real *params, const grt_real *state, const grt_real *x,
                    size_t n, grt_real *out, void *work);
    /* Fields added later, NULL or 0 in older glue: */
    const char *source;        /* the model file's name, for messages ("digits.nn") */
    /* A model with dropout: loss and loss_grad with the masks drawn from seed,
     * so that both see the same masks (gradcheck); NULL without dropout. */
    grt_real (*loss_seeded)(const grt_real *params, const grt_real *state, const grt_real *x,
                            const grt_real *y, size_t n, void *work, uint64_t seed);
    grt_real (*loss_grad_seeded)(const grt_real *params, grt_real *state, const grt_real *x,
                                 const grt_real *y, size_t n, grt_real *grad, void *work,
                                 uint64_t seed);
    size_t state_count;        /* reals of model state, 0: stateless */
    void (*init_state)(grt_real *state); /* its initial values; NULL when stateless */
    /* An executable built with threads (gradc --threads): parallel runs
     * fn(arg, t, T) on T threads at once, t = 0..T-1 (an OpenMP parallel
     * region of the glue), and returns when every one has; max_threads()
     * is the T it will use. NULL in a single-threaded executable. */
    void (*parallel)(void (*fn)(void *arg, int t, int T), void *arg);
    int (*max_threads)(void);
    int split_batch; /* with parallel: a chunk's examples are split among the
                        threads (the model's code runs on one thread each);
                        0: the optimizer alone uses them */
} grt_model;

/* The executable's main: parses the command line (train, eval, predict,
 * gradcheck, info) and runs it. Returns the process exit status. */
int grt_main(int argc, char **argv, const grt_model *m);

#endif
