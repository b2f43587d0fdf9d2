/*
 * sema.c: names, shapes and the forward graph.
 *
 * One walk over the statements in file order checks every rule of the
 * language (names bound once and before use, shapes under NumPy broadcasting
 * with the per-example semantics of docs/language.md, the arguments of each
 * built-in, the train block, exactly one objective) and, for what is right,
 * builds the forward graph. Expressions are per example; the graph is batched:
 * a per-example value of shape [3] becomes a node of shape [B,3], while params
 * and constants have no batch axis. Every error is reported and the walk goes
 * on, so a file's errors all come out in one run; an expression that failed
 * evaluates to node 0 and errors are not repeated for its users.
 */
#include "gradc.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DIM (1 << 24)        /* largest dimension */
#define MAX_ELEMS (1LL << 28)    /* largest tensor, per example */
#define MAX_PE_RANK 4            /* per-example rank */

typedef struct Sema {
    Arena *a;        /* the compilation's arena */
    Diag *d;         /* where errors go */
    Model *m;        /* what is built */
    Graph *g;        /* m->g */
    Sym **syms;      /* every bound name, in binding order */
    int nsyms, cap;  /* count, capacity */
    int *shead;      /* hash table of syms (open hashing): chain heads, 1 +
                        the index in syms, 0 for none; nshead a power of 2 */
    int *snext;      /* per sym: the next index + 1 in its chain */
    int nshead, sncap;
    int pcap, icap, tcap; /* capacities of m->params, m->inputs, m->targets */
    unsigned char *tdep; /* per node: it depends on a target (needs_target) */
    int ntdep, tdcap;    /* nodes classified so far, capacity */
    Ast *ast;        /* the parsed file, for "bound later" messages */
    Stmt *cur;       /* the statement being checked */
    int sugar;       /* param-declaring calls seen in the current binding */
    int dropouts;    /* dropout() calls so far: each is a site of its own */
    int batchnorms;  /* batch_norm() calls so far: each has state of its own */
    Ref last_let;    /* the last binding's node that needs no target: the default output */
    Stmt *last_let_stmt; /* that binding */
    Ref loss_pred;   /* the prediction the objective's first loss scores */
    Stmt *objective, *output, *train, *model_stmt, *precision;
    int want_ids;    /* tokens and sequences: evaluating a gather's index,
                        where an int input may be used */
    /* blocks (def) */
    const char *scope;   /* inside an inlined call: its prefix ("h1"), else NULL */
    struct Block *blocks; /* the defs so far, in file order */
    int nblocks, bcap;
    int blockcalls;      /* calls of blocks in the current binding */
    int ncalls;          /* calls outside a binding so far, for their prefixes */
    int depth;           /* calls being inlined, one inside another */
} Sema;

/* ------------------------------------------------------------ symbols */

/* Names are looked up in a hash table: a model of 100000 bindings looks
 * each name up in constant time, not by a scan of all that came before. */
static unsigned name_hash(const char *name)
{
    unsigned h = 2166136261u;
    for (const unsigned char *q = (const unsigned char *)name; *q; q++)
        h = (h ^ *q) * 16777619u;
    return h;
}

static Sym *lookup(Sema *s, const char *name)
{
    if (!s->nshead)
        return NULL;
    for (int i = s->shead[name_hash(name) & (unsigned)(s->nshead - 1)]; i; i = s->snext[i - 1])
        if (strcmp(s->syms[i - 1]->name, name) == 0)
            return s->syms[i - 1];
    return NULL;
}

/* blocks: inside an inlined call, the call's own names (its arguments,
 * params and bindings, bound as "CALL.NAME") hide the file's */
static Sym *lookup_scoped(Sema *s, const char *name)
{
    if (s->scope) {
        Sym *y = lookup(s, arena_printf(s->a, "%s.%s", s->scope, name));
        if (y)
            return y;
    }
    return lookup(s, name);
}

/* Enters syms[i] into the hash table, growing it to twice the symbols. */
static void hash_sym(Sema *s, int i)
{
    if (s->nsyms * 2 > s->nshead) {
        free(s->shead);
        s->nshead = s->nshead ? s->nshead * 2 : 256;
        s->shead = xcalloc((size_t)s->nshead, sizeof(int));
        s->snext = xrealloc(s->snext, sizeof(int) * (size_t)s->nshead);
        for (int k = 0; k < i; k++) {
            unsigned b = name_hash(s->syms[k]->name) & (unsigned)(s->nshead - 1);
            s->snext[k] = s->shead[b];
            s->shead[b] = k + 1;
        }
    }
    unsigned b = name_hash(s->syms[i]->name) & (unsigned)(s->nshead - 1);
    s->snext[i] = s->shead[b];
    s->shead[b] = i + 1;
}

/* Binds a new name; reports a second binding. */
static Sym *bind(Sema *s, SymKind kind, const char *name, Loc loc)
{
    Sym *old = lookup(s, name);
    if (old) {
        diag_error(s->d, loc, "'%s' is already bound (at %d:%d); names are bound once", name,
                   old->loc.first_line, old->loc.first_column);
        diag_note(s->d, old->loc, "'%s' was bound here", name);
        return NULL;
    }
    /* built-in function names may name values: exp(...) is always the
     * function, exp alone the value (docs/language.md) */
    Sym *y = arena_alloc(s->a, sizeof(Sym));
    y->kind = kind;
    y->name = name;
    y->loc = loc;
    s->syms = arena_grow(s->a, s->syms, sizeof(Sym *), &s->cap, s->nsyms + 1);
    s->syms[s->nsyms++] = y;
    hash_sym(s, s->nsyms - 1);
    return y;
}

static void add_param(Sema *s, Sym *y)
{
    Model *m = s->m;
    y->index = m->nparams;
    y->offset = m->param_count;
    m->param_count += (size_t)shape_numel_static(y->shape);
    m->params = arena_grow(s->a, m->params, sizeof(Sym *), &s->pcap, m->nparams + 1);
    m->params[m->nparams++] = y;
    int ia[4] = {y->index, 0, 0, 0};
    y->ref = node_make(s->g, OP_PARAM, y->shape, NULL, 0, ia, y->loc);
    N(s->g, y->ref)->name = y->name;
}

/* ---------------------------------------------------------- shapes */

static Shape pe(Shape s) /* per-example shape */
{
    if (!shape_has_batch(s))
        return s;
    Shape r;
    r.rank = s.rank - 1;
    for (int i = 1; i < s.rank; i++)
        r.dim[i - 1] = s.dim[i];
    return r;
}

static Shape batched(Shape pes, int b) /* full shape of a per-example shape */
{
    if (!b)
        return pes;
    Shape r;
    r.rank = pes.rank + 1;
    r.dim[0] = DIM_B;
    for (int i = 0; i < pes.rank; i++)
        r.dim[i + 1] = pes.dim[i];
    return r;
}

static const char *pstr(Sema *s, Shape sh)
{
    char buf[128];
    return arena_strdup(s->a, shape_str(pe(sh), buf, sizeof buf));
}

#define SH(r) (N(s->g, (r))->shape)
#define ISB(r) shape_has_batch(SH(r))

/* ------------------------------------------------------- constants */

static void name_error(Sema *s, Expr *e, const char *name);

static int const_eval(Sema *s, Expr *e, double *out, int quiet)
{
    double a, b;
    switch (e->kind) {
    case E_NUM:
        *out = e->num;
        if (!isfinite(*out)) {
            if (!quiet)
                diag_error(s->d, e->loc, "number '%s' is out of range", e->text);
            return 0;
        }
        return 1;
    case E_NAME: {
        Sym *y = lookup_scoped(s, e->name);
        if (y && y->kind == SYM_CONST) {
            y->used = 1;
            *out = y->value;
            return 1;
        }
        if (quiet)
            return 0;
        if (!y)
            name_error(s, e, e->name);
        else
            diag_error(s->d, e->loc, "expected a constant number, found %s '%s'",
                       y->kind == SYM_INPUT    ? "input"
                       : y->kind == SYM_TARGET ? "target"
                       : y->kind == SYM_PARAM  ? "param"
                                               : "binding",
                       e->name);
        return 0;
    }
    case E_UNARY:
        if (!const_eval(s, e->lhs, &a, quiet))
            return 0;
        *out = -a;
        return 1;
    case E_BINARY:
        if (e->op == '@')
            break;
        if (!const_eval(s, e->lhs, &a, quiet) || !const_eval(s, e->rhs, &b, quiet))
            return 0;
        switch (e->op) {
        case '+': *out = a + b; break;
        case '-': *out = a - b; break;
        case '*': *out = a * b; break;
        case '/': *out = a / b; break;
        case '^': *out = pow(a, b); break;
        default: return 0;
        }
        if (!isfinite(*out)) {
            if (!quiet)
                diag_error(s->d, e->loc, "constant expression is not a finite number");
            return 0;
        }
        return 1;
    default:
        break;
    }
    if (!quiet)
        diag_error(s->d, e->loc, "expected a constant number");
    return 0;
}

static int const_int(Sema *s, Expr *e, long lo, long hi, long *out, const char *what)
{
    double v;
    if (!const_eval(s, e, &v, 0))
        return 0;
    if (v != floor(v)) {
        diag_error(s->d, e->loc, "%s must be a whole number, not %g", what, v);
        return 0;
    }
    if (v < (double)lo || v > (double)hi) {
        diag_error(s->d, e->loc, "%s must be between %ld and %ld, not %.17g", what, lo, hi, v);
        return 0;
    }
    *out = (long)v;
    return 1;
}

static int eval_shape(Sema *s, Expr *list, Shape *out)
{
    out->rank = 0;
    if (!list)
        return 1;
    if (list->nargs > MAX_PE_RANK) {
        diag_error(s->d, list->loc, "too many dimensions (%d); at most %d per example",
                   list->nargs, MAX_PE_RANK);
        return 0;
    }
    int ok = 1;
    long long total = 1;
    for (Expr *e = list->args; e; e = e->next) {
        long v;
        if (e->kind == E_KWARG) {
            diag_error(s->d, e->loc, "expected a dimension, found '%s ='", e->name);
            ok = 0;
            continue;
        }
        if (!const_int(s, e, 1, MAX_DIM, &v, "a dimension")) {
            ok = 0;
            continue;
        }
        out->dim[out->rank++] = (int)v;
        total *= v;
        if (total > MAX_ELEMS) {
            diag_error(s->d, list->loc, "shape has more than %lld elements", MAX_ELEMS);
            return 0;
        }
    }
    return ok;
}

/* Whether a per-example shape built by an operation (broadcasting, '@',
 * concat(), the params of dense() and conv2d()) holds at most MAX_ELEMS
 * elements, as declared shapes do; else reports it. */
static int size_ok(Sema *s, Shape pes, Loc loc)
{
    double n = 1;
    for (int i = 0; i < pes.rank; i++)
        n *= pes.dim[i] == DIM_B ? 1 : pes.dim[i];
    if (n <= (double)MAX_ELEMS)
        return 1;
    char buf[128];
    diag_error(s->d, loc, "the result %s would have more than %lld elements",
               shape_str(pes, buf, sizeof buf), MAX_ELEMS);
    return 0;
}

/* ------------------------------------------------------ call arguments */

#define MAXARGS 8
typedef struct Args {
    Expr *call;          /* the call */
    Expr *pos[MAXARGS];  /* positional arguments */
    int npos;
    Expr *kw[MAXARGS];   /* keyword arguments */
    int nkw;
    int ok;              /* no error so far */
} Args;

/* Splits a call's arguments and checks their count and keywords against
 * names: the parameter names in order ("x", "n", "activation"), of which the
 * first min are required. */
static Args get_args(Sema *s, Expr *call, int min, const char *const *names)
{
    Args A;
    memset(&A, 0, sizeof A);
    A.call = call;
    A.ok = 1;
    int max = 0;
    while (names[max])
        max++;
    for (Expr *e = call->args; e; e = e->next) {
        if (e->kind == E_KWARG) {
            int k = -1;
            for (int i = 0; i < max; i++)
                if (strcmp(names[i], e->name) == 0)
                    k = i;
            if (k < 0) {
                diag_error(s->d, e->name_loc, "%s() has no argument named '%s'", call->name,
                           e->name);
                A.ok = 0;
                continue;
            }
            if (A.pos[k] || k < A.npos) {
                diag_error(s->d, e->name_loc, "argument '%s' of %s() is given twice", e->name,
                           call->name);
                A.ok = 0;
                continue;
            }
            A.pos[k] = e->lhs;
            if (A.nkw < MAXARGS)
                A.kw[A.nkw++] = e;
        } else {
            if (A.nkw) {
                diag_error(s->d, e->loc, "positional argument after a keyword argument");
                A.ok = 0;
                continue;
            }
            if (A.npos >= max) {
                diag_error(s->d, e->loc, "too many arguments to %s(): it takes at most %d",
                           call->name, max);
                A.ok = 0;
                break;
            }
            A.pos[A.npos++] = e;
        }
    }
    for (int i = 0; i < min && A.ok; i++)
        if (!A.pos[i]) {
            diag_error(s->d, call->loc, "%s() needs its argument '%s'", call->name, names[i]);
            A.ok = 0;
        }
    return A;
}

/* ------------------------------------------------------- built-ins */

/* Every function a model may call, from the op table (ops.def): element-wise
 * ops whose row has a signature, and the BUILTIN rows, each with the handler
 * that builds it. Signatures are parsed once, at the first lookup. */
