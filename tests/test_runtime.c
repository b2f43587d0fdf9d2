/*
 * test_runtime.c: unit and end-to-end tests of the runtime (runtime/), with
 * the hand-written models of rt_fake_model.c standing in for generated code.
 *
 * Each piece is tested through rt_internal.h: CSV reading and its error
 * messages, standardization, the seeded shuffle, chunked gradients, the
 * optimizers, parameter files and their failure modes; then grt_main end to
 * end in a forked child with stdout and stderr captured in files.
 *
 * Builds with the float runtime (make) and, by hand, with -DGRT_DOUBLE:
 *   cc -D_POSIX_C_SOURCE=200809L -Iruntime -std=c99 -Wall -Wextra -Wpedantic \
 *      [-DGRT_DOUBLE] tests/test_runtime.c runtime/\*.c -lcmocka -lm
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rt_internal.h"

#include "rt_fake_model.c"

/* ------------------------------------------------------------------ helpers */

/* Agreement expected of sums computed in grt_real against double. */
#ifdef GRT_DOUBLE
#define TOL 1e-12
#else
#define TOL 1e-5
#endif

static char tmpdir[256]; /* one directory for the whole run, removed at the end */

static char *tpath(char *buf, const char *name)
{
    snprintf(buf, 512, "%s/%s", tmpdir, name);
    return buf;
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void write_text(const char *path, const char *s) { write_bytes(path, s, strlen(s)); }

/* A file's bytes, NUL-terminated, malloc'd. */
static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *p = NULL;
    size_t len = 0, cap = 0, k;
    assert_non_null(f);
    do {
        if (len + 4096 + 1 > cap) {
            cap = 2 * cap + 8192;
            p = realloc(p, cap);
            assert_non_null(p);
        }
        k = fread(p + len, 1, 4096, f);
        len += k;
    } while (k > 0);
    fclose(f);
    p[len] = '\0';
    if (n)
        *n = len;
    return p;
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    if (!d) {
        unlink(path);
        return;
    }
    while ((de = readdir(d))) {
        char sub[1024];
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
        remove_tree(sub);
    }
    closedir(d);
    rmdir(path);
}

/* Files in dir whose names contain s. */
static int count_files(const char *dir, const char *s)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    assert_non_null(d);
    while ((de = readdir(d)))
        if (strstr(de->d_name, s))
            n++;
    closedir(d);
    return n;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/grt_test_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    remove_tree(tmpdir);
    return 0;
}

/* Every test ends by checking the runtime kept the generated code's contract. */
static int test_setup(void **state)
{
    (void)state;
    fake_violations = 0;
    return 0;
}

static int test_teardown(void **state)
{
    (void)state;
    assert_int_equal(fake_violations, 0);
    return 0;
}

/* Writes text to tmpdir/name and reads it as CSV. */
static int csv_text(const grt_model *m, int mode, const char *name, const char *text,
                    grt_data *d, grt_err *e)
{
    char p[512];
    write_text(tpath(p, name), text);
    memset(e, 0, sizeof *e);
    return grt_csv_load(p, m, mode, d, e);
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle)) {
        print_error("expected to find \"%s\" in \"%s\"\n", needle, hay);
        fail();
    }
}

/* Uniform in [-1, 1). */
static double uniform(grt_rng *r) { return (double)(grt_rng_next(r) >> 11) * 0x1p-52 - 1; }

/* The linear model's truth: y = 2 x0 - 3 x1 + 0.5 x2 + 1 (+ noise), x in
 * [-1, 1)^3, or with shift, x0 around 50 and x1 around -20, as raw data is
 * before standardization. */
static void linear_data(grt_data *d, size_t n, uint64_t seed, double noise, int shift)
{
    grt_rng r;
    size_t i;
    grt_rng_seed(&r, seed);
    memset(d, 0, sizeof *d);
    d->n = d->cap = n;
    d->nx = 3;
    d->ny = 1;
    d->x = grt_xmalloc(n * 3, sizeof(double));
    d->y = grt_xmalloc(n, sizeof(double));
    for (i = 0; i < n; i++) {
        double *x = d->x + 3 * i;
        x[0] = uniform(&r);
        x[1] = uniform(&r);
        x[2] = uniform(&r);
        d->y[i] = 2 * x[0] - 3 * x[1] + 0.5 * x[2] + 1 + noise * uniform(&r);
        if (shift) {
            x[0] += 50;
            x[1] -= 20;
            d->y[i] = 2 * x[0] - 3 * x[1] + 0.5 * x[2] + 1;
        }
    }
}

static void write_csv(const char *path, const grt_data *d, const char *header, int targets)
{
    FILE *f = fopen(path, "w");
    size_t i, j;
    assert_non_null(f);
    if (header)
        fprintf(f, "%s\n", header);
    for (i = 0; i < d->n; i++) {
        for (j = 0; j < d->nx; j++)
            fprintf(f, "%s%.17g", j ? "," : "", d->x[i * d->nx + j]);
        for (j = 0; targets && j < d->ny; j++)
            fprintf(f, ",%.17g", d->y[i * d->ny + j]);
        fputc('\n', f);
    }
    assert_int_equal(fclose(f), 0);
}

/* Least squares w (4 values: 3 weights and the bias) of the linear data, from
 * the normal equations, in double. */
static void least_squares(const grt_data *d, double w[4])
{
    double a[4][5] = {{0}};
    size_t i;
    int r, c, k;
    for (i = 0; i < d->n; i++) {
        double row[4] = {d->x[3 * i], d->x[3 * i + 1], d->x[3 * i + 2], 1};
        for (r = 0; r < 4; r++) {
            for (c = 0; c < 4; c++)
                a[r][c] += row[r] * row[c];
            a[r][4] += row[r] * d->y[i];
        }
    }
    for (k = 0; k < 4; k++) {
        int p = k;
        for (r = k + 1; r < 4; r++)
            if (fabs(a[r][k]) > fabs(a[p][k]))
                p = r;
        for (c = 0; c < 5; c++) {
            double t = a[k][c];
            a[k][c] = a[p][c];
            a[p][c] = t;
        }
        for (r = 0; r < 4; r++) {
            double f;
            if (r == k)
                continue;
            f = a[r][k] / a[k][k];
            for (c = k; c < 5; c++)
                a[r][c] -= f * a[k][c];
        }
    }
    for (k = 0; k < 4; k++)
        w[k] = a[k][4] / a[k][k];
}

/* Largest |a - b| over n values, printed with its name (STYLE.md 16). */
static double worst(const char *what, const grt_real *a, const double *b, size_t n)
{
    double m = 0;
    size_t i, at = 0;
    for (i = 0; i < n; i++)
        if (fabs((double)a[i] - b[i]) > m)
            m = fabs((double)a[i] - b[i]), at = i;
    print_message("  %-28s worst |diff| %.3g at %zu\n", what, m, at);
    return m;
}

static grt_run quiet_run(const grt_model *m)
{
    grt_run run;
    memset(&run, 0, sizeof run);
    run.cfg = m->train;
    run.quiet = 1;
    run.progress = stderr;
    return run;
}

/* Runs grt_main(argv...) in a child with stdin from in (or /dev/null) and
 * stdout, stderr into tmpdir/out.txt, tmpdir/err.txt; returns its status. */
static int run_main(const grt_model *m, const char *in, ...)
{
    char *argv[32], outp[512], errp[512];
    int argc = 0, st;
    va_list ap;
    pid_t pid;

    argv[argc++] = (char *)"/some/dir/lin";
    va_start(ap, in);
    while ((argv[argc] = va_arg(ap, char *)))
        argc++;
    va_end(ap);
    tpath(outp, "out.txt");
    tpath(errp, "err.txt");
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen(in ? in : "/dev/null", "r", stdin) || !freopen(outp, "w", stdout) ||
            !freopen(errp, "w", stderr))
            _exit(99);
        st = grt_main(argc, argv, m);
        fflush(NULL);
        _exit(fake_violations ? 98 : st);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static char *out_text(void)
{
    char p[512];
    return slurp(tpath(p, "out.txt"), NULL);
}

