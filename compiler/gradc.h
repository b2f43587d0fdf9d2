/*
 * gradc.h: the one header of the gradc compiler, in sections that follow the
 * pipeline: arena, diagnostics, tokens and AST (grammar/), semantic checking
 * and the forward graph (sema.c, ir.c), reverse mode (grad.c), rewrites
 * (simplify.c), scheduling and memory (plan.c) and the emitters.
 *
 * The pipeline itself is stated once, in main.c: parse, check and build the
 * forward graph, differentiate, simplify, plan, emit.
 */
#ifndef GRADC_H
#define GRADC_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define GRADC_VERSION "0.1.0"

#if defined(__GNUC__)
#define GRADC_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define GRADC_NORETURN __attribute__((noreturn))
#else
#define GRADC_PRINTF(f, a)
#define GRADC_NORETURN
#endif

/* ---------------------------------------------------------------- arena.c */

/* One arena per compilation: tokens, AST, graph and strings come from it and
 * are released together at exit. Allocation never fails (out of memory is
 * fatal), and memory is zeroed. */
typedef struct Arena Arena;

Arena *arena_new(void);
void arena_free(Arena *a);
void *arena_alloc(Arena *a, size_t size);
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) GRADC_PRINTF(2, 3);
/* Grows an arena array of elem-sized items to hold at least need items. */
void *arena_grow(Arena *a, void *old, size_t elem, int *cap, int need);

/* malloc that dies on failure; for the few structures that outlive nothing. */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
GRADC_NORETURN void die(const char *fmt, ...) GRADC_PRINTF(1, 2);
#define unreachable() die("internal error: unreachable code at %s:%d", __FILE__, __LINE__)

/* ----------------------------------------------------------------- diag.c */

/* A source location: 1-based line and column of the first character and of
 * the last character (inclusive), as bison's YYLTYPE has them. Column counts
 * bytes. A location with first_line == 0 is "nowhere" (built-in). */
typedef struct Loc {
    int first_line, first_column; /* where the span starts */
    int last_line, last_column;   /* its last character */
} Loc;

/* The diagnostics context of one source file: its text, a line map, and the
 * counts of what was reported. */
typedef struct Diag {
    const char *filename;   /* as given on the command line */
    const char *src;        /* the whole file, NUL-terminated */
    size_t len;             /* its length in bytes (may hold NULs) */
    int *line_start;        /* byte offset of each line, [0] for line 1 */
    int nlines;             /* number of lines */
    int errors, warnings;   /* counts so far */
    int max_errors;         /* stop reporting after this many (0: no limit) */
    FILE *out;              /* where diagnostics go (stderr by default) */
    int color;              /* emit ANSI colours */
} Diag;

void diag_init(Diag *d, const char *filename, const char *src, size_t len);
void diag_release(Diag *d);
void diag_error(Diag *d, Loc loc, const char *fmt, ...) GRADC_PRINTF(3, 4);
void diag_warning(Diag *d, Loc loc, const char *fmt, ...) GRADC_PRINTF(3, 4);
void diag_note(Diag *d, Loc loc, const char *fmt, ...) GRADC_PRINTF(3, 4);
void diag_verror(Diag *d, const char *kind, Loc loc, const char *fmt, va_list ap);
/* A location from first to last (inclusive) spans. */
Loc loc_span(Loc first, Loc last);
/* Reads a whole file; NULL and errno set on failure. */
char *read_file(const char *path, size_t *len);

/* ---------------------------------------------------------- AST (ast.c) */

/* Expression kinds. Built by the parser's actions through the ast_* builders;
 * names are resolved later by sema.c, so `relu` in dense(x, 10, relu) and
 * `same` in pad=same are plain E_NAME nodes. */
typedef enum ExprKind {
    E_NUM,    /* a number literal: num, text */
    E_NAME,   /* an identifier: name */
    E_UNARY,  /* op '-': lhs */
    E_BINARY, /* op one of + - * / @ ^: lhs, rhs */
    E_CALL,   /* name(args): name is the callee (also "const" in init const(c)) */
    E_LIST,   /* [args]: a shape or a reshape target */
    E_FIELD,  /* lhs.name: A.T, or h1.W for a param declared by dense */
    E_KWARG,  /* name = lhs, only as a call argument */
    /* tokens and sequences */
    E_INDEX,  /* lhs[args]: subscripts, each an expression, E_SLICE or E_ELLIPSIS */
    E_SLICE,  /* start:stop:step inside a subscript: lhs, rhs, args (each NULL when left out) */
    E_ELLIPSIS, /* '...' inside a subscript */
} ExprKind;

