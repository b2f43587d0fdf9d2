/*
 * rt_internal.h: the runtime's private header, in sections that follow its
 * files: errors, memory and atomic writes (rt_util.c), CSV data and
 * standardization (rt_data.c), IDX data (rt_idx.c), the seeded generator
 * (rt_rng.c), optimizers and schedules (rt_opt.c), parameter files
 * (rt_params.c), NumPy export (rt_export.c), the training and evaluation
 * loops (rt_train.c), training logs and their SVG plots (rt_plot.c), the
 * gradient check (rt_check.c) and the command line (rt_main.c).
 *
 * Executables only see gradc_rt.h and grt_main(); this header exists so that
 * tests/test_runtime.c can test each piece on its own. Every external name
 * starts with grt_, so the runtime links beside gradc's own objects.
 *
 * Conventions: a function that can fail returns 0 or an exit status (1 bad
 * data, model mismatch or training failure; 2 bad command line or I/O) and
 * fills a grt_err with a message that names the file, as gcc would:
 * "data.csv:312:5: error: 'abc' is not a number (field 3)".
 */
#ifndef GRADC_RT_INTERNAL_H
#define GRADC_RT_INTERNAL_H

#include "gradc_rt.h"
#include "grt_output.h"

#include <float.h>
#include <stdarg.h>
#include <stdio.h>

#if defined(__GNUC__)
#define GRT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define GRT_NORETURN __attribute__((noreturn))
#else
#define GRT_PRINTF(f, a)
#define GRT_NORETURN
#endif

/* Bytes per real in this build, as parameter files record it. */
#define GRT_REAL_BYTES ((int)sizeof(grt_real))
#ifdef GRT_DOUBLE
#define GRT_REAL_NAME "double"
#define GRT_REAL_FMT "%.17g"
#define GRT_REAL_MAX DBL_MAX
#else
#define GRT_REAL_NAME "float"
#define GRT_REAL_FMT "%.9g"
#define GRT_REAL_MAX FLT_MAX
#endif

/* Workspace and buffer alignment, a cache line and an AVX-512 vector. */
#define GRT_ALIGN 64

/* ---------------------------------------------------------------- rt_util.c */

/* Exit statuses of the executable. */
enum { GRT_EXIT_OK = 0, GRT_EXIT_DATA = 1, GRT_EXIT_USAGE = 2 };

/* What went wrong, finer than the exit status, so tests can tell the causes of
 * one status apart. */
enum grt_errcode {
    GRT_E_NONE,
    GRT_E_USAGE,     /* bad command line */
    GRT_E_IO,        /* open, read, write, rename failed */
    GRT_E_NOMEM,     /* allocation failed */
    GRT_E_MODEL_DESC,/* the grt_model descriptor is inconsistent (our bug) */
    GRT_E_EMPTY,     /* a data or parameter file holds nothing */
    GRT_E_NUMBER,    /* CSV: a field is not a number, or NaN/Inf */
    GRT_E_FIELDS,    /* CSV: wrong number of fields */
    GRT_E_CLASS,     /* CSV: a class index not an integer in 0..n-1 */
    GRT_E_MAGIC,     /* parameter file: not one */
    GRT_E_VERSION,   /* parameter file: a format version we cannot read */
    GRT_E_TRUNCATED, /* parameter file: shorter than its header says */
    GRT_E_CHECKSUM,  /* parameter file: damaged (checksum or size mismatch) */
    GRT_E_FORMAT,    /* parameter file: checksum fine, structure malformed */
    GRT_E_VALUES,    /* parameter file: checksum fine, values no run writes
                        (NaN params, a standard deviation of 0) */
    GRT_E_PRECISION, /* parameter file: float file for a double model or back */
    GRT_E_MISMATCH,  /* parameter file: of another model */
    GRT_E_DIVERGED,  /* training: the loss, a gradient or a param became NaN or infinite */
    GRT_E_IDX,       /* IDX data: bad magic, type, sizes, truncated, labels */
    GRT_E_LOG,       /* a training log (CSV) that plot cannot read */
    GRT_E_GRADCHECK  /* gradcheck: an error above the threshold */
};

/* The first error of an operation. */
typedef struct grt_err {
    int status;     /* exit status it calls for; 0 while no error */
    int code;       /* enum grt_errcode */
    char msg[1024]; /* one line, no trailing newline, names the file */
    int shared;     /* every rank of a data-parallel run met this same error
                       (so rank 0 alone reports it) */
} grt_err;

/* Records an error in e (if e has none yet) and returns its status. */
int grt_fail(grt_err *e, int status, int code, const char *fmt, ...) GRT_PRINTF(4, 5);
/* Prints e->msg to stderr as one line. */
void grt_report(const grt_err *e);

/* Allocation that exits with status 2 and a message when memory runs out: a
 * runtime that cannot hold its data has nothing better to do. n * size is
 * checked for overflow; zero sizes allocate one byte. */