static char *err_text(void)
{
    char p[512];
    return slurp(tpath(p, "err.txt"), NULL);
}

/* --------------------------------------------------------------------- CSV */

static void test_parse_number(void **state)
{
    static const struct {
        const char *s; /* the field */
        int want;      /* GRT_NUM_* */
        double v;      /* its value when OK */
    } cases[] = {
        {"0", GRT_NUM_OK, 0},      {"-12.5", GRT_NUM_OK, -12.5}, {"+.5", GRT_NUM_OK, 0.5},
        {"2.", GRT_NUM_OK, 2},     {"1e-3", GRT_NUM_OK, 1e-3},   {"-1.5E+2", GRT_NUM_OK, -150},
        {"1e-400", GRT_NUM_OK, 0}, {"abc", GRT_NUM_BAD, 0},      {".", GRT_NUM_BAD, 0},
        {"-", GRT_NUM_BAD, 0},     {"1e", GRT_NUM_BAD, 0},       {"1.2.3", GRT_NUM_BAD, 0},
        {"0x10", GRT_NUM_BAD, 0},  {"1 2", GRT_NUM_BAD, 0},      {"12a", GRT_NUM_BAD, 0},
        {"nan", GRT_NUM_NONFINITE, 0}, {"-NaN", GRT_NUM_NONFINITE, 0},
        {"inf", GRT_NUM_NONFINITE, 0}, {"+Infinity", GRT_NUM_NONFINITE, 0},
        {"nan(0x1)", GRT_NUM_NONFINITE, 0}, {"1e999", GRT_NUM_RANGE, 0},
        {"-1e400", GRT_NUM_RANGE, 0}, {"123456789012345", GRT_NUM_OK, 123456789012345.0},
        {"-42", GRT_NUM_OK, -42}, {"+7", GRT_NUM_OK, 7},
        {"12345678901234567890", GRT_NUM_OK, 12345678901234567890.0},
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double v = -7;
        int k = grt_parse_number(cases[i].s, strlen(cases[i].s), &v);
        if (k != cases[i].want)
            print_error("'%s': got %d, want %d\n", cases[i].s, k, cases[i].want);
        assert_int_equal(k, cases[i].want);
        if (k == GRT_NUM_OK)
            assert_true(v == cases[i].v || fabs(v - cases[i].v) < 1e-15 * fabs(v));
    }
}

static void test_csv_no_header(void **state)
{
    grt_model m = fake_linear(8);
    grt_data d;
    grt_err e;
    (void)state;
    assert_int_equal(csv_text(&m, GRT_CSV_TARGETS, "data.csv", "1,2,3,4\n5,6,7,8\n", &d, &e), 0);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.nx, 3);
    assert_int_equal(d.ny, 1);
    assert_true(d.x[0] == 1 && d.x[3] == 5 && d.x[5] == 7);
    assert_true(d.y[0] == 4 && d.y[1] == 8);
    grt_data_free(&d);
}

static void test_csv_header(void **state)
{
    grt_model m = fake_linear(8);
    grt_data d;
    grt_err e;
    (void)state;
    assert_int_equal(
        csv_text(&m, GRT_CSV_TARGETS, "data.csv", "x1,x2,x3,y\n1,2,3,4\n-1,0.5,1e2,0\n", &d, &e),
        0);
    assert_int_equal(d.n, 2);
    assert_true(d.x[0] == 1 && d.x[4] == 0.5 && d.x[5] == 100 && d.y[1] == 0);
    grt_data_free(&d);
    /* A header with one numeric-looking name is still a header. */
    assert_int_equal(csv_text(&m, GRT_CSV_TARGETS, "data.csv", "1,2,3,y\n1,2,3,4\n", &d, &e), 0);
    assert_int_equal(d.n, 1);
    grt_data_free(&d);
}

static void test_csv_crlf_bom_blank(void **state)
{
    grt_model m = fake_linear(8);
    grt_data d;
    grt_err e;
    (void)state;
    assert_int_equal(csv_text(&m, GRT_CSV_TARGETS, "data.csv",
                              "\xef\xbb\xbf"
                              "a,b,c,y\r\n1, 2 ,\t3,4\r\n\r\n5,6,7,8\r\n\r\n   \n\n",
                              &d, &e),
                     0);
    assert_int_equal(d.n, 2);
    assert_true(d.x[1] == 2 && d.x[2] == 3 && d.y[0] == 4 && d.y[1] == 8);
    grt_data_free(&d);
    /* No newline at the end of the last line. */
    assert_int_equal(csv_text(&m, GRT_CSV_TARGETS, "data.csv", "1,2,3,4", &d, &e), 0);
    assert_int_equal(d.n, 1);
    grt_data_free(&d);
}

static void test_csv_bad_field_line_312(void **state)
{
    grt_model m = fake_linear(8);
    grt_data d;
    grt_err e;
    char *text = malloc(312 * 16 + 64);
    size_t len = 0;
    int i;
    (void)state;
    for (i = 1; i < 312; i++)
        len += (size_t)sprintf(text + len, "%d,2,3,4\n", i);
    sprintf(text + len, "1,2,abc,4\n7,7,7,7\n");
    assert_int_equal(csv_text(&m, GRT_CSV_TARGETS, "data.csv", text, &d, &e), 1);
    assert_int_equal(e.code, GRT_E_NUMBER);
    assert_contains(e.msg, "/data.csv:312:5: error: 'abc' is not a number (field 3)");
    assert_null(d.x);
    /* with a header: still line 312 of the file */
    memcpy(text, "x,y,z,t\n", 8);
    assert_int_equal(csv_text(&m, GRT_CSV_TARGETS, "data.csv", text, &d, &e), 1);
    assert_contains(e.msg, "data.csv:312:5: error:");
    /* leading spaces: the column is where the field's text starts */
    assert_int_equal(csv_text(&m, GRT_CSV_TARGETS, "data.csv", "1,2,3,4\n1, 2,  x1,4\n", &d, &e),
                     1);
    assert_contains(e.msg, "data.csv:2:8: error: 'x1' is not a number (field 3)");
    assert_int_equal(csv_text(&m, GRT_CSV_TARGETS, "data.csv", "1,,3,4\n", &d, &e), 1);
    assert_contains(e.msg, "data.csv:1:3: error: empty field (field 2)");
    free(text);
}

static void test_csv_wrong_count(void **state)
{
    grt_model m = fake_linear(8);
    grt_data d;
    grt_err e;
    (void)state;
    assert_int_equal(csv_text(&m, GRT_CSV_TARGETS, "data.csv", "1,2,3,4\n1,2,3\n", &d, &e), 1);
    assert_int_equal(e.code, GRT_E_FIELDS);
    assert_contains(e.msg,
                    "data.csv:2:6: error: row has 3 fields, expected 4 fields (3 inputs + 1 target)");
    assert_int_equal(csv_text(&m, GRT_CSV_TARGETS, "data.csv", "1,2,3,4\n\n1,2,3,4,5\n", &d, &e),
                     1);
    assert_contains(e.msg, "data.csv:3:9: error: row has 5 fields, expected 4 fields");
    assert_int_equal(csv_text(&m, GRT_CSV_TARGETS, "data.csv", "a,b\n1,2,3,4\n", &d, &e), 1);
    assert_contains(e.msg, "data.csv:1:4: error: header has 2 fields, expected 4 fields");
}