typedef struct Expr Expr;
struct Expr {
    ExprKind kind; /* what it is */
    Loc loc;       /* the whole expression's span */
    int op;        /* E_UNARY, E_BINARY: the operator character */
    double num;    /* E_NUM: the value, as a double */
    const char *text; /* E_NUM: the literal as written */
    const char *name; /* E_NAME, E_CALL, E_FIELD, E_KWARG */
    Loc name_loc;  /* E_CALL, E_FIELD, E_KWARG: span of the name */
    Expr *lhs, *rhs; /* operands, see the kinds */
    Expr *args;    /* E_CALL, E_LIST: first argument, linked through next */
    int nargs;     /* their number */
    Expr *next;    /* next argument in a call or list */
    int depth;     /* height of the tree below it, 1 for a leaf: the parser
                      refuses expressions deeper than MAX_EXPR_DEPTH, so the
                      passes may recurse on them */
};

typedef enum StmtKind {
    S_MODEL,     /* model NAME */
    S_PRECISION, /* precision NAME (float | double): name */
    S_CONST,     /* const NAME = value */
    S_INPUT,     /* input NAME shape */
    S_TARGET,    /* target NAME shape | target NAME: class(n) (value: the call) */
    S_PARAM,     /* param NAME shape [init value] */
    S_LET,       /* NAME = value */
    S_MINIMIZE,  /* minimize value */
    S_MAXIMIZE,  /* maximize value */
    S_OUTPUT,    /* output value */
    S_TRAIN,     /* train { items } */
    S_TRAIN_ITEM, /* inside train: NAME value, e.g. batch 32, optimizer sgd(lr=0.1) */
    /* blocks */
    S_DEF        /* def NAME(shape: the argument names) { items } returning value */
} StmtKind;

typedef struct Stmt Stmt;
struct Stmt {
    StmtKind kind;  /* what it is */
    Loc loc;        /* the whole statement */
    const char *name; /* the bound or declared name, or the train item's key */
    Loc name_loc;   /* its span */
    Expr *shape;    /* S_INPUT, S_TARGET, S_PARAM: an E_LIST, or NULL */
    Expr *value;    /* see the kinds; NULL where absent */
    Stmt *items;    /* S_TRAIN: first item, linked through next */
    Stmt *next;     /* next statement */
    Expr *flags;    /* S_PARAM (S_INPUT, S_TARGET: an error): the words after
                       the declaration, nodecay and frozen, as E_NAMEs */
};

typedef struct Ast {
    Stmt *first, *last; /* the statements in file order */
    Stmt *broken;       /* declarations and bindings that did not parse (only
                           kind and name are set), linked through next: sema
                           says nothing about uses of their names */
} Ast;

/* The deepest expression tree the parser accepts (Expr.depth). */
#define MAX_EXPR_DEPTH 2000

Expr *ast_num(Arena *a, Loc loc, const char *text);
Expr *ast_name(Arena *a, Loc loc, const char *name);
Expr *ast_unary(Arena *a, Loc loc, int op, Expr *e);
Expr *ast_binary(Arena *a, Loc loc, int op, Expr *l, Expr *r);
Expr *ast_call(Arena *a, Loc loc, const char *name, Loc name_loc, Expr *args);
Expr *ast_list(Arena *a, Loc loc, Expr *items);
Expr *ast_field(Arena *a, Loc loc, Expr *base, const char *name, Loc name_loc);
Expr *ast_kwarg(Arena *a, Loc loc, const char *name, Loc name_loc, Expr *value);
/* tokens and sequences: x[subscripts], a:b:c, ... */
Expr *ast_index(Arena *a, Loc loc, Expr *base, Expr *subs);
Expr *ast_slice(Arena *a, Loc loc, Expr *start, Expr *stop, Expr *step);
Expr *ast_ellipsis(Arena *a, Loc loc);
/* Appends e to the argument chain that starts at head; returns the head. */
Expr *ast_append_arg(Expr *head, Expr *e);
Stmt *ast_stmt(Arena *a, StmtKind kind, Loc loc, const char *name, Loc name_loc);
void ast_add_stmt(Ast *ast, Stmt *s);
/* Appends item to the train block s. */
void ast_add_item(Stmt *train, Stmt *item);
void ast_dump(const Ast *ast, FILE *out);     /* --emit=ast */
void ast_dump_expr(const Expr *e, FILE *out); /* one expression, in prefix form */

/* ------------------------------------------------- front end (grammar/) */

/* Parses d->src into an AST. Syntax errors are reported through d and the
 * parser recovers at the end of the statement; the returned AST holds what
 * parsed. Never returns NULL. */
Ast *parse_source(Arena *a, Diag *d);
/* --emit=tokens: one token per line: LINE:COL KIND 'text'. */
void dump_tokens(Arena *a, Diag *d, FILE *out);

/* ------------------------------------------------------- ops (ops.def) */

typedef enum Op {
#define OP(id, name, nin, flags, cost, sig, c, text, fold) OP_##id,
#include "ops.def"
    OP_COUNT
} Op;