void *grt_xmalloc(size_t n, size_t size);
void *grt_xcalloc(size_t n, size_t size);
void *grt_xrealloc(void *p, size_t n, size_t size);
/* size bytes aligned to GRT_ALIGN (at least GRT_ALIGN bytes); free() it. */
void *grt_xaligned(size_t size);
char *grt_xstrdup(const char *s);
/* Seconds on a monotonic clock. */
double grt_now(void);

/* A growing byte buffer, for files built in memory before they are written. */
typedef struct grt_buf {
    unsigned char *p; /* the bytes */
    size_t n;         /* used */
    size_t cap;       /* allocated */
} grt_buf;

/* n more bytes at the end of b; returns where they start. */
unsigned char *grt_buf_room(grt_buf *b, size_t n);
void grt_buf_put(grt_buf *b, const void *p, size_t n);
/* printf at the end of b (no terminator is counted in b->n). */
void grt_buf_printf(grt_buf *b, const char *fmt, ...) GRT_PRINTF(2, 3);
/* Little-endian integers of n bytes. */
void grt_put_le(unsigned char *p, uint64_t v, int n);
uint64_t grt_get_le(const unsigned char *p, int n);

/* Writes buf to path through the output policy (grt_output.h): a regular
 * file whole or not at all (a temporary file PATH.tmp.XXXXXX in the same
 * directory, fsync, rename, fsync of the directory), a device or FIFO in
 * place. On any failure (a full disk; a file size limit, where SIGXFSZ is
 * ignored so the write fails instead of killing the process) the temporary
 * file is unlinked, an existing file at path is untouched, and the status
 * is 2: "PATH: error: cannot write it: No space left on device". */
int grt_write_atomic(const char *path, const void *buf, size_t size, grt_err *e);

/* ---------------------------------------------------------------- rt_comm.c */

/* The ranks of a run and the few collectives data-parallel training needs:
 * the only interface between the base modules and the transport. rt_comm.c
 * is the single process (rank 0 of 1, collectives that do nothing), in
 * libgradcrt.a; the data-parallel library carries another file with the
 * same functions instead, chosen at link time. Every rank calls the
 * collectives in the same order; after grt_comm_solo() the process works
 * alone, as rank 0 of 1. */
int grt_comm_init(int *argc, char ***argv); /* starts the transport; returns the rank count */
void grt_comm_solo(void);
int grt_comm_rank(void);
int grt_comm_size(void);
void grt_comm_sum(double *v, size_t n);     /* element-wise sum over the ranks, in place */
void grt_comm_min(double *v, size_t n);     /* element-wise minimum over the ranks */
void grt_comm_bcast(void *p, size_t n);     /* rank 0's n bytes to every rank */
GRT_NORETURN void grt_comm_abort(int status); /* ends every rank with status */

/* ---------------------------------------------------------------- rt_data.c */

/* A data set as read from CSV: all values as doubles, converted to grt_real
 * chunk by chunk when the generated functions are called. In a
 * data-parallel run each rank holds a part: the rows of the whole set are
 * numbered 0..total-1 ("global" rows), and global lists the ones held here. */
typedef struct grt_data {
    size_t n;  /* examples (rows) held */
    size_t nx; /* input values per example (the model's input_size) */
    size_t ny; /* target values per example; 0 when targets were not read */
    double *x; /* n * nx input values, row after row */
    double *y; /* n * ny target values; class targets hold the index */
    size_t cap;/* rows allocated in x and y */
    size_t total;   /* rows of the whole set, every rank's (global != NULL) */
    size_t *global; /* n global row numbers of the rows held, ascending;
                       NULL: the whole set, row i is global row i */
    size_t *local;  /* total entries: the row held for global row g, or
                       SIZE_MAX when another rank holds it */
} grt_data;

/* What the rows of a CSV file must hold. */
enum grt_csv_mode {
    GRT_CSV_TARGETS, /* inputs then targets (train, eval) */
    GRT_CSV_INPUTS   /* inputs, optionally followed by targets that are
                        ignored (predict) */
};

/* Reads CSV data for model m from f; name is used in messages. Returns 0 or
 * an exit status with e filled. */
int grt_csv_read(FILE *f, const char *name, const grt_model *m, int mode,
                 grt_data *d, grt_err *e);
/* The same from a path; "-" is stdin (named "<stdin>" in messages). */
int grt_csv_load(const char *path, const grt_model *m, int mode, grt_data *d,
                 grt_err *e);
/* Part `rank` of `size` of a CSV file: the data rows i (0-based, header
 * and blank lines not counted) with i % size == rank are parsed and kept,
 * the others only counted (d->total); with size 1, grt_csv_read. A part may
 * be empty; the whole file may not. */
int grt_csv_read_part(FILE *f, const char *name, const grt_model *m, int mode, int rank,
                      int size, grt_data *d, grt_err *e);
int grt_csv_load_part(const char *path, const grt_model *m, int mode, int rank, int size,
                      grt_data *d, grt_err *e);