static void test_csv_nonfinite(void **state)
{
    static const char *bad[] = {"nan", "NaN", "-inf", "Infinity", "+INF", "nan(123)"};
    grt_model m = fake_linear(8);
    grt_data d;
    grt_err e;
    char text[128];
    size_t i;
    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* in the first row too: not taken for a header */
        snprintf(text, sizeof text, "1,%s,3,4\n", bad[i]);
        assert_int_equal(csv_text(&m, GRT_CSV_TARGETS, "data.csv", text, &d, &e), 1);
        assert_int_equal(e.code, GRT_E_NUMBER);
        assert_contains(e.msg, "data.csv:1:3: error:");
        assert_contains(e.msg, "NaN and infinity are refused (field 2)");
    }
    assert_int_equal(csv_text(&m, GRT_CSV_TARGETS, "data.csv", "1,2,3,4\n1,2,1e999,4\n", &d, &e),
                     1);
    assert_contains(e.msg, "data.csv:2:5: error: '1e999' is out of the range of a double");
}

static void test_csv_empty(void **state)
{
    grt_model m = fake_linear(8);
    grt_data d;
    grt_err e;
    char p[512];
    (void)state;
    assert_int_equal(csv_text(&m, GRT_CSV_TARGETS, "empty.csv", "", &d, &e), 1);
    assert_int_equal(e.code, GRT_E_EMPTY);
    assert_contains(e.msg, "empty.csv: error: empty file");
    assert_int_equal(csv_text(&m, GRT_CSV_TARGETS, "empty.csv", "\n \r\n\n", &d, &e), 1);
    assert_int_equal(e.code, GRT_E_EMPTY);
    assert_int_equal(csv_text(&m, GRT_CSV_TARGETS, "empty.csv", "a,b,c,y\n\n", &d, &e), 1);
    assert_int_equal(e.code, GRT_E_EMPTY);
    assert_contains(e.msg, "empty.csv: error: no examples, only a header");
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_csv_load(tpath(p, "missing.csv"), &m, GRT_CSV_TARGETS, &d, &e), 2);
    assert_int_equal(e.code, GRT_E_IO);
    assert_contains(e.msg, "missing.csv: error: cannot open: No such file");
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_csv_load(tmpdir, &m, GRT_CSV_TARGETS, &d, &e), 2);
    assert_int_equal(e.code, GRT_E_IO);
}

static void test_csv_huge_line(void **state)
{
    enum { N = 100000 };
    static const grt_io_info in[] = {{"x", N, 0}};
    grt_model m = fake_linear(8);
    grt_data d;
    grt_err e;
    char *text = malloc((size_t)N * 22 + 16);
    size_t i, len;
    (void)state;
    m.input_size = N;
    m.inputs = in;
    m.target_size = 0;
    m.ntargets = 0;
    for (i = 0, len = 0; i < N; i++) {
        if (i)
            text[len++] = ',';
        memcpy(text + len, "0.12345678", 10);
        len += 10;
    }
    memcpy(text + len, "\n", 2);
    assert_true(strlen(text) > 1000000);
    assert_int_equal(csv_text(&m, GRT_CSV_TARGETS, "huge.csv", text, &d, &e), 0);
    assert_int_equal(d.n, 1);
    assert_true(d.x[0] == 0.12345678 && d.x[N - 1] == 0.12345678);
    grt_data_free(&d);
    /* an error at the end of a second such line names its true column */
    memcpy(text + len + 1, text, len + 2);
    memcpy(text + len + 1 + 11 * (N - 1), "zzzzzzzzzz", 10);
    assert_int_equal(csv_text(&m, GRT_CSV_TARGETS, "huge.csv", text, &d, &e), 1);
    assert_contains(e.msg,
                    "huge.csv:2:1099990: error: 'zzzzzzzzzz' is not a number (field 100000)");
    free(text);
}

static void test_csv_predict_columns(void **state)
{
    grt_model m = fake_linear(8);
    grt_data d;
    grt_err e;
    (void)state;
    assert_int_equal(csv_text(&m, GRT_CSV_INPUTS, "p.csv", "a,b,c\n1,2,3\n4,5,6,7\n", &d, &e), 0);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.ny, 0);
    assert_true(d.x[3] == 4 && d.x[5] == 6);
    grt_data_free(&d);
    assert_int_equal(csv_text(&m, GRT_CSV_INPUTS, "p.csv", "1,2,3,4,5\n", &d, &e), 1);
    assert_contains(e.msg, "p.csv:1:9: error: row has 5 fields, expected 3 fields (the inputs) "
                           "or 4 (inputs and targets)");
    assert_int_equal(csv_text(&m, GRT_CSV_INPUTS, "p.csv", "1,2\n", &d, &e), 1);
    assert_int_equal(e.code, GRT_E_FIELDS);
    /* train needs the targets */
    assert_int_equal(csv_text(&m, GRT_CSV_TARGETS, "p.csv", "1,2,3\n", &d, &e), 1);
    assert_int_equal(e.code, GRT_E_FIELDS);
}

static void test_csv_class_range(void **state)
{
    static const char *bad[] = {"3", "1.5", "-1", "1e9"};
    grt_model m = fake_softmax(8);
    grt_data d;
    grt_err e;
    char text[64];
    size_t i;
    (void)state;
    assert_int_equal(csv_text(&m, GRT_CSV_TARGETS, "c.csv", "0.5,1,0\n1,1,2\n2,2,2.0\n", &d, &e),
                     0);
    assert_true(d.y[0] == 0 && d.y[1] == 2 && d.y[2] == 2);
    grt_data_free(&d);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "0.5,1,0\n0.5, 1, %s\n", bad[i]);
        assert_int_equal(csv_text(&m, GRT_CSV_TARGETS, "c.csv", text, &d, &e), 1);
        assert_int_equal(e.code, GRT_E_CLASS);
        assert_contains(e.msg, "c.csv:2:9: error:");
        assert_contains(e.msg, "is not a class index of target 'label', an integer in 0..2 "
                               "(field 3)");
    }
    /* predict ignores the target column */
    assert_int_equal(csv_text(&m, GRT_CSV_INPUTS, "c.csv", "0.5,1,7\n", &d, &e), 0);
    grt_data_free(&d);
}

/* ---------------------------------------------------------- standardization */

static void test_stats(void **state)
{
    double x[] = {1, 5, 0.1, 2, 5, 0.1, 3, 5, 0.1, 4, 5, 0.1};
    grt_data d = {4, 3, 0, NULL, NULL, 4};
    grt_stats s;
    size_t i;
    double m0 = 0, v0 = 0;
    (void)state;
    d.x = x;
    grt_stats_compute(&d, &s);
    assert_int_equal(s.n, 3);
    assert_true(fabs(s.mean[0] - 2.5) < 1e-15);
    assert_true(fabs(s.std[0] - sqrt(1.25)) < 1e-15); /* population, not sample */
    assert_true(s.mean[1] == 5 && s.std[1] == 1);       /* constant: std 1 */
    assert_true(s.std[2] == 1);                         /* constant, inexact mean */
    grt_stats_apply(&s, &d);
    for (i = 0; i < 4; i++) {
        m0 += x[3 * i] / 4;
        v0 += x[3 * i] * x[3 * i] / 4;
        assert_true(x[3 * i + 1] == 0);
    }
    assert_true(fabs(m0) < 1e-15 && fabs(v0 - 1) < 1e-12);
    grt_stats_free(&s);
}

/* ---------------------------------------------------------------- rng */

static void test_rng_golden(void **state)
{
    uint64_t st = 0;
    grt_rng r;
    (void)state;
    /* splitmix64's published first output for state 0 */
    assert_true(grt_splitmix64(&st) == UINT64_C(0xe220a8397b1dcdaf));
    /* xoshiro256** seeded by splitmix64(42), from an independent Python model */
    grt_rng_seed(&r, 42);
    assert_true(grt_rng_next(&r) == UINT64_C(0x15780b2e0c2ec716));
    assert_true(grt_rng_next(&r) == UINT64_C(0x6104d9866d113a7e));
    assert_true(grt_rng_next(&r) == UINT64_C(0xae17533239e499a1));
}

