/*
 * deploy.c: what `gradc -c --embed-params PARAMS` needs: reading a parameter
 * file that a trained executable saved (the format of docs/runtime.md), and
 * writing its values into the generated source as exact hexadecimal
 * floating-point literals, so that a deployed program needs no file.
 *
 * With embedded params, MODEL_init copies the trained values (its seed is
 * ignored), and when the params were trained on standardized inputs the pair
 * also gets MODEL_standardize(x, n), which applies the training set's
 * statistics to raw inputs before MODEL_predict.
 */
#include "gradc.h"

#include <errno.h>
#include <math.h>
#include <string.h>

static uint64_t rd64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static double rdreal(const unsigned char *p, int size)
{
    if (size == 8) {
        uint64_t u = rd64(p);
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    uint32_t u = rd32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

int params_file_read(Model *m, const char *path, EmbeddedParams *ep, char *err, size_t errn)
{
    size_t len;
    unsigned char *b = (unsigned char *)read_file(path, &len);
    memset(ep, 0, sizeof *ep);
    if (!b) {
        snprintf(err, errn, "cannot read '%s': %s", path, strerror(errno));
        return 0;
    }
    int ok = 0;
    int real = m->is_double ? 8 : 4;
#define FAIL(...) do { snprintf(err, errn, __VA_ARGS__); goto done; } while (0)
    if (len < 60 || memcmp(b, "GRADCPRM", 8) != 0)
        FAIL("'%s' is not a gradc parameter file", path);
    if (rd32(b + 8) != 1)
        FAIL("'%s': parameter file format %u, this gradc reads 1", path, rd32(b + 8));
    if (rd64(b + 16) != len)
        FAIL("'%s' is truncated or damaged (its header says %llu bytes, it has %zu)", path,
             (unsigned long long)rd64(b + 16), len);
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len - 8; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    if (h != rd64(b + len - 8))
        FAIL("'%s' is damaged (bad checksum)", path);
    if ((int)rd32(b + 12) != real)
        FAIL("'%s' holds %s params, the model is %s", path, rd32(b + 12) == 8 ? "double" : "float",
             m->is_double ? "double" : "float");
    uint32_t nl = rd32(b + 48);
    if (52 + (size_t)nl + 8 > len)
        FAIL("'%s' is damaged", path);
    if (rd64(b + 24) != model_hash(m) || rd64(b + 32) != m->param_count)
        FAIL("'%s' is for the model '%.*s', whose params differ from those of '%s'", path, (int)nl,
             (const char *)b + 52, m->name);
    size_t at = 52 + nl;
    while (at + 12 <= len - 8) {
        const unsigned char *tag = b + at;
        uint64_t n = rd64(b + at + 4);
        at += 12;
        if (n > len - 8 - at)
            FAIL("'%s' is damaged (a section runs past the end)", path);
        if (!memcmp(tag, "PARM", 4)) {
            if (n != m->param_count * (size_t)real)
                FAIL("'%s' is damaged (params section of %llu bytes)", path, (unsigned long long)n);
            ep->values = xmalloc(sizeof(double) * (m->param_count + 1));
            for (size_t i = 0; i < m->param_count; i++)
                ep->values[i] = rdreal(b + at + i * (size_t)real, real);
        } else if (!memcmp(tag, "STDZ", 4)) {
            uint64_t k = n >= 8 ? rd64(b + at) : 0;
            if (k != m->input_size || n != 8 + 16 * k)
                FAIL("'%s' is damaged (standardization section)", path);
            ep->mean = xmalloc(sizeof(double) * (k + 1));
            ep->std = xmalloc(sizeof(double) * (k + 1));
            for (size_t i = 0; i < k; i++) {
                ep->mean[i] = rdreal(b + at + 8 + 8 * i, 8);
                ep->std[i] = rdreal(b + at + 8 + 8 * (k + i), 8);
            }
        } else if (!memcmp(tag, "END ", 4)) {
            break;
        }
        at += n;
    }
    if (!ep->values)
        FAIL("'%s' has no params section", path);
    ok = 1;
done:
#undef FAIL
    free(b);
    if (!ok)
        params_file_free(ep);
    return ok;
}

void params_file_free(EmbeddedParams *ep)
{
    free(ep->values);
    free(ep->mean);
    free(ep->std);
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
