/*
 * printer.c: how generated C is written, for every emitter.
 *
 * One printer (emitf: indentation and a line), the expansion of the op
 * table's C templates (ops.def) into expressions, number literals, and the
 * escaping of text that goes into C comments and strings. Every emitter
 * (emit_*.c, conv.c, emit_scalar.c) writes through these, so a formula, a
 * literal or an escape is spelled in one place.
 */
#include "gradc.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

/* ------------------------------------------------------- op templates */

/* whether x can stand as an operand without parentheses: a name, a
 * number, an element access or a call */
static int simple(const char *x)
{
    int depth = 0;
    if (*x == '-')
        return 0;
    for (const char *q = x; *q; q++) {
        if (*q == '(' || *q == '[')
            depth++;
        else if (*q == ')' || *q == ']')
            depth--;
        else if (!depth && !isalnum((unsigned char)*q) && *q != '_' && *q != '.')
            return 0;
    }
    return 1;
}

static int word_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

const char *op_expr(Arena *ar, const Node *x, const char *a, const char *b, const CFlavour *fl)
{
    const char *t = op_c[x->op];
    if (!t)
        die("internal error: %s has no C template", op_name[x->op]);
    size_t cap = 256, n = 0;
    char *out = xmalloc(cap);
#define PUT(s)                                                  \
    do {                                                        \
        const char *s_ = (s);                                   \
        size_t k_ = strlen(s_);                                 \
        while (n + k_ + 1 > cap)                                \
            out = xrealloc(out, cap *= 2);                      \
        memcpy(out + n, s_, k_ + 1);                            \
        n += k_;                                                \
    } while (0)
    for (const char *q = t; *q; q++) {
        if (*q == '{') {
            const char *e = strchr(q, '}');
            size_t k = (size_t)(e - q - 1);
            if (!strncmp(q + 1, "f", k) && k == 1)
                PUT(fl->fs);
            else if (!strncmp(q + 1, "T", k) && k == 1)
                PUT(fl->T);
            else if (!strncmp(q + 1, "c", k) && k == 1)
                PUT(fl->c);
            else if (!strncmp(q + 1, "c2", k) && k == 2)
                PUT(fl->c2);
            else if (!strncmp(q + 1, "exp", k) && k == 3)
                PUT(fl->exp);
            else if (!strncmp(q + 1, "log1p", k) && k == 5)
                PUT(fl->log1p);
            else if (!strncmp(q + 1, "erf", k) && k == 3)
                PUT(fl->erf);
            else
                die("internal error: template of %s: unknown {%.*s}", op_name[x->op], (int)k, q + 1);
            q = e;
            continue;
        }
        if ((*q == 'a' || *q == 'b') && (q == t || !word_char(q[-1])) && !word_char(q[1])) {
            const char *v = *q == 'a' ? a : b;
            /* bare as a call's only argument, in parentheses elsewhere
             * unless it is one name, number or call */
            int arg = q > t && q[-1] == '(' && q[1] == ')';
            if (arg || simple(v)) {
                PUT(v);
            } else {
                PUT("(");
                PUT(v);
                PUT(")");
            }
            continue;
        }
        char one[2] = {*q, 0};
        PUT(one);
    }
#undef PUT
    char *r = arena_strdup(ar, out);
    free(out);
    return r;
}

int op_uses_vmath(Op op)
{
    if (op == OP_SOFTMAX || op == OP_LOG_SOFTMAX || op == OP_CE)
        return VM_EXP; /* their rows (emit_loops.c emit_rowwise) */
    const char *t = op_c[op];
    if (!t)
        return 0;
    return (strstr(t, "{exp}") || strstr(t, "{erf}") ? VM_EXP : 0) | (strstr(t, "{log1p}") ? VM_LOG1P : 0) |
           (strstr(t, "{erf}") ? VM_ERF : 0);
}

/* ---------------------------------------------------------------- names */

/* What generated C cannot use as a name of its own: C's keywords, the
 * macros and types <math.h>, <stddef.h> and <stdint.h> declare, the math
 * functions the generated code calls (from the op table's templates),
 * names reserved to the implementation (a leading underscore then a capital
 * or a second underscore: _Bool, __LINE__, __func__) and the generated
 * code's own names. A value may shadow a math function it does not call. */