static void test_shuffle(void **state)
{
    enum { N = 1000 };
    size_t a[N], b[N], seen[N], i;
    grt_rng r;
    int same = 1;
    (void)state;
    for (i = 0; i < N; i++)
        a[i] = b[i] = i, seen[i] = 0;
    grt_rng_seed(&r, 42);
    grt_shuffle(&r, a, N);
    for (i = 0; i < N; i++)
        seen[a[i]]++;
    for (i = 0; i < N; i++)
        assert_int_equal(seen[i], 1); /* a permutation */
    grt_rng_seed(&r, 42);
    grt_shuffle(&r, b, N);
    assert_memory_equal(a, b, sizeof a); /* reproducible */
    for (i = 0; i < N; i++)
        b[i] = i;
    grt_rng_seed(&r, 43);
    grt_shuffle(&r, b, N);
    for (i = 0; i < N; i++)
        same &= a[i] == b[i];
    assert_false(same); /* another seed, another order */
    for (i = 0; i < 1000; i++)
        assert_true(grt_rng_below(&r, 3) < 3);
}

/* ------------------------------------------------------------ gradients */

static void test_chunked_gradient(void **state)
{
    static const size_t batches[] = {1, 3, 4, 9, 10, 16};
    grt_data d;
    size_t idx[10], i, k, b;
    double want[4] = {0}, loss = 0;
    (void)state;
    linear_data(&d, 10, 5, 0.3, 0);
    for (i = 0; i < 10; i++)
        idx[i] = (i * 7) % 10; /* a permutation: chunks gather rows */
    for (i = 0; i < 10; i++) {
        const double *x = d.x + 3 * i;
        double r = 0.125 * x[0] - 0.25 * x[1] + 0.375 * x[2] + 0.5 - d.y[i];
        loss += r * r / 10;
        for (k = 0; k < 3; k++)
            want[k] += 2 * r * x[k] / 10;
        want[3] += 2 * r / 10;
    }
    for (b = 0; b < sizeof batches / sizeof batches[0]; b++) {
        grt_model m = fake_linear(batches[b]);
        grt_real params[4] = {0.125, -0.25, 0.375, 0.5}, grad[4];
        grt_ctx c;
        char what[64];
        double l;
        grt_ctx_init(&c, &m);
        l = grt_batch_grad(&c, params, &d, idx, 10, grad);
        snprintf(what, sizeof what, "grad, max_batch %zu", batches[b]);
        assert_true(worst(what, grad, want, 4) < TOL);
        assert_true(fabs(l - loss) < TOL);
        grt_ctx_free(&c);
    }
    grt_data_free(&d);
}

static void test_partial_last_batch(void **state)
{
    grt_model m = fake_recorder(3);
    grt_data d;
    grt_run run;
    grt_trained res;
    grt_ctx c;
    grt_err e;
    grt_real p[1];
    static const size_t chunks[] = {3, 1, 3, 1, 2};
    size_t i, ep;
    double ys[10] = {0};
    (void)state;
    memset(&d, 0, sizeof d);
    d.n = 10;
    d.nx = d.ny = 1;
    d.x = grt_xmalloc(10, sizeof(double));
    d.y = ys;
    for (i = 0; i < 10; i++)
        d.x[i] = (double)i;

    run = quiet_run(&m);
    run.cfg.batch = 4; /* steps of 4, 4, 2; chunks of at most 3 */
    run.cfg.epochs = 2;
    run.cfg.lr = 1;
    memset(&e, 0, sizeof e);
    grt_ctx_init(&c, &m);
    m.init(p, 0);
    assert_int_equal(grt_train(&c, p, &d, NULL, &run, &res, &e), 0);
    assert_true(p[0] == 94); /* 3 steps per epoch, gradient 1, lr 1 */
    assert_int_equal(fake_log_nchunk, 10);
    for (i = 0; i < 10; i++)
        assert_int_equal(fake_log_chunk[i], chunks[i % 5]);
    assert_int_equal(fake_log_nx, 20);
    for (ep = 0; ep < 2; ep++) {
        int seen[10] = {0};
        for (i = 0; i < 10; i++)
            seen[(int)fake_log_x[10 * ep + i]]++;
        for (i = 0; i < 10; i++)
            assert_int_equal(seen[i], 1); /* every example once per epoch */
    }
    assert_true(memcmp(fake_log_x, fake_log_x + 10, 10 * sizeof(double)) != 0); /* reshuffled */

    /* full batch: one step of 4 chunks per epoch; no shuffle: file order */
    fake_log_nx = fake_log_nchunk = 0;
    run.cfg.batch = 0;
    run.cfg.shuffle = 0;
    m.init(p, 0);
    assert_int_equal(grt_train(&c, p, &d, NULL, &run, &res, &e), 0);
    assert_true(p[0] == 98);
    assert_int_equal(fake_log_nchunk, 8);
    assert_int_equal(fake_log_chunk[3], 1);
    for (i = 0; i < 10; i++)
        assert_true(fake_log_x[i] == (double)i);

    /* maximize ascends */
    m.maximize = 1;
    m.init(p, 0);
    assert_int_equal(grt_train(&c, p, &d, NULL, &run, &res, &e), 0);
    assert_true(p[0] == 102);
    grt_ctx_free(&c);
    free(d.x);
}

/* Trains the linear model with an optimizer and compares the params with the
 * least-squares solution. With noise, only full batch reaches it exactly;
 * without, every batch's gradient vanishes there. */
static void converge(int opt, double lr, long batch, int epochs, double noise, double tol)
{
    grt_model m = fake_linear(8);
    grt_data d;
    grt_run run = quiet_run(&m);
    grt_trained res;
    grt_ctx c;
    grt_err e;
    grt_real p[4];
    double w[4];
    char what[64];

    linear_data(&d, 200, 11, noise, 0);
    least_squares(&d, w);
    run.cfg.opt = opt;
    run.cfg.lr = lr;
    run.cfg.batch = batch;
    run.cfg.epochs = epochs;
    memset(&e, 0, sizeof e);
    m.init(p, 1);
    grt_ctx_init(&c, &m);
    assert_int_equal(grt_train(&c, p, &d, NULL, &run, &res, &e), 0);
    snprintf(what, sizeof what, "%s lr %g batch %ld", grt_opt_name(opt), lr, batch);
    assert_true(worst(what, p, w, 4) < tol);
    assert_int_equal(res.epochs, epochs);
    grt_ctx_free(&c);
    grt_data_free(&d);
}

static void test_sgd_least_squares(void **state)
{
    (void)state;
    converge(GRT_SGD, 0.3, 0, 2000, 0.2, 1e-5); /* full batch: the exact minimum */
    converge(GRT_SGD, 0.3, 64, 500, 0, 1e-5);   /* 200 = 3 * 64 + 8: a partial batch */
    converge(GRT_SGD, 0.05, 1, 100, 0, 1e-5);   /* stochastic */
    converge(GRT_SGD, 0.01, 1, 100, 0.2, 0.05); /* stochastic with noise: near it */
}

static void test_optimizers(void **state)
{
    (void)state;
    converge(GRT_MOMENTUM, 0.05, 0, 1000, 0.2, 1e-5);
    converge(GRT_NESTEROV, 0.05, 0, 1000, 0.2, 1e-5);
    converge(GRT_RMSPROP, 0.003, 0, 3000, 0.2, 0.01); /* hovers within ~lr */
    converge(GRT_ADAM, 0.01, 0, 3000, 0.2, 1e-4);
    converge(GRT_ADAMW, 0.01, 0, 3000, 0.2, 1e-4); /* weight_decay 0: adam */
    converge(GRT_ADAM, 0.01, 16, 300, 0, 1e-4);
}

