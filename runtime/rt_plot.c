/*
 * rt_plot.c: training logs and their plots.
 *
 * `train --log FILE.csv` writes a row per epoch:
 *
 *   epoch,loss,valid_loss,valid_acc,lr,seconds
 *   1,0.693147,0.690001,0.55,0.1,0.004
 *
 * (valid_loss and valid_acc empty without validation data or accuracy;
 * seconds since the run started). `plot LOG.csv` and `train --plot FILE.svg`
 * draw it: an SVG line chart written here, with no library, in the spirit of
 * a matplotlib default: axes with round ticks, light grid lines, the training
 * and validation loss against the epoch (on a log axis when the loss spans
 * more than two decades), the validation accuracy dashed on a right axis, a
 * legend and a title.
 */
#include "rt_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* ------------------------------------------------------------------- logs */

/* A value of the log; NaN is an empty field. */
static void field(FILE *f, const char *fmt, double v)
{
    fputc(',', f);
    if (isfinite(v))
        fprintf(f, fmt, v);
}

void grt_log_row(FILE *f, double epoch, double loss, double valid_loss, double valid_acc,
                 double lr, double seconds)
{
    fprintf(f, "%.0f", epoch);
    field(f, "%.9g", loss);
    field(f, "%.9g", valid_loss);
    field(f, "%.6g", valid_acc);
    field(f, "%.9g", lr);
    field(f, "%.3f", seconds);
    fputc('\n', f);
}

/* Columns of a log, by header name. */
enum { L_EPOCH, L_LOSS, L_VLOSS, L_VACC, L_LR, L_SEC, L_N };
static const char *const COLUMNS[L_N] = {"epoch", "loss", "valid_loss", "valid_acc", "lr",
                                         "seconds"};

/* The field at s[0..len) trimmed of blanks and CR. */
static void trim(const char **s, size_t *len)
{
    while (*len && (**s == ' ' || **s == '\t'))
        (*s)++, (*len)--;
    while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t' || (*s)[*len - 1] == '\r' ||
                    (*s)[*len - 1] == '\n'))
        (*len)--;
}

int grt_log_read(const char *path, grt_history *h, grt_err *e)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long lineno = 0;
    int col[16], ncol = 0, status = 0, k;
    int where[L_N];

    memset(h, 0, sizeof *h);
    if (!f)
        return grt_fail(e, GRT_EXIT_USAGE, GRT_E_IO, "%s: error: cannot open: %s", path,
                        strerror(errno));
    for (k = 0; k < L_N; k++)
        where[k] = -1;
    while ((got = getline(&line, &cap, f)) != -1) {
        double v[L_N];
        const char *p = line;
        size_t len = (size_t)got;
        int i;
        lineno++;
        trim(&p, &len);
        if (len == 0)
            continue;
        if (ncol == 0) {
            /* the header: which column is which */
            while (ncol < 16) {
                size_t n = 0;
                const char *q;
                while (n < len && p[n] != ',')
                    n++;
                q = p;
                {
                    size_t m = n;
                    trim(&q, &m);
                    col[ncol] = -1;
                    for (k = 0; k < L_N; k++)
                        if (strlen(COLUMNS[k]) == m && strncmp(q, COLUMNS[k], m) == 0) {
                            col[ncol] = k;
                            where[k] = ncol;
                        }
                }
                ncol++;
                if (n >= len)
                    break;
                p += n + 1;
                len -= n + 1;
            }
            if (where[L_EPOCH] < 0 || where[L_LOSS] < 0) {
                status = grt_fail(e, GRT_EXIT_DATA, GRT_E_LOG,
                                  "%s:%ld:1: error: not a training log: the header needs "
                                  "columns 'epoch' and 'loss' (as --log writes: " GRT_LOG_HEADER
                                  ")",
                                  path, lineno);
                break;
            }
            continue;
        }
        for (k = 0; k < L_N; k++)
            v[k] = NAN;
        for (i = 0; i < ncol; i++) {
            size_t n = 0, m;
            const char *q = p;
            double x;
            while (n < len && p[n] != ',')
                n++;
            m = n;
            trim(&q, &m);
            if (m > 0 && col[i] >= 0) {
                int r = grt_parse_number(q, m, &x);
                if (r != GRT_NUM_OK) {
                    status = grt_fail(e, GRT_EXIT_DATA, GRT_E_LOG,
                                      "%s:%ld:%ld: error: '%.*s' is not a number (column '%s')",
                                      path, lineno, (long)(q - line) + 1, (int)(m > 40 ? 40 : m),
                                      q, COLUMNS[col[i]]);
                    break;
                }
                v[col[i]] = x;
            }
            if (n >= len) {
                if (i + 1 < ncol) {
                    status = grt_fail(e, GRT_EXIT_DATA, GRT_E_LOG,
                                      "%s:%ld:%ld: error: row has %d fields, the header %d", path,
                                      lineno, (long)(p + n - line) + 1, i + 1, ncol);
                }
                break;
            }
            if (i + 1 == ncol) {
                status = grt_fail(e, GRT_EXIT_DATA, GRT_E_LOG,
                                  "%s:%ld:%ld: error: row has more fields than the header's %d",
                                  path, lineno, (long)(p + n - line) + 2, ncol);
                break;
            }
            p += n + 1;
            len -= n + 1;
        }
        if (status)
            break;
        if (!isfinite(v[L_EPOCH])) {
            status = grt_fail(e, GRT_EXIT_DATA, GRT_E_LOG, "%s:%ld:1: error: no epoch number",
                              path, lineno);
            break;
        }
        grt_history_add(h, v[L_EPOCH], v[L_LOSS], v[L_VLOSS], v[L_VACC], v[L_LR], v[L_SEC]);
    }
    if (!status && ferror(f))
        status = grt_fail(e, GRT_EXIT_USAGE, GRT_E_IO, "%s: error: cannot read: %s", path,
                          strerror(errno ? errno : EIO));
    if (!status && h->n == 0)
        status = grt_fail(e, GRT_EXIT_DATA, GRT_E_EMPTY,
                          ncol ? "%s: error: no epochs in the log, only a header"
                               : "%s: error: empty file, not a training log",
                          path);
    free(line);
    fclose(f);
    if (status)
        grt_history_free(h);
    return status;
}