/* Keeps part `rank` of `size` of a whole data set (rows i % size == rank). */
void grt_data_keep_part(grt_data *d, int rank, int size);
/* Rows of the whole set, over every rank. */
size_t grt_data_total(const grt_data *d);
/* The row held for global row g, or SIZE_MAX. */
size_t grt_data_local(const grt_data *d, size_t g);
/* Moves the rows of a random fraction of the whole set (round(fraction
 * total), at least 1, at most total - 1; chosen by a shuffle seeded with
 * seed) from d into v; the rows left keep their order, renumbered. Every
 * rank picks the same global rows. */
void grt_data_hold_out(grt_data *d, grt_data *v, double fraction, uint64_t seed);
void grt_data_free(grt_data *d);
/* Whether every target value must be 0 or 1: a binary target (bce or
 * bce_logits of the output), the model's only target. */
int grt_binary_target(const grt_model *m);
/* The target named for target value j (of all targets' values), for messages. */
const char *grt_target_name(const grt_model *m, size_t j);
/* The input named for input value j, for messages. */
const char *grt_input_name(const grt_model *m, size_t j);
/* Per input value, the vocabulary V of an int(V) input, else 0 (a malloc'd
 * array of input_size). */
int *grt_input_vocab(const grt_model *m);
/* Appends row i of src to dst (same nx, ny). */
void grt_data_push(grt_data *dst, const grt_data *src, size_t i);

/* Outcome of grt_parse_number. */
enum { GRT_NUM_OK, GRT_NUM_BAD, GRT_NUM_NONFINITE, GRT_NUM_RANGE };
/* Parses a decimal number (optional sign, digits with an optional point, an
 * optional exponent) spanning exactly s[0..len). Refuses NaN and infinity
 * texts, hex floats, and values that overflow a double. */
int grt_parse_number(const char *s, size_t len, double *out);

/* What a parameter file carries beside the params that the data taught
 * and every command needs: the per input value standardization x' = (x -
 * mean) / std, the model's state (running statistics) and a text model's
 * vocabulary. */
typedef struct grt_stats {
    size_t n;     /* values standardized (input_size); 0: no standardization */
    double *mean; /* n means over the training set */
    double *std;  /* n population standard deviations, 0 replaced by 1 */
    grt_real *state; /* the model state to save (STAT), or as loaded
                        (malloc'd, freed by grt_stats_free); NULL: none */
    size_t nstate;   /* its reals (the model's state_count) */
    int nvocab;      /* a text model's vocabulary (VOCB): its nvocab
                        characters (bytes) ascending, id i being vocab[i];
                        0: none (V = 256 reads bytes as ids) */
    unsigned char vocab[256];
} grt_stats;

/* Mean and population std of every input column of d, over every rank's
 * rows (at least one row in all). */
void grt_stats_compute(const grt_data *d, grt_stats *s);
/* How far apart the scales of d's input columns are, over every rank's
 * rows: the ratio of the widest column's range (max - min) to the
 * narrowest's, constant columns left out (1 when fewer than two vary).
 * *narrow and *wide get the two columns, range their min and max (narrow
 * first). */
double grt_data_spread(const grt_data *d, size_t *narrow, size_t *wide, double range[4]);
/* Standardizes d's inputs in place; nothing when s->n is 0. */
void grt_stats_apply(const grt_stats *s, grt_data *d);
void grt_stats_free(grt_stats *s);

/* ----------------------------------------------------------------- rt_idx.c */

/* Reads IDX data (LeCun's MNIST format; gzipped or not, zlib tells) for model
 * m into d: images of unsigned bytes (magic 0x00000803, or any number of
 * dimensions: 0x000008DD) whose record size must be input_size, each byte v
 * becoming v / 255 in [0, 1]; and, when labels is not NULL, labels of
 * unsigned bytes (0x00000801) whose record size must be target_size (so one
 * label per example), each a class index for a class target. The numbers of
 * records must agree. Errors name the file and the record: status 1 for bad
 * data, 2 when a file cannot be opened or read. */
int grt_idx_load(const char *images, const char *labels, const grt_model *m, grt_data *d,
                 grt_err *e);

/* ----------------------------------------------------------------- rt_rng.c */

/* xoshiro256** (Blackman and Vigna, 2018), seeded through splitmix64: small,
 * fast, and defined on uint64_t arithmetic alone, so shuffles are the same on
 * every machine and C toolchain. */
typedef struct grt_rng {
    uint64_t s[4]; /* the generator's state; never all zero */
} grt_rng;

/* One step of splitmix64 over *state (Steele, Lea and Flood, 2014). */
uint64_t grt_splitmix64(uint64_t *state);
void grt_rng_seed(grt_rng *r, uint64_t seed);
uint64_t grt_rng_next(grt_rng *r);
/* Uniform in 0..n-1 without modulo bias (n >= 1). */
uint64_t grt_rng_below(grt_rng *r, uint64_t n);
/* Fisher-Yates shuffle of idx[0..n). */
void grt_shuffle(grt_rng *r, size_t *idx, size_t n);

/* ----------------------------------------------------------------- rt_opt.c */

/* An optimizer and its state. Every kind minimizes: for a `maximize` model
 * the gradient is negated first, so all kinds ascend alike. One step: the
 * direction d = +-g is clipped to the global norm `clip`, gets the L2 term
 * weight_decay * p, and is handed to the update rule of `kind`. */