static void test_opt_step_rules(void **state)
{
    grt_train_config c;
    grt_optimizer o;
    grt_real p[2], g[2];
    (void)state;
    memset(&c, 0, sizeof c);
    c.opt = GRT_SGD;
    c.clip = 1;
    grt_opt_init(&o, &c, 2, 0);
    p[0] = p[1] = 0;
    g[0] = 3, g[1] = 4; /* norm 5, clipped to 1 */
    grt_opt_step(&o, p, g, 1);
    assert_true(fabs(p[0] + 0.6) < 1e-6 && fabs(p[1] + 0.8) < 1e-6);
    grt_opt_free(&o);

    c.clip = 0;
    c.weight_decay = 0.5; /* d = g + 0.5 p */
    grt_opt_init(&o, &c, 2, 1); /* maximize: d = -g + 0.5 p */
    p[0] = 2, p[1] = 0;
    g[0] = 1, g[1] = 1;
    grt_opt_step(&o, p, g, 0.1);
    assert_true(fabs(p[0] - (2 - 0.1 * (-1 + 1))) < 1e-6 && fabs(p[1] - 0.1) < 1e-6);
    grt_opt_free(&o);

    /* adam's first step moves every param by lr, whatever the gradient's size */
    memset(&c, 0, sizeof c);
    c.opt = GRT_ADAM;
    c.beta1 = 0.9, c.beta2 = 0.999, c.eps = 1e-8;
    grt_opt_init(&o, &c, 2, 0);
    p[0] = p[1] = 0;
    g[0] = 1e-3, g[1] = -50;
    grt_opt_step(&o, p, g, 0.01);
    assert_true(fabs(p[0] + 0.01) < 1e-6 && fabs(p[1] - 0.01) < 1e-6);
    grt_opt_free(&o);
}

static void test_schedules(void **state)
{
    grt_train_config c;
    (void)state;
    memset(&c, 0, sizeof c);
    assert_true(grt_sched_lr(&c, 0.1, 7, 10) == 0.1);
    c.sched = GRT_STEP, c.sched_a = 3, c.sched_b = 0.5;
    assert_true(fabs(grt_sched_lr(&c, 0.1, 2, 10) - 0.1) < 1e-15);
    assert_true(fabs(grt_sched_lr(&c, 0.1, 3, 10) - 0.05) < 1e-15);
    assert_true(fabs(grt_sched_lr(&c, 0.1, 7, 10) - 0.025) < 1e-15);
    c.sched = GRT_COSINE;
    assert_true(fabs(grt_sched_lr(&c, 0.1, 0, 10) - 0.1) < 1e-15);
    assert_true(fabs(grt_sched_lr(&c, 0.1, 5, 10) - 0.05) < 1e-15);
    c.sched = GRT_EXPONENTIAL, c.sched_a = 0.9;
    assert_true(fabs(grt_sched_lr(&c, 0.1, 2, 10) - 0.081) < 1e-15);
}

/* ------------------------------------------------------------- scoring */

/* Three clusters around (2,0), (-1,2), (-1,-2), label in 0..2. */
static void cluster_data(grt_data *d, size_t n, uint64_t seed)
{
    static const double cx[3] = {2, -1, -1}, cy[3] = {0, 2, -2};
    grt_rng r;
    size_t i;
    grt_rng_seed(&r, seed);
    memset(d, 0, sizeof *d);
    d->n = d->cap = n;
    d->nx = 2;
    d->ny = 1;
    d->x = grt_xmalloc(2 * n, sizeof(double));
    d->y = grt_xmalloc(n, sizeof(double));
    for (i = 0; i < n; i++) {
        int c = (int)(i % 3);
        d->x[2 * i] = cx[c] + 0.5 * uniform(&r);
        d->x[2 * i + 1] = cy[c] + 0.5 * uniform(&r);
        d->y[i] = c;
    }
}

static void test_softmax_accuracy(void **state)
{
    grt_model m = fake_softmax(7);
    grt_data d;
    grt_run run = quiet_run(&m);
    grt_trained res;
    grt_score s;
    grt_ctx c;
    grt_err e;
    grt_real p[9];
    (void)state;
    cluster_data(&d, 90, 3);
    memset(&e, 0, sizeof e);
    m.init(p, 42);
    grt_ctx_init(&c, &m);
    grt_evaluate(&c, p, &d, &s);
    assert_int_equal(s.total, 90);
    run.cfg.epochs = 30;
    assert_int_equal(grt_train(&c, p, &d, &d, &run, &res, &e), 0);
    assert_true(res.has_valid);
    grt_evaluate(&c, p, &d, &s);
    assert_int_equal(s.correct, 90);
    assert_true(s.loss < 0.2);
    assert_true(fabs(res.valid.loss - s.loss) < 1e-12);
    grt_ctx_free(&c);
    grt_data_free(&d);
}

static void test_binary_accuracy(void **state)
{
    grt_model m = fake_logistic(3);
    double x[] = {1, 0, 2, 5, -1, 0, -3, 1, 0.5, 0};
    double y[] = {1, 1, 0, 1, 0};
    grt_data d = {5, 2, 1, NULL, NULL, 5};
    grt_real p[3] = {1, 0, 0}; /* p > 0.5 iff x0 > 0 */
    grt_score s;
    grt_ctx c;
    (void)state;
    d.x = x;
    d.y = y;
    grt_ctx_init(&c, &m);
    grt_evaluate(&c, p, &d, &s);
    assert_int_equal(s.total, 5);
    assert_int_equal(s.correct, 3); /* rows 4 and 5 are on the wrong side */
    grt_ctx_free(&c);
}

/* ----------------------------------------------------------- parameter files */

static void test_params_roundtrip(void **state)
{
    grt_model m = fake_linear(8);
    grt_real p[4] = {1.5f, -2.25f, (grt_real)3e-8, 7}, q[4];
    double mean[3] = {1, -2, 3.5}, sd[3] = {0.5, 1, 2};
    grt_stats s = {3, mean, sd}, t;
    grt_err e;
    char path[512], *bytes;
    size_t n;
    (void)state;
    memset(&e, 0, sizeof e);
    tpath(path, "rt.params");
    assert_int_equal(grt_params_save(path, &m, p, &s, &e), 0);
    bytes = slurp(path, &n);
    assert_memory_equal(bytes, "GRADCPRM", 8);
    assert_int_equal(n, 52 + 3 + 12 + 4 * sizeof(grt_real) + 12 + 8 + 48 + 12 + 8);
    free(bytes);
    assert_int_equal(grt_params_load(path, &m, q, &t, &e), 0);
    assert_memory_equal(p, q, sizeof p);
    assert_int_equal(t.n, 3);
    assert_memory_equal(t.mean, mean, sizeof mean);
    assert_memory_equal(t.std, sd, sizeof sd);
    grt_stats_free(&t);
    /* without stats */
    assert_int_equal(grt_params_save(path, &m, p, NULL, &e), 0);
    assert_int_equal(grt_params_load(path, &m, q, &t, &e), 0);
    assert_int_equal(t.n, 0);
    assert_memory_equal(p, q, sizeof p);
    assert_int_equal(count_files(tmpdir, ".tmp."), 0);
    /* the mode a plain fopen would give, not mkstemp's 0600 */
    {
        struct stat st;
        mode_t mask = umask(0);
        umask(mask);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0666 & ~mask);
    }
}

/* Loads the bytes b[0..n) as tmpdir/name; returns the status, e filled. */
static int load_bytes(const grt_model *m, const char *name, const void *b, size_t n, grt_err *e)
{
    char path[512];
    grt_real q[16];
    grt_stats s;
    write_bytes(tpath(path, name), b, n);
    memset(e, 0, sizeof *e);
    return grt_params_load(path, m, q, &s, e) ? e->status : (grt_stats_free(&s), 0);
}