/* ------------------------------------------------------------------ plots */

/* The canvas and the plot area inside it, in SVG units (pixels). */
#define W 720.0
#define H 440.0
#define LEFT 78.0
#define TOP 54.0
#define BOTTOM (H - 58.0)

/* A 1-2-5 step giving about `want` intervals over range. */
static double nice_step(double range, double want)
{
    double raw = range / want, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

/* One axis: the data range it shows and how it maps. */
typedef struct axis {
    double lo, hi; /* the range shown */
    int log;       /* log10 scale */
    double a, b;   /* pixels: a at lo, b at hi */
} axis;

static double at(const axis *x, double v)
{
    double t = x->log ? (log10(v) - log10(x->lo)) / (log10(x->hi) - log10(x->lo))
                      : (v - x->lo) / (x->hi - x->lo);
    return x->a + t * (x->b - x->a);
}

/* Min and max of the finite values of up to two series. */
static int range_of(const double *a, const double *b, size_t n, double *lo, double *hi)
{
    size_t i;
    int any = 0;
    for (i = 0; i < n; i++) {
        const double v[2] = {a ? a[i] : NAN, b ? b[i] : NAN};
        int k;
        for (k = 0; k < 2; k++)
            if (isfinite(v[k])) {
                if (!any || v[k] < *lo)
                    *lo = v[k];
                if (!any || v[k] > *hi)
                    *hi = v[k];
                any = 1;
            }
    }
    return any;
}

/* Extends a linear axis to round ticks; returns the step. */
static double linear_axis(axis *x, double lo, double hi, double want)
{
    double step;
    if (!(hi > lo)) {
        double pad = fabs(lo) > 0 ? fabs(lo) * 0.1 : 1;
        lo -= pad;
        hi += pad;
    }
    step = nice_step(hi - lo, want);
    x->lo = floor(lo / step + 1e-9) * step;
    x->hi = ceil(hi / step - 1e-9) * step;
    x->log = 0;
    return step;
}

static void escape(grt_buf *b, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '&': grt_buf_printf(b, "&amp;"); break;
        case '<': grt_buf_printf(b, "&lt;"); break;
        case '>': grt_buf_printf(b, "&gt;"); break;
        case '"': grt_buf_printf(b, "&quot;"); break;
        default:
            if ((unsigned char)*s >= 0x20)
                grt_buf_put(b, s, 1);
        }
}

/* A tick label: %g without noise like 0.30000000000000004. */
static void label(char *dst, size_t cap, double v, double step)
{
    if (fabs(v) < step * 1e-6)
        v = 0;
    snprintf(dst, cap, "%.6g", v);
}