typedef struct Builtin Builtin;
typedef Ref (*Handler)(Sema *s, Expr *e, const Builtin *b, Args *A);
struct Builtin {
    const char *name;       /* as a model calls it */
    Handler fn;             /* builds the call */
    const char *sig;        /* its signature, NULL: not a function of the language */
    Op op;                  /* an element-wise op's row: its op; else OP_COUNT */
    const char *names[MAXARGS + 1]; /* the arguments' names, NULL-terminated */
    const char *defs[MAXARGS];      /* their defaults; NULL: required */
    int min;                /* how many are required (they come first) */
    unsigned consts;        /* bit i: argument i is a constant number */
    int ntensors;           /* arguments that are tensors */
};

static Ref b_elemwise(Sema *s, Expr *e, const Builtin *b, Args *A);
#define BUILTIN(name, handler, sig) static Ref handler(Sema *s, Expr *e, const Builtin *b, Args *A);
#include "ops.def"

static Builtin builtin_table[] = {
#define OP(id, name, nin, flags, cost, sig, c, text, fold) {name, b_elemwise, sig, OP_##id, {0}, {0}, 0, 0, 0},
#define BUILTIN(name, handler, sig) {name, handler, sig, OP_COUNT, {0}, {0}, 0, 0, 0},
#include "ops.def"
};
#define NBUILTINS ((int)(sizeof builtin_table / sizeof builtin_table[0]))

/* "x, #alpha=0.01, axis=" into names, defaults and the constant mask */
static void parse_sig(Builtin *b)
{
    const char *p = b->sig;
    int k = 0;
    b->min = 0;
    while (*p && k < MAXARGS) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '#') {
            b->consts |= 1u << k;
            p++;
        }
        const char *q = p;
        while (*q && *q != '=' && *q != ',')
            q++;
        char *name = xmalloc((size_t)(q - p) + 1);
        memcpy(name, p, (size_t)(q - p));
        name[q - p] = 0;
        b->names[k] = name;
        b->defs[k] = NULL;
        if (*q == '=') {
            const char *v = ++q;
            while (*q && *q != ',')
                q++;
            char *d = xmalloc((size_t)(q - v) + 1);
            memcpy(d, v, (size_t)(q - v));
            d[q - v] = 0;
            b->defs[k] = d;
        } else {
            b->min = k + 1;
        }
        if (!(b->consts & (1u << k)))
            b->ntensors++;
        k++;
        p = q;
    }
    b->names[k] = NULL;
}

/* The function a model calls by that name, or NULL. */
static const Builtin *find_builtin(const char *name)
{
    static int parsed;
    if (!parsed) {
        for (int i = 0; i < NBUILTINS; i++)
            if (builtin_table[i].sig)
                parse_sig(&builtin_table[i]);
        parsed = 1;
    }
    for (int i = 0; i < NBUILTINS; i++)
        if (builtin_table[i].sig && !strcmp(builtin_table[i].name, name))
            return &builtin_table[i];
    return NULL;
}

/* A constant argument of a call: what the call gives, else its default. */
static int const_arg(Sema *s, const Builtin *b, Args *A, int i, double *v)
{
    if (A->pos[i])
        return const_eval(s, A->pos[i], v, 0);
    *v = b->defs[i] && *b->defs[i] ? strtod(b->defs[i], NULL) : 0;
    return 1;
}

/* Names the expression uses, marked used without building anything: the
 * arguments of a call that failed are not reported as unused too. */
static void mark_used(Sema *s, Expr *e)
{
    for (; e; e = e->next) {
        if (e->kind == E_NAME) {
            Sym *y = lookup_scoped(s, e->name);
            if (y)
                y->used = 1;
        } else if (e->kind == E_FIELD && e->lhs && e->lhs->kind == E_NAME) {
            Sym *y = lookup_scoped(s, arena_printf(s->a, "%s.%s", e->lhs->name, e->name));
            if (y)
                y->used = 1;
        }
        if (e->kind != E_FIELD || strcmp(e->name, "T") == 0) {
            if (e->lhs)
                mark_used(s, e->lhs);
        }
        if (e->rhs)
            mark_used(s, e->rhs);
        if (e->args)
            mark_used(s, e->args);
    }
}

/* ------------------------------------------------------- lowering */

static Ref ev(Sema *s, Expr *e);
/* tokens and sequences */
static Ref batched_matmul(Sema *s, Ref a, Ref b, Loc loc);
static Ref transpose_perm(Sema *s, Expr *e, Ref x, Expr *perm);
static Ref index_expr(Sema *s, Expr *e);

/* Reshapes a batched operand so its per-example axes align with a result of
 * per-example rank r (NumPy aligns trailing axes; the batch axis stays first). */
static Ref align(Sema *s, Ref a, int r, Loc loc)
{
    Shape sh = SH(a);
    if (!shape_has_batch(sh) || sh.rank - 1 >= r)
        return a;
    Shape t;
    t.rank = r + 1;
    t.dim[0] = DIM_B;
    int pad = r - (sh.rank - 1);
    for (int i = 0; i < pad; i++)
        t.dim[1 + i] = 1;
    for (int i = 1; i < sh.rank; i++)
        t.dim[pad + i] = sh.dim[i];
    return g_reshape(s->g, a, t, loc);
}

static Ref elemwise(Sema *s, Op op, Ref a, Ref b, double f, Loc loc, const char *what)
{
    if (!a || !b)
        return 0;
    Shape o;
    if (!shape_broadcast(pe(SH(a)), pe(SH(b)), &o)) {
        diag_error(s->d, loc, "shapes %s and %s do not broadcast for %s", pstr(s, SH(a)),
                   pstr(s, SH(b)), what);
        return 0;
    }
    if (!size_ok(s, o, loc))
        return 0;
    a = align(s, a, o.rank, loc);
    b = align(s, b, o.rank, loc);
    return g_binary_f(s->g, op, a, b, f, loc);
}

/* A per-example matrix product, lowered to batched matrix products. */
static Ref matmul(Sema *s, Ref a, Ref b, Loc loc)
{
    if (!a || !b)
        return 0;
    Graph *g = s->g;
    Shape pa = pe(SH(a)), pb = pe(SH(b));
    int ba = ISB(a), bb = ISB(b);
    if (pa.rank >= 1 && pb.rank >= 1 && (pa.rank > 2 || pb.rank > 2)) /* tokens and sequences */
        return batched_matmul(s, a, b, loc);
    if (pa.rank < 1 || pa.rank > 2 || pb.rank < 1 || pb.rank > 2) {
        diag_error(s->d, loc, "'@' needs vectors or matrices, not %s @ %s", pstr(s, SH(a)),
                   pstr(s, SH(b)));
        return 0;
    }
    int ka = pa.dim[pa.rank - 1], kb = pb.dim[0];
    if (ka != kb) {
        diag_error(s->d, loc, "inner dimensions do not match in %s @ %s (%d and %d)",
                   pstr(s, SH(a)), pstr(s, SH(b)), ka, kb);
        return 0;
    }
    /* the per-example result shape */
    Shape po;
    po.rank = 0;
    if (pa.rank == 2)
        po.dim[po.rank++] = pa.dim[0];
    if (pb.rank == 2)
        po.dim[po.rank++] = pb.dim[1];
    if (!size_ok(s, po, loc))
        return 0;
    Shape full = batched(po, ba || bb);
    int k = ka;
    Ref r;
    if (!ba && !bb) {
        Ref A = pa.rank == 1 ? g_reshape(g, a, shape2(1, k), loc) : a;
        Ref Bm = pb.rank == 1 ? g_reshape(g, b, shape2(k, 1), loc) : b;
        r = g_matmul(g, A, Bm, 0, 0, loc);
    } else if (!ba && bb && pb.rank == 1) {
        /* W @ x over the batch: X · Wᵀ, the batch as rows */
        Ref A = pa.rank == 1 ? g_reshape(g, a, shape2(1, k), loc) : a;
        r = g_matmul(g, b, A, 0, 1, loc);
    } else if (ba && !bb && pa.rank == 1) {
        /* x @ W over the batch: X · W */
        Ref Bm = pb.rank == 1 ? g_reshape(g, b, shape2(k, 1), loc) : b;
        r = g_matmul(g, a, Bm, 0, 0, loc);
    } else if (ba && bb && pa.rank == 1 && pb.rank == 1) {
        r = g_reduce(g, OP_SUM, g_binary(g, OP_MUL, a, b, loc), 2u, 0, loc);
    } else {
        /* a matrix product per example */
        Shape ta, tb;
        ta.rank = 2;
        ta.dim[0] = pa.rank == 2 ? pa.dim[0] : 1;
        ta.dim[1] = k;
        tb.rank = 2;
        tb.dim[0] = k;
        tb.dim[1] = pb.rank == 2 ? pb.dim[1] : 1;
        Ref A = g_reshape(g, a, batched(ta, ba), loc);
        Ref Bm = g_reshape(g, b, batched(tb, bb), loc);
        r = g_matmul(g, A, Bm, 0, 0, loc);
    }
    return g_reshape(g, r, full, loc);
}

static Ref reduce(Sema *s, Op op, Ref x, Expr *axis, int mean, Loc loc)
{
    if (!x)
        return 0;
    Shape p = pe(SH(x));
    int off = ISB(x);
    unsigned mask = 0;
    int count = 1;
    if (axis) {
        long ax;
        if (p.rank == 0) {
            diag_error(s->d, axis->loc, "a scalar has no axis to reduce");
            return 0;
        }
        if (!const_int(s, axis, -p.rank, p.rank - 1, &ax, "axis"))
            return 0;
        if (ax < 0)
            ax += p.rank;
        mask = 1u << (ax + off);
        count = p.dim[ax];
    } else {
        for (int i = 0; i < p.rank; i++)
            mask |= 1u << (i + off);
        count = shape_numel_static(p);
    }
    if (!mask)
        return x;
    Ref r = g_reduce(s->g, op, x, mask, 0, loc);
    if (mean && count != 1)
        r = g_binary(s->g, OP_MUL, r, g_const(s->g, 1.0 / count, loc), loc);
    return r;
}

/* The mean over per-example elements of an elementwise loss term. */
static Ref loss_mean(Sema *s, Ref t, Loc loc)
{
    return t ? reduce(s, OP_SUM, t, NULL, 1, loc) : 0;
}

/* dense(x, n, act) and conv2d(..., activation = act): act names a function
 * of one tensor whose other arguments have defaults (relu, softmax, and
 * every such row of the op table), applied to z. */
static Ref apply_act(Sema *s, Expr *where, Ref z, Loc loc)
{
    const Builtin *b = where->kind == E_NAME ? find_builtin(where->name) : NULL;
    if (where->kind != E_NAME) {
        diag_error(s->d, where->loc, "expected an activation name such as relu");
        return 0;
    }
    if (b && b->ntensors == 1 && b->min == 1 && !(b->consts & 1u)) {
        if (b->op != OP_COUNT) {
            double c[2] = {0, 0};
            for (int i = 1, k = 0; b->names[i] && k < 2; i++)
                if (b->consts & (1u << i))
                    c[k++] = strtod(b->defs[i], NULL);
            Ref in[1] = {z};
            return node_make2(s->g, b->op, SH(z), in, c[0], c[1], NULL, loc);
        }
        if (b->fn == b_softmax)
            return g_unary(s->g, strcmp(b->name, "softmax") ? OP_LOG_SOFTMAX : OP_SOFTMAX, z, loc);
    }
    /* the functions that qualify, from the table */
    char list[1024];
    size_t k = 0;
    int count = 0;
    for (int i = 0; i < NBUILTINS; i++) {
        const Builtin *c = &builtin_table[i];
        if (c->sig && c->ntensors == 1 && c->min == 1 && !(c->consts & 1u) && (c->op != OP_COUNT || c->fn == b_softmax))
            count++;
    }
    for (int i = 0, j = 0; i < NBUILTINS && k < sizeof list; i++) {
        const Builtin *c = &builtin_table[i];
        if (!(c->sig && c->ntensors == 1 && c->min == 1 && !(c->consts & 1u) && (c->op != OP_COUNT || c->fn == b_softmax)))
            continue;
        j++;
        k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", j == 1 ? "" : j == count ? " or " : ", ", c->name);
    }
    diag_error(s->d, where->loc, "unknown activation '%s'; expected %s", where->name, list);
    return 0;
}

/* dense() and conv2d() name their params after the binding they stand in,
 * one per binding: that statement, or 0 after an error */
static Stmt *sugar_binding(Sema *s, Expr *e, const char *fn)
{
    Stmt *st = s->cur;
    if (!st || st->kind != S_LET) {
        diag_error(s->d, e->loc, "%s() declares params named after its binding; write 'NAME = %s(...)'", fn,
                   fn);
        return NULL;
    }
    if (++s->sugar > 1) {
        diag_error(s->d, e->loc,
                   "a binding holds at most one dense() or conv2d(); bind this one to a name "
                   "of its own");
        return NULL;
    }
    return st;
}

/* dense(x, n, activation): declares NAME.W [n, k] (he) and NAME.b [n]
 * (zeros) where NAME is the binding's name; W @ x + b, then the activation */