/* A saved linear model's file bytes. */
static unsigned char *lin_file(size_t *n)
{
    grt_model m = fake_linear(8);
    grt_real p[4] = {1, 2, 3, 4};
    double mean[3] = {0}, sd[3] = {1, 1, 1};
    grt_stats s = {3, mean, sd};
    return grt_params_encode(&m, p, &s, n);
}

/* Recomputes the checksum after an edit. */
static void reseal(unsigned char *b, size_t n)
{
    uint64_t h = grt_fnv1a64(GRT_FNV_INIT, b, n - 8);
    int i;
    for (i = 0; i < 8; i++)
        b[n - 8 + i] = (unsigned char)(h >> (8 * i));
}

static void test_params_damaged(void **state)
{
    grt_model m = fake_linear(8);
    size_t n, i;
    unsigned char *b = lin_file(&n);
    size_t cuts[] = {4, 11, 30, 60, 0, 0};
    grt_err e;
    (void)state;
    cuts[4] = n / 2;
    cuts[5] = n - 1;
    assert_int_equal(load_bytes(&m, "ok.params", b, n, &e), 0);
    for (i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        assert_int_equal(load_bytes(&m, "cut.params", b, cuts[i], &e), 1);
        assert_int_equal(e.code, GRT_E_TRUNCATED);
        assert_contains(e.msg, "cut.params: error: truncated parameter file");
    }
    assert_int_equal(load_bytes(&m, "empty.params", b, 0, &e), 1);
    assert_int_equal(e.code, GRT_E_EMPTY);
    assert_contains(e.msg, "empty.params: error: empty file");
    assert_int_equal(load_bytes(&m, "text.params", "hello, world\n", 13, &e), 1);
    assert_int_equal(e.code, GRT_E_MAGIC);
    assert_contains(e.msg, "text.params: error: not a gradc parameter file");
    /* a flipped byte anywhere past the version: damaged */
    for (i = 16; i < n; i++) {
        if (i >= 16 && i < 24)
            continue; /* the size field reads as truncation or damage: tested below */
        b[i] ^= 0x10;
        assert_int_equal(load_bytes(&m, "flip.params", b, n, &e), 1);
        if (e.code != GRT_E_CHECKSUM)
            print_error("byte %zu: %s\n", i, e.msg);
        assert_int_equal(e.code, GRT_E_CHECKSUM);
        b[i] ^= 0x10;
    }
    assert_contains(e.msg, "flip.params: error: damaged parameter file: checksum");
    b[16] ^= 1; /* the size field */
    assert_int_equal(load_bytes(&m, "flip.params", b, n, &e), 1);
    assert_true(e.code == GRT_E_CHECKSUM || e.code == GRT_E_TRUNCATED);
    b[16] ^= 1;
    /* trailing garbage */
    {
        unsigned char *c = malloc(n + 3);
        memcpy(c, b, n);
        memcpy(c + n, "xyz", 3);
        assert_int_equal(load_bytes(&m, "long.params", c, n + 3, &e), 1);
        assert_int_equal(e.code, GRT_E_CHECKSUM);
        free(c);
    }
    free(b);
}

static void test_params_other_model(void **state)
{
    grt_model m = fake_linear(8), s3 = fake_softmax(8);
    size_t n;
    unsigned char *b = lin_file(&n);
    grt_err e;
    (void)state;
    m.hash ^= 1;
    assert_int_equal(load_bytes(&m, "other.params", b, n, &e), 1);
    assert_int_equal(e.code, GRT_E_MISMATCH);
    assert_contains(e.msg, "other.params: error: parameters of model 'lin' (hash "
                           "1111222233334444, 4 params, 3 inputs), not of this model 'lin' "
                           "(hash 1111222233334445");
    assert_int_equal(load_bytes(&s3, "other.params", b, n, &e), 1);
    assert_int_equal(e.code, GRT_E_MISMATCH);
    assert_contains(e.msg, "model 'lin'");
    assert_contains(e.msg, "this model 'soft3'");
    m = fake_linear(8);
    m.name = "lin2"; /* same shapes, another model */
    assert_int_equal(load_bytes(&m, "other.params", b, n, &e), 1);
    assert_int_equal(e.code, GRT_E_MISMATCH);
    free(b);
}

static void test_params_precision_version(void **state)
{
    grt_model m = fake_linear(8);
    size_t n;
    unsigned char *b = lin_file(&n);
    grt_err e;
    (void)state;
    b[12] = sizeof(grt_real) == 4 ? 8 : 4;
    reseal(b, n);
    assert_int_equal(load_bytes(&m, "prec.params", b, n, &e), 1);
    assert_int_equal(e.code, GRT_E_PRECISION);
    assert_contains(e.msg, sizeof(grt_real) == 4
                               ? "prec.params: error: the file holds double parameters, but "
                                 "this executable of model 'lin' is float"
                               : "prec.params: error: the file holds float parameters");
    b[12] = sizeof(grt_real);
    b[8] = 2;
    reseal(b, n);
    assert_int_equal(load_bytes(&m, "ver.params", b, n, &e), 1);
    assert_int_equal(e.code, GRT_E_VERSION);
    assert_contains(e.msg, "ver.params: error: parameter file format version 2 is not supported");
    free(b);
}

static void test_params_unknown_section(void **state)
{
    grt_model m = fake_linear(8);
    size_t n, end, k;
    unsigned char *b = lin_file(&n), *c;
    grt_err e;
    static const unsigned char sec[] = {'O', 'P', 'T', 'S', 5, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5};
    (void)state;
    end = n - 8 - 12; /* the END section */
    assert_memory_equal(b + end, "END ", 4);
    c = malloc(n + sizeof sec);
    memcpy(c, b, end);
    memcpy(c + end, sec, sizeof sec);
    memcpy(c + end + sizeof sec, b + end, n - end);
    for (k = 0; k < 8; k++)
        c[16 + k] = (unsigned char)((n + sizeof sec) >> (8 * k));
    reseal(c, n + sizeof sec);
    assert_int_equal(load_bytes(&m, "ext.params", c, n + sizeof sec, &e), 0);
    /* a section running past the end */
    c[end + 4] = 200;
    reseal(c, n + sizeof sec);
    assert_int_equal(load_bytes(&m, "ext.params", c, n + sizeof sec, &e), 1);
    assert_int_equal(e.code, GRT_E_FORMAT);
    free(c);
    free(b);
}

static void test_params_save_failures(void **state)
{
    grt_model m = fake_linear(8);
    grt_real a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8}, q[4];
    char path[600], dir[512];
    grt_err e;
    grt_stats s;
    pid_t pid;
    int st;
    (void)state;
    memset(&e, 0, sizeof e);
    /* no such directory */
    assert_int_equal(grt_params_save(tpath(path, "nope/x.params"), &m, a, NULL, &e), 2);
    assert_int_equal(e.code, GRT_E_IO);
    assert_contains(e.msg, "nope/x.params: error: cannot create a temporary file for it");

    /* a write that fails half way (file size limit): old file intact, no temp */
    tpath(dir, "keep");
    assert_int_equal(mkdir(dir, 0777), 0);
    snprintf(path, sizeof path, "%s/p.params", dir);
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_params_save(path, &m, a, NULL, &e), 0);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {40, 40};
        signal(SIGXFSZ, SIG_IGN);
        setrlimit(RLIMIT_FSIZE, &rl);
        memset(&e, 0, sizeof e);
        st = grt_params_save(path, &m, b, NULL, &e);
        _exit(st == 2 && e.code == GRT_E_IO && strstr(e.msg, "cannot write it") ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(grt_params_load(path, &m, q, &s, &e), 0);
    assert_memory_equal(q, a, sizeof a);
    assert_int_equal(count_files(dir, ".tmp."), 0);

    /* an unwritable directory; root writes anywhere, so as root the save runs
     * in a child that became nobody */
    assert_int_equal(chmod(dir, 0555), 0);
    assert_int_equal(chmod(tmpdir, 0755), 0);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(3);
        memset(&e, 0, sizeof e);
        st = grt_params_save(path, &m, b, NULL, &e);
        _exit(st == 2 && e.code == GRT_E_IO &&
                      strstr(e.msg, "p.params: error: cannot create a temporary file for it")
                  ? 0
                  : 1);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_int_equal(chmod(dir, 0755), 0);
    assert_int_equal(chmod(tmpdir, 0700), 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(grt_params_load(path, &m, q, &s, &e), 0);
    assert_memory_equal(q, a, sizeof a);
    assert_int_equal(count_files(dir, ".tmp."), 0);

    /* a save replaces the file whole */
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_params_save(path, &m, b, NULL, &e), 0);
    assert_int_equal(grt_params_load(path, &m, q, &s, &e), 0);
    assert_memory_equal(q, b, sizeof b);
    assert_int_equal(count_files(dir, "p.params"), 1);

    memset(&e, 0, sizeof e);
    assert_int_equal(grt_params_load(tpath(path, "missing.params"), &m, q, &s, &e), 2);
    assert_int_equal(e.code, GRT_E_IO);
}