typedef struct grt_optimizer {
    int kind;            /* enum grt_opt */
    size_t n;            /* parameters */
    double sign;         /* 1 to minimize, -1 to maximize */
    double beta1, beta2; /* momentum beta or rmsprop rho; adam's betas */
    double eps;          /* rmsprop and adam denominator guard */
    double decoupled;    /* adamw's decoupled weight decay */
    double l2;           /* weight_decay: L2 added to the gradient */
    double clip;         /* global gradient norm limit, 0: none */
    grt_real *m;         /* velocity (momentum, nesterov) or first moment
                            (adam); NULL for sgd and rmsprop */
    grt_real *v;         /* second moment (rmsprop, adam); else NULL */
    long t;              /* steps taken, for adam's bias correction */
    unsigned char *flags;/* per param value: GRT_PARAM_NODECAY | GRT_PARAM_FROZEN
                            (grt_opt_flags); NULL: none has any */
    void (*parallel)(void (*fn)(void *arg, int t, int T), void *arg); /* or NULL */
} grt_optimizer;

/* Sets o up for n parameters from the train block c. */
void grt_opt_init(grt_optimizer *o, const grt_train_config *c, size_t n, int maximize);
/* One update of params with learning rate lr from grad (which it may scale
 * when clipping). */
void grt_opt_step(grt_optimizer *o, grt_real *params, grt_real *grad, double lr);
/* The model's threads (grt_model.parallel) for grt_opt_step's update, which
 * goes element by element and gives the same values on any number of them. */
void grt_opt_threads(grt_optimizer *o, const grt_model *m);
void grt_opt_free(grt_optimizer *o);
/* Takes the params' flags of m (nodecay, frozen) into o, for every kind. */
void grt_opt_flags(grt_optimizer *o, const grt_model *m);
/* Zeroes the gradient of frozen params (it is ignored: never a step, never
 * a divergence). */
void grt_opt_ignore_frozen(const grt_optimizer *o, grt_real *g);
/* The learning rate of 0-based epoch e of E under c's schedule. */
double grt_sched_lr(const grt_train_config *c, double lr, int e, int E);
/* "sgd", "adam", ...; "?" for unknown kinds. */
const char *grt_opt_name(int kind);
const char *grt_sched_name(int kind);
/* Sets c's optimizer from a spec written as in the train block: "adam",
 * "adam(lr=0.01, beta2=0.99)", "momentum(0.1, 0.8)". A kind other than c's
 * starts from that kind's defaults (docs/language.md); the same kind keeps
 * c's values for the arguments not given. Returns 0, or -1 with a message
 * in err. */
int grt_parse_optimizer(const char *spec, grt_train_config *c, char *err, size_t cap);
/* The same for a schedule: "constant", "cosine", "step(10, 0.5)",
 * "step(every=10, gamma=0.5)", "exponential(0.95)". */
int grt_parse_schedule(const char *spec, grt_train_config *c, char *err, size_t cap);

/* --------------------------------------------------------------- rt_pfile.c */

/* Parameter file format version this runtime writes and reads. */
#define GRT_PARAMS_VERSION 1
/* Sizes of the fixed parts of a parameter file (see docs/runtime.md). */
#define GRT_PARAMS_HEADER 52  /* magic .. name length */
#define GRT_PARAMS_SECTION 12 /* tag and payload length of a section */
#define GRT_OPTS_FIXED 16     /* OPTS: kind, flags, t */
#define GRT_RNGS_SIZE 48      /* RNGS: 4 state words, epochs, flags, reserved */
#define GRT_BEST_FIXED 24     /* BEST: epoch, stale, loss */

/* FNV-1a, 64 bits, continuing from h (start with GRT_FNV_INIT). */
#define GRT_FNV_INIT 0xcbf29ce484222325u
uint64_t grt_fnv1a64(uint64_t h, const void *p, size_t n);

/* The sections a reader knows, by index. */
enum {
    GRT_PF_PARM, GRT_PF_STDZ, GRT_PF_STAT, GRT_PF_VOCB, GRT_PF_OPTS, GRT_PF_RNGS,
    GRT_PF_STEP, GRT_PF_BEST, GRT_PF_KEPT, GRT_PF_NTAGS
};

/* What the file must be: of this model, in this precision. */
typedef struct grt_pfile_want {
    const char *name;        /* the model's name */
    uint64_t hash;           /* its hash of param names and shapes */
    size_t param_count;      /* reals in PARM */
    size_t input_size;       /* values per example (STDZ) */
    size_t state_count;      /* reals in STAT, when there is one */
    int real;                /* bytes per real: 4 or 8 */
    const char *who;         /* "this executable of model" (NULL) or gradc's words */
    const grt_param_info *params; /* to name a bad value's param; NULL: by index */
    int nparams;
} grt_pfile_want;

/* A decoded file: where each known section's payload is in the bytes. */
typedef struct grt_pfile {
    int real;                                /* bytes per real */
    const unsigned char *sec[GRT_PF_NTAGS];  /* payloads, NULL when absent */
    size_t len[GRT_PF_NTAGS];                /* their lengths */
} grt_pfile;

