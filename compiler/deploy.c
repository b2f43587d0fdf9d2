/*
 * deploy.c: what `gradc -c --embed-params PARAMS` needs: reading a parameter
 * file that a trained executable saved (the format of docs/runtime.md,
 * through the runtime's own reader, runtime/rt_pfile.c, which gradc links),
 * and writing its values into the generated source as exact hexadecimal
 * floating-point literals, so that a deployed program needs no file.
 *
 * With embedded params, MODEL_init copies the trained values (its seed is
 * ignored), MODEL_init_state the running statistics saved with them, and
 * when the params were trained on standardized inputs the pair
 * also gets MODEL_standardize(x, n), which applies the training set's
 * statistics to raw inputs before MODEL_predict.
 */
#include "gradc.h"
#include "rt_internal.h" /* the runtime's reader of parameter files (rt_pfile.c) */

#include <errno.h>
#include <math.h>
#include <string.h>

int params_file_read(Model *m, const char *path, EmbeddedParams *ep, char *err, size_t errn)
{
    size_t len, i, k;
    unsigned char *b = (unsigned char *)read_file(path, &len);
    grt_param_info *info;
    grt_pfile_want w;
    grt_pfile f;
    grt_err e;
    const unsigned char *p;
    memset(ep, 0, sizeof *ep);
    if (!b) {
        snprintf(err, errn, "cannot read '%s': %s", path, strerror(errno));
        return 0;
    }
    /* the params as the runtime's descriptor lists them, to name a bad value */
    info = xmalloc(sizeof *info * (size_t)(m->nparams + 1));
    for (int t = 0; t < m->nparams; t++) {
        Sym *y = m->params[t];
        memset(&info[t], 0, sizeof info[t]);
        info[t].name = y->name;
        info[t].rank = y->shape.rank;
        for (int d = 0; d < y->shape.rank && d < GRT_MAXRANK; d++)
            info[t].dim[d] = y->shape.dim[d];
        info[t].offset = y->offset;
        info[t].size = (size_t)shape_numel_static(y->shape);
    }
    memset(&w, 0, sizeof w);
    w.name = m->name;
    w.hash = model_hash(m);
    w.param_count = m->param_count;
    w.input_size = m->input_size;
    w.state_count = m->state_count;
    w.real = m->is_double ? 8 : 4;
    w.who = "the model";
    w.params = info;
    w.nparams = m->nparams;
    memset(&e, 0, sizeof e);
    if (grt_pfile_decode(b, len, path, &w, &f, &e)) {
        /* "PATH: error: why" said as "PATH: why" after gradc's own "error:" */
        size_t n = strlen(path);
        const char *why = !strncmp(e.msg, path, n) && !strncmp(e.msg + n, ": error: ", 9)
                              ? e.msg + n + 9 : e.msg;
        snprintf(err, errn, "%s: %s", path, why);
    } else {
        ep->values = xmalloc(sizeof(double) * (m->param_count + 1));
        for (i = 0; i < m->param_count; i++)
            ep->values[i] = grt_pfile_real(f.real, f.sec[GRT_PF_PARM] + i * (size_t)f.real);
        if (m->state_count && f.sec[GRT_PF_STAT]) {
            ep->state = xmalloc(sizeof(double) * m->state_count);
            for (i = 0; i < m->state_count; i++)
                ep->state[i] = grt_pfile_real(f.real, f.sec[GRT_PF_STAT] + i * (size_t)f.real);
        }
        if ((p = grt_pfile_stdz(&f, &k))) {
            ep->mean = xmalloc(sizeof(double) * (k + 1));
            ep->std = xmalloc(sizeof(double) * (k + 1));
            for (i = 0; i < k; i++) {
                ep->mean[i] = grt_pfile_real(8, p + 8 * i);
                ep->std[i] = grt_pfile_real(8, p + 8 * (k + i));
            }
        }
    }
    free(info);
    free(b);
    return ep->values != NULL;
}

void params_file_free(EmbeddedParams *ep)
{
    free(ep->values);
    free(ep->mean);
    free(ep->std);
    free(ep->state);
    memset(ep, 0, sizeof *ep);
}

/* an exact literal: hexadecimal, with f for float */
static void hex(FILE *out, double v, int is_double)
{
    if (v == 0)
        fprintf(out, signbit(v) ? "-0.0%s" : "0.0%s", is_double ? "" : "f");
    else
        fprintf(out, "%a%s", v, is_double ? "" : "f");
}

static void array(FILE *out, const char *T, const char *name, const double *v, size_t n, int is_double)
{
    fprintf(out, "static const %s %s[%zu] = {", T, name, n);
    for (size_t i = 0; i < n; i++) {
        fputs(i == 0 ? "\n    " : i % 4 ? ", " : ",\n    ", out);
        hex(out, v[i], is_double);
    }
    fprintf(out, "\n};\n\n");
}

void emit_embedded_init(Model *m, const EmbeddedParams *ep, const char *prefix, FILE *out)
{
    const char *T = m->is_double ? "double" : "float";
    char name[256];
    fprintf(out, "/* the trained params, embedded by --embed-params */\n");
    snprintf(name, sizeof name, "%strained", prefix);
    array(out, T, name, ep->values, m->param_count, m->is_double);
    fprintf(out, "void %sinit(%s *params, uint64_t seed)\n{\n", prefix, T);
    fprintf(out, "    (void)seed; /* the params are the trained ones, whatever the seed */\n");
    fprintf(out, "    for (size_t i = 0; i < %zu; i++)\n        params[i] = %strained[i];\n}\n\n",
            m->param_count, prefix);
    if (norm_has_state(m)) { /* batch_norm's running statistics: the saved ones */
        if (ep->state) {
            snprintf(name, sizeof name, "%strained_state", prefix);
            array(out, T, name, ep->state, m->state_count, m->is_double);
            fprintf(out, "void %sinit_state(%s *state)\n{\n    for (size_t i = 0; i < %zu; i++)\n"
                         "        state[i] = %strained_state[i];\n}\n\n",
                    prefix, T, m->state_count, prefix);
        } else { /* a file saved before any training step: the initial ones */
            fprintf(out, "void %sinit_state(%s *state)\n{\n", prefix, T);
            norm_emit_init_state(m, T, out);
            fprintf(out, "}\n\n");
        }
    }
    if (!ep->mean)
        return;
    snprintf(name, sizeof name, "%sinput_mean", prefix);
    array(out, "double", name, ep->mean, m->input_size, 1);
    snprintf(name, sizeof name, "%sinput_std", prefix);
    array(out, "double", name, ep->std, m->input_size, 1);
    fprintf(out,
            "/* scales raw inputs as training did (--standardize): x = (x - mean) / std */\n"
            "void %sstandardize(%s *x, size_t n)\n{\n"
            "    for (size_t r = 0; r < n; r++)\n"
            "        for (size_t j = 0; j < %zu; j++)\n"
            "            x[r * %zu + j] = (%s)((x[r * %zu + j] - %sinput_mean[j]) / %sinput_std[j]);\n}\n\n",
            prefix, T, m->input_size, m->input_size, T, m->input_size, prefix, prefix);
}