/* ---------------------------------------------------------------- the model */

static void test_model_check(void **state)
{
    grt_model m;
    grt_err e;
    (void)state;
    memset(&e, 0, sizeof e);
    m = fake_linear(8);
    assert_int_equal(grt_model_check(&m, &e), 0);
    m = fake_softmax(8);
    assert_int_equal(grt_model_check(&m, &e), 0);
    m = fake_logistic(8);
    assert_int_equal(grt_model_check(&m, &e), 0);
    m = fake_recorder(8);
    assert_int_equal(grt_model_check(&m, &e), 0);
    m.param_count = 2;
    assert_int_equal(grt_model_check(&m, &e), 1);
    assert_int_equal(e.code, GRT_E_MODEL_DESC);
    assert_contains(e.msg, "rec: internal error: model descriptor:");
    memset(&e, 0, sizeof e);
    m = fake_softmax(8);
    m.output_size = 2;
    assert_int_equal(grt_model_check(&m, &e), 1);
    memset(&e, 0, sizeof e);
    m = fake_linear(0);
    assert_int_equal(grt_model_check(&m, &e), 1);
    fake_max_batch = 8;
}

/* -------------------------------------------------------------- grt_main */

static void test_main_usage(void **state)
{
    grt_model m = fake_linear(8);
    char data[512], *s;
    (void)state;
    tpath(data, "u.csv");
    write_text(data, "1,2,3,4\n");
    assert_int_equal(run_main(&m, NULL, NULL), 2);
    assert_contains(s = err_text(), "usage: lin COMMAND");
    free(s);
    assert_int_equal(run_main(&m, NULL, "--help", NULL), 0);
    assert_contains(s = out_text(), "lin train DATA [--valid DATA]");
    free(s);
    assert_int_equal(run_main(&m, NULL, "train", "--help", NULL), 0);
    assert_contains(s = out_text(), "usage:");
    free(s);
    assert_int_equal(run_main(&m, NULL, "frobnicate", NULL), 2);
    assert_contains(s = err_text(), "lin: error: unknown command 'frobnicate' (see 'lin --help')");
    free(s);
    assert_int_equal(run_main(&m, NULL, "train", NULL), 2);
    assert_int_equal(run_main(&m, NULL, "train", data, "--epochs", "abc", NULL), 2);
    assert_contains(s = err_text(), "lin: error: --epochs: 'abc' is not an integer");
    free(s);
    assert_int_equal(run_main(&m, NULL, "train", data, "--lr=-1", NULL), 2);
    assert_int_equal(run_main(&m, NULL, "train", data, "--lr", NULL), 2);
    assert_contains(s = err_text(), "--lr needs a value");
    free(s);
    assert_int_equal(run_main(&m, NULL, "train", data, "--seed", "-3", NULL), 2);
    assert_int_equal(run_main(&m, NULL, "train", data, "--bogus", NULL), 2);
    assert_contains(s = err_text(), "unknown option '--bogus'");
    free(s);
    assert_int_equal(run_main(&m, NULL, "eval", "x.params", data, "--epochs", "3", NULL), 2);
    assert_contains(s = err_text(), "eval does not take --epochs");
    free(s);
    assert_int_equal(run_main(&m, NULL, "eval", "x.params", NULL), 2);
    assert_int_equal(run_main(&m, NULL, "info", "extra", NULL), 2);
    assert_int_equal(run_main(&m, NULL, "train", data, "-q", "--epochs", "1", "--batch", "all",
                              NULL),
                     0);
}

static void test_main_info(void **state)
{
    grt_model m = fake_softmax(8);
    char *s;
    (void)state;
    m.train.opt = GRT_ADAM;
    assert_int_equal(run_main(&m, NULL, "info", NULL), 0);
    s = out_text();
    assert_contains(s, "model      soft3\n");
    assert_contains(s, "precision  " GRT_REAL_NAME "\n");
    assert_contains(s, "hash       5555666677778888\n");
    assert_contains(s, "  label            1  class(3)\n");
    assert_contains(s, "params     9 values in 2 tensors\n");
    assert_contains(s, "  W                [3, 2]           6\n");
    assert_contains(s, "train      adam(lr=0.1, beta1=0.9, beta2=0.999, eps=1e-08)\n");
    assert_contains(s, "           batch 4, epochs 10, shuffle on, seed 42\n");
    free(s);
}