/* Checks a parameter file's bytes, in the order docs/runtime.md lists
 * (magic, version, size, checksum, precision, model, sections, values) and
 * finds its sections. Status 1 with a message naming the file; 0. The
 * precision is the file's and w's, not this object's: gradc links it too. */
int grt_pfile_decode(const unsigned char *buf, size_t size, const char *name,
                     const grt_pfile_want *w, grt_pfile *f, grt_err *e);
/* The section checks of grt_pfile_decode alone (structure, then values). */
int grt_pfile_check(const grt_pfile *f, const char *name, const grt_pfile_want *w, grt_err *e);
/* The real at p, of `real` bytes, as a double. */
double grt_pfile_real(int real, const unsigned char *p);
/* STDZ's means (n doubles, then n standard deviations), or NULL; n set. */
const unsigned char *grt_pfile_stdz(const grt_pfile *f, size_t *n);
/* The name and index ("W2", "[3, 1]") of element i of the params p[0..n). */
void grt_param_where(const grt_param_info *p, int n, size_t i, const char **name, char *index,
                     size_t cap);

/* -------------------------------------------------------------- rt_params.c */

/* Where a training run stands after an epoch: what a parameter file carries
 * beside the params (sections OPTS, RNGS, BEST) so that `train --resume`
 * continues exactly, bit for bit, where `train --save` stopped. Arrays are
 * param_count reals, malloc'd, owned by the state. */
typedef struct grt_state {
    int valid;         /* the fields below are set (a file with RNGS) */
    long epoch;        /* epochs done, counted from the first run */
    int stopped;       /* early stopping ended the run */
    grt_rng rng;       /* the shuffle generator, as the next epoch finds it */
    int opt_kind;      /* enum grt_opt the moments belong to; -1: none saved */
    long t;            /* optimizer steps taken (adam's bias correction) */
    grt_real *m;       /* velocity or first moment, or NULL */
    grt_real *v;       /* second moment, or NULL */
    long best_epoch;   /* early stopping: epoch of the best validation loss, 0: none */
    long stale;        /* epochs since it without a better one */
    double best_loss;  /* that validation loss */
    grt_real *best;    /* the params of that epoch, or NULL */
    long step;         /* optimizer steps done by a run counted in steps
                          (train --text; STEP), 0: a run of epochs */
} grt_state;

void grt_state_free(grt_state *s);

/* Writes params, stats (NULL or empty: none) and the training state (NULL or
 * not valid: none) to path with grt_write_atomic: whole or not at all,
 * status 2 on failure. */
int grt_params_save(const char *path, const grt_model *m, const grt_real *params,
                    const grt_stats *stats, const grt_state *st, grt_err *e);
/* Reads a parameter file of model m into params (param_count reals), stats
 * (filled, or n = 0 when the file has none) and st (valid = 0 when it has no
 * training state); stats and st may be NULL. Status 2 when it cannot be
 * read, 1 when it is damaged or of another model. */
int grt_params_load(const char *path, const grt_model *m, grt_real *params,
                    grt_stats *stats, grt_state *st, grt_err *e);
/* A file opened for reading (not a folder), or -1 with status 2 in e. */
int grt_open_file(const char *path, grt_err *e);
/* A whole file into *buf (malloc'd, *n bytes; free it also after an error),
 * or status 2 with "PATH: error: cannot open/read: why". */
int grt_read_file(const char *path, unsigned char **buf, size_t *n, grt_err *e);
/* What a parameter file of m must be (grt_pfile_decode). */
void grt_pfile_want_of(const grt_model *m, grt_pfile_want *w);
/* The same over a file's bytes already in memory (for tests). */
int grt_params_decode(const unsigned char *buf, size_t size, const char *name,
                      const grt_model *m, grt_real *params, grt_stats *stats,
                      grt_state *st, grt_err *e);
/* The bytes of a parameter file in a malloc'd buffer; *size is set. */
unsigned char *grt_params_encode(const grt_model *m, const grt_real *params,
                                 const grt_stats *stats, const grt_state *st,
                                 size_t *size);

/* -------------------------------------------------------------- rt_export.c */

/* The bytes of a NumPy .npy file (format 1.0, C order, little-endian) of n
 * values of `bytes` bytes each (4: '<f4', 8: '<f8') with the given shape
 * (rank 0: a scalar). */
unsigned char *grt_npy_encode(const void *values, size_t n, int bytes, int rank,
                              const int *dim, size_t *size);
/* A param name made a file name: letters, digits, '_', '-' and '.' kept,
 * anything else '_', a leading '.' or '-' prefixed with '_'. */
void grt_safe_name(char *dst, size_t cap, const char *name);
/* Writes params (and the scaling, when stats->n > 0, as
 * standardize_mean.npy and standardize_std.npy) as .npy files into the
 * directory out (created if missing), or into one .npz archive when out ends
 * in ".npz". Lists what it wrote on list (may be NULL). */
int grt_export(const char *out, const grt_model *m, const grt_real *params,
               const grt_stats *stats, FILE *list, grt_err *e);