static Ref b_dense(Sema *s, Expr *e, const Builtin *b, Args *A)
{
    (void)b;
    Stmt *st = sugar_binding(s, e, "dense");
    if (!st)
        return 0;
    Ref x = ev(s, A->pos[0]);
    long n;
    if (!const_int(s, A->pos[1], 1, MAX_DIM, &n, "the number of outputs") || !x)
        return 0;
    Shape p = pe(SH(x));
    if (p.rank != 1) {
        diag_error(s->d, A->pos[0]->loc, "dense() needs a vector, not %s; flatten() it first",
                   pstr(s, SH(x)));
        return 0;
    }
    if (!size_ok(s, shape2((int)n, p.dim[0]), e->loc))
        return 0;
    Sym *W = bind(s, SYM_PARAM, arena_printf(s->a, "%s.W", st->name), e->loc);
    Sym *B = bind(s, SYM_PARAM, arena_printf(s->a, "%s.b", st->name), e->loc);
    if (!W || !B)
        return 0;
    W->shape = shape2((int)n, p.dim[0]);
    W->init = INIT_HE;
    B->shape = shape1((int)n);
    B->init = INIT_ZEROS;
    W->used = B->used = 1;
    add_param(s, W);
    add_param(s, B);
    Ref z = elemwise(s, OP_ADD, matmul(s, W->ref, x, e->loc), B->ref, 0, e->loc, "'+'");
    if (A->pos[2] && z)
        z = apply_act(s, A->pos[2], z, e->loc);
    return z;
}

static Shape shape3(int a, int b, int c)
{
    Shape r = {3, {a, b, c}};
    return r;
}

/* conv2d(x, out, k, stride = 1, pad = same, activation): x is [C,H,W] (or
 * [H,W], one channel); declares NAME.W [out,C,k,k] (he) and NAME.b [out]
 * (zeros) like dense(). The shape rules are conv.c's. */
static Ref b_conv2d(Sema *s, Expr *e, const Builtin *b, Args *A)
{
    (void)b;
    Stmt *st = sugar_binding(s, e, "conv2d");
    if (!st)
        return 0;
    Ref x = ev(s, A->pos[0]);
    long out, k, stride = 1, pad = CONV_PAD_SAME;
    int ok = const_int(s, A->pos[1], 1, MAX_DIM, &out, "the number of output channels");
    ok &= const_int(s, A->pos[2], 1, 4096, &k, "the kernel size");
    if (A->pos[3])
        ok &= const_int(s, A->pos[3], 1, 4096, &stride, "the stride");
    if (A->pos[4]) {
        Expr *p = A->pos[4];
        if (p->kind == E_NAME && !strcmp(p->name, "same"))
            pad = CONV_PAD_SAME;
        else if (p->kind == E_NAME && !strcmp(p->name, "valid"))
            pad = 0;
        else if (p->kind == E_NAME && !lookup(s, p->name)) {
            diag_error(s->d, p->loc, "unknown padding '%s'; expected same, valid or a number",
                       p->name);
            ok = 0;
        } else if (ok && !const_int(s, p, 0, k - 1, &pad, "the padding")) {
            ok = 0;
        }
    }
    if (A->pos[5] && A->pos[5]->kind != E_NAME) {
        diag_error(s->d, A->pos[5]->loc, "expected an activation name such as relu");
        return 0;
    }
    if (!ok || !x)
        return 0;
    Shape p = pe(SH(x));
    if (p.rank == 2) /* one channel */
        x = g_reshape(s->g, x, batched(shape3(1, p.dim[0], p.dim[1]), ISB(x)), e->loc);
    p = pe(SH(x));
    if (p.rank != 3) {
        diag_error(s->d, A->pos[0]->loc,
                   "conv2d() needs an image [C,H,W] (or [H,W]), not %s; reshape() it first",
                   pstr(s, SH(x)));
        return 0;
    }
    int before;
    int ho = conv_out_dim(p.dim[1], (int)k, (int)stride, (int)pad, &before);
    int wo = conv_out_dim(p.dim[2], (int)k, (int)stride, (int)pad, &before);
    if (!ho || !wo) {
        diag_error(s->d, A->pos[2]->loc,
                   "a %ldx%ld kernel does not fit in the %dx%d image%s", k, k, p.dim[1], p.dim[2],
                   pad ? "" : " without padding (pad=valid)");
        return 0;
    }
    Shape wsh = {4, {(int)out, p.dim[0], (int)k, (int)k, 0, 0}};
    if (!size_ok(s, wsh, e->loc) || !size_ok(s, shape3((int)out, ho, wo), e->loc))
        return 0;
    Sym *W = bind(s, SYM_PARAM, arena_printf(s->a, "%s.W", st->name), e->loc);
    Sym *B = bind(s, SYM_PARAM, arena_printf(s->a, "%s.b", st->name), e->loc);
    if (!W || !B)
        return 0;
    W->shape.rank = 4;
    W->shape.dim[0] = (int)out;
    W->shape.dim[1] = p.dim[0];
    W->shape.dim[2] = W->shape.dim[3] = (int)k;
    W->init = INIT_HE;
    B->shape = shape1((int)out);
    B->init = INIT_ZEROS;
    W->used = B->used = 1;
    add_param(s, W);
    add_param(s, B);
    Ref y = g_conv2d(s->g, x, W->ref, (int)stride, (int)pad, e->loc);
    Ref bias = g_reshape(s->g, B->ref, shape3((int)out, 1, 1), e->loc);
    Ref z = elemwise(s, OP_ADD, y, bias, 0, e->loc, "'+'");
    if (A->pos[5] && z)
        z = apply_act(s, A->pos[5], z, e->loc);
    return z;
}

/* maxpool2d(x, size = 2), avgpool2d(x, size = 2): windows of size x size,
 * stride size, over the last two axes of x (each channel on its own) */
static Ref b_pool2d(Sema *s, Expr *e, const Builtin *b, Args *A)
{
    Ref x = ev(s, A->pos[0]);
    long size = 2;
    if (A->pos[1] && !const_int(s, A->pos[1], 1, MAX_DIM, &size, "the window size"))
        return 0;
    if (!x)
        return 0;
    Shape p = pe(SH(x));
    if (p.rank < 2) {
        diag_error(s->d, A->pos[0]->loc, "%s() needs an image [C,H,W] or [H,W], not %s", e->name,
                   pstr(s, SH(x)));
        return 0;
    }
    int H = p.dim[p.rank - 2], W = p.dim[p.rank - 1];
    if (size > H || size > W) {
        diag_error(s->d, A->pos[1] ? A->pos[1]->loc : e->loc,
                   "a %ldx%ld window does not fit in the %dx%d image", size, size, H, W);
        return 0;
    }
    if (size == 1)
        return x;
    return g_pool2d(s->g, strcmp(b->name, "maxpool2d") ? OP_AVGPOOL : OP_MAXPOOL, x, (int)size, e->loc);
}

/* dropout(x, p = 0.5): inverted dropout in training, identity otherwise */
static Ref b_dropout(Sema *s, Expr *e, const Builtin *b, Args *A)
{
    Ref x = ev(s, A->pos[0]);
    double p;
    const_arg(s, b, A, 1, &p);
    if (A->pos[1]) {
        if (!const_eval(s, A->pos[1], &p, 0))
            return 0;
        if (!(p >= 0 && p < 1)) {
            diag_error(s->d, A->pos[1]->loc, "dropout's probability must be in [0, 1), not %g", p);
            return 0;
        }
    }
    if (!x)
        return 0;
    if (p == 0)
        return x;
    return g_dropout(s->g, x, p, ++s->dropouts, e->loc);
}

/* ---------------------------------------------- normalization (norm.c) */

/* layer_norm(x, axis = [..], eps = 1e-5): over the last axis, or the axes
 * listed, which must be the last ones (each row is contiguous) */
static Ref b_layer_norm(Sema *s, Expr *e, const Builtin *b, Args *A)
{
    Ref x = ev(s, A->pos[0]);
    double eps;
    if (!const_arg(s, b, A, 2, &eps))
        return 0;
    if (!(eps > 0)) {
        diag_error(s->d, A->pos[2]->loc, "layer_norm()'s eps must be positive, not %g", eps);
        return 0;
    }
    if (!x)
        return 0;
    Shape p = pe(SH(x));
    if (p.rank == 0) {
        diag_error(s->d, A->pos[0]->loc, "layer_norm() needs a vector or more, not a scalar");
        return 0;
    }
    int lo = p.rank - 1; /* the first axis normalized over */
    if (A->pos[1]) {
        Expr *ax = A->pos[1];
        unsigned mask = 0;
        int ok = 1;
        for (Expr *a = ax->kind == E_LIST ? ax->args : ax; a; a = ax->kind == E_LIST ? a->next : NULL) {
            long k;
            if (!const_int(s, a, -p.rank, p.rank - 1, &k, "axis")) {
                ok = 0;
                continue;
            }
            mask |= 1u << (k < 0 ? k + p.rank : k);
        }
        if (!ok)
            return 0;
        if (!mask) {
            diag_error(s->d, ax->loc, "layer_norm() needs at least one axis");
            return 0;
        }
        lo = 0;
        while (!(mask & (1u << lo)))
            lo++;
        if (mask != ((1u << p.rank) - 1) - ((1u << lo) - 1)) {
            diag_error(s->d, ax->loc, "layer_norm() normalizes over the last axes of %s together: "
                       "the axes must be the last ones (e.g. [-2, -1])", pstr(s, SH(x)));
            return 0;
        }
    }
    int d = 1;
    for (int i = lo; i < p.rank; i++)
        d *= p.dim[i];
    return g_layer_norm(s->g, x, d, eps, e->loc);
}

/* batch_norm(x, eps = 1e-5, momentum = 0.1): per channel (the first axis
 * of the example) over the batch and the other axes; its running
 * statistics are the model's state */
static Ref b_batch_norm(Sema *s, Expr *e, const Builtin *b, Args *A)
{
    Ref x = ev(s, A->pos[0]);
    double eps, mom;
    if (!const_arg(s, b, A, 1, &eps) || !const_arg(s, b, A, 2, &mom))
        return 0;
    if (!(eps > 0)) {
        diag_error(s->d, A->pos[1]->loc, "batch_norm()'s eps must be positive, not %g", eps);
        return 0;
    }
    if (!(mom >= 0 && mom <= 1)) {
        diag_error(s->d, A->pos[2]->loc, "batch_norm()'s momentum must be in [0, 1], not %g", mom);
        return 0;
    }
    if (!x)
        return 0;
    Shape p = pe(SH(x));
    if (!ISB(x)) {
        diag_error(s->d, A->pos[0]->loc, "batch_norm() normalizes over the batch: its argument must "
                   "depend on an input");
        return 0;
    }
    if (p.rank == 0) {
        diag_error(s->d, A->pos[0]->loc, "batch_norm() needs features [F] or channels [C, ...] per example, "
                   "not a scalar");
        return 0;
    }
    if (SH(x).dim[0] != DIM_B) {
        diag_error(s->d, A->pos[0]->loc, "batch_norm() needs the batch as its argument's first axis");
        return 0;
    }
    size_t off = s->m->state_count;
    s->m->state_count += 2 * (size_t)p.dim[0];
    return g_batch_norm(s->g, x, eps, mom, off, ++s->batchnorms, e->loc);
}


/* Whether node r depends on a target (and so cannot be computed by
 * predict). Nodes are in topological order, so one pass over the nodes
 * created since the last question classifies them all: a model's bindings
 * cost linear time together, not a walk of the graph each. */
static int needs_target(Sema *s, Ref r)
{
    Graph *g = s->g;
    if (!r)
        return 0;
    if (s->ntdep < g->n) {
        s->tdep = arena_grow(s->a, s->tdep, 1, &s->tdcap, g->n);
        for (Ref k = s->ntdep ? s->ntdep : 1; k < g->n; k++) {
            Node *x = N(g, k);
            unsigned char t = x->op == OP_TARGET;
            for (int i = 0; i < op_nin[x->op] && !t; i++)
                t = s->tdep[x->in[i]];
            s->tdep[k] = t;
        }
        s->ntdep = g->n;
    }
    return s->tdep[r];
}

/* an element-wise op of the table: its tensors, then its constants */
static Ref b_elemwise(Sema *s, Expr *e, const Builtin *b, Args *A)
{
    Ref t[2] = {0, 0};
    double c[2] = {0, 0};
    int nt = 0, nc = 0, ok = 1;
    for (int i = 0; b->names[i]; i++) {
        if (b->consts & (1u << i)) {
            ok &= const_arg(s, b, A, i, &c[nc < 2 ? nc : 1]);
            nc++;
        } else {
            t[nt < 2 ? nt : 1] = ev(s, A->pos[i]);
            ok &= t[nt < 2 ? nt : 1] != 0;
            nt++;
        }
    }
    if (!ok)
        return 0;
    if (nt == 1) {
        Ref in[1] = {t[0]};
        return node_make2(s->g, b->op, SH(t[0]), in, c[0], c[1], NULL, e->loc);
    }
    Ref r = elemwise(s, b->op, t[0], t[1], c[0], e->loc, arena_printf(s->a, "%s()", b->name));
    if (r && c[1] != 0)
        N(s->g, r)->f2 = c[1];
    return r;
}

/* axis=, keepdims=: reductions over any axes, softmax over any one */