enum {
    OPF_LEAF = 1,        /* no inputs: input, target, param, constant */
    OPF_ELEMWISE = 2,    /* elementwise with NumPy broadcasting of inputs */
    OPF_COMMUTATIVE = 4, /* inputs may be sorted for hash-consing */
    OPF_VIEW = 8,        /* output shares its input's storage */
    OPF_F1 = 16,         /* carries a constant in Node.f (printed f=) */
    OPF_STRUCT = 32,     /* a structured op: its module knows it (op_impl) */
};

/* The op table (ir.c), one entry per column of ops.def. */
extern const char *const op_name[OP_COUNT];
extern const int op_nin[OP_COUNT];
extern const int op_flags[OP_COUNT];
extern const double op_cost[OP_COUNT];   /* flops per output element */
extern const char *const op_sig[OP_COUNT];  /* the built-in's signature, or NULL */
extern const char *const op_c[OP_COUNT];    /* an element-wise op's C template */
extern const char *const op_text[OP_COUNT]; /* its --emit=grad form, or NULL */
/* An element-wise op's value at constant operands; 0 where it is not folded. */
int op_fold(Op op, double a, double b, double f, double *out);

/* ------------------------------------------------------ the graph (ir.c) */

#define MAXRANK 6
#define DIM_B (-1) /* the batch axis: n at run time, the compiled batch at most */

typedef struct Shape {
    int rank;          /* 0 for a scalar */
    int dim[MAXRANK];  /* sizes; DIM_B marks the batch axis */
} Shape;

typedef int Ref; /* index of a node in Graph.nodes; 0 is "no node" */

typedef struct Node {
    Op op;          /* what it computes */
    Shape shape;    /* full shape, batch axis included */
    Ref in[3];      /* operands */
    double f;       /* CONST value, POWC exponent, LEAKY/ELU alpha, HUBER delta */
    double f2;      /* a second constant (ops whose signature has two) */
    int ia[4];      /* integer attributes, by op (see ops.def) */
    Loc loc;        /* model line it comes from */
    const char *name; /* the model's name for it, or NULL */
    Ref adj_of;     /* backward nodes: the primal whose adjoint this is (0: none) */
    int contribs;   /* an adjoint: how many uses of its primal contributed to it */
    int backward;   /* created by grad.c */
    int hash_next;  /* hash chain */
} Node;

/* Nodes live in chunks of NODE_CHUNK that are never moved or freed while
 * the graph lives, so a Node * stays valid across node_make: a pass may hold
 * one while it builds more. */
#define NODE_CHUNK_BITS 10
#define NODE_CHUNK (1 << NODE_CHUNK_BITS)

typedef struct Graph {
    Arena *arena;    /* where names come from */
    Node **chunk;    /* chunk[r >> NODE_CHUNK_BITS][r & (NODE_CHUNK - 1)]; node 0 unused */
    int nchunk;      /* chunks allocated (and the capacity of chunk[]) */
    int n;           /* nodes so far, node 0 included */
    int *hash;       /* hash table heads, size nhash */
    int nhash;
    int loc_backward; /* nonzero while grad.c builds: marks nodes backward */
    /* tokens and sequences: the strided views (OP_VIEW's ia[0] indexes
     * them), VIEW_LONGS longs each: the offset, then a stride per axis of
     * the view's output (in elements of its operand) */
    long *views;
    int nviews, cviews;
} Graph;
#define VIEW_LONGS (1 + MAXRANK)

void graph_init(Graph *g, Arena *a);
void graph_release(Graph *g);
/* The one constructor: returns an existing identical node if there is one. */
Ref node_make(Graph *g, Op op, Shape shape, const Ref *in, double f,
              const int *ia, Loc loc);
/* ... with a second constant (Node.f2) */
Ref node_make2(Graph *g, Op op, Shape shape, const Ref *in, double f, double f2,
               const int *ia, Loc loc);
static inline Node *N(const Graph *g, Ref r)
{
    return &g->chunk[r >> NODE_CHUNK_BITS][r & (NODE_CHUNK - 1)];
}

Shape shape0(void);
Shape shape1(int a);
Shape shape2(int a, int b);
int shape_eq(Shape a, Shape b);
int shape_numel_static(Shape s); /* product of dims, DIM_B counted as 1 */
int shape_has_batch(Shape s);
/* Broadcasts a and b NumPy-style; returns 0 if they do not broadcast. */
int shape_broadcast(Shape a, Shape b, Shape *out);
/* Writes "[B,16,3]" into buf. */
const char *shape_str(Shape s, char *buf, size_t size);

/* Convenience builders that compute the result shape (no checks: sema.c
 * checks shapes before calling them). */