/* ------------------------------------------------------------- rt_history.c */

/* The figures of one epoch (or evaluation point) of a training run; NaN
 * where there is no value (no validation data, no accuracy). */
typedef struct grt_hrow {
    double x;        /* 1-based epoch, or the step for runs counted in steps */
    double loss;     /* mean training loss */
    double acc;      /* training accuracy */
    double val_loss; /* validation loss */
    double val_acc;  /* validation accuracy */
    double lr;       /* learning rate of the epoch (of its last step) */
    double seconds;  /* since the run started, at the row's end */
} grt_hrow;

/* A run's rows, as --log writes them and plot reads them. */
typedef struct grt_history {
    size_t n;        /* rows */
    size_t cap;      /* allocated */
    grt_hrow *row;   /* them */
    int by_step;     /* x counts steps, not epochs */
    double kept;     /* early stopping: the x whose params were kept, 0: none */
} grt_history;

void grt_history_add(grt_history *h, const grt_hrow *r);
void grt_history_free(grt_history *h);

/* The header --log writes, and plot expects (older logs' valid_loss and
 * valid_acc are read too); runs counted in steps write "step" for "epoch". */
#define GRT_LOG_HEADER "epoch,loss,acc,val_loss,val_acc,lr,seconds"
#define GRT_LOG_HEADER_STEPS "step,loss,acc,val_loss,val_acc,lr,seconds"
/* Writes one row of the log (empty fields for NaN). */
void grt_log_row(FILE *f, const grt_hrow *r);
/* Reads a log written by --log (columns found by their header names; epoch
 * or step, and loss required). Status 1 with the line named for bad
 * content, 2 when it cannot be read. */
int grt_log_read(const char *path, grt_history *h, grt_err *e);

/* A log being written, through the output policy. */
typedef struct grt_log {
    grt_outfile out; /* the file */
    int open;        /* out is open */
} grt_log;

/* Starts the log at path (checked by the caller with grt_outset_output):
 * the header, then with append the rows of the log already there (a
 * resumed run). Status 2 when it cannot be written, 1 when append finds a
 * file that is not a log. */
int grt_log_open(grt_log *l, const char *path, int append, int by_step, grt_err *e);
/* One row, flushed; -1 when the write failed (grt_log_close says why). */
int grt_log_write(grt_log *l, const grt_hrow *r);
/* Puts the log in place (status 2 and why, when a write failed). */
int grt_log_close(grt_log *l, grt_err *e);
void grt_log_abort(grt_log *l);

/* --------------------------------------------------------------- rt_train.c */

/* The buffers one model needs to call its generated functions: allocated once
 * per command, used chunk after chunk. */
typedef struct grt_ctx {
    const grt_model *m; /* the model */
    void *work;         /* m->workspace_bytes, GRT_ALIGN-aligned */
    grt_real *x;        /* max_batch * input_size: one chunk's inputs */
    grt_real *y;        /* max_batch * target_size: its targets */
    grt_real *out;      /* max_batch * output_size: its predictions */
    grt_real *cgrad;    /* param_count: the gradient of one chunk */
    double *acc;        /* param_count + 1: chunk gradients and losses summed,
                           in double */
    size_t *rows;       /* the rows of a batch held here; rows_cap of them */
    size_t rows_cap;
    grt_real *state;    /* the model's state (state_count reals: batch_norm's
                           running statistics), from init_state; loss_grad
                           updates it, loss and predict read it; NULL when
                           the model has none */
    struct grt_score *tally; /* grt_batch_grad also scores its examples'
                                predictions here (training accuracy); NULL: not */
    /* threads (m->parallel): a chunk's examples split among nthreads
     * threads, thread t > 0 with its own workspace twork[t] and gradient
     * tgrad[t] (thread 0 uses work and the caller's gradient); tloss[t] its
     * mean loss. nthreads 1: no split (one thread, or a model with state,
     * whose batch statistics need the whole chunk). */
    int nthreads;
    void **twork;
    grt_real **tgrad;
    double *tloss;
} grt_ctx;

void grt_ctx_init(grt_ctx *c, const grt_model *m);
void grt_ctx_free(grt_ctx *c);
/* Averages the model state over the ranks (each rank's loss_grad updated its
 * own from its own examples), so that every rank holds the same. */
void grt_ctx_share_state(grt_ctx *c);
/* The state loaded with the params (s->state), when there is one of the
 * model's size, into the context; else the context keeps init_state's. */
void grt_ctx_take_state(grt_ctx *c, const grt_stats *s);
/* s with the context's state as the state to save (a shallow copy: s's
 * arrays and the context's state stay where they are). s may be NULL. */
grt_stats grt_ctx_stats(const grt_ctx *c, const grt_stats *s);

/* Mean loss and mean gradient (into grad) over the s examples idx[0..s) of d
 * (global rows; each rank computes the rows it holds, the sums are added over
 * the ranks), computed in chunks of at most max_batch examples whose
 * gradients are combined with weights chunk size / s. */