static const char *const reserved_words[] = {
    /* keywords, C99 and C11 */
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum",
    "extern", "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return",
    "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void",
    "volatile", "while", "asm", "typeof", "bool", "true", "false", "alignas", "alignof", "noreturn",
    "static_assert", "thread_local",
    /* <stddef.h>, <stdint.h> */
    "NULL", "offsetof", "size_t", "ptrdiff_t", "wchar_t", "max_align_t", "int8_t", "int16_t", "int32_t",
    "int64_t", "uint8_t", "uint16_t", "uint32_t", "uint64_t", "intptr_t", "uintptr_t", "intmax_t",
    "uintmax_t", "INT8_MAX", "INT16_MAX", "INT32_MAX", "INT64_MAX", "UINT8_MAX", "UINT16_MAX",
    "UINT32_MAX", "UINT64_MAX", "SIZE_MAX", "INT64_C", "UINT64_C", "PTRDIFF_MAX",
    /* <math.h> macros and types */
    "HUGE_VAL", "HUGE_VALF", "HUGE_VALL", "INFINITY", "NAN", "FP_INFINITE", "FP_NAN", "FP_NORMAL",
    "FP_SUBNORMAL", "FP_ZERO", "FP_FAST_FMA", "FP_FAST_FMAF", "FP_FAST_FMAL", "FP_ILOGB0",
    "FP_ILOGBNAN", "MATH_ERRNO", "MATH_ERREXCEPT", "math_errhandling", "float_t", "double_t",
    "fpclassify", "isfinite", "isinf", "isnan", "isnormal", "signbit", "isgreater", "isgreaterequal",
    "isless", "islessequal", "islessgreater", "isunordered", "M_PI", "M_E", "errno",
    /* what the generated code calls besides the templates' functions */
    "exp", "expf", "log", "logf", "log1p", "log1pf", "erf", "erff", "sqrt", "sqrtf", "cos", "fabs", "fabsf", "fmaf", "fma",
    "main", NULL};

/* whether name is a function the op table's templates call (erff,
 * expm1, ...): a value of that name would hide it inside a function */
static int template_call(const char *name)
{
    size_t n = strlen(name);
    for (int op = 0; op < OP_COUNT; op++)
        for (const char *t = op_c[op]; t && (t = strstr(t, name)) != NULL; t += n) {
            const char *e = t + n;
            int start = t == op_c[op] || !(isalnum((unsigned char)t[-1]) || t[-1] == '_');
            if (start && (*e == '(' || !strncmp(e, "{f}(", 4)))
                return 1;
            if (start && n > 1 && (name[n - 1] == 'f' || name[n - 1] == 'l') && !strncmp(t + n - 1, "{f}(", 4))
                return 1; /* erff, erfl */
        }
    return 0;
}

int c_reserved(const char *name)
{
    if (name[0] == '_' && (name[1] == '_' || isupper((unsigned char)name[1])))
        return 1; /* _Bool, __LINE__, __func__, ... */
    for (int i = 0; reserved_words[i]; i++)
        if (!strcmp(name, reserved_words[i]))
            return 1;
    return template_call(name);
}

/* ------------------------------------------- declarations, definitions */

/* the change of brace depth along line s, outside comments, strings and
 * characters; *in_comment carries a block comment over lines */
static int brace_delta(const char *s, int *in_comment)
{
    int d = 0;
    for (; *s; s++) {
        if (*in_comment) {
            if (s[0] == '*' && s[1] == '/') {
                *in_comment = 0;
                s++;
            }
        } else if (s[0] == '/' && s[1] == '*') {
            *in_comment = 1;
            s++;
        } else if (s[0] == '/' && s[1] == '/') {
            break;
        } else if (*s == '"' || *s == '\'') {
            char q = *s;
            for (s++; *s && *s != q; s++)
                if (*s == '\\' && s[1])
                    s++;
            if (!*s)
                break;
        } else if (*s == '{') {
            d++;
        } else if (*s == '}') {
            d--;
        }
    }
    return d;
}

/* the last character of s outside comments and blanks, 0 if none */
static char last_code(const char *s)
{
    char last = 0;
    int c = 0;
    for (; *s; s++) {
        if (c) {
            if (s[0] == '*' && s[1] == '/') {
                c = 0;
                s++;
            }
        } else if (s[0] == '/' && s[1] == '*') {
            c = 1;
            s++;
        } else if (!isspace((unsigned char)*s)) {
            last = *s;
        }
    }
    return last;
}

static int is_conditional(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s != '#')
        return 0;
    s++;
    while (*s == ' ' || *s == '\t')
        s++;
    return !strncmp(s, "if", 2) || !strncmp(s, "elif", 4) || !strncmp(s, "else", 4) || !strncmp(s, "endif", 5);
}

