/*
 * emit_iface.c: the generated interface: MODEL.h (sizes, offsets, the
 * functions), the head of MODEL.c and init (the params' initializers).
 */
#include "emit_c.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void emit_init(E *e)
{
    Model *m = e->m;
    const char *T = e->T, *P = e->prefix;
    int uni = 0, nor = 0;
    for (int i = 0; i < m->nparams; i++) {
        InitKind k = m->params[i]->init;
        uni |= k == INIT_UNIFORM || k == INIT_XAVIER || k == INIT_NORMAL || k == INIT_HE;
        nor |= k == INIT_NORMAL || k == INIT_HE;
    }
    if (uni)
        fprintf(e->out,
                "/* splitmix64: the initialisers' random numbers, the same on every machine */\n"
                "static uint64_t %snext(uint64_t *s)\n{\n"
                "    uint64_t z = (*s += 0x9E3779B97F4A7C15u);\n"
                "    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;\n"
                "    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;\n"
                "    return z ^ (z >> 31);\n}\n\n"
                "/* uniform in (0, 1) */\n"
                "static double %suniform(uint64_t *s)\n{\n"
                "    return ((double)(%snext(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);\n}\n\n",
                P, P, P);
    if (nor)
        fprintf(e->out,
                "/* standard normal, Box-Muller */\n"
                "static double %snormal(uint64_t *s)\n{\n"
                "    double u = %suniform(s), v = %suniform(s);\n"
                "    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);\n}\n\n",
                P, P, P);
    fprintf(e->out, "void %sinit(%s *params, uint64_t seed)\n{\n", P, T);
    emitf(e, 1, "uint64_t s;");
    emitf(e, 1, "(void)s; (void)seed;");
    for (int i = 0; i < m->nparams; i++) {
        Sym *y = m->params[i];
        int n = shape_numel_static(y->shape);
        int fan_out = y->shape.rank ? y->shape.dim[0] : 1;
        int fan_in = y->shape.rank > 1 ? n / fan_out : fan_out;
        char sh[64];
        shape_str(y->shape, sh, sizeof sh);
        const char *val;
        switch (y->init) {
        case INIT_ZEROS: val = "0"; break;
        case INIT_ONES: val = "1"; break;
        case INIT_CONST: val = arena_printf(e->g->arena, "%.17g", y->init_a); break;
        case INIT_NORMAL:
            val = arena_printf(e->g->arena, "%.17g + %.17g * %snormal(&s)", y->init_a, y->init_b, P);
            break;
        case INIT_UNIFORM:
            val = arena_printf(e->g->arena, "%.17g + %.17g * %suniform(&s)", y->init_a,
                               y->init_b - y->init_a, P);
            break;
        case INIT_XAVIER:
            val = arena_printf(e->g->arena, "%.17g * (2 * %suniform(&s) - 1)",
                               sqrt(6.0 / (fan_in + fan_out)), P);
            break;
        default: /* he */
            val = arena_printf(e->g->arena, "%.17g * %snormal(&s)", sqrt(2.0 / fan_in), P);
            break;
        }
        static const char *const iname[] = {"zeros", "ones", "const", "normal", "uniform", "xavier", "he"};
        emitf(e, 1, "/* %s %s, %s */", y->name, sh, iname[y->init]);
        if (y->init != INIT_ZEROS && y->init != INIT_ONES && y->init != INIT_CONST)
            emitf(e, 1, "s = seed ^ (0x%016llXu * %du);", 0xD1B54A32D192ED03ull, i + 1);
        emitf(e, 1, "for (size_t i = 0; i < %d; i++)", n);
        emitf(e, 2, "params[%zu + i] = (%s)(%s);", y->offset, T, val);
    }
    fprintf(e->out, "}\n\n");
    if (norm_has_state(m)) { /* norm.c: batch_norm's running statistics */
        fprintf(e->out, "void %sinit_state(%s *state)\n{\n", P, T);
        norm_emit_init_state(m, T, e->out);
        fprintf(e->out, "}\n\n");
    }
}

static void prefixes(E *e, Model *m)
{
    Arena *a = m->g.arena;
    e->prefix = arena_printf(a, "%s_", m->cname);
    char *P = arena_printf(a, "%s_", m->cname);
    for (char *q = P; *q; q++)
        *q = (char)toupper((unsigned char)*q);
    e->PREFIX = P;
}

E e_make(Model *m, const EmitOptions *o, FILE *out)
{
    E e = {.m = m, .g = &m->g, .out = out, .o_out = out, .T = m->is_double ? "double" : "float", .fs = m->is_double ? "" : "f", .o = o};
    prefixes(&e, m);
    return e;
}

static size_t workspace_bytes(Model *m, Plan plans[FN_COUNT], const EmitOptions *o)
{
    size_t w = 0;
    if (o && o->scalar) { /* emit_scalar.c writes each function from its own plan */
        for (int i = 0; i < FN_COUNT; i++)
            if (plans[i].work_elems > w && (!o->predict_only || i == FN_PREDICT))
                w = plans[i].work_elems;
        w *= m->is_double ? 8 : 4;
        return w < 64 ? 64 : w;
    }
    Plan all;
    plan_build_all(m, o && o->predict_only, &all);
    w = all.work_elems;
    int kernel, vec;
    size_t pack = gemm_needs(m, &all, o, &kernel, &vec);
    if (pack)
        w = gemm_pack_offset(&all) + pack;
    w *= m->is_double ? 8 : 4;
    return w < 64 ? 64 : w;
}

