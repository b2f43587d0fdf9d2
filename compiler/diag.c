/*
 * diag.c: diagnostics as gcc and clang print them.
 *
 *   seed.nn:14:16: error: unknown name 'W4'
 *      14 | yhat = sigmoid(W4 @ a2 + b3)
 *         |                ^~
 *
 * diag_init builds a line map of the source once (byte offset of every line
 * start), so a location becomes its source line in O(1). Every pass reports
 * through here and keeps going; the counts tell main.c whether to stop.
 * The source may hold any bytes (NULs, binary garbage): the echoed line
 * prints non-printable bytes as '?', so neither the terminal nor the caret
 * alignment can be disturbed.
 */
#include "gradc.h"

#include <stdlib.h>
#include <string.h>

void diag_init(Diag *d, const char *filename, const char *src, size_t len)
{
    if (!src) {
        src = "";
        len = 0;
    }
    d->filename = filename ? filename : "<input>";
    d->src = src;
    d->len = len;
    d->errors = 0;
    d->warnings = 0;
    d->max_errors = 100;
    d->out = stderr;
    d->color = 0;

    /* A line starts at offset 0 and after every '\n' that is not the last
     * byte: "a\n" is one line, "" is one empty line. */
    int n = 1;
    for (size_t i = 0; i < len; i++)
        if (src[i] == '\n' && i + 1 < len)
            n++;
    d->line_start = xmalloc(sizeof(int) * (size_t)n);
    d->nlines = n;
    d->line_start[0] = 0;
    int k = 1;
    for (size_t i = 0; i < len; i++)
        if (src[i] == '\n' && i + 1 < len)
            d->line_start[k++] = (int)(i + 1);
}

void diag_release(Diag *d)
{
    free(d->line_start);
    d->line_start = NULL;
    d->nlines = 0;
}

/* Length of line (1-based) without its '\n' (and without a '\r' before it). */
static int line_length(const Diag *d, int line)
{
    size_t start = (size_t)d->line_start[line - 1];
    size_t end = start;
    while (end < d->len && d->src[end] != '\n')
        end++;
    if (end < d->len && end > start && d->src[end - 1] == '\r')
        end--;
    return (int)(end - start);
}

/* Moves a location that lies past the end of its line or of the file to the
 * end of the last line (unexpected end of input points there). */
static Loc clamp_loc(const Diag *d, Loc loc)
{
    if (loc.first_line > d->nlines) {
        loc.first_line = d->nlines;
        loc.first_column = line_length(d, d->nlines) + 1;
        loc.last_line = loc.first_line;
        loc.last_column = loc.first_column;
    }
    int len = line_length(d, loc.first_line);
    if (loc.first_column < 1)
        loc.first_column = 1;
    if (loc.first_column > len + 1)
        loc.first_column = len + 1;
    if (loc.last_line < loc.first_line ||
        (loc.last_line == loc.first_line && loc.last_column < loc.first_column)) {
        loc.last_line = loc.first_line;
        loc.last_column = loc.first_column;
    }
    return loc;
}

static int printable(unsigned char c)
{
    return c >= 0x20 && c < 0x7f;
}

/* The source line with its number, then the caret line under loc. */
static void show_line(const Diag *d, Loc loc)
{
    FILE *out = d->out;
    const char *line = d->src + d->line_start[loc.first_line - 1];
    int len = line_length(d, loc.first_line);

    /* The margin is 4 digits wide, or wider for long files. */
    int width = 4;
    for (int n = loc.first_line; n >= 10000; n /= 10)
        width++;
    fprintf(out, " %*d | ", width, loc.first_line);
    for (int i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        fputc(c == '\t' || printable(c) ? c : '?', out);
    }
    fputc('\n', out);

    /* The span on this line: to last_column, or to the end of the line
     * when it goes on to later lines. */
    int from = loc.first_column;
    int to = loc.last_line > loc.first_line ? len : loc.last_column;
    if (to > len)
        to = len;
    if (to < from)
        to = from;
    fprintf(out, " %*s | ", width, "");
    for (int i = 1; i < from; i++)
        fputc(line[i - 1] == '\t' ? '\t' : ' ', out);
    fputc('^', out);
    for (int i = from + 1; i <= to; i++)
        fputc('~', out);
    fputc('\n', out);
}

void diag_verror(Diag *d, const char *kind, Loc loc, const char *fmt, va_list ap)
{
    int is_error = strcmp(kind, "error") == 0;
    if (is_error)
        d->errors++;
    else if (strcmp(kind, "warning") == 0)
        d->warnings++;

    /* Past the limit: say so once, then stay quiet (notes of suppressed
     * errors included), but keep counting. */
    if (d->max_errors > 0 && d->errors > d->max_errors) {
        if (is_error && d->errors == d->max_errors + 1)
            fprintf(d->out, "%s: too many errors, stopping\n", d->filename);
        return;
    }

    if (loc.first_line <= 0) {
        fprintf(d->out, "%s: %s: ", d->filename, kind);
        vfprintf(d->out, fmt, ap);
        fputc('\n', d->out);
        return;
    }
    loc = clamp_loc(d, loc);
    fprintf(d->out, "%s:%d:%d: %s: ", d->filename, loc.first_line, loc.first_column, kind);
    vfprintf(d->out, fmt, ap);
    fputc('\n', d->out);
    show_line(d, loc);
}

void diag_error(Diag *d, Loc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_verror(d, "error", loc, fmt, ap);
    va_end(ap);
}

void diag_warning(Diag *d, Loc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_verror(d, "warning", loc, fmt, ap);
    va_end(ap);
}

void diag_note(Diag *d, Loc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_verror(d, "note", loc, fmt, ap);
    va_end(ap);
}

Loc loc_span(Loc first, Loc last)
{
    if (first.first_line <= 0)
        return last;
    if (last.first_line <= 0)
        return first;
    Loc l = first;
    l.last_line = last.last_line;
    l.last_column = last.last_column;
    return l;
}