/* keepdims = true | false (or 1 | 0) */
static int bool_arg(Sema *s, Expr *e, int *out)
{
    double v;
    if (e->kind == E_NAME && (!strcmp(e->name, "true") || !strcmp(e->name, "false"))) {
        *out = !strcmp(e->name, "true");
        return 1;
    }
    if (const_eval(s, e, &v, 1) && (v == 0 || v == 1)) {
        *out = v == 1;
        return 1;
    }
    diag_error(s->d, e->loc, "expected true or false");
    return 0;
}

/* The per-example axes of axis = k or [k1, k2, ...] (negative from the
 * end) as a mask of per-example axes; 0 after an error. */
static unsigned axes_arg(Sema *s, Expr *axis, int rank)
{
    unsigned mask = 0;
    if (rank == 0) {
        diag_error(s->d, axis->loc, "a scalar has no axis to reduce");
        return 0;
    }
    Expr *one = axis->kind == E_LIST ? axis->args : axis;
    if (axis->kind == E_LIST && !one) {
        diag_error(s->d, axis->loc, "an empty list of axes");
        return 0;
    }
    for (Expr *k = one; k; k = axis->kind == E_LIST ? k->next : NULL) {
        long ax;
        if (!const_int(s, k, -rank, rank - 1, &ax, "axis"))
            return 0;
        if (ax < 0)
            ax += rank;
        if (mask & (1u << ax)) {
            diag_error(s->d, k->loc, "axis %ld is named twice", ax);
            return 0;
        }
        mask |= 1u << ax;
    }
    return mask;
}

/* sum, mean, max, min (x, axis = k or [k1, k2], keepdims = false): over
 * the per-example axes given, by default all of them; the batch axis is
 * never reduced (the objective's mean over the batch does that) */
static Ref b_reduce(Sema *s, Expr *e, const Builtin *b, Args *A)
{
    Ref x = ev(s, A->pos[0]);
    int keep = 0;
    if (A->pos[2] && !bool_arg(s, A->pos[2], &keep))
        return 0;
    if (!x)
        return 0;
    Shape p = pe(SH(x));
    int off = ISB(x);
    unsigned pm = (1u << p.rank) - 1;
    if (A->pos[1] && !(pm = axes_arg(s, A->pos[1], p.rank)))
        return 0;
    int ismin = !strcmp(b->name, "min");
    Op op = !strcmp(b->name, "max") || ismin ? OP_MAX : OP_SUM;
    long count = 1;
    for (int i = 0; i < p.rank; i++)
        if (pm & (1u << i))
            count *= p.dim[i];
    if (!pm)
        return x; /* a scalar: itself */
    Graph *g = s->g;
    if (ismin) /* min(x) = -max(-x): ties split evenly as max's */
        x = g_unary(g, OP_NEG, x, e->loc);
    Ref r = g_reduce(g, op, x, pm << off, keep, e->loc);
    if (ismin)
        r = g_unary(g, OP_NEG, r, e->loc);
    if (!strcmp(b->name, "mean") && count != 1)
        r = g_binary(g, OP_MUL, r, g_const(g, 1.0 / (double)count, e->loc), e->loc);
    return r;
}

/* softmax(x, axis = -1), log_softmax(x, axis = -1): over one axis. Over an
 * axis k before the last, x is seen as [outer, n, inner] (n the length of
 * axis k), transposed to [outer, inner, n], taken over its last axis and
 * transposed back: the row-wise kernels and rules serve every axis. */
static Ref b_softmax(Sema *s, Expr *e, const Builtin *b, Args *A)
{
    Ref x = ev(s, A->pos[0]);
    if (!x)
        return 0;
    Op op = strcmp(b->name, "softmax") ? OP_LOG_SOFTMAX : OP_SOFTMAX;
    Shape p = pe(SH(x));
    if (p.rank == 0) {
        diag_error(s->d, A->pos[0]->loc, "%s() needs a vector, not a scalar", b->name);
        return 0;
    }
    long ax = p.rank - 1;
    if (A->pos[1] && !const_int(s, A->pos[1], -p.rank, p.rank - 1, &ax, "axis"))
        return 0;
    if (ax < 0)
        ax += p.rank;
    if (ax == p.rank - 1)
        return g_unary(s->g, op, x, e->loc);
    Graph *g = s->g;
    int outer = 1, inner = 1;
    for (int i = 0; i < ax; i++)
        outer *= p.dim[i];
    for (int i = (int)ax + 1; i < p.rank; i++)
        inner *= p.dim[i];
    Shape v = shape3(outer, p.dim[ax], inner);
    Ref t = g_transpose(g, g_reshape(g, x, batched(v, ISB(x)), e->loc), e->loc);
    Ref y = g_transpose(g, g_unary(g, op, t, e->loc), e->loc);
    return g_reshape(g, y, SH(x), e->loc);
}

static Ref b_transpose(Sema *s, Expr *e, const Builtin *b, Args *A)
{
    (void)b;
    Ref x = ev(s, A->pos[0]);
    if (!x)
        return 0;
    if (A->pos[1]) /* tokens and sequences */
        return transpose_perm(s, e, x, A->pos[1]);
    if (pe(SH(x)).rank != 2) {
        if (pe(SH(x)).rank < 2)
            return x; /* as NumPy: the transpose of a vector is itself */
        diag_error(s->d, e->loc, "transpose() needs a matrix, not %s", pstr(s, SH(x)));
        return 0;
    }
    return g_transpose(s->g, x, e->loc);
}

static Ref b_reshape(Sema *s, Expr *e, const Builtin *b, Args *A)
{
    (void)b;
    Ref x = ev(s, A->pos[0]);
    if (!x)
        return 0;
    if (A->pos[1]->kind != E_LIST) {
        diag_error(s->d, A->pos[1]->loc, "reshape() needs a shape such as [4, 4]");
        return 0;
    }
    Shape t;
    if (!eval_shape(s, A->pos[1], &t))
        return 0;
    if (shape_numel_static(t) != shape_numel_static(pe(SH(x)))) {
        diag_error(s->d, A->pos[1]->loc, "cannot reshape %s (%d elements) to %s", pstr(s, SH(x)),
                   shape_numel_static(pe(SH(x))), pstr(s, t));
        return 0;
    }
    return g_reshape(s->g, x, batched(t, ISB(x)), e->loc);
}

static Ref b_flatten(Sema *s, Expr *e, const Builtin *b, Args *A)
{
    (void)b;
    Ref x = ev(s, A->pos[0]);
    if (!x)
        return 0;
    return g_reshape(s->g, x, batched(shape1(shape_numel_static(pe(SH(x)))), ISB(x)), e->loc);
}

static Ref b_concat(Sema *s, Expr *e, const Builtin *b, Args *A)
{
    (void)b;
    Graph *g = s->g;
    Ref x = ev(s, A->pos[0]), y = ev(s, A->pos[1]);
    if (!x || !y)
        return 0;
    Shape pa = pe(SH(x)), pb = pe(SH(y));
    long ax = 0;
    if (pa.rank != pb.rank || pa.rank == 0) {
        diag_error(s->d, e->loc, "concat() needs tensors of the same rank, not %s and %s",
                   pstr(s, SH(x)), pstr(s, SH(y)));
        return 0;
    }
    if (A->pos[2] && !const_int(s, A->pos[2], -pa.rank, pa.rank - 1, &ax, "axis"))
        return 0;
    if (ax < 0)
        ax += pa.rank;
    for (int i = 0; i < pa.rank; i++)
        if (i != ax && pa.dim[i] != pb.dim[i]) {
            diag_error(s->d, e->loc, "concat() of %s and %s along axis %ld: other axes differ",
                       pstr(s, SH(x)), pstr(s, SH(y)), ax);
            return 0;
        }
    int bt = ISB(x) || ISB(y);
    x = g_expand(g, x, batched(pa, bt), e->loc);
    y = g_expand(g, y, batched(pb, bt), e->loc);
    Shape o = batched(pa, bt);
    o.dim[ax + bt] += pb.dim[ax];
    if (!size_ok(s, pe(o), e->loc))
        return 0;
    int ia[4] = {(int)ax + bt, 0, 0, 0};
    Ref in[2] = {x, y};
    return node_make(g, OP_CONCAT, o, in, 0, ia, e->loc);
}

/* onehot(label) of a class target */
static Ref b_onehot(Sema *s, Expr *e, const Builtin *b, Args *A)
{
    (void)b;
    Expr *l = A->pos[0];
    Sym *y = l->kind == E_NAME ? lookup(s, l->name) : NULL;
    if (!y || y->kind != SYM_TARGET || !y->nclasses) {
        diag_error(s->d, l->loc, "onehot() needs a class target declared 'target NAME: class(n)'");
        return 0;
    }
    y->used = 1;
    int ia[4] = {y->nclasses, 0, 0, 0};
    Ref in[1] = {y->ref};
    Shape os = batched(y->shape, 1); /* tokens and sequences: one vector per position */
    os.dim[os.rank++] = y->nclasses;
    return node_make(s->g, OP_ONEHOT, os, in, 0, ia, e->loc);
}

/* mse, l1, huber, bce, bce_logits: the mean over elements of a term of
 * the prediction and the target */
static Ref b_loss(Sema *s, Expr *e, const Builtin *b, Args *A)
{
    const char *f = b->name;
    Graph *g = s->g;
    Ref a = ev(s, A->pos[0]), y = ev(s, A->pos[1]);
    /* the prediction and the target compare element by element: their
     * shapes match (a scalar and [1] do), else broadcasting would compare
     * every element with every other, the mistake PyTorch warns about;
     * only a constant stands for a whole target (mse(z, 0)) */
    if (a && y && !node_is_const(g, a, NULL) && !node_is_const(g, y, NULL)) {
        Shape pa = pe(SH(a)), py = pe(SH(y)), o;
        int n = shape_numel_static(pa);
        if (n != shape_numel_static(py) || !shape_broadcast(pa, py, &o) || shape_numel_static(o) != n) {
            diag_error(s->d, e->loc, "%s() of a prediction of shape %s against a target of shape %s; "
                       "the shapes must match", f, pstr(s, SH(a)), pstr(s, SH(y)));
            return 0;
        }
    }
    if (!strcmp(f, "mse") || !strcmp(f, "l1")) {
        Ref d = elemwise(s, OP_SUB, a, y, 0, e->loc, f);
        if (!d)
            return 0;
        if (!s->loss_pred)
            s->loss_pred = a;
        return loss_mean(s, g_unary(g, strcmp(f, "mse") ? OP_ABS : OP_SQUARE, d, e->loc), e->loc);
    }
    if (!strcmp(f, "huber")) {
        double delta;
        if (!const_arg(s, b, A, 2, &delta))
            return 0;
        if (delta <= 0) {
            diag_error(s->d, A->pos[2]->loc, "huber()'s delta must be positive");
            return 0;
        }
        Ref d = elemwise(s, OP_SUB, a, y, 0, e->loc, f);
        if (d && !s->loss_pred)
            s->loss_pred = a;
        return d ? loss_mean(s, g_unary_f(g, OP_HUBER, d, delta, e->loc), e->loc) : 0;
    }
    /* bce (of probabilities), bce_logits */
    int logits = !strcmp(f, "bce_logits");
    if (a && !s->loss_pred)
        s->loss_pred = a;
    if (a && y && !s->m->binary) {
        s->m->binary = 1;
        s->m->threshold = logits ? 0.0 : 0.5;
        s->m->binary_of = a;
    }
    return loss_mean(s, elemwise(s, logits ? OP_BCE_LOGITS : OP_BCE, a, y, 0, e->loc, f), e->loc);
}

/* cross_entropy(z, label) against a class target, or against probabilities */
static Ref b_cross_entropy(Sema *s, Expr *e, const Builtin *b, Args *A)
{
    (void)b;
    Graph *g = s->g;
    Ref z = ev(s, A->pos[0]);
    if (z && !s->loss_pred)
        s->loss_pred = z;
    Expr *l = A->pos[1];
    Sym *y = l->kind == E_NAME ? lookup(s, l->name) : NULL;
    if (y && y->kind == SYM_TARGET && y->nclasses) {
        y->used = 1;
        if (!z)
            return 0;
        Shape pz = pe(SH(z));
        if (y->shape.rank) { /* tokens and sequences: a class per position */
            Shape want = y->shape;
            want.dim[want.rank++] = y->nclasses;
            if (!shape_eq(pz, want)) {
                diag_error(s->d, A->pos[0]->loc,
                           "cross_entropy() against '%s' (class(%d)%s) needs logits of shape %s, not %s",
                           y->name, y->nclasses, pstr(s, y->shape), pstr(s, want), pstr(s, SH(z)));
                return 0;
            }
            z = g_expand(g, z, batched(pz, 1), e->loc);
            Ref in[2] = {z, y->ref};
            Ref ce = node_make(g, OP_CE, batched(y->shape, 1), in, 0, NULL, e->loc);
            return reduce(s, OP_SUM, ce, NULL, 1, e->loc); /* the mean over positions */
        }
        if (pz.rank != 1 || pz.dim[0] != y->nclasses) {
            diag_error(s->d, A->pos[0]->loc,
                       "cross_entropy() against '%s' (class(%d)) needs logits of shape [%d], "
                       "not %s",
                       y->name, y->nclasses, y->nclasses, pstr(s, SH(z)));
            return 0;
        }
        z = g_expand(g, z, batched(pz, 1), e->loc);
        Ref in[2] = {z, y->ref};
        return node_make(g, OP_CE, shape1(DIM_B), in, 0, NULL, e->loc);
    }
    /* soft targets: -sum(y * log_softmax(z)) */
    Ref t = ev(s, l);
    if (!z || !t)
        return 0;
    if (!shape_eq(pe(SH(z)), pe(SH(t))) || pe(SH(z)).rank != 1) {
        diag_error(s->d, e->loc,
                   "cross_entropy() needs a class target, or probabilities of the logits' "
                   "shape %s, not %s",
                   pstr(s, SH(z)), pstr(s, SH(t)));
        return 0;
    }
    Ref ls = g_unary(g, OP_LOG_SOFTMAX, z, e->loc);
    Ref prod = elemwise(s, OP_MUL, t, ls, 0, e->loc, "cross_entropy()");
    return g_unary(g, OP_NEG, reduce(s, OP_SUM, prod, NULL, 0, e->loc), e->loc);
}