double grt_batch_grad(grt_ctx *c, const grt_real *params, const grt_data *d,
                      const size_t *idx, size_t s, grt_real *grad);

/* Loss and accuracy over a data set. */
typedef struct grt_score {
    double loss;    /* mean objective over the examples */
    size_t correct; /* examples (binary: output values) scored right */
    size_t total;   /* examples (binary: values) scored; 0: no accuracy */
} grt_score;

/* The mean loss over d (chunk means weighted by chunk size, in double). */
double grt_data_loss(grt_ctx *c, const grt_real *params, const grt_data *d);
/* Whether m has a target that accuracy can be computed for. */
int grt_has_accuracy(const grt_model *m);
/* Scores params on d (which has targets), over every rank's rows. */
void grt_evaluate(grt_ctx *c, const grt_real *params, const grt_data *d, grt_score *s);
/* Writes one line of outputs per example of d to out; with labels, the
 * class instead (a class target: the index of the largest of the first
 * nclasses outputs; binary: 1 or 0 per output value, above the threshold or
 * not), as accuracy scores them. Returns 0, or 2 with e filled when writing
 * fails. */
int grt_predict_write(grt_ctx *c, const grt_real *params, const grt_data *d, int labels,
                      FILE *out, const char *outname, grt_err *e);

/* How one training run goes: the train block with the command line's
 * overrides applied, and where its side output goes. */
typedef struct grt_run {
    grt_train_config cfg; /* lr, batch (0: all), epochs, seed, shuffle, ... */
    int quiet;            /* no progress on stderr */
    FILE *progress;       /* where progress goes (stderr) */
    grt_state *state;     /* in: where to resume (valid 0: from the start);
                             out: where the run stopped; NULL: neither */
    int stop_after;       /* end after this epoch (1-based) as if interrupted,
                             0: run to cfg.epochs */
    int checkpoint;       /* save to `save` every this many epochs, 0: never */
    const char *save;     /* checkpoints; NULL: none */
    const char *save_diverged; /* where the last good params go when training
                             diverges (save is never replaced then: SAVE.diverged);
                             NULL: nowhere */
    const grt_stats *stats; /* the scaling saved with them */
    grt_log *log;         /* one CSV row per epoch (--log), or NULL */
    grt_history *history; /* the same in memory (for --plot), or NULL */
} grt_run;

/* What a training run ended with. */
typedef struct grt_trained {
    int epochs;        /* epochs done, counted from the first run (fewer
                          than asked when stopped early) */
    int ran;           /* epochs run by this call */
    double loss;       /* mean training loss over the epoch whose params are
                          returned (the last one run, or the kept one) */
    double acc;        /* training accuracy over that epoch; NaN: none */
    int has_valid;     /* a validation set was scored */
    grt_score valid;   /* of the returned params */
    int best_epoch;    /* early stopping: epoch whose params are returned */
    int kept;          /* the params returned are best_epoch's, not the last's */
    int stopped;       /* early stopping ended the run */
    int exploded;      /* the loss exploded in the first epochs (warned) */
} grt_trained;

/* Trains params in place on train, scoring valid (may be NULL or empty)
 * after each epoch. Returns 0; or 1 with e filled when the loss, a gradient
 * or an updated param becomes NaN or infinite (params then hold the last
 * good values, also saved to run->save_diverged); or 2 when a checkpoint cannot be
 * written. */
int grt_train(grt_ctx *c, grt_real *params, const grt_data *train, const grt_data *valid,
              const grt_run *run, grt_trained *res, grt_err *e);
/* The name and index of element i of the params: "W2" and "[3, 1]". */
void grt_param_at(const grt_model *m, size_t i, const char **name, char *index, size_t cap);
/* The mean loss and gradient (into grad, zeroed first) of the n examples in
 * the chunk buffers c->x and c->y (updating the model state); scores their
 * predictions into c->tally when set. */
double grt_chunk_grad(grt_ctx *c, const grt_real *params, size_t n, grt_real *grad);
/* The mean loss of the n examples in c->x, c->y (split among threads as
 * grt_chunk_grad's). */
double grt_chunk_loss(grt_ctx *c, const grt_real *params, size_t n);
/* Progress figures: a loss as Keras prints it ("0.1590", "1.2340e-05"), a
 * rate with an SI prefix ("12.3k"), a time ("0.21s", "3m12s"). */
void grt_figure(char *dst, size_t cap, double v);
void grt_rate(char *dst, size_t cap, double v);
void grt_seconds(char *dst, size_t cap, double sec);

/* ---------------------------------------------------------------- rt_text.c */

/* Whether m is a text model: one int(V)[T] input, one class(V)[T] target,
 * T rows of V outputs; *T and *V set (may be NULL). */
int grt_text_model(const grt_model *m, size_t *T, int *V);

/* A text as token ids (V <= 256, so a byte each). */
typedef struct grt_text {
    const char *name;   /* its file, for messages */
    unsigned char *ids; /* n ids */
    size_t n;
} grt_text;

/* The vocabulary of a text model with V < 256: the sorted set of the n
 * bytes at b into s->vocab and s->nvocab; status 1 naming the file when
 * there are more than V. */