void split_definitions(const char *text, FILE *decls, FILE *defs)
{
    /* an item: the lines from the end of the previous one (comments
     * before it included) to the line where it closes at depth 0 */
    size_t cap = 4096, len = 0;
    char *item = xmalloc(cap);
    size_t head_end = 0; /* item's length when its first brace opened */
    int depth = 0, in_comment = 0, cont = 0, opened = 0;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
        char *line = xmalloc(n + 1);
        memcpy(line, p, n);
        line[n] = 0;
        p += n;
        if (depth == 0 && !in_comment && (cont || line[0] == '#')) {
            /* a directive at file scope: conditionals in both parts (the
             * definitions stay under their condition), others declare */
            if (!cont && is_conditional(line)) {
                fputs(line, decls);
                fputs(line, defs);
            } else {
                fputs(line, decls);
            }
            cont = n >= 2 && line[n - 2] == '\\';
            free(line);
            continue;
        }
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            item = xrealloc(item, cap);
        }
        int was = depth;
        depth += brace_delta(line, &in_comment);
        if (was == 0 && depth > 0 && !opened) {
            opened = 1;
            head_end = len + (size_t)(strchr(line, '{') - line);
        }
        memcpy(item + len, line, n);
        len += n;
        item[len] = 0;
        free(line);
        if (depth > 0 || in_comment)
            continue;
        /* the item ends at a line that closes it: '}' or ';' at depth 0
         * (a comment goes with what follows it) */
        char last = last_code(item);
        if (!last) {
            if (!strstr(item, "/*")) { /* blank lines between items */
                fputs(item, decls);
                len = 0;
            }
            continue;
        }
        if (last != '}' && last != ';')
            continue;
        if (opened && last == '}') {
            /* a function definition: its prototype declares it */
            size_t h = head_end;
            while (h > 0 && (item[h - 1] == ' ' || item[h - 1] == '\n'))
                h--;
            /* the prototype without the comments before it */
            size_t start = 0;
            for (size_t k = 0; k < h; k++) {
                if (item[k] == '/' && item[k + 1] == '*') {
                    const char *c = strstr(item + k + 2, "*/");
                    if (!c || (size_t)(c - item) >= h)
                        break;
                    k = (size_t)(c - item) + 1;
                    start = k + 1;
                }
            }
            while (start < h && (item[start] == '\n' || item[start] == ' '))
                start++;
            fwrite(item + start, 1, h - start, decls);
            fputs(";\n", decls);
            fputs(item, defs);
            fputc('\n', defs);
        } else {
            fputs(item, decls);
        }
        len = 0;
        opened = 0;
    }
    if (len)
        fputs(item, decls);
    free(item);
}

/* ----------------------------------------------------- generated names */

const char *c_identifier(Arena *a, const char *prefix, const char *name)
{
    char *v = arena_printf(a, "%s%s", prefix, name);
    for (char *q = v; *q; q++)
        if (!isalnum((unsigned char)*q) && *q != '_')
            *q = '_';
    return v;
}

int c_name_unsafe(const char *v, const char *prefix, const char *PREFIX)
{
    size_t lp = strlen(prefix);
    return c_reserved(v) || !strncmp(v, prefix, lp) || !strncmp(v, PREFIX, lp) || !strncmp(v, "gradc_", 6) ||
           !strncmp(v, "GRADC_", 6);
}

const char **param_macro_names(Model *m)
{
    Arena *a = m->g.arena;
    const char **up = arena_alloc(a, sizeof(char *) * (size_t)(m->nparams ? m->nparams : 1));
    for (int i = 0; i < m->nparams; i++) {
        char *u = (char *)c_identifier(a, "", m->params[i]->name);
        for (char *q = u; *q; q++)
            *q = (char)toupper((unsigned char)*q);
        const char *name = u;
        for (int k = 2;; k++) {
            int clash = 0;
            for (int j = 0; j < i && !clash; j++)
                clash = !strcmp(up[j], name);
            if (!clash)
                break;
            name = arena_printf(a, "%s_%d", u, k); /* W and w, or h.W beside h_W */
        }
        up[i] = name;
    }
    return up;
}

/* ------------------------------------------ text into generated C */

const char *c_string_escape(Arena *a, const char *s)
{
    size_t n = 0;
    for (const char *q = s; *q; q++)
        n += 4;
    char *o = arena_alloc(a, n + 1), *w = o;
    for (const unsigned char *q = (const unsigned char *)s; *q; q++) {
        if (*q == '"' || *q == '\\') {
            *w++ = '\\';
            *w++ = (char)*q;
        } else if (*q == '\n') {
            *w++ = '\\';
            *w++ = 'n';
        } else if (*q < 32 || *q == 127 || *q == '?') { /* '?': no trigraphs */
            w += sprintf(w, "\\%03o", *q);
        } else {
            *w++ = (char)*q;
        }
    }
    *w = 0;
    return o;
}

const char *c_comment_escape(Arena *a, const char *s)
{
    char *o = arena_alloc(a, strlen(s) * 2 + 1), *w = o;
    for (const unsigned char *q = (const unsigned char *)s; *q; q++) {
        if (*q == '*' && q[1] == '/') {
            *w++ = '*';
            *w++ = ' '; /* a comment never closes early */
        } else if (*q == '/' && q[1] == '*') {
            *w++ = '/';
            *w++ = ' ';
        } else if (*q < 32 || *q == 127) {
            *w++ = '?';
        } else if (*q == '\\' && (q[1] == '\n' || !q[1])) {
            *w++ = '?'; /* no line splice */
        } else {
            *w++ = (char)*q;
        }
    }
    *w = 0;
    return o;
}

/* ------------------------------------------------------- lines of C */

void emit_vline(FILE *out, int indent, const char *fmt, va_list ap)
{
    for (int i = 0; i < indent; i++)
        fputs("    ", out);
    vfprintf(out, fmt, ap);
    fputc('\n', out);
}