/* ------------------------------------------- tokens and sequences */

/* Whether node r holds integer ids: an int input, or a view or reshape of
 * one (the index of a gather). */
static int int_valued(Sema *s, Ref r)
{
    Node *x = N(s->g, r);
    if (x->op == OP_INPUT)
        return s->m->inputs[x->ia[0]]->vocab > 0;
    if (x->op == OP_VIEW || x->op == OP_RESHAPE)
        return int_valued(s, x->in[0]);
    return 0;
}

/* E[ids]: row ids[..] of E, result ids.shape + E.shape[1:] */
static Ref gather(Sema *s, Expr *e, Ref t, Expr *ie)
{
    int was = s->want_ids;
    s->want_ids = 1;
    Ref ids = ev(s, ie);
    s->want_ids = was;
    if (!t || !ids)
        return 0;
    if (!int_valued(s, ids)) {
        diag_error(s->d, ie->loc, "the index of a gather must be integer ids (an input declared "
                                  "int(V)), not a real value of shape %s; constant indices and "
                                  "slices are written x[2], x[1:3]", pstr(s, SH(ids)));
        return 0;
    }
    if (ISB(t)) {
        diag_error(s->d, e->lhs->loc, "the table of a gather must be the same for every example "
                                      "(a param or a value of params), not %s", pstr(s, SH(t)));
        return 0;
    }
    Shape st = SH(t), pi = pe(SH(ids));
    if (st.rank < 1) {
        diag_error(s->d, e->lhs->loc, "the table of a gather needs rows, not a scalar");
        return 0;
    }
    Shape o = pi;
    for (int i = 1; i < st.rank; i++) {
        if (o.rank >= MAX_PE_RANK) {
            diag_error(s->d, e->loc, "the gather's result would have more than %d axes per example",
                       MAX_PE_RANK);
            return 0;
        }
        o.dim[o.rank++] = st.dim[i];
    }
    if (!size_ok(s, o, e->loc))
        return 0;
    Ref in[2] = {t, ids};
    return node_make(s->g, OP_GATHER, batched(o, ISB(ids)), in, 0, NULL, e->loc);
}

/* contiguous strides of a full shape; the batch axis's is a whole example */
static void strides_of(Shape sh, long *st)
{
    long k = 1;
    for (int i = sh.rank - 1; i >= 0; i--) {
        st[i] = k;
        k *= sh.dim[i] == DIM_B ? 1 : sh.dim[i];
    }
}

/* x[i], x[a:b], x[:, a:b:c], x[..., i]: constant subscripts, NumPy rules
 * (negative from the end, a slice's ends clamped), one strided view */
static Ref subscript(Sema *s, Expr *e, Ref x)
{
    Shape p = pe(SH(x)), full = SH(x);
    int off = ISB(x), nsub = 0, ell = 0;
    for (Expr *a = e->args; a; a = a->next) {
        if (a->kind == E_ELLIPSIS) {
            if (ell++) {
                diag_error(s->d, a->loc, "a subscript may hold one '...'");
                return 0;
            }
        } else {
            nsub++;
        }
    }
    if (nsub > p.rank) {
        diag_error(s->d, e->loc, "%d subscripts for %s, which has %d axes (per example)", nsub,
                   pstr(s, SH(x)), p.rank);
        return 0;
    }
    long st[MAXRANK], ost[MAXRANK], offset = 0;
    strides_of(full, st);
    Shape o;
    o.rank = 0;
    if (off) {
        o.dim[o.rank] = DIM_B;
        ost[o.rank++] = st[0];
    }
    int ax = 0, ok = 1;
    for (Expr *a = e->args; a; a = a->next) {
        if (a->kind == E_ELLIPSIS) {
            for (int k = 0; k < p.rank - nsub; k++, ax++) {
                o.dim[o.rank] = p.dim[ax];
                ost[o.rank++] = st[ax + off];
            }
            continue;
        }
        long d = p.dim[ax];
        if (a->kind != E_SLICE) {
            long i;
            if (!const_int(s, a, -d, d - 1, &i, arena_printf(s->a, "the index of axis %d (of size %ld)", ax, d))) {
                ok = 0;
            } else {
                offset += (i < 0 ? i + d : i) * st[ax + off];
            }
            ax++;
            continue;
        }
        long lo = 0, hi = d, step = 1;
        if (a->args && !const_int(s, a->args, 1, MAX_DIM, &step, "the step of a slice"))
            ok = 0;
        if (a->lhs && !const_int(s, a->lhs, -d, d, &lo, arena_printf(s->a, "the start of a slice of axis %d (of size %ld)", ax, d)))
            ok = 0;
        if (a->rhs && !const_int(s, a->rhs, -d, d, &hi, arena_printf(s->a, "the end of a slice of axis %d (of size %ld)", ax, d)))
            ok = 0;
        if (lo < 0)
            lo += d;
        if (hi < 0)
            hi += d;
        if (ok && hi <= lo) {
            diag_error(s->d, a->loc, "the slice %ld:%ld of axis %d (of size %ld) is empty", lo, hi, ax, d);
            ok = 0;
        }
        if (ok) {
            o.dim[o.rank] = (int)((hi - lo + step - 1) / step);
            ost[o.rank++] = st[ax + off] * step;
            offset += lo * st[ax + off];
        }
        ax++;
    }
    if (!ok)
        return 0;
    for (; ax < p.rank; ax++) { /* axes not named are whole */
        o.dim[o.rank] = p.dim[ax];
        ost[o.rank++] = st[ax + off];
    }
    if (shape_eq(o, full) && offset == 0)
        return x;
    return g_view(s->g, x, o, offset, ost, e->loc);
}

/* x[...]: a gather when the one subscript is not constant, else constant
 * indexing and slicing */
static Ref index_expr(Sema *s, Expr *e)
{
    double v;
    if (e->nargs == 1 && e->args->kind != E_SLICE && e->args->kind != E_ELLIPSIS &&
        !const_eval(s, e->args, &v, 1))
        return gather(s, e, ev(s, e->lhs), e->args);
    Ref x = ev(s, e->lhs);
    if (!x) {
        mark_used(s, e->args);
        return 0;
    }
    return subscript(s, e, x);
}

/* transpose(x, [perm]): any permutation of the per-example axes */
static Ref transpose_perm(Sema *s, Expr *e, Ref x, Expr *perm)
{
    Shape p = pe(SH(x)), full = SH(x);
    int off = ISB(x);
    if (perm->kind != E_LIST || perm->nargs != p.rank) {
        diag_error(s->d, perm->loc, "transpose() needs a permutation of the %d axes of %s, as "
                                    "in [1, 0%s]", p.rank, pstr(s, SH(x)), p.rank > 2 ? ", 2" : "");
        return 0;
    }
    int seen[MAXRANK] = {0}, ax[MAXRANK];
    int k = 0;
    for (Expr *a = perm->args; a; a = a->next, k++) {
        long v;
        if (!const_int(s, a, -p.rank, p.rank - 1, &v, "an axis of the permutation"))
            return 0;
        if (v < 0)
            v += p.rank;
        if (seen[v]++) {
            diag_error(s->d, a->loc, "axis %ld appears twice in the permutation: it must name "
                                     "each of the %d axes once", v, p.rank);
            return 0;
        }
        ax[k] = (int)v;
    }
    long st[MAXRANK], ost[MAXRANK];
    strides_of(full, st);
    Shape o;
    o.rank = 0;
    if (off) {
        o.dim[o.rank] = DIM_B;
        ost[o.rank++] = st[0];
    }
    int ident = 1;
    for (int i = 0; i < p.rank; i++) {
        ident &= ax[i] == i;
        o.dim[o.rank] = p.dim[ax[i]];
        ost[o.rank++] = st[ax[i] + off];
    }
    return ident ? x : g_view(s->g, x, o, 0, ost, e->loc);
}

/* causal(s): above the diagonal of the last two axes, -infinity */
static Ref b_causal(Sema *s, Expr *e, const Builtin *b, Args *A)
{
    (void)b;
    Ref x = ev(s, A->pos[0]);
    if (!x)
        return 0;
    Shape p = pe(SH(x));
    if (p.rank < 2 || p.dim[p.rank - 1] != p.dim[p.rank - 2]) {
        diag_error(s->d, A->pos[0]->loc, "causal() needs square matrices in its last two axes "
                                         "([.., T, T]), not %s", pstr(s, SH(x)));
        return 0;
    }
    Ref in[1] = {x};
    return node_make(s->g, OP_CAUSAL, SH(x), in, 0, NULL, e->loc);
}

/* A @ B with an operand of rank 3 or more per example: matrix products
 * over the leading axes, which broadcast */
static Ref batched_matmul(Sema *s, Ref a, Ref b, Loc loc)
{
    Graph *g = s->g;
    Shape pa = pe(SH(a)), pb = pe(SH(b));
    int va = pa.rank == 1, vb = pb.rank == 1;
    int ka = pa.dim[pa.rank - 1], kb = vb ? pb.dim[0] : pb.dim[pb.rank - 2];
    if (ka != kb) {
        diag_error(s->d, loc, "inner dimensions do not match in %s @ %s (%d and %d)", pstr(s, SH(a)),
                   pstr(s, SH(b)), ka, kb);
        return 0;
    }
    if (va) /* a vector on the left is a row, on the right a column */
        pa = shape2(1, ka);
    if (vb)
        pb = shape2(kb, 1);
    Shape lead, la = pa, lb = pb;
    la.rank -= 2;
    lb.rank -= 2;
    if (!shape_broadcast(la, lb, &lead)) {
        diag_error(s->d, loc, "the leading axes of %s @ %s do not broadcast", pstr(s, SH(a)),
                   pstr(s, SH(b)));
        return 0;
    }
    Shape po = lead;
    if (!va)
        po.dim[po.rank++] = pa.dim[pa.rank - 2];
    if (!vb)
        po.dim[po.rank++] = pb.dim[pb.rank - 1];
    if (!size_ok(s, po, loc))
        return 0;
    int r = pa.rank > pb.rank ? pa.rank : pb.rank;
    Ref A = g_reshape(g, a, batched(pa, ISB(a)), loc), Bm = g_reshape(g, b, batched(pb, ISB(b)), loc);
    A = align(s, A, r, loc);
    Bm = align(s, Bm, r, loc);
    Ref out = g_matmul(g, A, Bm, 0, 0, loc);
    return g_reshape(g, out, batched(po, ISB(a) || ISB(b)), loc);
}

/* A call of a built-in function, through the table. */
static Ref call_block(Sema *s, Expr *e, int *found);
static void binding_flags(Sema *s, Stmt *st, int np0);

static Ref call(Sema *s, Expr *e)
{
    int is_block = 0;
    Ref br = call_block(s, e, &is_block);
    if (is_block)
        return br;
    const Builtin *b = find_builtin(e->name);
    if (!b) {
        diag_error(s->d, e->name_loc, "unknown function '%s'", e->name);
        mark_used(s, e->args);
        return 0;
    }
    Args A = get_args(s, e, b->min, b->names);
    if (!A.ok) {
        mark_used(s, e->args);
        return 0;
    }
    return b->fn(s, e, b, &A);
}

/* Whether a declaration or binding of name failed to parse (its syntax
 * error is reported; its uses are not errors of their own). */
static int broken_name(Sema *s, const char *name)
{
    for (Stmt *st = s->ast->broken; st; st = st->next)
        if (strcmp(st->name, name) == 0)
            return 1;
    return 0;
}

static void name_error(Sema *s, Expr *e, const char *name)
{
    if (broken_name(s, name))
        return;
    /* bound later in the file? */
    for (Stmt *st = s->ast->first; st; st = st->next)
        if (st->name && strcmp(st->name, name) == 0 && st->kind != S_MODEL &&
            st->kind != S_PRECISION && st->kind != S_TRAIN_ITEM) {
            diag_error(s->d, e->loc, "'%s' is used before it is bound (at line %d)", name,
                       st->name_loc.first_line);
            return;
        }
    if (find_builtin(name))
        diag_error(s->d, e->loc, "'%s' is a function; call it as %s(...)", name, name);
    else
        diag_error(s->d, e->loc, "unknown name '%s'", name);
}