int grt_vocab_build(const unsigned char *b, size_t n, int V, const char *name, grt_stats *s,
                    grt_err *e);
/* The n bytes at b as ids (s's vocabulary, or the bytes themselves when it
 * has none); status 1 with "NAME:LINE:COL: error: character 'x' is not in
 * the vocabulary of VNAME" for the first byte it lacks. */
int grt_text_encode(const unsigned char *b, size_t n, const grt_stats *s, int V,
                    const char *name, const char *vname, unsigned char *ids, grt_err *e);
/* 0 if text t holds one window of the model (T + 1 characters), else an
 * error that names t and what it is ("the text"). */
int grt_text_long_enough(const grt_text *t, size_t T, const char *what, grt_err *e);
/* Reads the text at path for text model m. With build, a model with V < 256
 * and no vocabulary in s gets the file's (grt_vocab_build); otherwise the
 * vocabulary of s (from the parameter file vname) must cover the text.
 * Status 2 for a file that cannot be read or a model that is not a text
 * model, 1 for bad text. */
int grt_text_load(const char *path, const grt_model *m, grt_stats *s, int build,
                  const char *vname, grt_text *t, grt_err *e);
/* Moves the last round(fraction n) ids (at least 1) of t into v, the
 * validation text; status 1 when either is shorter than a window (T + 1). */
int grt_text_split(grt_text *t, grt_text *v, double fraction, size_t T, grt_err *e);
void grt_text_free(grt_text *t);
/* The mean loss over the non-overlapping windows of t (offsets 0, T, 2T,
 * ...; *windows gets their count): the mean loss per character. NaN when t
 * holds no window. */
double grt_text_loss(grt_ctx *c, const grt_real *params, const grt_text *t, size_t *windows);
/* Trains params for run->cfg.steps optimizer steps (1000 when 0) of
 * cfg.batch windows per rank (the compiled batch when 0) at random offsets
 * of train, with a progress line (and a log row) about every tenth of the
 * run, scoring valid there (may be NULL). res->epochs gets the steps done,
 * res->loss the mean loss since the last progress line, res->valid.loss the
 * last validation loss. run->state: where to resume, and where the run
 * stopped (steps, generator, moments). Status 1 when training diverges. */
int grt_train_text(grt_ctx *c, grt_real *params, const grt_text *train, const grt_text *valid,
                   const grt_run *run, grt_trained *res, grt_err *e);

/* What sample draws. */
typedef struct grt_sample_opts {
    const char *prompt;      /* the text to continue, or NULL */
    size_t tokens;           /* characters to draw */
    double temperature;      /* the logits are divided by it; 0: always the likeliest */
    int top_k;               /* draw among the k likeliest only, 0: all */
    uint64_t seed;           /* of the draws */
    const char *params_name; /* the parameter file, for messages */
} grt_sample_opts;

/* Writes the prompt and o->tokens characters drawn one after the other
 * from the model's predictions, then a newline, to out. Status 1 when the
 * prompt has characters outside the vocabulary (all named), 2 when out
 * cannot be written. */
int grt_sample(grt_ctx *c, const grt_real *params, const grt_stats *s, const grt_sample_opts *o,
               FILE *out, grt_err *e);

/* ---------------------------------------------------------------- rt_plot.c */

/* An SVG line chart of h: training and validation loss against the epoch
 * or step (a log axis when the loss spans more than two decades), the
 * accuracies on a right axis from 0 to 1 when there are some, the kept
 * epoch marked. malloc'd, *size set. */
char *grt_plot_svg(const grt_history *h, const char *title, size_t *size);

/* --------------------------------------------------------------- rt_check.c */

/* What gradcheck compares, and how strictly. */
typedef struct grt_gc_opts {
    size_t per_tensor;  /* elements checked per tensor, at most; 0: all */
    uint64_t seed;      /* of the elements sampled */
    double tol;         /* threshold of the worst relative error */
    FILE *out;          /* the report, per param (NULL: none) */
} grt_gc_opts;

/* The default threshold and relative-error floor of this precision. */
#define GRT_GC_TOL_FLOAT 1e-2
#define GRT_GC_TOL_DOUBLE 1e-6

/* Compares loss_grad's gradient at params over the n examples of d with
 * central differences of loss, accumulated in double. Returns 0 when the
 * worst relative error is within o->tol, else 1 with e filled; *worst gets
 * it. */
int grt_gradcheck(grt_ctx *c, grt_real *params, const grt_data *d, const grt_gc_opts *o,
                  double *worst, grt_err *e);
/* Random examples for gradcheck without data: inputs uniform in [-1, 1),
 * class targets random indices, binary targets 0 or 1, other targets
 * uniform in [-1, 1). */
void grt_random_data(const grt_model *m, size_t n, uint64_t seed, grt_data *d);

/* ---------------------------------------------------------------- rt_main.c */

/* Checks that a descriptor is self-consistent (sizes add up, functions set).
 * Returns 0, or 1 with e filled. */
int grt_model_check(const grt_model *m, grt_err *e);


#endif
