/*
 * emit_c.h: what the rooms of the C emitter share (emit_c.c, emit_loops.c,
 * emit_matmul.c, emit_iface.c): the state of the file being written and
 * the helpers each uses from another. Not part of gradc.h: nothing outside
 * the emitter needs it.
 */
#ifndef GRADC_EMIT_C_H
#define GRADC_EMIT_C_H

#include "gradc.h"

#ifndef GEMM_KC
#define GEMM_KC 256 /* the blocks of gemm_kernel.c */
#endif
#ifndef GEMM_MC
#define GEMM_MC 96
#endif
#ifndef GEMM_NC
#define GEMM_NC 2048
#endif

typedef struct E {
    Model *m;               /* the model */
    Graph *g;               /* its graph */
    Plan *p;                /* the function being written */
    FILE *out;              /* where */
    FILE *o_out;            /* the file being written (out may be aside) */
    const char *T;          /* float or double */
    const char *fs;         /* "f" for float math functions, "" for double */
    const EmitOptions *o;   /* options */
    char **var;             /* C variable per node */
    const char **tname;     /* per node the model does not name: its C name, else NULL */
    const char *prefix;     /* model prefix, "seed_" */
    const char *PREFIX;     /* macro prefix, "SEED_" */
    int train;              /* the function trains: dropout masks (conv.c) */
    size_t pack_off;        /* workspace offset of the matrix product's panels */
    Ref *fused;             /* per node: the product that computes it along, or 0 */
    Fusion *fz;             /* per product: what it computes along */
    const char **pvar;      /* per param: the name of its pointer in the functions */
    const char **pmacro;    /* per param: NAME of its PARAM_NAME_OFFSET macro */
    int drop;               /* the model has dropout: the parts take train and seed */
    int state;              /* the model has state (norm.c): the functions take it */
    const char **kernels;   /* per node: its kernel's name (conv.c), or NULL */
    Ref *fchild, *fnext;    /* per node: the first, and the next, of what is computed along with it */
    unsigned char *inl;     /* scratch marks of comment() */
    Ref *inl_list;          /* ... and the nodes it marked, to clear them */
} E;

/* emit_c.c */
void comment(E *e, Ref r);
void emitf(E *e, int indent, const char *fmt, ...) GRADC_PRINTF(3, 4);
const char *ext(int d, char *buf, size_t n);
const char *inline_val(E *e, Ref r, char *buf, size_t n);
int is_inline(E *e, Ref r);
const char *lit(E *e, double v, char *buf, size_t n);
const char *mangle(Arena *a, const char *prefix, const char *name);
const char *ptr(E *e, Ref r, char *buf, size_t n);
Ref storage(Plan *p, Ref r);
long stride(Shape s, int axis);
const char *total(Shape s, char *buf, size_t n);

/* emit_loops.c */
int batch_sum_cols(Graph *g, Ref r);
void emit_concat_slice(E *e, Ref r, const char *dst);
void emit_copy(E *e, Ref r, const char *dst, int per_example);
void emit_elemwise(E *e, Ref r, const char *dst);
void emit_gather(E *e, Ref r, const char *dst);
void emit_reduce(E *e, Ref r, const char *dst);
void emit_rowwise(E *e, Ref r, const char *dst);
void emit_transpose(E *e, Ref r, const char *dst);
/* tokens and sequences */
void emit_gather_rows(E *e, Ref r, const char *dst);
void emit_view(E *e, Ref r, const char *dst);
void emit_causal(E *e, Ref r, const char *dst);

/* emit_matmul.c */
void emit_matmul(E *e, Ref r, const char *dst);
Fusion fusion_args(E *e, Ref r, const char **dst, const char **alpha, char *bias, size_t nb);
size_t gemm_needs(Model *m, const Plan *p, const EmitOptions *o, int *kernel, int *vec);
size_t gemm_pack_offset(const Plan *p);

/* emit_iface.c */
E e_make(Model *m, const EmitOptions *o, FILE *out);

#endif