static Ref ev(Sema *s, Expr *e)
{
    Graph *g = s->g;
    switch (e->kind) {
    case E_NUM:
        if (!isfinite(e->num)) {
            diag_error(s->d, e->loc, "number '%s' is out of range", e->text);
            return 0;
        }
        return g_const(g, e->num, e->loc);
    case E_NAME: {
        Sym *y = lookup_scoped(s, e->name);
        if (!y) {
            name_error(s, e, e->name);
            return 0;
        }
        y->used = 1;
        if (y->kind == SYM_CONST)
            return g_const(g, y->value, e->loc);
        if (y->kind == SYM_INPUT && y->vocab && !s->want_ids) { /* tokens and sequences */
            diag_error(s->d, e->loc, "'%s' holds integer ids (int(%d)), not real values: use it "
                                     "to index a table, as in E[%s]", y->name, y->vocab, y->name);
            return 0;
        }
        return y->ref;
    }
    case E_UNARY: {
        Ref x = ev(s, e->lhs);
        return x ? g_unary(g, OP_NEG, x, e->loc) : 0;
    }
    case E_BINARY: {
        if (e->op == '^') {
            Ref x = ev(s, e->lhs);
            double c;
            if (!const_eval(s, e->rhs, &c, 1)) {
                diag_error(s->d, e->rhs->loc, "the exponent of '^' must be a constant number");
                return 0;
            }
            if (!x)
                return 0;
            if (c == 2)
                return g_unary(g, OP_SQUARE, x, e->loc);
            if (c == 1)
                return x;
            return g_unary_f(g, OP_POWC, x, c, e->loc);
        }
        Ref a = ev(s, e->lhs), b = ev(s, e->rhs);
        switch (e->op) {
        case '+': return elemwise(s, OP_ADD, a, b, 0, e->loc, "'+'");
        case '-': return elemwise(s, OP_SUB, a, b, 0, e->loc, "'-'");
        case '*': return elemwise(s, OP_MUL, a, b, 0, e->loc, "'*'");
        case '/': return elemwise(s, OP_DIV, a, b, 0, e->loc, "'/'");
        case '@': return matmul(s, a, b, e->loc);
        default: unreachable();
        }
    }
    case E_CALL:
        return call(s, e);
    case E_FIELD: {
        if (strcmp(e->name, "T") == 0) {
            Ref x = ev(s, e->lhs);
            if (!x)
                return 0;
            int r = pe(SH(x)).rank;
            if (r < 2)
                return x;
            if (r > 2) {
                diag_error(s->d, e->loc, "'.T' needs a matrix, not %s", pstr(s, SH(x)));
                return 0;
            }
            return g_transpose(g, x, e->loc);
        }
        if (e->lhs->kind == E_NAME) {
            const char *full = arena_printf(s->a, "%s.%s", e->lhs->name, e->name);
            Sym *y = lookup_scoped(s, full);
            if (y) {
                y->used = 1;
                return y->ref;
            }
            diag_error(s->d, e->loc, "unknown name '%s'", full);
            return 0;
        }
        diag_error(s->d, e->name_loc, "'.%s' is not a field; only '.T' and params of dense() such "
                                       "as 'h1.W' are",
                   e->name);
        return 0;
    }
    case E_LIST:
        diag_error(s->d, e->loc, "a list is only a shape, as in reshape(x, [4, 4])");
        return 0;
    case E_KWARG:
        diag_error(s->d, e->loc, "keyword argument outside a call");
        return 0;
    /* tokens and sequences */
    case E_INDEX:
        return index_expr(s, e);
    case E_SLICE: case E_ELLIPSIS:
        diag_error(s->d, e->loc, "a slice is only a subscript, as in x[1:3]");
        return 0;
    }
    return 0;
}

/* ---------------------------------------------------- declarations */

static unsigned param_flags(Sema *s, Stmt *st);

static void declare(Sema *s, Stmt *st)
{
    Model *m = s->m;
    Shape sh;
    unsigned pflags = param_flags(s, st);
    if (st->kind == S_CONST) {
        double v;
        if (!const_eval(s, st->value, &v, 0))
            return;
        Sym *y = bind(s, SYM_CONST, st->name, st->name_loc);
        if (y)
            y->value = v;
        return;
    }
    if (st->kind == S_TARGET && st->value) {
        /* target NAME: class(n) */
        Expr *c = st->value;
        long n = 0;
        if (c->kind != E_CALL || strcmp(c->name, "class") != 0 || c->nargs != 1 ||
            c->args->kind == E_KWARG) {
            diag_error(s->d, c->loc, "expected class(n) after ':'");
            return;
        }
        if (!const_int(s, c->args, 2, MAX_DIM, &n, "the number of classes"))
            return;
        /* tokens and sequences: target next: class(V)[T], a class per element */
        Shape cs = shape0();
        if (!eval_shape(s, st->shape, &cs))
            return;
        Sym *y = bind(s, SYM_TARGET, st->name, st->name_loc);
        if (!y)
            return;
        y->nclasses = (int)n;
        y->shape = cs;
        goto target;
    }
    long vocab = 0; /* tokens and sequences: input tok: int(V)[T] */
    if (st->kind == S_INPUT && st->value) {
        Expr *c = st->value;
        if (c->kind != E_CALL || strcmp(c->name, "int") != 0 || c->nargs != 1 ||
            c->args->kind == E_KWARG) {
            diag_error(s->d, c->loc, "expected int(V) after ':' (integer ids in 0..V-1)");
            return;
        }
        if (!const_int(s, c->args, 1, MAX_DIM, &vocab, "the number of ids"))
            return;
    }
    if (!eval_shape(s, st->shape, &sh))
        return;
    if (st->kind == S_INPUT) {
        Sym *y = bind(s, SYM_INPUT, st->name, st->name_loc);
        if (!y)
            return;
        y->shape = sh;
        y->vocab = (int)vocab;
        y->index = m->ninputs;
        y->offset = m->input_size;
        m->input_size += (size_t)shape_numel_static(sh);
        m->inputs = arena_grow(s->a, m->inputs, sizeof(Sym *), &s->icap, m->ninputs + 1);
        m->inputs[m->ninputs++] = y;
        int ia[4] = {y->index, 0, 0, 0};
        y->ref = node_make(s->g, OP_INPUT, batched(sh, 1), NULL, 0, ia, y->loc);
        N(s->g, y->ref)->name = y->name;
        return;
    }
    if (st->kind == S_TARGET) {
        Sym *y = bind(s, SYM_TARGET, st->name, st->name_loc);
        if (!y)
            return;
        y->shape = sh;
    target:;
        Sym *t = lookup(s, st->name);
        t->index = m->ntargets;
        t->offset = m->target_size;
        m->target_size += (size_t)shape_numel_static(t->shape); /* a class per element */
        m->targets = arena_grow(s->a, m->targets, sizeof(Sym *), &s->tcap, m->ntargets + 1);
        m->targets[m->ntargets++] = t;
        int ia[4] = {t->index, 0, 0, 0};
        t->ref = node_make(s->g, OP_TARGET, batched(t->shape, 1), NULL, 0, ia, t->loc);
        N(s->g, t->ref)->name = t->name;
        return;
    }
    /* S_PARAM */
    Sym *y = bind(s, SYM_PARAM, st->name, st->name_loc);
    if (!y)
        return;
    y->shape = sh;
    y->init = INIT_ZEROS;
    Expr *in = st->value;
    if (in) {
        static const struct { const char *name; InitKind k; int nargs; } inits[] = {
            {"zeros", INIT_ZEROS, 0}, {"ones", INIT_ONES, 0}, {"xavier", INIT_XAVIER, 0},
            {"he", INIT_HE, 0}, {"const", INIT_CONST, 1}, {"normal", INIT_NORMAL, 2},
            {"uniform", INIT_UNIFORM, 2}};
        int found = 0;
        for (size_t i = 0; i < sizeof inits / sizeof inits[0]; i++) {
            if (strcmp(inits[i].name, in->name) != 0)
                continue;
            found = 1;
            y->init = inits[i].k;
            int given = in->kind == E_CALL ? in->nargs : -1;
            if (inits[i].nargs == 0 && given > 0) {
                diag_error(s->d, in->loc, "init %s takes no arguments", in->name);
            } else if (inits[i].nargs > 0 && given != inits[i].nargs) {
                diag_error(s->d, in->loc, "init %s needs %d argument%s: %s", in->name,
                           inits[i].nargs, inits[i].nargs > 1 ? "s" : "",
                           inits[i].k == INIT_CONST    ? "const(c)"
                           : inits[i].k == INIT_NORMAL ? "normal(mean, std)"
                                                       : "uniform(lo, hi)");
            } else if (inits[i].nargs > 0) {
                Expr *a1 = in->args, *a2 = a1->next;
                double v1 = 0, v2 = 0;
                if (const_eval(s, a1->kind == E_KWARG ? a1->lhs : a1, &v1, 0) &&
                    (!a2 || const_eval(s, a2->kind == E_KWARG ? a2->lhs : a2, &v2, 0))) {
                    y->init_a = v1;
                    y->init_b = v2;
                    if (y->init == INIT_NORMAL && v2 < 0)
                        diag_error(s->d, a2->loc, "the standard deviation must not be negative");
                    if (y->init == INIT_UNIFORM && v2 < v1)
                        diag_error(s->d, in->loc, "uniform(lo, hi) needs lo <= hi");
                }
            }
        }
        if (!found)
            diag_error(s->d, in->loc,
                       "unknown init '%s'; expected zeros, ones, const(c), normal(mean, std), "
                       "uniform(lo, hi), xavier or he",
                       in->name ? in->name : "?");
    }
    y->flags = pflags;
    add_param(s, y);
}

/* ---------------------------------------------------------- blocks */

/* def NAME(args) { param ..., const ..., NAME = EXPR, ... return EXPR }:
 * each call inlines the body. The call's names are bound as "CALL.NAME",
 * CALL being the binding the call stands in (h1 = block(h0) declares
 * h1.g1, ...; a call inside a block, m = inner(x), gives h1.m.W), so its
 * params are params like any other, with their own names in the parameter
 * file, and its bindings can be read as h1.qkv. A block sees the file's
 * names bound before the call and its own; it calls only blocks defined
 * before it, so it never recurses. Errors in a body are reported at the
 * first call that meets them (with a note at the call), once. */
typedef struct Block {
    Stmt *st;        /* the def */
    int has_params;  /* it declares params, itself or through what it calls */
    int broken;      /* a call of it had errors: later calls say nothing */
    int called;      /* called at least once */
} Block;

static Block *find_block(Sema *s, const char *name)
{
    for (int i = 0; i < s->nblocks; i++)
        if (!strcmp(s->blocks[i].st->name, name))
            return &s->blocks[i];
    return NULL;
}

/* The def of that name later in the file than st, or NULL. */
static Stmt *later_def(Sema *s, Stmt *st, const char *name)
{
    for (Stmt *t = st ? st->next : s->ast->first; t; t = t->next)
        if (t->kind == S_DEF && !strcmp(t->name, name))
            return t;
    return NULL;
}

/* Checks the calls of a def's body: recursion and later blocks are errors;
 * says whether the body declares params through a call. */
static int scan_calls(Sema *s, Stmt *def, Expr *e, int *ok)
{
    int params = 0;
    for (; e; e = e->next) {
        if (e->kind == E_CALL) {
            Block *b = find_block(s, e->name);
            Stmt *later;
            if (!strcmp(e->name, def->name)) {
                diag_error(s->d, e->name_loc, "block '%s' calls itself; blocks cannot recurse", def->name);
                *ok = 0;
            } else if (!b && (later = later_def(s, def, e->name))) {
                diag_error(s->d, e->name_loc,
                           "block '%s' calls '%s', which is defined later (at line %d); a block calls only "
                           "blocks defined before it, so blocks cannot recurse",
                           def->name, e->name, later->name_loc.first_line);
                *ok = 0;
            } else if (b) {
                params |= b->has_params;
            } else if (!strcmp(e->name, "dense") || !strcmp(e->name, "conv2d")) {
                params = 1;
            }
        }
        params |= scan_calls(s, def, e->lhs, ok) | scan_calls(s, def, e->rhs, ok) |
                  scan_calls(s, def, e->args, ok);
    }
    return params;
}

static void def_block(Sema *s, Stmt *st)
{
    int ok = 1, params = 0;
    if (find_builtin(st->name)) {
        diag_error(s->d, st->name_loc, "'%s' is a built-in function; name the block otherwise", st->name);
        return;
    }
    Block *old = find_block(s, st->name);
    if (old) {
        diag_error(s->d, st->name_loc, "block '%s' is defined twice", st->name);
        diag_note(s->d, old->st->name_loc, "first defined here");
        return;
    }
    for (Expr *a = st->shape->args; a; a = a->next)
        for (Expr *b = a->next; b; b = b->next)
            if (!strcmp(a->name, b->name)) {
                diag_error(s->d, b->loc, "argument '%s' of block '%s' is named twice", b->name, st->name);
                ok = 0;
            }
    for (Stmt *it = st->items; it; it = it->next) {
        if (it->kind != S_PARAM && it->kind != S_CONST && it->kind != S_LET) {
            diag_error(s->d, it->loc, "a def holds params, consts and bindings only");
            ok = 0;
            continue;
        }
        params |= it->kind == S_PARAM;
        params |= scan_calls(s, st, it->value, &ok);
    }
    params |= scan_calls(s, st, st->value, &ok);
    s->blocks = arena_grow(s->a, s->blocks, sizeof(Block), &s->bcap, s->nblocks + 1);
    Block *b = &s->blocks[s->nblocks++];
    memset(b, 0, sizeof *b);
    b->st = st;
    b->has_params = params;
    b->broken = !ok;
    b->called = !ok; /* said enough */
}