static void header_comment(E *e, const char *what)
{
    Model *m = e->m;
    fprintf(e->out, "/* %s%s: generated by gradc %s from %s; do not edit.\n", m->cname, what,
            GRADC_VERSION, e->o && e->o->source_path ? c_comment_escape(m->g.arena, e->o->source_path) : "a model");
    if (e->o && e->o->cmdline)
        fprintf(e->out, " * command: %s\n", c_comment_escape(m->g.arena, e->o->cmdline));
    fprintf(e->out, " * model hash: %016llx */\n", (unsigned long long)model_hash(m));
}

void emit_h(Model *m, Plan plans[FN_COUNT], const EmitOptions *o, FILE *out)
{
    E e = e_make(m, o, out);
    const char *T = e.T, *P = e.prefix, *U = e.PREFIX;
    header_comment(&e, ".h");
    fprintf(out, "#ifndef %sH\n#define %sH\n\n#include <stddef.h>\n#include <stdint.h>\n\n", U, U);
    fprintf(out, "#define %sPARAM_COUNT %zu /* %ss, all params in declaration order, row-major */\n", U,
            m->param_count, T);
    fprintf(out, "#define %sINPUT_SIZE %zu /* %ss per example, all inputs in order */\n", U, m->input_size, T);
    fprintf(out, "#define %sTARGET_SIZE %zu /* per example; a class target counts as one */\n", U,
            m->target_size);
    fprintf(out, "#define %sOUTPUT_SIZE %zu\n", U, m->output_size);
    fprintf(out, "#define %sMAX_BATCH %d /* the compiled batch; any n <= it works */\n", U, m->batch);
    fprintf(out, "#define %sWORKSPACE_BYTES %zu /* scratch for one call, caller-provided */\n\n", U,
            workspace_bytes(m, plans, o));
    fprintf(out, "/* params: offsets and sizes */\n");
    const char **macro = param_macro_names(m);
    for (int i = 0; i < m->nparams; i++) {
        Sym *y = m->params[i];
        const char *up = macro[i];
        char sh[64];
        fprintf(out, "#define %sPARAM_%s_OFFSET %zu /* %s %s */\n", U, up, y->offset, y->name,
                shape_str(y->shape, sh, sizeof sh));
        fprintf(out, "#define %sPARAM_%s_SIZE %d\n", U, up, shape_numel_static(y->shape));
    }
    if (norm_has_state(m)) { /* norm.c */
        fprintf(out, "\n");
        norm_emit_state_macros(m, U, out);
    }
    fprintf(out, "\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    if (o && o->embed)
        fprintf(out, "void %sinit(%s *params, uint64_t seed); /* the embedded trained params */\n", P, T);
    else
        fprintf(out, "void %sinit(%s *params, uint64_t seed); /* the declared initialisers */\n", P, T);
    int st = norm_has_state(m);
    const char *cst = st ? arena_printf(m->g.arena, "const %s *state, ", T) : "";
    const char *wst = st ? arena_printf(m->g.arena, "%s *state, ", T) : "";
    if (st)
        fprintf(out, "void %sinit_state(%s *state); /* %s */\n", P, T,
                o && o->embed && o->embed->state ? "the embedded running statistics" : "running means 0, variances 1");
    if (!o || !o->predict_only) {
        if (st)
            fprintf(out, "/* loss and predict use the running statistics; loss_grad the batch's, and it\n"
                         " * updates the running ones in state */\n");
        fprintf(out, "%s %sloss(const %s *params, %sconst %s *x, const %s *y, size_t n, void *work);\n", T, P, T,
                cst, T, T);
        fprintf(out, "%s %sloss_grad(const %s *params, %sconst %s *x, const %s *y, size_t n, %s *grad,\n    void *work);\n",
                T, P, T, wst, T, T, T);
    }
    fprintf(out, "void %spredict(const %s *params, %sconst %s *x, size_t n, %s *out, void *work);\n", P, T, cst, T,
            T);
    if (o && o->embed && o->embed->mean) {
        fprintf(out, "/* the params were trained on standardized inputs: apply this to raw inputs first */\n");
        fprintf(out, "#define %sSTANDARDIZE 1\n", U);
        fprintf(out, "void %sstandardize(%s *x, size_t n);\n", P, T);
    }
    if (conv_has_dropout(&m->g) && (!o || !o->predict_only)) {
        fprintf(out, "\n/* The model has dropout: loss and predict leave it out, loss_grad applies it\n"
                     " * with masks drawn from a hash of the batch. The seeded variants take the\n"
                     " * seed of the masks: loss_seeded is the training loss that loss_grad_seeded\n"
                     " * differentiates (the same seed gives the same masks). */\n");
        fprintf(out, "#define %sDROPOUT 1\n", U);
        fprintf(out, "%s %sloss_seeded(const %s *params, %sconst %s *x, const %s *y, size_t n, void *work,\n"
                     "    uint64_t seed);\n", T, P, T, cst, T, T);
        fprintf(out, "%s %sloss_grad_seeded(const %s *params, %sconst %s *x, const %s *y, size_t n, %s *grad,\n"
                     "    void *work, uint64_t seed);\n", T, P, T, wst, T, T, T);
    }
    fprintf(out, "\n#ifdef __cplusplus\n}\n#endif\n\n#endif\n");
}

void emit_c_prelude(Model *m, const EmitOptions *o, FILE *out)
{
    E e = e_make(m, o, out);
    header_comment(&e, ".c");
    fprintf(out, "#include \"%s.h\"\n\n#include <math.h>\n\n", m->cname);
    if (o && o->embed)
        emit_embedded_init(m, o->embed, e.prefix, out);
    else
        emit_init(&e);
}