/* A series as polylines (broken at missing values) and, when few, dots. */
static void series(grt_buf *b, const axis *x, const axis *y, const double *xs, const double *ys,
                   size_t n, const char *color, const char *dash)
{
    size_t i;
    int open = 0, dots = n <= 30;
    for (i = 0; i <= n; i++) {
        int ok = i < n && isfinite(ys[i]) && isfinite(xs[i]) && (!y->log || ys[i] > 0);
        if (ok && !open) {
            grt_buf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s%s%s "
                              "stroke-linejoin=\"round\" points=\"",
                           color, dash ? " stroke-dasharray=\"" : "", dash ? dash : "",
                           dash ? "\"" : "");
            open = 1;
        }
        if (ok)
            grt_buf_printf(b, "%.1f,%.1f ", at(x, xs[i]), at(y, ys[i]));
        if (!ok && open) {
            grt_buf_printf(b, "\"/>\n");
            open = 0;
        }
    }
    if (dots)
        for (i = 0; i < n; i++)
            if (isfinite(ys[i]) && isfinite(xs[i]) && (!y->log || ys[i] > 0))
                grt_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n",
                               at(x, xs[i]), at(y, ys[i]), color);
}

char *grt_plot_svg(const grt_history *h, const char *title, size_t *size)
{
    grt_buf b = {NULL, 0, 0};
    axis x, y, r;
    double lo = 0, hi = 1, step, xstep, t, alo = 0, ahi = 1, rstep = 0.1;
    double right = W - 30;
    int has_valid = 0, has_acc, k;
    size_t i;
    char txt[64];

    for (i = 0; i < h->n; i++)
        has_valid |= isfinite(h->valid_loss[i]);
    has_acc = range_of(h->valid_acc, NULL, h->n, &alo, &ahi);
    if (has_acc)
        right = W - 72;

    /* x: the epochs, whole-number ticks */
    {
        double elo = 0, ehi = 1;
        if (!range_of(h->epoch, NULL, h->n, &elo, &ehi))
            elo = 0, ehi = 1;
        if (!(ehi > elo))
            elo -= 1, ehi += 1;
        xstep = nice_step(ehi - elo, 8);
        if (xstep < 1)
            xstep = 1;
        x.lo = elo;
        x.hi = ehi;
        x.log = 0;
        x.a = LEFT;
        x.b = right;
    }
    /* y: the losses, log10 when they span more than two decades */
    if (!range_of(h->loss, has_valid ? h->valid_loss : NULL, h->n, &lo, &hi))
        lo = 0, hi = 1;
    y.a = BOTTOM;
    y.b = TOP;
    if (lo > 0 && hi / lo > 100) {
        y.log = 1;
        y.lo = pow(10, floor(log10(lo)));
        y.hi = pow(10, ceil(log10(hi)));
        step = 0;
    } else {
        step = linear_axis(&y, lo, hi, 6);
    }
    /* right: the accuracy */
    if (has_acc) {
        rstep = linear_axis(&r, alo, ahi, 5);
        if (r.lo < 0)
            r.lo = 0;
        if (r.hi > 1 && ahi <= 1)
            r.hi = 1;
        r.a = BOTTOM;
        r.b = TOP;
    }

    grt_buf_printf(&b,
                   "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                   "viewBox=\"0 0 %.0f %.0f\" font-family=\"Helvetica, Arial, sans-serif\" "
                   "font-size=\"12\">\n",
                   W, H, W, H);
    grt_buf_printf(&b, "<title>");
    escape(&b, title);
    grt_buf_printf(&b, "</title>\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    grt_buf_printf(&b, "<text x=\"%.1f\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">",
                   (LEFT + right) / 2);
    escape(&b, title);
    grt_buf_printf(&b, "</text>\n");

    /* grid and ticks */
    grt_buf_printf(&b, "<g stroke=\"#e3e3e3\" stroke-width=\"1\">\n");
    for (t = ceil(x.lo / xstep) * xstep; t <= x.hi + 1e-9; t += xstep)
        grt_buf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", at(&x, t),
                       TOP, at(&x, t), BOTTOM);
    if (y.log) {
        for (t = y.lo; t <= y.hi * 1.0001; t *= 10)
            grt_buf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", LEFT,
                           at(&y, t), right, at(&y, t));
    } else {
        for (t = y.lo; t <= y.hi + step * 1e-6; t += step)
            grt_buf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", LEFT,
                           at(&y, t), right, at(&y, t));
    }
    grt_buf_printf(&b, "</g>\n");

    /* axes, tick marks and labels */
    grt_buf_printf(&b, "<g stroke=\"#333\" stroke-width=\"1\" fill=\"none\">\n"
                       "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>\n",
                   LEFT, TOP, right - LEFT, BOTTOM - TOP);
    grt_buf_printf(&b, "</g>\n<g fill=\"#333\">\n");
    for (t = ceil(x.lo / xstep) * xstep; t <= x.hi + 1e-9; t += xstep) {
        label(txt, sizeof txt, t, xstep);
        grt_buf_printf(&b,
                       "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>"
                       "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                       at(&x, t), BOTTOM, at(&x, t), BOTTOM + 5, at(&x, t), BOTTOM + 19, txt);
    }
    if (y.log) {
        for (t = y.lo; t <= y.hi * 1.0001; t *= 10) {
            snprintf(txt, sizeof txt, "%g", t);
            grt_buf_printf(&b,
                           "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                           "stroke=\"#333\"/><text x=\"%.1f\" y=\"%.1f\" "
                           "text-anchor=\"end\">%s</text>\n",
                           LEFT - 5, at(&y, t), LEFT, at(&y, t), LEFT - 8, at(&y, t) + 4, txt);
            /* minor ticks at 2..9 */
            for (k = 2; k < 10 && t * k < y.hi; k++)
                grt_buf_printf(&b,
                               "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                               "stroke=\"#333\"/>\n",
                               LEFT - 3, at(&y, t * k), LEFT, at(&y, t * k));
        }
    } else {
        for (t = y.lo; t <= y.hi + step * 1e-6; t += step) {
            label(txt, sizeof txt, t, step);
            grt_buf_printf(&b,
                           "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                           "stroke=\"#333\"/><text x=\"%.1f\" y=\"%.1f\" "
                           "text-anchor=\"end\">%s</text>\n",
                           LEFT - 5, at(&y, t), LEFT, at(&y, t), LEFT - 8, at(&y, t) + 4, txt);
        }
    }
    if (has_acc)
        for (t = r.lo; t <= r.hi + rstep * 1e-6; t += rstep) {
            label(txt, sizeof txt, t, rstep);
            grt_buf_printf(&b,
                           "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                           "stroke=\"#333\"/><text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                           right, at(&r, t), right + 5, at(&r, t), right + 8, at(&r, t) + 4, txt);
        }
    grt_buf_printf(&b,
                   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">epoch</text>\n"
                   "<text transform=\"translate(18 %.1f) rotate(-90)\" "
                   "text-anchor=\"middle\">%s</text>\n",
                   (LEFT + right) / 2, H - 18, (TOP + BOTTOM) / 2,
                   y.log ? "loss (log scale)" : "loss");
    if (has_acc)
        grt_buf_printf(&b,
                       "<text transform=\"translate(%.1f %.1f) rotate(90)\" "
                       "text-anchor=\"middle\">valid accuracy</text>\n",
                       W - 16, (TOP + BOTTOM) / 2);
    grt_buf_printf(&b, "</g>\n");

    /* the curves */
    series(&b, &x, &y, h->epoch, h->loss, h->n, "#1f77b4", NULL);
    if (has_valid)
        series(&b, &x, &y, h->epoch, h->valid_loss, h->n, "#ff7f0e", NULL);
    if (has_acc)
        series(&b, &x, &r, h->epoch, h->valid_acc, h->n, "#2ca02c", "6 4");

    /* the legend, one row between the title and the plot, centred */
    {
        const char *names[3] = {"train loss", "valid loss", "valid accuracy"};
        const char *colors[3] = {"#1f77b4", "#ff7f0e", "#2ca02c"};
        const double width[3] = {95, 95, 125};
        int show[3] = {1, has_valid, has_acc};
        double total = 0, lx, ly = TOP - 14;
        for (k = 0; k < 3; k++)
            total += show[k] ? width[k] : 0;
        lx = (LEFT + right) / 2 - total / 2;
        for (k = 0; k < 3; k++) {
            if (!show[k])
                continue;
            grt_buf_printf(&b,
                           "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                           "stroke-width=\"2\"%s/><text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                           lx, ly - 4, lx + 22, ly - 4, colors[k],
                           k == 2 ? " stroke-dasharray=\"6 4\"" : "", lx + 28, ly, names[k]);
            lx += width[k];
        }
    }
    grt_buf_printf(&b, "</svg>\n");
    *size = b.n;
    grt_buf_put(&b, "", 1); /* a terminator, not counted */
    return (char *)b.p;
}
