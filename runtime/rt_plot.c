/*
 * rt_plot.c: the plots of training histories (rt_history.c): `plot LOG.csv`
 * and `train --plot FILE.svg` draw an SVG line chart written here, with no
 * library, in the spirit of a matplotlib default: axes with round ticks,
 * light grid lines, the training and validation loss against the epoch (or
 * step; on a log axis when the loss spans more than two decades), the
 * accuracies dashed on a right axis from 0 to 1, the epoch whose params
 * early stopping kept marked, a legend and a title.
 */
#include "rt_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

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
    int has_valid = 0, has_acc, has_tacc, has_vacc, k;
    size_t i, n = h->n;
    char txt[64];
    /* the rows' columns, as the curves want them */
    double *cols = grt_xmalloc(5 * (n ? n : 1), sizeof(double));
    double *ex = cols, *tl = cols + n, *ta = cols + 2 * n, *vl = cols + 3 * n, *va = cols + 4 * n;

    for (i = 0; i < n; i++) {
        ex[i] = h->row[i].x;
        tl[i] = h->row[i].loss;
        ta[i] = h->row[i].acc;
        vl[i] = h->row[i].val_loss;
        va[i] = h->row[i].val_acc;
        has_valid |= isfinite(vl[i]);
    }
    has_tacc = range_of(ta, NULL, n, &alo, &ahi);
    has_vacc = range_of(va, NULL, n, &alo, &ahi);
    has_acc = has_tacc || has_vacc;
    if (has_acc)
        right = W - 72;

    /* x: the epochs, whole-number ticks */
    {
        double elo = 0, ehi = 1;
        if (!range_of(ex, NULL, n, &elo, &ehi))
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
    if (!range_of(tl, has_valid ? vl : NULL, n, &lo, &hi))
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
    /* right: the accuracy, always the whole of 0 to 1, so that 0.93 and 0.95
     * look as close as they are */
    if (has_acc) {
        r.lo = 0;
        r.hi = 1;
        r.log = 0;
        rstep = 0.2;
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
                   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n"
                   "<text transform=\"translate(18 %.1f) rotate(-90)\" "
                   "text-anchor=\"middle\">%s</text>\n",
                   (LEFT + right) / 2, H - 18, h->by_step ? "step" : "epoch",
                   (TOP + BOTTOM) / 2, y.log ? "loss (log scale)" : "loss");
    if (has_acc)
        grt_buf_printf(&b,
                       "<text transform=\"translate(%.1f %.1f) rotate(90)\" "
                       "text-anchor=\"middle\">accuracy</text>\n",
                       W - 16, (TOP + BOTTOM) / 2);
    grt_buf_printf(&b, "</g>\n");

    /* the epoch early stopping kept */
    if (h->kept > 0 && h->kept >= x.lo && h->kept <= x.hi)
        grt_buf_printf(&b,
                       "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#777\" "
                       "stroke-dasharray=\"2 3\"/><text x=\"%.1f\" y=\"%.1f\" fill=\"#555\" "
                       "text-anchor=\"middle\">kept</text>\n",
                       at(&x, h->kept), TOP, at(&x, h->kept), BOTTOM, at(&x, h->kept), TOP + 14);

    /* the curves: losses solid, accuracies dashed */
    series(&b, &x, &y, ex, tl, n, "#1f77b4", NULL);
    if (has_valid)
        series(&b, &x, &y, ex, vl, n, "#ff7f0e", NULL);
    if (has_tacc)
        series(&b, &x, &r, ex, ta, n, "#1f77b4", "6 4");
    if (has_vacc)
        series(&b, &x, &r, ex, va, n, "#ff7f0e", "6 4");

    /* the legend, one row between the title and the plot, centred */
    {
        const char *names[4] = {"train loss", "valid loss", "train acc", "valid acc"};
        const char *colors[4] = {"#1f77b4", "#ff7f0e", "#1f77b4", "#ff7f0e"};
        const double width[4] = {95, 95, 90, 90};
        int show[4] = {1, has_valid, has_tacc, has_vacc};
        double total = 0, lx, ly = TOP - 14;
        for (k = 0; k < 4; k++)
            total += show[k] ? width[k] : 0;
        lx = (LEFT + right) / 2 - total / 2;
        for (k = 0; k < 4; k++) {
            if (!show[k])
                continue;
            grt_buf_printf(&b,
                           "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                           "stroke-width=\"2\"%s/><text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                           lx, ly - 4, lx + 22, ly - 4, colors[k],
                           k >= 2 ? " stroke-dasharray=\"6 4\"" : "", lx + 28, ly, names[k]);
            lx += width[k];
        }
    }
    free(cols);
    grt_buf_printf(&b, "</svg>\n");
    *size = b.n;
    grt_buf_put(&b, "", 1); /* a terminator, not counted */
    return (char *)b.p;
}