Ref g_const(Graph *g, double v, Loc loc);
Ref g_unary(Graph *g, Op op, Ref a, Loc loc);
Ref g_unary_f(Graph *g, Op op, Ref a, double f, Loc loc);
Ref g_binary(Graph *g, Op op, Ref a, Ref b, Loc loc);
Ref g_binary_f(Graph *g, Op op, Ref a, Ref b, double f, Loc loc);
Ref g_reduce(Graph *g, Op op, Ref a, unsigned axes, int keepdims, Loc loc);
Ref g_reshape(Graph *g, Ref a, Shape s, Loc loc);
Ref g_expand(Graph *g, Ref a, Shape s, Loc loc);
Ref g_matmul(Graph *g, Ref a, Ref b, int ta, int tb, Loc loc);
/* ... summing the products over the leading (batch) axis when sumbatch. */
Ref g_matmul_sum(Graph *g, Ref a, Ref b, int ta, int tb, int sumbatch, Loc loc);
Ref g_transpose(Graph *g, Ref a, Loc loc);
/* Sums the broadcast axes of a so that it has shape s (the adjoint of a
 * broadcast operand). */
Ref g_unbroadcast(Graph *g, Ref a, Shape s, Loc loc);
int node_is_const(Graph *g, Ref r, double *v);
/* Per model line (1..*nlines), the model's name for what it computes: its
 * first named forward value (not a param, input or target), else NULL;
 * for naming generated code after the model. The caller frees it. */
const char **graph_line_names(const Graph *g, int *nlines);
/* tokens and sequences */
/* The strided view of a: out[i0..] = a[off + sum i_k * strides[k]], of
 * shape s (a copy); the view's record is shared by identical views. */
Ref g_view(Graph *g, Ref a, Shape s, long off, const long *strides, Loc loc);
/* its record: the offset, then the strides */
const long *view_of(const Graph *g, Ref r);
/* the index in g->views of the record (off, strides[0..rank)), added if new */
int view_record(Graph *g, long off, const long *strides, int rank);
/* whether shape a's and b's leading axes (all but the last two) broadcast;
 * into lead when they do */
int matmul_lead(Shape a, Shape b, Shape *lead);

/* ---------------------------------------------------------------- sema.c */

typedef enum SymKind { SYM_INPUT, SYM_TARGET, SYM_PARAM, SYM_LET, SYM_CONST } SymKind;

typedef enum InitKind {
    INIT_ZEROS, INIT_ONES, INIT_CONST, INIT_NORMAL, INIT_UNIFORM, INIT_XAVIER, INIT_HE
} InitKind;

typedef struct Sym {
    SymKind kind;      /* what the name is bound to */
    const char *name;  /* as written (sugar params: "h1.W") */
    Loc loc;           /* where it is declared */
    Shape shape;       /* per-example shape (inputs and targets), full otherwise */
    int index;         /* position among inputs, targets or params */
    size_t offset;     /* float offset in params / x / y */
    int nclasses;      /* SYM_TARGET declared class(n): n, else 0; one class
                          per element of shape (a scalar: one per example) */
    int vocab;         /* SYM_INPUT declared int(V): V, else 0 */
    unsigned flags;    /* SYM_PARAM: PARAM_NODECAY, PARAM_FROZEN */
    InitKind init;     /* SYM_PARAM */
    double init_a, init_b; /* its arguments */
    double value;      /* SYM_CONST */
    Ref ref;           /* SYM_LET, SYM_INPUT, SYM_TARGET, SYM_PARAM: graph node */
    int used;          /* referenced by some expression */
    int reaches;       /* SYM_PARAM: reaches the objective */
} Sym;

enum { PARAM_NODECAY = 1, PARAM_FROZEN = 2 }; /* Sym.flags of a param */

/* The optimizers and schedules, from the table the runtime shares
 * (runtime/grt_train.def): OPT_SGD .. OPT_ADAMW, SCHED_CONSTANT ..
 * SCHED_EXPONENTIAL, in the order of gradc_rt.h's enum grt_opt and enum
 * grt_sched. */
typedef enum OptKind {
#define GRT_OPT(ID, NAME, LR, WD, ...) OPT_##ID,
#include "grt_train.def"
    OPT_COUNT
} OptKind;
typedef enum SchedKind {
#define GRT_SCHED(ID, NAME, REQUIRED, ...) SCHED_##ID,
#include "grt_train.def"
    SCHED_COUNT
} SchedKind;

/* The train block, with defaults for what it does not say. */
typedef struct TrainConfig {
    OptKind opt;            /* optimizer */
    double lr, beta1, beta2, eps, opt_wd; /* its arguments (beta1 = momentum/rho) */
    int batch;              /* 0 for all */
    int epochs;
    long steps;              /* optimizer steps (token models), 0: epochs */
    int shuffle;
    uint64_t seed;
    SchedKind sched;
    double sched_a, sched_b; /* step(every, gamma), exponential(gamma),
                                cosine(warmup = a, min_lr = b) */
    double clip;             /* 0: none */
    double weight_decay;
    double validate;         /* fraction, 0: none */
    int patience;            /* 0: none */
} TrainConfig;

typedef enum TargetKind { TK_NONE, TK_REAL, TK_CLASS } TargetKind;