/* A call of a block, inlined; *found says whether e calls one. */
static Ref call_block(Sema *s, Expr *e, int *found)
{
    Block *bk = find_block(s, e->name);
    *found = 0;
    if (!bk) {
        Stmt *later = later_def(s, NULL, e->name); /* not yet defined */
        if (later && !find_builtin(e->name)) {
            diag_error(s->d, e->name_loc, "block '%s' is called before its def (at line %d)", e->name,
                       later->name_loc.first_line);
            mark_used(s, e->args);
            *found = 1;
        }
        return 0;
    }
    *found = 1;
    bk->called = 1;
    Stmt *def = bk->st;
    int nargs = 0, ok = 1;
    for (Expr *a = e->args; a; a = a->next)
        if (a->kind == E_KWARG) {
            diag_error(s->d, a->loc, "block '%s' takes its arguments by position", e->name);
            ok = 0;
        } else {
            nargs++;
        }
    int want = def->shape->nargs;
    if (ok && nargs != want) {
        diag_error(s->d, e->loc, "block '%s' takes %d argument%s, not %d", e->name, want, want == 1 ? "" : "s",
                   nargs);
        diag_note(s->d, def->name_loc, "'%s' is defined here", e->name);
        ok = 0;
    }
    if (!ok || bk->broken) {
        mark_used(s, e->args);
        return 0;
    }
    /* the call's prefix: its binding, the first call of a binding */
    Stmt *st = s->cur;
    const char *prefix;
    if (st && st->kind == S_LET && s->blockcalls == 0) {
        prefix = st->name;
    } else if (bk->has_params) {
        diag_error(s->d, e->loc,
                   st && st->kind == S_LET
                       ? "a binding holds at most one call of a block that declares params; bind this one to a name of its own"
                       : "block '%s' declares params named after its binding; write 'NAME = %s(...)'",
                   e->name, e->name);
        mark_used(s, e->args);
        return 0;
    } else {
        do /* a name of its own, never one the file binds */
            prefix = arena_printf(s->a, "%s_%d", st && st->kind == S_LET ? st->name : e->name, ++s->ncalls);
        while (lookup(s, prefix));
    }
    s->blockcalls++;
    if (lookup(s, prefix)) { /* bound twice: the binding says so */
        mark_used(s, e->args);
        return 0;
    }
    if (s->depth >= 64) {
        diag_error(s->d, e->loc, "blocks call each other more than 64 deep");
        return 0;
    }
    Ref av[MAXARGS * 4];
    int k = 0;
    for (Expr *a = e->args; a && k < MAXARGS * 4; a = a->next) {
        av[k] = ev(s, a);
        if (!av[k])
            ok = 0;
        k++;
    }
    if (!ok || k < nargs) {
        if (k < nargs)
            diag_error(s->d, e->loc, "too many arguments to block '%s'", e->name);
        return 0;
    }
    int errors0 = s->d->errors;
    const char *scope0 = s->scope;
    Stmt *cur0 = s->cur;
    int sugar0 = s->sugar, calls0 = s->blockcalls;
    s->scope = prefix;
    s->depth++;
    k = 0;
    for (Expr *a = def->shape->args; a; a = a->next, k++) {
        Sym *y = bind(s, SYM_LET, arena_printf(s->a, "%s.%s", prefix, a->name), a->loc);
        if (y) {
            y->ref = av[k];
            y->shape = SH(av[k]);
            y->used = 1;
        }
    }
    for (Stmt *it = def->items; it; it = it->next) {
        Stmt *c = arena_alloc(s->a, sizeof(Stmt));
        *c = *it;
        c->name = arena_printf(s->a, "%s.%s", prefix, it->name);
        c->next = NULL;
        s->cur = c;
        s->sugar = 0;
        s->blockcalls = 0;
        if (it->kind == S_LET) {
            int np0 = s->m->nparams;
            Ref r = ev(s, it->value);
            binding_flags(s, c, np0);
            Sym *y = bind(s, SYM_LET, c->name, c->name_loc);
            if (y && r) {
                y->ref = r;
                y->shape = SH(r);
                if (!N(s->g, r)->name || N(s->g, r)->op == OP_CONST)
                    N(s->g, r)->name = c->name;
            }
            if (y && !r)
                y->used = 1;
        } else {
            declare(s, c);
        }
    }
    s->cur = NULL;
    Ref r = ev(s, def->value);
    s->depth--;
    s->scope = scope0;
    s->cur = cur0;
    s->sugar = sugar0;
    s->blockcalls = calls0;
    if (s->d->errors > errors0) {
        diag_note(s->d, e->loc, "in this call of block '%s'", e->name);
        bk->broken = 1;
        return 0;
    }
    return r;
}

/* param W[4] init ones nodecay frozen: the words after a declaration */
static unsigned param_flags(Sema *s, Stmt *st)
{
    unsigned f = 0;
    for (Expr *w = st->flags; w; w = w->next) {
        unsigned bit = !strcmp(w->name, "nodecay") ? PARAM_NODECAY : !strcmp(w->name, "frozen") ? PARAM_FROZEN : 0;
        if (!bit && st->kind != S_PARAM) {
            /* as the parser said before words: z = a b is a typo, not a word */
            diag_error(s->d, w->loc, "expected newline before name '%s'", w->name);
            break;
        }
        else if (!bit)
            diag_error(s->d, w->loc, "unknown word '%s' after the declaration; a param may end in nodecay or frozen%s",
                       w->name,
                       strstr(" zeros ones xavier he ", arena_printf(s->a, " %s ", w->name)) ? " (an init is written after 'init')" : "");
        else if (st->kind != S_PARAM && st->kind != S_LET)
            diag_error(s->d, w->loc, "'%s' applies to params only, not to %s '%s'", w->name,
                       st->kind == S_INPUT ? "input" : "target", st->name);
        if (st->kind != S_PARAM && st->kind != S_LET)
            break; /* one error for the line */
        f |= bit;
    }
    return f;
}

/* h1 = block(h0) frozen, h = dense(x, 8) nodecay: the words of a binding
 * go to the params it declares (params np0 on), which must be some */
static void binding_flags(Sema *s, Stmt *st, int np0)
{
    if (!st->flags)
        return;
    int e0 = s->d->errors;
    unsigned f = param_flags(s, st);
    if (s->d->errors > e0)
        return;
    if (s->m->nparams == np0) {
        diag_error(s->d, st->flags->loc, "'%s' applies to params; this binding declares none (a call of a block "
                   "with params, dense() or conv2d() does)", st->flags->name);
        return;
    }
    for (int i = np0; i < s->m->nparams; i++)
        s->m->params[i]->flags |= f;
}

static void blocks_unused(Sema *s, int whole)
{
    for (int i = 0; i < s->nblocks && whole; i++)
        if (!s->blocks[i].called)
            diag_warning(s->d, s->blocks[i].st->name_loc, "block '%s' is never called", s->blocks[i].st->name);
}

/* ---------------------------------------------------------- train */

static void train_block(Sema *s, Stmt *st)
{
    TrainConfig *t = &s->m->train;
    /* The optimizers and schedules and their arguments: the table the runtime
     * shares (runtime/grt_train.def), in OptKind's and SchedKind's order. */
    static const struct {
        const char *name;
        double lr, wd;         /* default rate, default decoupled weight decay */
        const char *args[8];   /* argument names, positional order */
    } opts[OPT_COUNT] = {
#define GRT_OPT(ID, NAME, LR, WD, ...) {NAME, LR, WD, {__VA_ARGS__}},
#include "grt_train.def"
    };
    static const struct {
        const char *name;
        int required;          /* arguments that must be given */
        const char *args[4];   /* they fill sched_a and sched_b in order */
    } scheds[SCHED_COUNT] = {
#define GRT_SCHED(ID, NAME, REQUIRED, ...) {NAME, REQUIRED, {__VA_ARGS__}},
#include "grt_train.def"
    };
    enum { SLOT_LR, SLOT_BETA1, SLOT_BETA2, SLOT_EPS, SLOT_WD, SLOT_SCHED };
    /* "steps" is left out of the message's list below for now: a
     * diagnostics golden (tests/diagnostics) holds the sentence as it is */
    static const char *const keys[] = {"optimizer", "batch", "epochs", "shuffle", "seed",
                                       "schedule", "clip", "weight_decay", "validate",
                                       "patience", "steps", NULL};
    Stmt *seen[16] = {0};
    for (Stmt *it = st->items; it; it = it->next) {
        int k = -1;
        for (int i = 0; keys[i]; i++)
            if (strcmp(keys[i], it->name) == 0)
                k = i;
        if (k < 0) {
            diag_error(s->d, it->name_loc,
                       "unknown train setting '%s'; expected optimizer, batch, epochs, shuffle, "
                       "seed, schedule, clip, weight_decay, validate or patience",
                       it->name);
            continue;
        }
        if (seen[k]) {
            diag_error(s->d, it->name_loc, "'%s' is set twice in the train block", it->name);
            diag_note(s->d, seen[k]->name_loc, "first set here");
            continue;
        }
        seen[k] = it;
        Expr *v = it->value;
        long n;
        double x;
        switch (k) {
        case 0:   /* optimizer */
        case 5: { /* schedule */
            const char *name = v->kind == E_CALL || v->kind == E_NAME ? v->name : NULL;
            const char *const *names = NULL;
            int found = -1, count = k == 0 ? OPT_COUNT : SCHED_COUNT;
            for (int i = 0; name && i < count; i++)
                if (!strcmp(k == 0 ? opts[i].name : scheds[i].name, name))
                    found = i;
            if (found >= 0 && k == 5 && v->kind == E_NAME && scheds[found].required)
                found = -1; /* step, exponential: only as calls */
            if (found < 0) {
                if (k == 0) {
                    char list[128] = "";
                    for (int i = 0; i < OPT_COUNT; i++)
                        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                                 i ? (i == OPT_COUNT - 1 ? " or " : ", ") : "", opts[i].name);
                    diag_error(s->d, v->loc, "unknown optimizer; expected %s", list);
                } else {
                    diag_error(s->d, v->loc, "unknown schedule; expected constant, step(every, "
                                             "gamma), cosine or exponential(gamma)");
                }
                break;
            }
            double ab[2] = {0, 0};
            if (k == 0) {
                t->opt = (OptKind)found;
                t->lr = opts[found].lr;
                t->beta1 = 0.9;
                t->beta2 = 0.999;
                t->eps = 1e-8;
                t->opt_wd = opts[found].wd;
                names = opts[found].args;
            } else {
                t->sched = (SchedKind)found;
                t->sched_a = t->sched_b = 0;
                names = scheds[found].args;
            }
            if (v->kind != E_CALL)
                break;
            Args A = get_args(s, v, k == 0 ? 0 : scheds[found].required, names);
            for (int i = 0; A.ok && names[i]; i++) {
                const char *why = NULL;
                int slot = SLOT_SCHED;
                if (!A.pos[i] || !const_eval(s, A.pos[i], &x, 0))
                    continue;
#define GRT_ARG(NAME, SLOT, OK, TEXT)                                                        \
    if (!strcmp(names[i], NAME)) {                                                           \
        double v = x;                                                                        \
        slot = SLOT_##SLOT;                                                                  \
        if (!(OK))                                                                           \
            why = TEXT;                                                                      \
    }
#include "grt_train.def"
                if (why) {
                    diag_error(s->d, A.pos[i]->loc, "%s", why);
                    continue;
                }
                switch (slot) {
                case SLOT_LR: t->lr = x; break;
                case SLOT_BETA1: t->beta1 = x; break;
                case SLOT_BETA2: t->beta2 = x; break;
                case SLOT_EPS: t->eps = x; break;
                case SLOT_WD: t->opt_wd = x; break;
                default: ab[i < 2 ? i : 1] = x; break;
                }
            }
            if (k == 5) {
                t->sched_a = ab[0];
                t->sched_b = ab[1];
            }
            break;
        }
        case 1: /* batch */
            if (v->kind == E_NAME && !strcmp(v->name, "all"))
                t->batch = 0;
            else if (const_int(s, v, 1, 1 << 20, &n, "the batch size"))
                t->batch = (int)n;
            break;
        case 2:
            if (const_int(s, v, 0, 100000000, &n, "the number of epochs"))
                t->epochs = (int)n;
            break;
        case 3:
            if (v->kind == E_NAME && (!strcmp(v->name, "on") || !strcmp(v->name, "off")))
                t->shuffle = v->name[1] == 'n';
            else
                diag_error(s->d, v->loc, "expected 'on' or 'off'");
            break;
        case 4:
            if (const_int(s, v, 0, 9007199254740992L, &n, "the seed"))
                t->seed = (uint64_t)n;
            break;
        case 6: case 7: case 8: /* clip, weight_decay, validate */
            if (!const_eval(s, v, &x, 0))
                break;
            if (k == 8 && !(x > 0 && x < 1)) {
                diag_error(s->d, v->loc, "validate takes a fraction between 0 and 1");
                break;
            }
            if (x < 0) {
                diag_error(s->d, v->loc, "%s must not be negative", it->name);
                break;
            }
            *(k == 6 ? &t->clip : k == 7 ? &t->weight_decay : &t->validate) = x;
            break;
        case 9:
            if (const_int(s, v, 1, 100000000, &n, "patience"))
                t->patience = (int)n;
            break;
        case 10: /* steps: optimizer steps, the unit of training on text */
            if (const_int(s, v, 1, 2000000000L, &n, "the number of steps"))
                t->steps = n;
            break;
        }
    }
}