/* Parses "loss X" (or "KEY X") on a line of s. */
static double value_of(const char *s, const char *key)
{
    const char *p = s;
    size_t k = strlen(key);
    while (p && *p) {
        if (strncmp(p, key, k) == 0 && p[k] == ' ')
            return strtod(p + k + 1, NULL);
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    print_error("no '%s' line in \"%s\"\n", key, s);
    fail();
    return 0;
}

static void test_main_train_eval_predict(void **state)
{
    grt_model m = fake_linear(8);
    grt_data d;
    char data[512], inputs[512], params[512], *s, *line;
    size_t i;
    (void)state;
    linear_data(&d, 100, 21, 0, 1);
    write_csv(tpath(data, "train.csv"), &d, "x0,x1,x2,y", 1);
    write_csv(tpath(inputs, "inputs.csv"), &d, NULL, 0);
    tpath(params, "lin.params");

    assert_int_equal(run_main(&m, NULL, "train", data, "--epochs", "3", "--save", params,
                              "--lr", "1e-5", NULL),
                     0);
    s = err_text();
    assert_contains(s, "epoch 1/3  loss ");
    assert_contains(s, " ex/s  eta ");
    assert_contains(s, "saved ");
    free(s);

    /* x0 is around 50: the raw data needs a small rate; standardized it does not */
    assert_int_equal(run_main(&m, NULL, "train", data, "--epochs", "300", "--batch", "0",
                              "--lr", "0.3", "--standardize", "--save", params, "-q", NULL),
                     0);
    s = err_text();
    assert_string_equal(s, "");
    free(s);
    s = out_text();
    assert_true(value_of(s, "train loss") < 1e-6);
    free(s);

    assert_int_equal(run_main(&m, NULL, "eval", params, data, NULL), 0);
    s = out_text();
    assert_true(value_of(s, "loss") < 1e-6);
    assert_null(strstr(s, "accuracy")); /* a real target: no accuracy */
    free(s);

    /* predictions on raw inputs (the saved scaling applies), with or without
     * the target column, from a file or stdin */
    assert_int_equal(run_main(&m, NULL, "predict", params, inputs, NULL), 0);
    s = out_text();
    for (i = 0, line = s; i < d.n; i++) {
        char *end;
        double v = strtod(line, &end);
        assert_true(end != line && *end == '\n');
        assert_true(fabs(v - d.y[i]) < 1e-3);
        line = end + 1;
    }
    assert_string_equal(line, "");
    assert_int_equal(run_main(&m, data, "predict", params, NULL), 0);
    {
        char *t = out_text();
        assert_string_equal(s, t);
        free(t);
    }
    assert_int_equal(run_main(&m, data, "predict", params, "-", NULL), 0);
    {
        char *t = out_text();
        assert_string_equal(s, t);
        free(t);
    }
    free(s);

    /* params: each tensor's name and shape, then its rows */
    assert_int_equal(run_main(&m, NULL, "params", params, NULL), 0);
    s = out_text();
    {
        double w0, w1, w2, b;
        assert_int_equal(sscanf(s, "W[1,3]\n  %lf %lf %lf\nb[1]\n  %lf\n", &w0, &w1, &w2, &b), 4);
        assert_true(strlen(strstr(s, "b[1]\n")) > 7 && s[strlen(s) - 1] == '\n');
    }
    free(s);
    assert_int_equal(run_main(&m, NULL, "params", NULL), 2);

    /* --resume with 0 epochs saves the same params */
    {
        char again[512];
        grt_real p1[4], p2[4];
        grt_stats s1, s2;
        grt_err e;
        memset(&e, 0, sizeof e);
        tpath(again, "again.params");
        assert_int_equal(run_main(&m, NULL, "train", data, "--resume", params, "--epochs", "0",
                                  "--save", again, "-q", NULL),
                         0);
        assert_int_equal(grt_params_load(params, &m, p1, &s1, &e), 0);
        assert_int_equal(grt_params_load(again, &m, p2, &s2, &e), 0);
        assert_memory_equal(p1, p2, sizeof p1);
        assert_int_equal(s2.n, 3);
        assert_memory_equal(s1.mean, s2.mean, 3 * sizeof(double));
        grt_stats_free(&s1);
        grt_stats_free(&s2);
    }
    grt_data_free(&d);
}

static void test_main_classifier(void **state)
{
    grt_model m = fake_softmax(8);
    grt_data d, v;
    char train[512], valid[512], params[512], *s;
    double acc;
    (void)state;
    cluster_data(&d, 120, 1);
    cluster_data(&v, 30, 2);
    write_csv(tpath(train, "c_train.csv"), &d, NULL, 1);
    write_csv(tpath(valid, "c_valid.csv"), &v, "x,y,label", 1);
    tpath(params, "c.params");
    assert_int_equal(run_main(&m, NULL, "train", train, "--valid", valid, "--epochs", "20",
                              "--save", params, NULL),
                     0);
    s = err_text();
    assert_contains(s, "epoch 20/20  loss ");
    assert_contains(s, "  valid loss ");
    assert_contains(s, " acc 1.0000  ");
    free(s);
    s = out_text();
    assert_contains(s, "valid accuracy 1.0000 (30/30)\n");
    assert_true(value_of(s, "valid loss") < 0.3);
    free(s);
    assert_int_equal(run_main(&m, NULL, "eval", params, valid, NULL), 0);
    s = out_text();
    assert_true(value_of(s, "loss") < 0.3);
    acc = value_of(s, "accuracy");
    assert_true(acc == 1.0);
    assert_contains(s, "accuracy 1.0000 (30/30)\n");
    free(s);
    /* logits: three numbers a line */
    assert_int_equal(run_main(&m, NULL, "predict", params, valid, NULL), 0);
    s = out_text();
    {
        double a, b, c;
        assert_int_equal(sscanf(s, "%lf %lf %lf\n", &a, &b, &c), 3);
    }
    free(s);

    /* validate 0.25 holds out 30 of the 120 */
    m.train.validate = 0.25;
    assert_int_equal(run_main(&m, NULL, "train", train, "--epochs", "5", "-q", NULL), 0);
    s = out_text();
    assert_contains(s, "valid accuracy ");
    assert_contains(s, "/30)\n");
    free(s);
    /* patience: stops and keeps the best epoch */
    m.train.patience = 1;
    m.train.lr = 5;
    assert_int_equal(run_main(&m, NULL, "train", train, "--epochs", "50", NULL), 0);
    free(out_text());
    grt_data_free(&d);
    grt_data_free(&v);
}

static void test_main_errors(void **state)
{
    grt_model m = fake_linear(8), s3 = fake_softmax(8);
    char data[512], bad[512], params[512], soft[512], damaged[512], *s;
    size_t n;
    (void)state;
    tpath(data, "e.csv");
    write_text(data, "1,2,3,4\n2,3,4,5\n");
    tpath(bad, "bad.csv");
    write_text(bad, "1,2,3,4\n2,3,4,5\n1,2,oops,4\n");
    tpath(params, "e.params");
    tpath(soft, "soft.params");

    assert_int_equal(run_main(&m, NULL, "train", bad, "-q", NULL), 1);
    assert_contains(s = err_text(), "bad.csv:3:5: error: 'oops' is not a number (field 3)\n");
    free(s);
    assert_int_equal(run_main(&m, NULL, "train", tpath(bad, "none.csv"), NULL), 2);
    assert_contains(s = err_text(), "none.csv: error: cannot open");
    free(s);
    assert_int_equal(run_main(&m, NULL, "train", data, "--save", tpath(bad, "no/dir/x.params"),
                              NULL),
                     2);
    assert_contains(s = err_text(), "no/dir/x.params: error: cannot save there");
    free(s);
    assert_int_equal(run_main(&m, NULL, "train", data, "--valid", tpath(bad, "none.csv"), NULL),
                     2);

    assert_int_equal(run_main(&m, NULL, "train", data, "-q", "--save", params, NULL), 0);
    assert_int_equal(run_main(&s3, NULL, "eval", params, data, NULL), 1);
    assert_contains(s = err_text(), "e.params: error: parameters of model 'lin'");
    free(s);
    assert_int_equal(run_main(&m, NULL, "eval", soft, data, NULL), 2);
    assert_contains(s = err_text(), "soft.params: error: cannot open");
    free(s);
    s = slurp(params, &n);
    s[n - 20] ^= 1;
    write_bytes(tpath(damaged, "damaged.params"), s, n);
    free(s);
    assert_int_equal(run_main(&m, NULL, "eval", damaged, data, NULL), 1);
    assert_contains(s = err_text(), "damaged.params: error: damaged parameter file");
    free(s);
    assert_int_equal(run_main(&m, NULL, "predict", damaged, data, NULL), 1);
    assert_int_equal(run_main(&m, NULL, "train", data, "--resume", damaged, NULL), 1);

    /* a learning rate that blows up */
    assert_int_equal(run_main(&m, NULL, "train", data, "--lr", "1e30", "--epochs", "50", "-q",
                              NULL),
                     1);
    assert_contains(s = err_text(), "lin: error: training diverged");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)
        T(test_parse_number),
        T(test_csv_no_header),
        T(test_csv_header),
        T(test_csv_crlf_bom_blank),
        T(test_csv_bad_field_line_312),
        T(test_csv_wrong_count),
        T(test_csv_nonfinite),
        T(test_csv_empty),
        T(test_csv_huge_line),
        T(test_csv_predict_columns),
        T(test_csv_class_range),
        T(test_stats),
        T(test_rng_golden),
        T(test_shuffle),
        T(test_chunked_gradient),
        T(test_partial_last_batch),
        T(test_sgd_least_squares),
        T(test_optimizers),
        T(test_opt_step_rules),
        T(test_schedules),
        T(test_softmax_accuracy),
        T(test_binary_accuracy),
        T(test_params_roundtrip),
        T(test_params_damaged),
        T(test_params_other_model),
        T(test_params_precision_version),
        T(test_params_unknown_section),
        T(test_params_save_failures),
        T(test_model_check),
        T(test_main_usage),
        T(test_main_info),
        T(test_main_train_eval_predict),
        T(test_main_classifier),
        T(test_main_errors),
#undef T
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