typedef struct Model {
    const char *name;      /* the model line, else the file's base name */
    const char *cname;     /* name made a C identifier, the prefix of everything */
    const char *source;    /* the model file's path, for messages */
    int is_double;         /* precision double */
    Sym **inputs; int ninputs;
    Sym **targets; int ntargets;
    Sym **params; int nparams;
    size_t input_size, target_size, param_count, output_size;
    Ref objective;         /* per-example objective, shape [B] */
    Ref loss;              /* mean objective over the batch, scalar */
    Ref output;            /* what predict returns */
    int maximize;
    TargetKind target_kind;
    int nclasses;          /* class target: the number of classes */
    int binary;            /* objective uses bce: accuracy by threshold */
    double threshold;      /* 0.5 for probabilities, 0 for logits */
    Ref binary_of;         /* the node bce scores (it must be the output) */
    Loc objective_loc;
    TrainConfig train;
    int batch;             /* the compiled batch */
    size_t state_count;    /* elements of state (batch_norm's running
                              statistics): not trained, saved with params */
    Graph g;               /* forward and, after grad, backward nodes */
    Ref *grads;            /* per param, the gradient of the loss (0: zero gradient) */
    Ref *adjs;             /* per param, the adjoint of the summed loss, before / n */
    struct {               /* the stable forms simplify.c found in what the */
        const char *what;  /* user wrote (for --emit=grad): a sentence, and */
        Loc loc;           /* where in the model file */
    } recognised[8];
    int nrecognised;
} Model;

/* Checks the AST and builds the forward graph. Returns NULL if errors were
 * reported. default_name is used when there is no model line. */
Model *sema_check(Arena *a, Diag *d, Ast *ast, const char *default_name);
/* 64-bit FNV-1a hash of the model's parameter names and shapes, as
 * parameter files record it. */
uint64_t model_hash(const Model *m);
/* The prefix of every generated name: "seed_", or upper case "SEED_". */
const char *model_prefix(Model *m, int upper);

/* ---------------------------------------------------------------- grad.c */

/* Reverse mode: fills m->grads with the adjoint of every parameter, as new
 * nodes of m->g. */
void grad_build(Model *m);

/* ------------------------------------------------------------ simplify.c */

typedef struct Rewrites Rewrites;
/* Rewrites the graph until nothing changes; roots are updated in place.
 * level: 0 none, 1 folds and identities, 2 everything. If explain is not
 * NULL, every rewrite is printed there. */
void simplify(Model *m, int level, FILE *explain);

/* ---------------------------------------------------------------- plan.c */

/* FN_ALL: the functions together, the forward pass shared (plan_build_all) */
typedef enum FnKind { FN_LOSS, FN_LOSS_GRAD, FN_PREDICT, FN_COUNT, FN_ALL = FN_COUNT } FnKind;

/* The parts of the functions together, in order (Plan.seg) */
enum { SEG_NONE, SEG_FORWARD, SEG_PREDICT, SEG_OBJECTIVE, SEG_BACKWARD };

/* Where a node's value lives in one emitted function. */
typedef enum Home { H_NONE, H_WORK, H_PARAMS, H_X, H_Y, H_GRAD, H_OUT, H_ALIAS, H_INLINE } Home;

typedef struct Slot {
    Home home;       /* where */
    size_t offset;   /* in elements, in that buffer */
    Ref alias;       /* H_ALIAS: the node whose storage it shares */
    size_t scratch;  /* workspace offset of the op's scratch (conv.c), live
                        only while the op runs; see conv_scratch() */
} Slot;

/* What a product, a convolution or a max-pool's adjoint computes along
 * (fuse.c). */
typedef struct Fusion {
    Ref last;        /* the node whose storage it writes, or 0 */
    Ref alpha;       /* a single value scaling the product, or 0 */
    Ref bias;        /* a vector added along the rows (a product's) or per
                        output channel (a convolution's), or 0 */
    int act;         /* 1: relu after the bias; 2: a MAXPOOL_BWD's reader
                        RELU_BWD(its own input, it) (conv_fusable) */
} Fusion;

typedef struct Plan {
    FnKind fn;       /* which function */
    Ref *order;      /* nodes to compute, in order */
    int norder;
    Slot *slot;      /* per node (indexed by Ref) */
    size_t work_elems;   /* workspace with reuse, in elements */
    size_t work_noreuse; /* the same without reuse (saturates at PLAN_MAX_BYTES) */
    Ref too_big;         /* the node at which the workspace outgrew
                            PLAN_MAX_BYTES, or 0 (main.c reports it) */
    unsigned char *seg;  /* FN_ALL: per node, its part (SEG_*) */
    Ref *fused;          /* per node: the node that computes it along, or 0 */
    Fusion *fz;          /* per product: what it computes along */
    int seg_start[SEG_BACKWARD + 2]; /* FN_ALL: where each part starts in order */
} Plan;