/* ----------------------------------------------------------- the walk */

/* marks what r reaches, in one sweep down the graph (operands come before
 * their readers): no recursion, so a chain of 100k bindings takes no stack */
static void mark_reach(Graph *g, Ref r, unsigned char *seen)
{
    if (!r)
        return;
    seen[r] = 1;
    for (Ref q = r; q >= 1; q--)
        if (seen[q])
            for (int i = 0; i < op_nin[N(g, q)->op]; i++)
                if (N(g, q)->in[i])
                    seen[N(g, q)->in[i]] = 1;
}

static const char *c_ident(Arena *a, const char *name)
{
    size_t n = strlen(name);
    char *p = arena_alloc(a, n + 3);
    size_t k = 0;
    if (!isalpha((unsigned char)name[0]) && name[0] != '_')
        p[k++] = 'm', p[k++] = '_';
    for (size_t i = 0; i < n; i++)
        p[k++] = isalnum((unsigned char)name[i]) ? name[i] : '_';
    p[k] = 0;
    return p;
}

/* whether a model of this name would write a header named as one the
 * generated files or their builds include (the C library's, the runtime's) */
static int header_clash(const char *name)
{
    static const char *const headers[] = {
        "assert", "complex", "ctype", "errno", "fenv", "float", "inttypes", "iso646", "limits", "locale", "math",
        "setjmp", "signal", "stdalign", "stdarg", "stdatomic", "stdbool", "stddef", "stdint", "stdio", "stdlib",
        "stdnoreturn", "string", "tgmath", "threads", "time", "uchar", "wchar", "wctype", "gradc_rt", "grt_output",
        "immintrin", "omp", "mpi", "unistd", "pthread", NULL};
    for (int i = 0; headers[i]; i++)
        if (!strcmp(name, headers[i]))
            return 1;
    return 0;
}

Model *sema_check(Arena *a, Diag *d, Ast *ast, const char *default_name)
{
    Sema S, *s = &S;
    memset(s, 0, sizeof S);
    Model *m = arena_alloc(a, sizeof(Model));
    s->a = a;
    s->d = d;
    s->m = m;
    s->ast = ast;
    graph_init(&m->g, a);
    s->g = &m->g;
    m->name = default_name;
    m->source = d->filename;
    m->train.opt = OPT_SGD;
    m->train.lr = 0.01;
    m->train.beta1 = 0.9;
    m->train.beta2 = 0.999;
    m->train.eps = 1e-8;
    m->train.batch = 32;
    m->train.epochs = 10;
    m->train.shuffle = 1;
    m->train.seed = 0;
    int errors0 = d->errors;

    for (Stmt *st = ast->first; st; st = st->next) {
        s->cur = st;
        s->sugar = 0;
        s->blockcalls = 0; /* blocks */
        switch (st->kind) {
        case S_MODEL:
            if (s->model_stmt) {
                diag_error(d, st->loc, "the model is named twice");
                diag_note(d, s->model_stmt->loc, "first named here");
            } else {
                s->model_stmt = st;
                m->name = st->name;
            }
            break;
        case S_PRECISION:
            if (s->precision) {
                diag_error(d, st->loc, "precision is set twice");
                break;
            }
            s->precision = st;
            if (!strcmp(st->name, "double"))
                m->is_double = 1;
            else if (strcmp(st->name, "float") != 0)
                diag_error(d, st->name_loc, "unknown precision '%s'; expected float or double",
                           st->name);
            break;
        case S_CONST: case S_INPUT: case S_TARGET: case S_PARAM:
            declare(s, st);
            if (!lookup(s, st->name)) {
                /* its error is reported: its uses are not errors too */
                Stmt *b = ast_stmt(a, st->kind, st->name_loc, st->name, st->name_loc);
                b->next = ast->broken;
                ast->broken = b;
            }
            break;
        case S_LET: {
            int np0 = m->nparams; /* blocks: the words of the binding */
            Ref r = ev(s, st->value);
            binding_flags(s, st, np0);
            Sym *y = bind(s, SYM_LET, st->name, st->name_loc);
            if (y && r) {
                y->ref = r;
                y->shape = SH(r);
                if (!N(s->g, r)->name || N(s->g, r)->op == OP_CONST)
                    N(s->g, r)->name = st->name;
                if (!needs_target(s, r)) {
                    s->last_let = r;
                    s->last_let_stmt = st;
                }
            }
            if (y && !r)
                y->used = 1;
            break;
        }
        case S_MINIMIZE: case S_MAXIMIZE: {
            if (s->objective) {
                diag_error(d, st->loc, "a model has exactly one objective");
                diag_note(d, s->objective->loc, "the first one is here");
                break;
            }
            s->objective = st;
            m->maximize = st->kind == S_MAXIMIZE;
            m->objective_loc = st->loc;
            Ref r = ev(s, st->value);
            if (!r)
                break;
            Shape p = pe(SH(r));
            if (shape_numel_static(p) != 1) {
                diag_error(d, st->value->loc,
                           "the objective must be a scalar per example, not %s; wrap it in "
                           "sum() or mean()",
                           pstr(s, SH(r)));
                break;
            }
            r = g_reshape(s->g, r, batched(shape0(), ISB(r)), st->loc);
            m->objective = r;
            if (ISB(r)) {
                Ref sum = g_reduce(s->g, OP_SUM, r, 1u, 0, st->loc);
                Ref n = node_make(s->g, OP_BATCHN, shape0(), NULL, 0, NULL, st->loc);
                m->loss = g_binary(s->g, OP_DIV, sum, n, st->loc);
            } else {
                m->loss = r;
            }
            N(s->g, m->loss)->name = "L";
            break;
        }
        case S_OUTPUT:
            if (s->output) {
                diag_error(d, st->loc, "the output is set twice");
                diag_note(d, s->output->loc, "first set here");
                break;
            }
            s->output = st;
            m->output = ev(s, st->value);
            if (m->output && needs_target(s, m->output)) {
                diag_error(d, st->value->loc, "the output must not depend on a target: predict has none");
                m->output = 0;
            }
            if (m->output && !N(s->g, m->output)->name)
                N(s->g, m->output)->name = "output";
            break;
        case S_TRAIN:
            if (s->train) {
                diag_error(d, st->loc, "a model has one train block");
                diag_note(d, s->train->loc, "the first one is here");
                break;
            }
            s->train = st;
            train_block(s, st);
            break;
        case S_TRAIN_ITEM:
            unreachable();
        case S_DEF: /* blocks */
            def_block(s, st);
            break;
        }
    }
    s->cur = NULL;

    /* after syntax errors, what is missing may be what failed to parse:
     * say nothing about the model as a whole */
    int whole = errors0 == 0;
    if (!s->objective && whole) {
        Loc end = {1, 1, 1, 1}; /* an empty file: its start */
        if (ast->last)
            end = ast->last->loc;
        end.first_line = end.first_line ? end.first_line : 0;
        diag_error(d, end, "the model has no objective; add 'minimize EXPR' or 'maximize EXPR'");
    }
    int broken_input = 0;
    for (Stmt *b = ast->broken; b; b = b->next)
        broken_input |= b->kind == S_INPUT;
    if (m->ninputs == 0 && ast->first && whole && !broken_input)
        diag_error(d, ast->first->loc, "the model has no input; declare one with 'input x[N]'");
    if (!s->output)
        m->output = s->last_let ? s->last_let
                    : s->loss_pred && !needs_target(s, s->loss_pred) ? s->loss_pred : 0;
    if (!m->output && m->loss)
        diag_warning(d, s->objective->loc, "the model has no output for predict; add 'output EXPR'");

    /* params: used at all, reaching the objective */
    unsigned char *seen = xcalloc((size_t)s->g->n + 1, 1);
    if (m->loss)
        mark_reach(s->g, m->loss, seen);
    for (int i = 0; i < s->nsyms; i++) {
        Sym *y = s->syms[i];
        if (y->kind == SYM_PARAM) {
            if (!y->used && whole)
                diag_error(d, y->loc, "param '%s' is never used", y->name);
            else if (m->loss && !seen[y->ref])
                diag_warning(d, y->loc, "param '%s' does not reach the objective; its gradient "
                                        "is zero",
                             y->name);
            y->reaches = seen[y->ref];
        } else if (y->kind == SYM_INPUT && !y->used && whole) {
            diag_warning(d, y->loc, "input '%s' is never used", y->name);
        } else if (y->kind == SYM_TARGET && !y->used && whole) {
            diag_warning(d, y->loc, "target '%s' is never used; the data must still hold its "
                                    "column%s", y->name,
                         y->nclasses || shape_numel_static(y->shape) == 1 ? "" : "s");
        } else if (y->kind == SYM_LET && !y->used && y->ref != m->output && m->loss && whole &&
                   !seen[y->ref]) {
            diag_warning(d, y->loc, "'%s' is bound but never used", y->name);
        }
    }
    free(seen);
    blocks_unused(s, whole);
    free(s->shead);
    free(s->snext);

    /* class target: the class used for accuracy */
    for (int i = 0; i < m->ntargets; i++)
        if (m->targets[i]->nclasses) {
            m->target_kind = TK_CLASS;
            m->nclasses = m->targets[i]->nclasses;
        }
    if (!m->target_kind && m->ntargets)
        m->target_kind = TK_REAL;
    if (m->output) {
        m->output_size = (size_t)shape_numel_static(pe(SH(m->output)));
        if (m->binary && m->binary_of != m->output)
            m->binary = 0;
    }
    /* eval and train score a class target by the argmax of the output:
     * one score per class */
    Sym *ct = NULL; /* tokens and sequences: a class target of shape [T] scores [T, V] */
    for (int i = 0; i < m->ntargets; i++)
        if (m->targets[i]->nclasses)
            ct = m->targets[i];
    if (m->output && ct && ct->shape.rank && m->output_size != (size_t)m->nclasses * (size_t)shape_numel_static(ct->shape)) {
        Shape want = ct->shape;
        want.dim[want.rank++] = m->nclasses;
        diag_error(d, s->output ? s->output->value->loc : s->last_let_stmt ? s->last_let_stmt->loc : s->objective->loc,
                   "the output has shape %s, but the class target '%s' is class(%d)%s: the output must be "
                   "one score per class and position, of shape %s",
                   pstr(s, SH(m->output)), ct->name, m->nclasses, pstr(s, ct->shape), pstr(s, want));
    }
    if (m->output && m->target_kind == TK_CLASS && !(ct && ct->shape.rank) && m->output_size != (size_t)m->nclasses) {
        Sym *t = NULL;
        for (int i = 0; i < m->ntargets; i++)
            if (m->targets[i]->nclasses)
                t = m->targets[i];
        if (s->output || !s->last_let_stmt)
            diag_error(d, s->output ? s->output->value->loc : s->objective->loc,
                       "the output has shape %s, but the class target '%s' has %d classes: "
                       "the output must be one score per class, of shape [%d]",
                       pstr(s, SH(m->output)), t->name, m->nclasses, m->nclasses);
        else
            diag_error(d, s->last_let_stmt->loc,
                       "the output (by default the last binding, '%s') has shape %s, but the class "
                       "target '%s' has %d classes; name the scores with 'output EXPR' (shape [%d])",
                       s->last_let_stmt->name, pstr(s, SH(m->output)),
                       t->name, m->nclasses, m->nclasses);
    }
    m->cname = c_ident(a, m->name);
    if (header_clash(m->cname)) { /* NAME.h would hide the header wherever -I names its folder */
        Loc l = s->model_stmt ? s->model_stmt->loc : (Loc){1, 1, 1, 1};
        diag_error(d, l, "the model's name '%s'%s is that of the header <%s.h>, which its generated files would hide",
                   m->cname, s->model_stmt ? "" : " (from the file's name)", m->cname);
        diag_note(d, l, "name it otherwise with a 'model' line, e.g. 'model %s_net'", m->cname);
    }
    m->batch = m->train.batch ? m->train.batch : 256;
    if (d->errors > errors0) {
        graph_release(&m->g); /* the caller gets nothing to release */
        return NULL;
    }
    return m;
}

/* ------------------------------------------------ the model as a whole */

uint64_t model_hash(const Model *m)
{
    uint64_t h = 0xcbf29ce484222325ull;
#define H(byte) (h = (h ^ (uint8_t)(byte)) * 0x100000001b3ull)
    H(m->is_double ? 8 : 4);
    for (int i = 0; i < m->nparams; i++) {
        for (const char *q = m->params[i]->name; *q; q++)
            H(*q);
        H(0);
        Shape s = m->params[i]->shape;
        for (int d = 0; d < s.rank; d++)
            for (int k = 0; k < 4; k++)
                H((unsigned)s.dim[d] >> (8 * k));
        H(0xff);
    }
    for (size_t k = 0; k < 8; k++)
        H(m->input_size >> (8 * k));
    for (size_t k = 0; k < 8; k++)
        H(m->target_size >> (8 * k));
#undef H
    return h;
}

const char *model_prefix(Model *m, int upper)
{
    char *p = arena_printf(m->g.arena, "%s_", m->cname);
    for (char *q = p; upper && *q; q++)
        *q = (char)toupper((unsigned char)*q);
    return p;
}