/* The largest workspace, in bytes: the most a C object may hold on a 64-bit
 * target (PTRDIFF_MAX), and the largest size the generated header can write
 * as a plain integer constant (long long). Every size the plan adds up is
 * kept below it, so none wraps around. */
#define PLAN_MAX_BYTES ((size_t)INT64_MAX)

void plan_build(Model *m, FnKind fn, Plan *p);
/* The functions together (FN_ALL); with predict_only, predict's alone. */
void plan_build_all(Model *m, int predict_only, Plan *p);

/* ---------------------------------------------------------------- fuse.c */

/* Decides p's fusions (p->fused, p->fz) from its order and homes, before
 * its storage is placed; root: the nodes the functions return. */
void fuse_plan(Model *m, Plan *p, const unsigned char *root);
/* whether node r has no storage of its own: computed along with another */
int fuse_away(const Plan *p, Ref r);
/* whether element-wise node r is written as one flat loop (every operand
 * of its shape, a single value or inline) */
int fuse_elem_flat(const Plan *p, Graph *g, Ref r);

/* ---------------------------------------------------------------- conv.c */

/* The convolution family (conv2d, maxpool2d, avgpool2d, dropout): shape
 * rules and builders for sema.c, gradient rules for grad.c, scratch sizes
 * for plan.c, FLOPs for the stats and the C each op compiles to. */

#define CONV_PAD_SAME (-1) /* pad argument of conv_out_dim and g_conv2d */

/* Output size of a convolution along one axis of size in: pad is
 * CONV_PAD_SAME or the zeros added on each side (0: valid). Sets *before to
 * the zeros added before the first element. Returns 0 when no window fits. */
int conv_out_dim(int in, int k, int stride, int pad, int *before);
/* x [B,C,H,W] (or [C,H,W]), w [O,C,k,k]: the convolution [B,O,Ho,Wo]. */
Ref g_conv2d(Graph *g, Ref x, Ref w, int stride, int pad, Loc loc);
/* OP_MAXPOOL or OP_AVGPOOL over the last two axes of x. */
Ref g_pool2d(Graph *g, Op op, Ref x, int size, Loc loc);
/* Inverted dropout of probability p; site numbers the model's dropouts. */
Ref g_dropout(Graph *g, Ref x, double p, int site, Loc loc);
/* Whether op belongs to the family (its knowledge is in conv.c). */
int conv_op(Op op);
/* Reverse mode: the adjoints d[i] of node r's operands from its adjoint dy;
 * only for operands with needs[operand] set, else d[i] = 0. */
void conv_grad(Graph *g, Ref r, Ref dy, const unsigned char *needs, Ref d[2]);
/* Elements of workspace scratch node r needs while it runs (0: none). */
size_t conv_scratch(Graph *g, Ref r);
/* Floating-point operations of node r over a batch of batch examples. */
double conv_flops(Graph *g, Ref r, int batch);

/* What emit_c.c hands conv.c to write one node's C. */
typedef struct OpEmit {
    FILE *out;           /* where */
    const char *T;       /* float or double */
    const char *prefix;  /* the model prefix, "seed_" (for the helpers) */
    Graph *g;            /* the graph */
    Ref r;               /* the node */
    const char *dst;     /* its storage, a pointer expression */
    const char *in[2];   /* its operands' storage */
    const char *scratch; /* its scratch (conv_scratch() elements), or NULL */
    int train;           /* dropout: 0 identity, 1 masks (needs `seed`), 2 as the argument `train` says */
    const char *bias;    /* CONV2D: a bias per output channel added in its
                            epilogue (NULL: none); see conv_fusable() */
    int relu;            /* CONV2D: relu applied after the bias; MAXPOOL_BWD:
                            the relu_bwd of its own input applied to its output */
    const char *kernel;  /* the name of its kernel (conv_kernel_names) */
} OpEmit;
/* The names of the family's kernels, per node (NULL for other nodes),
 * after the model's names: "seed_conv_c1", "seed_conv_c1_backward_input",
 * "seed_maxpool_p1_backward"; unique within the graph. */
const char **conv_kernel_names(Model *m, const char *prefix);
/* The statement of node o->r in a function: a call of its kernel (dropout
 * is written in place). */
void conv_emit(const OpEmit *o);
/* The kernel of node o->r (not dropout), a static function specialized to
 * its shapes, written before the functions that call it; dst, in and
 * scratch are not used. */
void conv_emit_kernel(const OpEmit *o);
/* The element-wise work the kernel of node r (CONV2D, MAXPOOL_BWD) can do
 * on its way out instead of a pass of its own: for a CONV2D, whether b is a
 * bias per output channel ([O,1,1]) its reader may add; for a
 * MAXPOOL_BWD, whether RELU_BWD(x, it) can be applied in place, that is,
 * x is the pooled input itself (b = x). */
int conv_fusable(Graph *g, Ref r, Ref b);
/* Whether the model has a dropout node: its training functions take a seed. */
int conv_has_dropout(Graph *g);
/* The static helpers dropout's C uses (the mask hash, the batch seed). */
void conv_emit_helpers(FILE *out, const char *prefix, const char *T);

/* ---------------------------------------------------------------- norm.c */

/* Normalization: layer_norm over the last axes, batch_norm per channel over
 * the batch with running statistics kept as model state. Shape rules and
 * builders for sema.c, the closed-form gradients for grad.c, scratch and
 * FLOPs for plan.c and the stats, the C of each node. */

/* layer_norm(x) over the last d elements of x (the product of its last
 * axes), eps added to the variance. */
Ref g_layer_norm(Graph *g, Ref x, int d, double eps, Loc loc);
/* batch_norm(x), x batched [B, C, ...]: per channel over the batch and the
 * other axes; its running mean and variance at state_off (C each) of the
 * state; site numbers the model's batch_norms. */
Ref g_batch_norm(Graph *g, Ref x, double eps, double momentum, size_t state_off, int site, Loc loc);
/* Whether op belongs to the module. */
int norm_op(Op op);
/* Reverse mode, as conv_grad: d[i] the adjoints of node r's operands. */
void norm_grad(Graph *g, Ref r, Ref dy, const unsigned char *needs, Ref d[2]);
/* Elements of workspace scratch node r needs while it runs (0: none). */
size_t norm_scratch(Graph *g, Ref r);
/* Floating-point operations of node r over a batch of batch examples. */
double norm_flops(Graph *g, Ref r, int batch);
/* Whether the model has state (a batch_norm): its functions take it. */
int norm_has_state(const Model *m);

/* What emit_c.c hands norm.c to write one node's C. */
typedef struct NormEmit {
    FILE *out;           /* where */
    const char *T;       /* float or double */
    Graph *g;            /* the graph */
    Ref r;               /* the node */
    const char *dst;     /* its storage */
    const char *in[3];   /* its operands' storage */
    const char *scratch; /* its scratch (norm_scratch() elements), or NULL */
    int mode;            /* batch_norm: 0 running statistics, 1 the batch's,
                            2 as the argument `mode` says (0 evaluation, 1
                            training, 2 training that updates the running
                            statistics in `state`) */
} NormEmit;
/* The statement of node o->r: a block of row loops. */
void norm_emit(const NormEmit *o);
/* The header's lines for the state (its count, each batch_norm's offsets)
 * and MODEL_init_state's body. */
void norm_emit_state_macros(Model *m, const char *PREFIX, FILE *out);
void norm_emit_init_state(Model *m, const char *T, FILE *out);

/* The vector type's definitions (vector extensions where the compiler that
 * builds the generated C has them), once per file before the first use. */
void vec_prelude(FILE *out, const char *T, Graph *g);
/* PREFIXvgemm(M, N, K, a, lda, ska, b, ldb, c, ldc, scratch): C = A·B written
 * out with register tiles of rows by vectors (plain loops without vector
 * extensions), A(i,k) = a[i*lda + k*ska], B(k,j) = b[k*ldb + j],
 * C(i,j) = c[i*ldc + j], scratch: K*16 elements. For emit_c's small
 * products; conv.c's kernels write the same code with constant sizes. */
void vec_gemm_function(FILE *out, const char *T, const char *prefix);

/* ------------------------------------------------------------ printer.c */

/* What an op's C template (ops.def) is expanded with: the real type, the
 * math functions' suffix, e^x and log(1 + u) as the file spells them, and
 * the node's constants as literals. */
typedef struct CFlavour {
    const char *T;      /* "float" or "double" */
    const char *fs;     /* "f" or "" */
    const char *exp;    /* "seed_vm_expf" or "expf", "exp" */
    const char *log1p;  /* "seed_vm_log1p", "log1pf" or "log1p" */
    const char *c, *c2; /* Node.f and Node.f2 as literals */
    const char *erf;    /* "seed_vm_erff", "erff" or "erf" */
} CFlavour;

/* The C expression of element-wise node x at one element, its operands'
 * values being a and b (C expressions; parenthesized where needed). */
const char *op_expr(Arena *ar, const Node *x, const char *a, const char *b, const CFlavour *fl);
/* What of vmath.c an op's template calls: a mask of VM_EXP (e^x), VM_LOG1P
 * (log(1 + u)), VM_ERF (erf, which calls e^x); 0 nothing. */
enum { VM_EXP = 1, VM_LOG1P = 2, VM_ERF = 4 };
int op_uses_vmath(Op op);
/* Whether generated C must not use name as an identifier of its own (a
 * keyword, a libm or libc name, a name reserved to the implementation). */
int c_reserved(const char *name);
/* Splits generated C (functions, types, data, directives at file scope)
 * into what declares it, in order (directives, types, data, a prototype
 * per function), and the function definitions, under the same
 * conditionals: the model's code can then come between the two. */
void split_definitions(const char *text, FILE *decls, FILE *defs);
/* prefix + name with every character that cannot be in a C identifier
 * made '_' ("h.W" -> "h_W") */
const char *c_identifier(Arena *a, const char *prefix, const char *name);
/* whether identifier v may not name a value of the generated code: it is
 * C's or the headers' (c_reserved), or begins like the model's own names
 * (prefix "seed_", PREFIX "SEED_") or the shared ones (gradc_, GRADC_) */
int c_name_unsafe(const char *v, const char *prefix, const char *PREFIX);
/* Per param, the NAME of MODEL_PARAM_NAME_OFFSET/_SIZE: upper case, and
 * unique (a clash, as of W and w, gets _2, _3 in declaration order). */
const char **param_macro_names(Model *m);
/* Text (a path, a command line, a name) made safe inside a C string
 * literal (without its quotes) and inside a block comment: every text
 * from outside that goes into generated C goes through one of these. */
const char *c_string_escape(Arena *a, const char *s);
const char *c_comment_escape(Arena *a, const char *s);
/* One line of generated C: indent levels of four spaces, then fmt: what
 * every emitter's line-writing helper calls. */
void emit_vline(FILE *out, int indent, const char *fmt, va_list ap);

/* -------------------------------------------------------------- emitters */

/* Trained values read from a parameter file (deploy.c). */
typedef struct EmbeddedParams {
    double *values;       /* param_count values */
    double *mean, *std;   /* input_size standardization statistics, or NULL */
    double *state;        /* state_count values (batch_norm's running
                             statistics) the file saved, or NULL */
} EmbeddedParams;

int params_file_read(Model *m, const char *path, EmbeddedParams *ep, char *err, size_t errn);
void params_file_free(EmbeddedParams *ep);
/* the embedded arrays, MODEL_init copying them (and MODEL_init_state the
 * saved state), and MODEL_standardize */
void emit_embedded_init(Model *m, const EmbeddedParams *ep, const char *prefix, FILE *out);

typedef struct EmitOptions {
    int line_directives;  /* -g */
    const char *source_path; /* for #line */
    const char *cmdline;  /* recorded in the header comment */
    int scalar;           /* --scalar: fully unrolled scalar code */
    int predict_only;     /* --predict-only: init and predict, no gradient */
    const EmbeddedParams *embed; /* --embed-params: trained values */
} EmitOptions;

void emit_c(Model *m, Plan plans[FN_COUNT], const EmitOptions *o, FILE *out);
/* the header comment, includes and MODEL_init of MODEL.c */
void emit_c_prelude(Model *m, const EmitOptions *o, FILE *out);
/* --scalar: MODEL.c with one named variable per scalar (emit_scalar.c);
 * returns 0 (and says why) when the model is too large for it */
void emit_scalar_c(Model *m, Plan plans[FN_COUNT], const EmitOptions *o, FILE *out);
int scalar_check(Model *m, char *why, size_t n);
/* ... and before that, on the forward graph: a located error at each op
 * --scalar does not write out (conv2d, maxpool2d, max, softmax, ...);
 * returns 0 if there was one */
int scalar_check_ops(Model *m, Diag *d);
void emit_h(Model *m, Plan plans[FN_COUNT], const EmitOptions *o, FILE *out);
/* emit_main.c: MODEL_main.c, the model described to the runtime */
void emit_main(Model *m, Plan plans[FN_COUNT], FILE *out);
/* Whether an executable with threads splits each batch among them (each
 * thread the whole model on its examples, with a gradient of its own) rather
 * than sharing each matrix product: for a model without state whose params
 * are each used many times per example (sequences, convolutions), where the
 * extra gradients cost little against the work. */
int threads_split_batch(Model *m);
void emit_graph(Model *m, FILE *out, int with_backward);
void emit_grad(Model *m, FILE *out);
/* part: "" both graphs, "-forward" or "-backward" (--emit=dot-forward, ...) */
void emit_dot(Model *m, FILE *out, const char *part);
void emit_stats(Model *m, Plan plans[FN_COUNT], FILE *out);
/* FLOPs per example of the forward and the backward pass of loss_grad. */
void model_flops(Model *m, double *fwd, double *bwd);
/* "label = equation" of a node, as --emit=grad prints it. */
const char *node_equation(Model *m, Ref r, char *buf, size_t size);
/* ... with the nodes marked in inl written out in it, not named (values
 * computed along with r, which have no name in the generated C) */
const char *node_equation_fused(Model *m, Ref r, const unsigned char *inl, char *buf, size_t size);
/* A printable name for a node: the model's name, dL/dname, or tNN. */
const char *node_label(Model *m, Ref r, char *buf, size_t size);
/* Labels for unnamed values (per node, NULL: t<number>) while names is set
 * (the generated C's own names); NULL sets them back. */
void node_label_names(const char *const *names);

#endif
