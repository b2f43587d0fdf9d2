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
 *      [-DGRT_DOUBLE] tests/test_runtime.c runtime/\*.c -lcmocka -lz -lm
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
#include <time.h>
#include <unistd.h>

#include <zlib.h>

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
    fake_calls = fake_nan_at = fake_kill_at = 0;
    fake_grad_scale = 1;
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
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st); /* as a shell says it */
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
    static const grt_io_info in[] = {{"x", N, 0, 0}};
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
    memmove(text + len + 1, text, len + 2); /* the ranges share a byte */
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
    grt_data d = {4, 3, 0, NULL, NULL, 4, 0, NULL, NULL};
    grt_stats s;
    size_t i;
    double m0 = 0, v0 = 0;
    (void)state;
    memset(&s, 0, sizeof s);
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
    c.sched = GRT_COSINE, c.sched_a = 0, c.sched_b = 0;
    assert_true(fabs(grt_sched_lr(&c, 0.1, 0, 10) - 0.1) < 1e-15);
    assert_true(fabs(grt_sched_lr(&c, 0.1, 5, 10) - 0.05) < 1e-15);
    /* cosine(warmup = 4, min_lr = 0.01) over 10 steps: 0.025, 0.05, 0.075,
     * 0.1, then from 0.1 at step 4 to 0.01 at the last step, 9 */
    c.sched_a = 4, c.sched_b = 0.01;
    assert_true(fabs(grt_sched_lr(&c, 0.1, 0, 10) - 0.025) < 1e-15);
    assert_true(fabs(grt_sched_lr(&c, 0.1, 2, 10) - 0.075) < 1e-15);
    assert_true(fabs(grt_sched_lr(&c, 0.1, 3, 10) - 0.1) < 1e-15);
    assert_true(fabs(grt_sched_lr(&c, 0.1, 4, 10) - 0.1) < 1e-15);
    assert_true(fabs(grt_sched_lr(&c, 0.1, 9, 10) - 0.01) < 1e-15);
    assert_true(fabs(grt_sched_lr(&c, 0.1, 6, 10) -
                     (0.01 + 0.09 * 0.5 * (1 + cos(3.14159265358979323846 * 2 / 5)))) < 1e-15);
    /* warm-up alone: to lr, then down to 0 at the last step */
    c.sched_a = 2, c.sched_b = 0;
    assert_true(fabs(grt_sched_lr(&c, 0.1, 0, 10) - 0.05) < 1e-15);
    assert_true(fabs(grt_sched_lr(&c, 0.1, 9, 10)) < 1e-15);
    c.sched = GRT_EXPONENTIAL, c.sched_a = 0.9;
    assert_true(fabs(grt_sched_lr(&c, 0.1, 2, 10) - 0.081) < 1e-15);
}

/* nodecay and frozen, for every optimizer: a frozen param never moves (a
 * NaN gradient of it is ignored, it is left out of the clipping norm), a
 * nodecay param gets no L2 and no decoupled decay. */
static void test_param_flags(void **state)
{
    static grt_param_info ps[] = {
        {"F", 1, {2}, 0, 2, 0, GRT_PARAM_FROZEN},
        {"N", 1, {1}, 2, 1, 0, GRT_PARAM_NODECAY},
        {"D", 1, {1}, 3, 1, 0, 0},
    };
    grt_model m = fake_linear(8);
    int k;
    (void)state;
    m.params = ps;
    m.nparams = 3;
    for (k = 0; k < GRT_OPT_COUNT; k++) {
        grt_train_config c = fake_config();
        grt_optimizer o;
        grt_real p[4] = {1, 2, 3, 4}, g[4] = {5, 6, 0, 0};
        int step;
        c.opt = k;
        c.weight_decay = 0.1;
        c.opt_weight_decay = 0.2;
        c.clip = 1e-3; /* only F's gradient is large: left out, no clipping */
        grt_opt_init(&o, &c, 4, 0);
        grt_opt_flags(&o, &m);
        for (step = 0; step < 3; step++) {
            grt_real gs[4];
            memcpy(gs, g, sizeof gs);
            gs[1] = (grt_real)NAN;
            grt_opt_ignore_frozen(&o, gs);
            assert_true(gs[0] == 0 && gs[1] == 0);
            grt_opt_step(&o, p, gs, 0.01);
        }
        assert_true(p[0] == 1 && p[1] == 2); /* frozen */
        assert_true(p[2] == 3);              /* nodecay, zero gradient */
        assert_true(p[3] < 4);               /* decayed */
        if (o.m)
            assert_true(o.m[0] == 0 && o.m[1] == 0);
        grt_opt_free(&o);
    }
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
    grt_data d = {5, 2, 1, NULL, NULL, 5, 0, NULL, NULL};
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
    grt_stats s = {3, mean, sd, NULL, 0, 0, {0}}, t;
    grt_err e;
    char path[512], *bytes;
    size_t n;
    (void)state;
    memset(&e, 0, sizeof e);
    tpath(path, "rt.params");
    assert_int_equal(grt_params_save(path, &m, p, &s, NULL, &e), 0);
    bytes = slurp(path, &n);
    assert_memory_equal(bytes, "GRADCPRM", 8);
    assert_int_equal(n, 52 + 3 + 12 + 4 * sizeof(grt_real) + 12 + 8 + 48 + 12 + 8);
    free(bytes);
    assert_int_equal(grt_params_load(path, &m, q, &t, NULL, &e), 0);
    assert_memory_equal(p, q, sizeof p);
    assert_int_equal(t.n, 3);
    assert_memory_equal(t.mean, mean, sizeof mean);
    assert_memory_equal(t.std, sd, sizeof sd);
    grt_stats_free(&t);
    /* without stats */
    assert_int_equal(grt_params_save(path, &m, p, NULL, NULL, &e), 0);
    assert_int_equal(grt_params_load(path, &m, q, &t, NULL, &e), 0);
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
    return grt_params_load(path, m, q, &s, NULL, e) ? e->status : (grt_stats_free(&s), 0);
}

/* A saved linear model's file bytes. */
static unsigned char *lin_file(size_t *n)
{
    grt_model m = fake_linear(8);
    grt_real p[4] = {1, 2, 3, 4};
    double mean[3] = {0}, sd[3] = {1, 1, 1};
    grt_stats s = {3, mean, sd, NULL, 0, 0, {0}};
    return grt_params_encode(&m, p, &s, NULL, n);
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
    static const unsigned char sec[] = {'X', 'T', 'R', 'A', 5, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5};
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
    assert_int_equal(grt_params_save(tpath(path, "nope/x.params"), &m, a, NULL, NULL, &e), 2);
    assert_int_equal(e.code, GRT_E_IO);
    assert_contains(e.msg, "nope/x.params: error: cannot create a temporary file for it");

    /* a write that fails half way (file size limit): old file intact, no temp */
    tpath(dir, "keep");
    assert_int_equal(mkdir(dir, 0777), 0);
    snprintf(path, sizeof path, "%s/p.params", dir);
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_params_save(path, &m, a, NULL, NULL, &e), 0);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* SIGXFSZ is left at its default, which kills: the runtime
         * ignores it while writing, so the write fails instead */
        struct rlimit rl = {40, 40};
        setrlimit(RLIMIT_FSIZE, &rl);
        memset(&e, 0, sizeof e);
        st = grt_params_save(path, &m, b, NULL, NULL, &e);
        _exit(st == 2 && e.code == GRT_E_IO && strstr(e.msg, "cannot write it") ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(grt_params_load(path, &m, q, &s, NULL, &e), 0);
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
        st = grt_params_save(path, &m, b, NULL, NULL, &e);
        _exit(st == 2 && e.code == GRT_E_IO &&
                      strstr(e.msg, "p.params: error: cannot create a temporary file for it")
                  ? 0
                  : 1);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_int_equal(chmod(dir, 0755), 0);
    assert_int_equal(chmod(tmpdir, 0700), 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(grt_params_load(path, &m, q, &s, NULL, &e), 0);
    assert_memory_equal(q, a, sizeof a);
    assert_int_equal(count_files(dir, ".tmp."), 0);

    /* a save replaces the file whole */
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_params_save(path, &m, b, NULL, NULL, &e), 0);
    assert_int_equal(grt_params_load(path, &m, q, &s, NULL, &e), 0);
    assert_memory_equal(q, b, sizeof b);
    assert_int_equal(count_files(dir, "p.params"), 1);

    memset(&e, 0, sizeof e);
    assert_int_equal(grt_params_load(tpath(path, "missing.params"), &m, q, &s, NULL, &e), 2);
    assert_int_equal(e.code, GRT_E_IO);
}

/* ------------------------------------------------------------ output policy */

/* Runs f(arg) in a child that became nobody when we are root (root writes
 * anywhere); returns the child's exit status. */
static int as_nobody(int (*f)(const char *), const char *arg)
{
    pid_t pid;
    int st;
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(3);
        _exit(f(arg));
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* 0 when path is refused as an output with "cannot write". */
static int refused_unwritable(const char *path)
{
    grt_outset s;
    char err[600];
    grt_outset_init(&s);
    return !grt_outset_check(&s, path, err, sizeof err) && strstr(err, "cannot write") ? 0 : 1;
}

static void test_outset(void **state)
{
    grt_outset s;
    char err[600], data[512], hard[512], soft[512], dir[512], fresh[600], ro[512], fifo[512];
    (void)state;
    write_text(tpath(data, "os_data.csv"), "1,2,3,4\n");
    tpath(hard, "os_hard.csv");
    tpath(soft, "os_soft.csv");
    assert_int_equal(link(data, hard), 0);
    assert_int_equal(symlink(data, soft), 0);
    grt_outset_init(&s);
    grt_outset_input(&s, data);
    grt_outset_input(&s, "-");                 /* stdin: nothing to protect */
    grt_outset_input(&s, tpath(fresh, "os_missing"));
    assert_int_equal(s.nin, 1);

    /* the input, by its name, a hard link and a symbolic link */
    assert_int_equal(grt_outset_check(&s, data, err, sizeof err), 0);
    assert_contains(err, "os_data.csv: error: is an input of this run");
    assert_int_equal(grt_outset_check(&s, hard, err, sizeof err), 0);
    assert_contains(err, "os_hard.csv: error: is an input of this run (");
    assert_int_equal(grt_outset_check(&s, soft, err, sizeof err), 0);
    assert_contains(err, "is an input of this run");

    /* a directory, with or without a trailing slash */
    assert_int_equal(grt_outset_check(&s, tmpdir, err, sizeof err), 0);
    assert_contains(err, "error: is a directory");
    snprintf(dir, sizeof dir, "%s/", tmpdir);
    assert_int_equal(grt_outset_check(&s, dir, err, sizeof err), 0);
    assert_contains(err, "error: is a directory");
    /* a new name ending in '/', a missing directory */
    assert_int_equal(grt_outset_check(&s, tpath(dir, "os_new/"), err, sizeof err), 0);
    assert_int_equal(grt_outset_check(&s, tpath(dir, "no/such/x"), err, sizeof err), 0);
    assert_contains(err, "no/such/x: error: cannot write there:");

    /* fine: a new name, another file, a device, a FIFO */
    assert_int_equal(grt_outset_check(&s, tpath(fresh, "os_fresh.params"), err, sizeof err), 1);
    write_text(tpath(ro, "os_other.csv"), "x\n");
    assert_int_equal(grt_outset_check(&s, ro, err, sizeof err), 1);
    assert_int_equal(grt_outset_check(&s, "/dev/null", err, sizeof err), 1);
    assert_int_equal(mkfifo(tpath(fifo, "os_fifo"), 0600), 0);
    assert_int_equal(grt_outset_check(&s, fifo, err, sizeof err), 1);

    /* two outputs at one place: refused, also through a link */
    assert_int_equal(grt_outset_output(&s, fresh, err, sizeof err), 1);
    assert_int_equal(grt_outset_output(&s, fresh, err, sizeof err), 0);
    assert_contains(err, "os_fresh.params: error: is also written as another output");
    assert_int_equal(grt_outset_output(&s, ro, err, sizeof err), 1);
    assert_int_equal(symlink(ro, tpath(dir, "os_other_link")), 0);
    assert_int_equal(grt_outset_output(&s, dir, err, sizeof err), 0);
    assert_int_equal(grt_outset_output(&s, "/dev/null", err, sizeof err), 1);

    /* unwritable: a read-only file, a read-only directory */
    assert_int_equal(chmod(ro, 0444), 0);
    assert_int_equal(chmod(tmpdir, 0755), 0);
    assert_int_equal(as_nobody(refused_unwritable, ro), 0);
    tpath(dir, "os_ro");
    assert_int_equal(mkdir(dir, 0555), 0);
    snprintf(fresh, sizeof fresh, "%s/new.params", dir);
    assert_int_equal(as_nobody(refused_unwritable, fresh), 0);
    assert_int_equal(chmod(tmpdir, 0700), 0);
    assert_int_equal(chmod(ro, 0644), 0);
}

/* The child's end of a FIFO: reads it whole into fifo_got.txt. */
static void fifo_reader(const char *fifo, const char *out)
{
    char buf[256];
    size_t n;
    FILE *in = fopen(fifo, "r"), *o = fopen(out, "w");
    if (!in || !o)
        _exit(1);
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, o);
    _exit(fclose(o) != 0);
}

static void test_outfile(void **state)
{
    grt_outfile o;
    struct stat sb;
    char err[600], path[600], fifo[512], got[512], dir[512], link_[600];
    char *text;
    pid_t pid;
    int st;
    (void)state;

    /* /dev/null is written into and stays a character device */
    assert_int_equal(grt_outfile_open(&o, "/dev/null", err, sizeof err), 1);
    assert_true(o.in_place);
    assert_null(o.tmp);
    fputs("nothing\n", o.f);
    assert_int_equal(grt_outfile_commit(&o, err, sizeof err), 1);
    assert_int_equal(stat("/dev/null", &sb), 0);
    assert_true(S_ISCHR(sb.st_mode));

    /* a FIFO: what is written comes out at the other end; it stays a FIFO */
    assert_int_equal(mkfifo(tpath(fifo, "of_fifo"), 0600), 0);
    tpath(got, "of_got.txt");
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        fifo_reader(fifo, got);
    assert_int_equal(grt_outfile_open(&o, fifo, err, sizeof err), 1);
    assert_true(o.in_place);
    fputs("through the pipe\n", o.f);
    assert_int_equal(grt_outfile_commit(&o, err, sizeof err), 1);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    text = slurp(got, NULL);
    assert_string_equal(text, "through the pipe\n");
    free(text);
    assert_int_equal(lstat(fifo, &sb), 0);
    assert_true(S_ISFIFO(sb.st_mode));

    /* a regular file through a temporary file; nothing there until commit */
    tpath(dir, "of_dir");
    assert_int_equal(mkdir(dir, 0777), 0);
    snprintf(path, sizeof path, "%s/out.txt", dir);
    write_text(path, "old\n");
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(grt_outfile_open(&o, path, err, sizeof err), 1);
    assert_false(o.in_place);
    assert_non_null(o.tmp);
    fputs("new\n", o.f);
    assert_int_equal(count_files(dir, ".tmp."), 1);
    text = slurp(path, NULL);
    assert_string_equal(text, "old\n");
    free(text);
    assert_int_equal(grt_outfile_commit(&o, err, sizeof err), 1);
    text = slurp(path, NULL);
    assert_string_equal(text, "new\n");
    free(text);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0640); /* the old file's mode */
    assert_int_equal(count_files(dir, ".tmp."), 0);

    /* abort: no trace, the old file as it was */
    assert_int_equal(grt_outfile_open(&o, path, err, sizeof err), 1);
    fputs("never\n", o.f);
    grt_outfile_abort(&o);
    text = slurp(path, NULL);
    assert_string_equal(text, "new\n");
    free(text);
    assert_int_equal(count_files(dir, ".tmp."), 0);

    /* a symbolic link to a regular file: the target is replaced, the link kept */
    snprintf(link_, sizeof link_, "%s/link.txt", dir);
    assert_int_equal(symlink("out.txt", link_), 0);
    assert_int_equal(grt_outfile_write(link_, "via link\n", 9, err, sizeof err), 1);
    assert_int_equal(lstat(link_, &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));
    text = slurp(path, NULL);
    assert_string_equal(text, "via link\n");
    free(text);

    /* a directory is refused */
    assert_int_equal(grt_outfile_open(&o, dir, err, sizeof err), 0);
    assert_contains(err, "of_dir: error: is a directory");

    /* a commit that fails (a file size limit of 100 bytes: SIGXFSZ must not
     * kill) leaves the old file and no temporary file */
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {100, 100};
        char big[4096];
        setrlimit(RLIMIT_FSIZE, &rl);
        memset(big, 'x', sizeof big);
        if (!grt_outfile_open(&o, path, err, sizeof err))
            _exit(2);
        fwrite(big, 1, sizeof big, o.f);
        _exit(!grt_outfile_commit(&o, err, sizeof err) && strstr(err, "out.txt: error: cannot write it: File too large") ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    text = slurp(path, NULL);
    assert_string_equal(text, "via link\n");
    free(text);
    assert_int_equal(count_files(dir, ".tmp."), 0);
}

/* Signals end the process after removing its temporary files and folders. */
static void test_cleanup_on_signal(void **state)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
    char dir[512], folder[600], path[700];
    size_t k;
    (void)state;
    tpath(dir, "cl_dir");
    assert_int_equal(mkdir(dir, 0777), 0);
    for (k = 0; k < sizeof sigs / sizeof sigs[0]; k++) {
        grt_outfile o;
        char err[600];
        pid_t pid;
        int st;
        snprintf(folder, sizeof folder, "%s/build.%zu", dir, k);
        fflush(NULL);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            FILE *f;
            snprintf(path, sizeof path, "%s/p.params", dir);
            if (!grt_outfile_open(&o, path, err, sizeof err))
                _exit(2);
            fputs("half", o.f);
            fflush(o.f);
            /* a folder with a registered file and one nobody registered */
            if (mkdir(folder, 0777) != 0)
                _exit(3);
            grt_cleanup_add(folder, 1);
            snprintf(path, sizeof path, "%s/m.c", folder);
            f = fopen(path, "w");
            grt_cleanup_add(path, 0);
            snprintf(path, sizeof path, "%s/cc-left-this.o", folder);
            if (!f || !fopen(path, "w"))
                _exit(4);
            raise(sigs[k]);
            _exit(5);
        }
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFSIGNALED(st));
        assert_int_equal(WTERMSIG(st), sigs[k]);
        assert_int_equal(count_files(dir, ".tmp."), 0);
        assert_int_equal(count_files(dir, "build."), 0);
    }
    /* one the process ignored stays ignored (nohup's SIGHUP) */
    {
        pid_t pid;
        int st;
        fflush(NULL);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            signal(SIGHUP, SIG_IGN);
            grt_cleanup_install();
            raise(SIGHUP);
            _exit(0);
        }
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
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
    assert_contains(s = out_text(), "usage: lin train DATA");
    free(s);
    /* a command's --help: that command's alone */
    assert_int_equal(run_main(&m, NULL, "predict", "--help", NULL), 0);
    assert_contains(s = out_text(), "usage: lin predict PARAMS [DATA] [--labels]\n");
    assert_null(strstr(s, "train"));
    assert_null(strstr(s, "gradcheck"));
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
    assert_contains(s, " ex/s  ");
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
        assert_int_equal(grt_params_load(params, &m, p1, &s1, NULL, &e), 0);
        assert_int_equal(grt_params_load(again, &m, p2, &s2, NULL, &e), 0);
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
    assert_contains(s, "  val_loss ");
    assert_contains(s, "  val_acc 1.0000  ");
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
    assert_contains(s = err_text(), "no/dir/x.params: error: cannot write there");
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

/* ======================================================== training, part 2 */

/* ---------------------------------------------- optimizers against their rules */

/* The gradient of fake_softmax's mean cross-entropy over d, in double,
 * written again here from the formula softmax(z) - onehot(label). */
static double ref_soft_grad(const double *p, const grt_data *d, double *g)
{
    double loss = 0;
    size_t i;
    int c;
    for (c = 0; c < 9; c++)
        g[c] = 0;
    for (i = 0; i < d->n; i++) {
        const double *x = d->x + 2 * i;
        int label = (int)d->y[i];
        double z[3], mx, s = 0;
        for (c = 0; c < 3; c++)
            z[c] = p[2 * c] * x[0] + p[2 * c + 1] * x[1] + p[6 + c];
        mx = z[0] > z[1] ? z[0] : z[1];
        mx = mx > z[2] ? mx : z[2];
        for (c = 0; c < 3; c++)
            s += exp(z[c] - mx);
        loss += mx + log(s) - z[label];
        for (c = 0; c < 3; c++) {
            double dz = (exp(z[c] - mx) / s - (c == label)) / (double)d->n;
            g[2 * c] += dz * x[0];
            g[2 * c + 1] += dz * x[1];
            g[6 + c] += dz;
        }
    }
    return loss / (double)d->n;
}

/* An optimizer as published, in double: SGD (Robbins and Monro 1951),
 * momentum and Nesterov momentum as torch.optim.SGD writes them (Sutskever
 * et al. 2013), RMSprop (Hinton's lecture 6e; torch.optim.RMSprop), Adam
 * (Kingma and Ba 2015, Algorithm 1) and AdamW (Loshchilov and Hutter 2019:
 * decay decoupled from the gradient, as torch.optim.AdamW applies it). The
 * gradient is first clipped to the global norm (clip_grad_norm_), then gets
 * the L2 term (the optimizers' weight_decay). */
typedef struct ref_opt {
    int kind;          /* enum grt_opt */
    double lr;         /* learning rate */
    double beta;       /* momentum, rmsprop's alpha, adam's beta1 */
    double beta2;      /* adam's beta2 */
    double eps;        /* denominator guard */
    double decoupled;  /* adamw's weight decay */
    double l2;         /* weight_decay */
    double clip;       /* max norm, 0: none */
    double sign;       /* -1 for gradient ascent */
    double buf[9];     /* momentum buffer, or adam's first moment */
    double sq[9];      /* square average, or adam's second moment */
    long t;            /* steps */
} ref_opt;

static void ref_update(ref_opt *r, double *p, const double *g)
{
    double norm = 0, coef = 1, d[9];
    size_t i;
    for (i = 0; i < 9; i++)
        norm += g[i] * g[i];
    norm = sqrt(norm);
    if (r->clip > 0 && norm > r->clip)
        coef = r->clip / norm;
    for (i = 0; i < 9; i++)
        d[i] = r->sign * coef * g[i] + r->l2 * p[i];
    r->t++;
    for (i = 0; i < 9; i++) {
        switch (r->kind) {
        case GRT_SGD:
            p[i] -= r->lr * d[i];
            break;
        case GRT_MOMENTUM:
            r->buf[i] = r->beta * r->buf[i] + d[i];
            p[i] -= r->lr * r->buf[i];
            break;
        case GRT_NESTEROV:
            r->buf[i] = r->beta * r->buf[i] + d[i];
            p[i] -= r->lr * (d[i] + r->beta * r->buf[i]);
            break;
        case GRT_RMSPROP:
            r->sq[i] = r->beta * r->sq[i] + (1 - r->beta) * d[i] * d[i];
            p[i] -= r->lr * d[i] / (sqrt(r->sq[i]) + r->eps);
            break;
        default: { /* adam, adamw */
            double mhat, vhat;
            if (r->kind == GRT_ADAMW)
                p[i] *= 1 - r->lr * r->decoupled;
            r->buf[i] = r->beta * r->buf[i] + (1 - r->beta) * d[i];
            r->sq[i] = r->beta2 * r->sq[i] + (1 - r->beta2) * d[i] * d[i];
            mhat = r->buf[i] / (1 - pow(r->beta, (double)r->t));
            vhat = r->sq[i] / (1 - pow(r->beta2, (double)r->t));
            p[i] -= r->lr * mhat / (sqrt(vhat) + r->eps);
        }
        }
    }
}

/* 20 full-batch steps of an optimizer on fake_softmax: the runtime's params
 * after every step against the rule computed in double; then grt_train's
 * 20 epochs against the steps, byte for byte. Returns the worst deviation. */
static double trajectory(const char *what, int kind, double lr, double clip, double l2,
                         double decoupled, int maximize)
{
    grt_model m = fake_softmax(5); /* 12 examples: chunks of 5, 5, 2 */
    grt_data d;
    grt_train_config c = m.train;
    grt_optimizer o;
    grt_run run;
    grt_trained res;
    grt_ctx ctx;
    grt_err e;
    ref_opt r;
    grt_real p[9], q[9], g[9];
    double ref[9], rg[9], dev = 0, prev_loss = 0;
    size_t idx[12], i;
    int step;

    cluster_data(&d, 12, 7);
    for (i = 0; i < 12; i++)
        idx[i] = i;
    c.opt = kind;
    c.lr = lr;
    c.beta1 = kind == GRT_RMSPROP ? 0.95 : 0.9;
    c.beta2 = 0.99;
    c.eps = 1e-8;
    c.opt_weight_decay = decoupled;
    c.weight_decay = l2;
    c.clip = clip;
    c.batch = 0;
    c.shuffle = 0;
    c.epochs = 20;
    memset(&r, 0, sizeof r);
    r.kind = kind;
    r.lr = lr;
    r.beta = c.beta1;
    r.beta2 = c.beta2;
    r.eps = c.eps;
    r.decoupled = decoupled;
    r.l2 = l2;
    r.clip = clip;
    r.sign = maximize ? -1 : 1;
    m.maximize = maximize;

    m.init(p, 3);
    for (i = 0; i < 9; i++)
        p[i] += (grt_real)(0.1 * (double)i - 0.4); /* off zero, so decay matters */
    memcpy(q, p, sizeof p);
    for (i = 0; i < 9; i++)
        ref[i] = p[i];
    grt_ctx_init(&ctx, &m);
    grt_opt_init(&o, &c, 9, maximize);
    for (step = 1; step <= 20; step++) {
        double loss = ref_soft_grad(ref, &d, rg), worst_step = 0;
        grt_batch_grad(&ctx, p, &d, idx, 12, g);
        grt_opt_step(&o, p, g, lr);
        ref_update(&r, ref, rg);
        for (i = 0; i < 9; i++) {
            double dv = fabs((double)p[i] - ref[i]) / (fabs(ref[i]) > 1 ? fabs(ref[i]) : 1);
            worst_step = dv > worst_step ? dv : worst_step;
        }
        dev = worst_step > dev ? worst_step : dev;
        if (maximize && step > 1)
            assert_true(loss > prev_loss); /* ascending */
        prev_loss = loss;
    }
    grt_opt_free(&o);
    print_message("  %-34s 20 steps, worst relative deviation %.3g\n", what, dev);

    /* the training loop takes the same steps */
    run = quiet_run(&m);
    run.cfg = c;
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_train(&ctx, q, &d, NULL, &run, &res, &e), 0);
    assert_memory_equal(q, p, sizeof p);
    grt_ctx_free(&ctx);
    grt_data_free(&d);
    return dev;
}

static void test_opt_trajectories(void **state)
{
    /* float params round every step; the rules themselves agree exactly */
    const double tol = sizeof(grt_real) == 4 ? 2e-5 : 1e-12;
    (void)state;
    assert_true(trajectory("sgd lr 0.5", GRT_SGD, 0.5, 0, 0, 0, 0) < tol);
    assert_true(trajectory("momentum lr 0.2", GRT_MOMENTUM, 0.2, 0, 0, 0, 0) < tol);
    assert_true(trajectory("nesterov lr 0.2", GRT_NESTEROV, 0.2, 0, 0, 0, 0) < tol);
    assert_true(trajectory("rmsprop lr 0.01", GRT_RMSPROP, 0.01, 0, 0, 0, 0) < tol);
    assert_true(trajectory("adam lr 0.05", GRT_ADAM, 0.05, 0, 0, 0, 0) < tol);
    assert_true(trajectory("adamw lr 0.05 wd 0.1", GRT_ADAMW, 0.05, 0, 0, 0.1, 0) < tol);
    assert_true(trajectory("sgd maximize lr 0.05", GRT_SGD, 0.05, 0, 0, 0, 1) < tol);
    assert_true(trajectory("adam maximize lr 0.01", GRT_ADAM, 0.01, 0, 0, 0, 1) < tol);
    assert_true(trajectory("momentum clip 0.1 weight_decay 0.01", GRT_MOMENTUM, 0.2, 0.1, 0.01,
                           0, 0) < tol);
    assert_true(trajectory("adam clip 0.5 weight_decay 0.05", GRT_ADAM, 0.05, 0.5, 0.05, 0, 0) <
                tol);
    assert_true(trajectory("adamw + weight_decay + clip", GRT_ADAMW, 0.05, 0.2, 0.01, 0.1, 0) <
                tol);
    assert_true(trajectory("rmsprop clip 0.05", GRT_RMSPROP, 0.01, 0.05, 0, 0, 0) < tol);
}

/* ------------------------------------------------------------- batch modes */

static void test_full_batch_is_mean(void **state)
{
    grt_model m = fake_softmax(5);
    grt_data d;
    grt_ctx c;
    grt_real p[9], g[9], gi[9];
    double mean[9] = {0}, loss = 0, l;
    size_t idx[23], i, k;
    (void)state;
    cluster_data(&d, 23, 9); /* 23 = 5 + 5 + 5 + 5 + 3: a partial chunk */
    m.init(p, 5);
    grt_ctx_init(&c, &m);
    /* the per-example gradients, one call each, averaged in double */
    for (i = 0; i < 23; i++) {
        loss += grt_batch_grad(&c, p, &d, &i, 1, gi) / 23;
        for (k = 0; k < 9; k++)
            mean[k] += (double)gi[k] / 23;
        idx[i] = (i * 5) % 23; /* the full batch in another order */
    }
    l = grt_batch_grad(&c, p, &d, idx, 23, g);
    assert_true(worst("full batch vs mean of 23 examples", g, mean, 9) < TOL);
    assert_true(fabs(l - loss) < TOL);
    grt_ctx_free(&c);
    grt_data_free(&d);
}

/* One epoch of `batch 4` over 10 examples is the steps of 4, 4 and 2 examples
 * of the shuffled order, each its own mean gradient: the last, partial batch
 * is a step, not dropped. */
static void test_minibatch_steps(void **state)
{
    grt_model m = fake_linear(3);
    grt_data d;
    grt_run run = quiet_run(&m);
    grt_trained res;
    grt_ctx c;
    grt_err e;
    grt_rng r;
    grt_real p[4], q[4], g[4];
    size_t idx[10], i;
    (void)state;
    linear_data(&d, 10, 3, 0.1, 0);
    m.init(p, 2);
    memcpy(q, p, sizeof p);
    run.cfg.batch = 4;
    run.cfg.epochs = 1;
    run.cfg.lr = 0.1;
    memset(&e, 0, sizeof e);
    grt_ctx_init(&c, &m);
    assert_int_equal(grt_train(&c, p, &d, NULL, &run, &res, &e), 0);
    /* the same by hand: the shuffle of the identity by the seeded generator */
    for (i = 0; i < 10; i++)
        idx[i] = i;
    grt_rng_seed(&r, run.cfg.seed);
    grt_shuffle(&r, idx, 10);
    for (i = 0; i < 10; i += 4) {
        size_t s = 10 - i < 4 ? 10 - i : 4, k;
        grt_batch_grad(&c, q, &d, idx + i, s, g);
        for (k = 0; k < 4; k++)
            q[k] = (grt_real)(q[k] - 0.1 * (double)g[k]);
    }
    assert_memory_equal(p, q, sizeof p);
    /* batch 1: ten steps */
    fake_max_batch = 3;
    run.cfg.batch = 1;
    m.init(p, 2);
    memcpy(q, p, sizeof p);
    assert_int_equal(grt_train(&c, p, &d, NULL, &run, &res, &e), 0);
    for (i = 0; i < 10; i++)
        idx[i] = i;
    grt_rng_seed(&r, run.cfg.seed);
    grt_shuffle(&r, idx, 10);
    for (i = 0; i < 10; i++) {
        size_t k;
        grt_batch_grad(&c, q, &d, idx + i, 1, g);
        for (k = 0; k < 4; k++)
            q[k] = (grt_real)(q[k] - 0.1 * (double)g[k]);
    }
    assert_memory_equal(p, q, sizeof p);
    grt_ctx_free(&c);
    grt_data_free(&d);
}

/* --------------------------------------------------------------- schedules */

/* The rate of epoch e of E, written from the definitions in docs/language.md. */
static double ref_lr(int sched, double lr, double a, double b, int e, int E)
{
    switch (sched) {
    case GRT_STEP: return lr * pow(b, (double)(e / (int)a));
    case GRT_COSINE: return lr * (1 + cos(3.141592653589793 * e / E)) / 2;
    case GRT_EXPONENTIAL: return lr * pow(a, (double)e);
    }
    return lr;
}

static void test_schedules_in_training(void **state)
{
    static const struct {
        int sched;   /* enum grt_sched */
        double a, b; /* its arguments */
    } cases[] = {{GRT_CONSTANT, 0, 0}, {GRT_STEP, 2, 0.5}, {GRT_STEP, 3, 0.1},
                 {GRT_COSINE, 0, 0},   {GRT_EXPONENTIAL, 0.8, 0}};
    grt_model m = fake_recorder(3);
    grt_data d;
    double ys[10] = {0};
    size_t i, k;
    (void)state;
    memset(&d, 0, sizeof d);
    d.n = 10;
    d.nx = d.ny = 1;
    d.x = grt_xmalloc(10, sizeof(double));
    d.y = ys;
    for (i = 0; i < 10; i++)
        d.x[i] = (double)i;
    for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        grt_run run = quiet_run(&m);
        grt_history h;
        grt_trained res;
        grt_ctx c;
        grt_err e;
        grt_real p[1] = {0};
        double want = 0;
        int ep;
        memset(&h, 0, sizeof h);
        memset(&e, 0, sizeof e);
        run.cfg.batch = 4; /* 3 steps an epoch, gradient 1: p falls by 3 lr */
        run.cfg.epochs = 7;
        run.cfg.lr = 0.1;
        run.cfg.sched = cases[k].sched;
        run.cfg.sched_a = cases[k].a;
        run.cfg.sched_b = cases[k].b;
        run.history = &h;
        grt_ctx_init(&c, &m);
        assert_int_equal(grt_train(&c, p, &d, NULL, &run, &res, &e), 0);
        for (ep = 0; ep < 7; ep++) {
            double lr = ref_lr(cases[k].sched, 0.1, cases[k].a, cases[k].b, ep, 7);
            want -= 3 * lr;
            assert_true(fabs(h.row[ep].lr - lr) < 1e-15);
            assert_true(h.row[ep].x == ep + 1);
        }
        print_message("  %-12s lr of epoch 7 %.6g, p %.9g (want %.9g)\n",
                      grt_sched_name(cases[k].sched), h.row[6].lr, (double)p[0], want);
        assert_true(fabs((double)p[0] - want) < 1e-5);
        grt_history_free(&h);
        grt_ctx_free(&c);
    }
    free(d.x);
}

/* ------------------------------------------------- command-line overrides */

static void test_parse_specs(void **state)
{
    grt_train_config c;
    char err[256];
    (void)state;
    c = fake_config(); /* sgd lr 0.1 */
    assert_int_equal(grt_parse_optimizer("adam", &c, err, sizeof err), 0);
    assert_true(c.opt == GRT_ADAM && c.lr == 0.001 && c.beta1 == 0.9 && c.beta2 == 0.999);
    assert_int_equal(grt_parse_optimizer("adam(beta2 = 0.99)", &c, err, sizeof err), 0);
    assert_true(c.lr == 0.001 && c.beta2 == 0.99); /* same kind: the rest kept */
    assert_int_equal(grt_parse_optimizer(" adamw(0.01, 0.8, weight_decay=0.2) ", &c, err,
                                         sizeof err),
                     0);
    assert_true(c.opt == GRT_ADAMW && c.lr == 0.01 && c.beta1 == 0.8 && c.beta2 == 0.999 &&
                c.opt_weight_decay == 0.2);
    assert_int_equal(grt_parse_optimizer("momentum(lr=0.05, beta=0.5)", &c, err, sizeof err), 0);
    assert_true(c.opt == GRT_MOMENTUM && c.lr == 0.05 && c.beta1 == 0.5);
    assert_int_equal(grt_parse_optimizer("rmsprop(1e-3, rho=0.99, eps=1e-6)", &c, err,
                                         sizeof err),
                     0);
    assert_true(c.opt == GRT_RMSPROP && c.lr == 1e-3 && c.beta1 == 0.99 && c.eps == 1e-6);
    assert_int_equal(grt_parse_optimizer("nesterov()", &c, err, sizeof err), 0);
    assert_true(c.opt == GRT_NESTEROV && c.lr == 0.01 && c.beta1 == 0.9);
    assert_int_equal(grt_parse_optimizer("sgd(0.3)", &c, err, sizeof err), 0);
    assert_true(c.opt == GRT_SGD && c.lr == 0.3);

    assert_int_equal(grt_parse_optimizer("adagrad", &c, err, sizeof err), -1);
    assert_contains(err, "unknown optimizer 'adagrad'; expected sgd, momentum");
    assert_int_equal(grt_parse_optimizer("adam(beta=0.5)", &c, err, sizeof err), -1);
    assert_contains(err, "adam has no argument 'beta'; it takes lr, beta1, beta2 and eps");
    assert_int_equal(grt_parse_optimizer("sgd(0.1, 0.2)", &c, err, sizeof err), -1);
    assert_contains(err, "sgd takes at most 1 argument");
    assert_int_equal(grt_parse_optimizer("sgd(lr=-1)", &c, err, sizeof err), -1);
    assert_contains(err, "the learning rate must be positive");
    assert_int_equal(grt_parse_optimizer("adam(beta1=1)", &c, err, sizeof err), -1);
    assert_contains(err, "beta1 must be in [0, 1)");
    assert_int_equal(grt_parse_optimizer("adam(lr=0.1, 0.5)", &c, err, sizeof err), -1);
    assert_contains(err, "a positional argument after a named one");
    assert_int_equal(grt_parse_optimizer("adam(lr=abc)", &c, err, sizeof err), -1);
    assert_int_equal(grt_parse_optimizer("adam(0.1", &c, err, sizeof err), -1);
    assert_int_equal(grt_parse_optimizer("adam(lr=0.1, lr=0.2)", &c, err, sizeof err), -1);
    assert_contains(err, "given twice");
    assert_true(c.opt == GRT_SGD && c.lr == 0.3); /* unchanged by the failures */

    assert_int_equal(grt_parse_schedule("cosine", &c, err, sizeof err), 0);
    assert_int_equal(c.sched, GRT_COSINE);
    assert_int_equal(grt_parse_schedule("step(10, 0.5)", &c, err, sizeof err), 0);
    assert_true(c.sched == GRT_STEP && c.sched_a == 10 && c.sched_b == 0.5);
    assert_int_equal(grt_parse_schedule("step(gamma=0.1, every=3)", &c, err, sizeof err), 0);
    assert_true(c.sched_a == 3 && c.sched_b == 0.1);
    assert_int_equal(grt_parse_schedule("exponential(0.95)", &c, err, sizeof err), 0);
    assert_true(c.sched == GRT_EXPONENTIAL && c.sched_a == 0.95);
    assert_int_equal(grt_parse_schedule("constant", &c, err, sizeof err), 0);
    assert_int_equal(c.sched, GRT_CONSTANT);
    assert_int_equal(grt_parse_schedule("step(2.5, 0.5)", &c, err, sizeof err), -1);
    assert_contains(err, "whole number");
    assert_int_equal(grt_parse_schedule("step(2)", &c, err, sizeof err), -1);
    assert_int_equal(grt_parse_schedule("exponential", &c, err, sizeof err), -1);
    assert_int_equal(grt_parse_schedule("linear", &c, err, sizeof err), -1);
    assert_contains(err, "unknown schedule 'linear'");
    /* cosine with a warm-up and a floor; plain cosine keeps a = b = 0 */
    assert_int_equal(grt_parse_schedule("cosine(warmup=100, min_lr=1e-4)", &c, err, sizeof err), 0);
    assert_true(c.sched == GRT_COSINE && c.sched_a == 100 && c.sched_b == 1e-4);
    assert_int_equal(grt_parse_schedule("cosine", &c, err, sizeof err), 0);
    assert_true(c.sched == GRT_COSINE && c.sched_a == 0 && c.sched_b == 0);
    assert_int_equal(grt_parse_schedule("cosine(2.5)", &c, err, sizeof err), -1);
    assert_contains(err, "cosine's 'warmup' must be a whole number");
    assert_int_equal(grt_parse_schedule("cosine(min_lr=-1)", &c, err, sizeof err), -1);
    assert_int_equal(grt_parse_schedule("cosine(1, 2, 3)", &c, err, sizeof err), -1);
    assert_int_equal(grt_parse_schedule("constant(1)", &c, err, sizeof err), -1);
}

/* The lr column of a --log file, one value per epoch, into lr[]. */
static int log_lrs(const char *path, double *lr, int cap)
{
    grt_history h;
    grt_err e;
    int n, i;
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_log_read(path, &h, &e), 0);
    n = (int)h.n < cap ? (int)h.n : cap;
    for (i = 0; i < n; i++)
        lr[i] = h.row[i].lr;
    grt_history_free(&h);
    return n;
}

static void test_main_overrides(void **state)
{
    grt_model m = fake_softmax(8);
    grt_data d;
    char data[512], log[512], params[512], *s;
    double lr[16];
    grt_real p[9];
    grt_state st;
    grt_err e;
    (void)state;
    cluster_data(&d, 120, 4);
    write_csv(tpath(data, "o.csv"), &d, NULL, 1);
    tpath(log, "o_log.csv");
    tpath(params, "o.params");

    /* --schedule and --lr: the rates the log shows */
    assert_int_equal(run_main(&m, NULL, "train", data, "--epochs", "5", "--lr", "0.2",
                              "--schedule", "step(2, 0.5)", "--log", log, "-q", NULL),
                     0);
    assert_int_equal(log_lrs(log, lr, 16), 5);
    assert_true(lr[0] == 0.2 && lr[1] == 0.2 && lr[2] == 0.1 && lr[3] == 0.1 && lr[4] == 0.05);
    assert_int_equal(run_main(&m, NULL, "train", data, "--epochs=4", "--schedule=exponential(0.5)",
                              "--log", log, "-q", NULL),
                     0);
    assert_int_equal(log_lrs(log, lr, 16), 4);
    assert_true(lr[0] == 0.1 && lr[3] == 0.1 * 0.125);

    /* --optimizer: the saved state is adam's, its steps 4 epochs of 30 */
    assert_int_equal(run_main(&m, NULL, "train", data, "--epochs", "4", "--optimizer",
                              "adam(lr=0.01)", "--save", params, "-q", NULL),
                     0);
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_params_load(params, &m, p, NULL, &st, &e), 0);
    assert_true(st.valid && st.epoch == 4 && st.opt_kind == GRT_ADAM && st.t == 4 * 30);
    assert_non_null(st.m);
    assert_non_null(st.v);
    grt_state_free(&st);
    /* --lr after --optimizer's own rate wins, whatever the order */
    assert_int_equal(run_main(&m, NULL, "train", data, "--epochs", "1", "--lr", "0.3",
                              "--optimizer", "momentum(lr=0.01)", "--log", log, "-q", NULL),
                     0);
    assert_int_equal(log_lrs(log, lr, 16), 1);
    assert_true(lr[0] == 0.3);

    /* --validate holds out 30 of 120; --patience stops early; --shuffle off */
    assert_int_equal(run_main(&m, NULL, "train", data, "--epochs", "3", "--validate", "0.25",
                              "-q", NULL),
                     0);
    assert_contains(s = out_text(), "/30)\n");
    free(s);
    {
        /* noisy targets, one example a step: the validation loss soon goes up */
        grt_model lin = fake_linear(8);
        grt_data n;
        char noisy[512];
        linear_data(&n, 80, 6, 0.5, 0);
        write_csv(tpath(noisy, "o_noisy.csv"), &n, NULL, 1);
        assert_int_equal(run_main(&lin, NULL, "train", noisy, "--epochs", "200", "--validate",
                                  "0.25", "--patience", "1", "--batch", "1", "--lr", "0.05",
                                  "--shuffle", "off", NULL),
                         0);
        assert_contains(s = err_text(), "stopping early: no better validation loss in 1 epochs");
        free(s);
        grt_data_free(&n);
        fake_max_batch = 8;
    }
    /* --clip and --weight-decay take effect: other params than without */
    {
        char a[512], b[512];
        grt_real pa[9], pb[9];
        tpath(a, "o_a.params");
        tpath(b, "o_b.params");
        assert_int_equal(run_main(&m, NULL, "train", data, "--epochs", "2", "--save", a, "-q",
                                  NULL),
                         0);
        assert_int_equal(run_main(&m, NULL, "train", data, "--epochs", "2", "--clip", "0.01",
                                  "--save", b, "-q", NULL),
                         0);
        assert_int_equal(grt_params_load(a, &m, pa, NULL, NULL, &e), 0);
        assert_int_equal(grt_params_load(b, &m, pb, NULL, NULL, &e), 0);
        assert_true(memcmp(pa, pb, sizeof pa) != 0);
        assert_int_equal(run_main(&m, NULL, "train", data, "--epochs", "2", "--weight_decay",
                                  "0.5", "--save", b, "-q", NULL),
                         0);
        assert_int_equal(grt_params_load(b, &m, pb, NULL, NULL, &e), 0);
        assert_true(memcmp(pa, pb, sizeof pa) != 0);
    }

    /* bad values: status 2 and a message naming the option */
    assert_int_equal(run_main(&m, NULL, "train", data, "--optimizer", "adagrad", NULL), 2);
    assert_contains(s = err_text(), "lin: error: --optimizer: unknown optimizer 'adagrad'");
    free(s);
    assert_int_equal(run_main(&m, NULL, "train", data, "--schedule", "step(0, 1)", NULL), 2);
    assert_contains(s = err_text(), "--schedule: step's 'every' must be a whole number");
    free(s);
    assert_int_equal(run_main(&m, NULL, "train", data, "--clip", "-1", NULL), 2);
    assert_contains(s = err_text(), "--clip: '-1' is not a number >= 0");
    free(s);
    assert_int_equal(run_main(&m, NULL, "train", data, "--validate", "1", NULL), 2);
    assert_contains(s = err_text(), "--validate: '1' is not a fraction in [0, 1)");
    free(s);
    assert_int_equal(run_main(&m, NULL, "train", data, "--patience", "x", NULL), 2);
    assert_int_equal(run_main(&m, NULL, "train", data, "--shuffle", "maybe", NULL), 2);
    assert_contains(s = err_text(), "--shuffle: 'maybe' is not 'on' or 'off'");
    free(s);
    assert_int_equal(run_main(&m, NULL, "train", data, "--weight-decay", "nan", NULL), 2);
    assert_int_equal(run_main(&m, NULL, "train", data, "--checkpoint", "2", NULL), 2);
    assert_contains(s = err_text(), "--checkpoint needs --save");
    free(s);
    assert_int_equal(run_main(&m, NULL, "eval", "x.params", data, "--optimizer", "sgd", NULL), 2);
    assert_contains(s = err_text(), "eval does not take --optimizer");
    free(s);
    grt_data_free(&d);
}

/* -------------------------------------------------------------- resuming */

/* Whether two files hold the same bytes. */
static int same_file(const char *a, const char *b)
{
    size_t na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

static void test_resume_bit_for_bit(void **state)
{
    grt_model m = fake_softmax(8);
    grt_data d;
    char data[512], a[512], b[512], c[512], log[512], *s;
    (void)state;
    cluster_data(&d, 120, 11);
    write_csv(tpath(data, "r.csv"), &d, NULL, 1);
    tpath(a, "r_a.params");
    tpath(b, "r_b.params");
    tpath(c, "r_c.params");
    tpath(log, "r_log.csv");
    /* all the state there is: adam's moments and steps, the shuffle,
     * early stopping's best (validate and patience), the scaling */
    m.train.opt = GRT_ADAM;
    m.train.lr = 0.05;
    m.train.validate = 0.25;
    m.train.patience = 3;

    /* 4 epochs straight, and 2 then 2 more: the same bytes */
    assert_int_equal(run_main(&m, NULL, "train", data, "--epochs", "4", "--standardize",
                              "--save", a, "-q", NULL),
                     0);
    assert_int_equal(run_main(&m, NULL, "train", data, "--epochs", "2", "--standardize",
                              "--save", b, "-q", NULL),
                     0);
    assert_false(same_file(a, b));
    assert_int_equal(run_main(&m, NULL, "train", data, "--epochs", "4", "--resume", b, "--save",
                              c, "--log", log, "-q", NULL),
                     0);
    assert_true(same_file(a, c));
    /* the log of the resumed run numbers its epochs 3 and 4 */
    s = slurp(log, NULL);
    assert_string_equal(strchr(s, '\n') + 1 + strcspn(strchr(s, '\n') + 1, ",") - 1,
                        strchr(s, '\n') + 1);
    assert_true(strncmp(strchr(s, '\n') + 1, "3,", 2) == 0);
    assert_non_null(strstr(s, "\n4,"));
    assert_null(strstr(s, "\n5,"));
    free(s);
    /* resuming a finished run trains nothing and changes nothing */
    assert_int_equal(run_main(&m, NULL, "train", data, "--epochs", "4", "--resume", a, "--save",
                              c, NULL),
                     0);
    assert_contains(s = err_text(), "has done 4 epochs of 4; nothing to train");
    free(s);
    assert_true(same_file(a, c));

    /* a cosine schedule depends on --epochs: --stop-after interrupts a run of
     * 6 after 3, and the resumed run ends where the straight one does */
    m.train.sched = GRT_COSINE;
    assert_int_equal(run_main(&m, NULL, "train", data, "--epochs", "6", "--save", a, "-q", NULL),
                     0);
    assert_int_equal(run_main(&m, NULL, "train", data, "--epochs", "6", "--stop-after", "3",
                              "--save", b, "-q", NULL),
                     0);
    assert_int_equal(run_main(&m, NULL, "train", data, "--epochs", "6", "--resume", b, "--save",
                              c, "-q", NULL),
                     0);
    assert_true(same_file(a, c));

    /* killed in epoch 5 of 6, after a checkpoint at epoch 4: resumed from
     * the checkpoint, the run ends as the straight one */
    fake_kill_at = 90 / 4 * 4 + 4 * 4 + 5; /* 23 calls an epoch (90 rows, batch 4) */
    assert_int_equal(run_main(&m, NULL, "train", data, "--epochs", "6", "--checkpoint", "2",
                              "--save", b, "-q", NULL),
                     128 + SIGKILL);
    fake_kill_at = 0;
    {
        grt_real p[9];
        grt_state st;
        grt_err e;
        memset(&e, 0, sizeof e);
        assert_int_equal(grt_params_load(b, &m, p, NULL, &st, &e), 0);
        assert_int_equal(st.epoch, 4);
        grt_state_free(&st);
    }
    assert_int_equal(run_main(&m, NULL, "train", data, "--epochs", "6", "--resume", b, "--save",
                              c, "-q", NULL),
                     0);
    assert_true(same_file(a, c));
    assert_int_equal(count_files(tmpdir, ".tmp."), 0);

    /* another optimizer than the file's: its state is not used, and said so */
    assert_int_equal(run_main(&m, NULL, "train", data, "--epochs", "7", "--resume", a,
                              "--optimizer", "sgd", "--save", c, NULL),
                     0);
    assert_contains(s = err_text(), "note: the adam state in ");
    free(s);
    grt_data_free(&d);
}

/* --------------------------------------------------------- parameter files */

static void test_params_state_roundtrip(void **state)
{
    grt_model m = fake_softmax(8);
    grt_real p[9], q[9], mm[9], vv[9], best[9];
    grt_state st, got;
    grt_err e;
    unsigned char *b;
    size_t n, i;
    (void)state;
    for (i = 0; i < 9; i++) {
        p[i] = (grt_real)(0.5 * (double)i - 1);
        mm[i] = (grt_real)(0.01 * (double)i);
        vv[i] = (grt_real)(0.001 * (double)(i + 1));
        best[i] = (grt_real)(0.25 * (double)i);
    }
    memset(&st, 0, sizeof st);
    st.valid = 1;
    st.epoch = 17;
    st.stopped = 1;
    grt_rng_seed(&st.rng, 5);
    st.opt_kind = GRT_ADAM;
    st.t = 170;
    st.m = mm;
    st.v = vv;
    st.best_epoch = 12;
    st.stale = 5;
    st.best_loss = 0.125;
    st.best = best;
    b = grt_params_encode(&m, p, NULL, &st, &n);
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_params_decode(b, n, "s.params", &m, q, NULL, &got, &e), 0);
    assert_memory_equal(p, q, sizeof p);
    assert_true(got.valid && got.epoch == 17 && got.stopped && got.opt_kind == GRT_ADAM &&
                got.t == 170 && got.best_epoch == 12 && got.stale == 5 &&
                got.best_loss == 0.125);
    assert_memory_equal(&got.rng, &st.rng, sizeof st.rng);
    assert_memory_equal(got.m, mm, sizeof mm);
    assert_memory_equal(got.v, vv, sizeof vv);
    assert_memory_equal(got.best, best, sizeof best);
    grt_state_free(&got);

    /* every bit flipped anywhere, every truncation: refused, with a message */
    for (i = 0; i < 8 * n; i++) {
        int status;
        b[i / 8] ^= (unsigned char)(1u << (i % 8));
        memset(&e, 0, sizeof e);
        status = grt_params_decode(b, n, "s.params", &m, q, NULL, &got, &e);
        b[i / 8] ^= (unsigned char)(1u << (i % 8));
        if (status != 1)
            print_error("bit %zu of %zu: status %d\n", i, 8 * n, status);
        assert_int_equal(status, 1);
        assert_true(strncmp(e.msg, "s.params: error: ", 17) == 0);
    }
    for (i = 0; i < n; i++) {
        memset(&e, 0, sizeof e);
        assert_int_equal(grt_params_decode(b, i, "s.params", &m, q, NULL, &got, &e), 1);
        assert_true(e.code == GRT_E_TRUNCATED || e.code == GRT_E_EMPTY);
    }
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_params_decode(b, n - 1, "s.params", &m, q, NULL, &got, &e), 1);
    assert_contains(e.msg, "s.params: error: truncated parameter file: ");
    free(b);

    /* without a state: none read back */
    b = grt_params_encode(&m, p, NULL, NULL, &n);
    assert_int_equal(grt_params_decode(b, n, "s.params", &m, q, NULL, &got, &e), 0);
    assert_false(got.valid);
    assert_null(got.m);
    free(b);
}

/* A model of many params, for writes that take a while. */
static grt_model big_model(size_t n)
{
    grt_model m = fake_linear(8);
    m.name = "big";
    m.param_count = n;
    return m;
}

static void test_params_killed_mid_write(void **state)
{
    enum { N = 1 << 20 };
    grt_model m = big_model(N);
    grt_real *a = malloc(N * sizeof(grt_real)), *b = malloc(N * sizeof(grt_real));
    grt_real *q = malloc(N * sizeof(grt_real));
    char dir[512], path[600];
    grt_err e;
    size_t i;
    int round, as = 0, bs = 0;
    (void)state;
    for (i = 0; i < N; i++) {
        a[i] = (grt_real)i;
        b[i] = -(grt_real)i;
    }
    tpath(dir, "kill");
    assert_int_equal(mkdir(dir, 0777), 0);
    snprintf(path, sizeof path, "%s/k.params", dir);
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_params_save(path, &m, a, NULL, NULL, &e), 0);
    for (round = 0; round < 8; round++) {
        pid_t pid;
        int st;
        fflush(NULL);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            /* save b, a, b, ... until killed */
            for (i = 0;; i++)
                grt_params_save(path, &m, i % 2 ? a : b, NULL, NULL, &e);
        }
        {
            /* 1 ms to 400 ms: within the first save, and later ones */
            static const long ms[8] = {1, 3, 10, 30, 60, 100, 200, 400};
            struct timespec ts = {0, 0};
            ts.tv_nsec = ms[round] * 1000000L;
            nanosleep(&ts, NULL);
        }
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFSIGNALED(st));
        /* whole: one of the two, never a mix or a part */
        memset(&e, 0, sizeof e);
        assert_int_equal(grt_params_load(path, &m, q, NULL, NULL, &e), 0);
        if (memcmp(q, a, N * sizeof(grt_real)) == 0)
            as++;
        else if (memcmp(q, b, N * sizeof(grt_real)) == 0)
            bs++;
        else
            fail_msg("round %d: the file holds neither version", round);
    }
    print_message("  killed 8 times mid-save: %d times a, %d times b, never a mix\n", as, bs);
    free(a);
    free(b);
    free(q);
    remove_tree(dir);
}

/* ------------------------------------------------------------- divergence */

static void test_nan_stops_training(void **state)
{
    grt_model m = fake_linear(16); /* one call a step */
    grt_data d;
    grt_run run = quiet_run(&m);
    grt_trained res;
    grt_ctx c;
    grt_err e;
    grt_real p[4], q[4];
    char path[512], dpath[512], *s;
    (void)state;
    linear_data(&d, 10, 3, 0.1, 0);
    grt_ctx_init(&c, &m);
    run.cfg.batch = 0; /* one step an epoch */
    run.cfg.lr = 0.1;

    /* the reference: 2 good epochs */
    run.cfg.epochs = 2;
    m.init(q, 1);
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_train(&c, q, &d, NULL, &run, &res, &e), 0);

    /* a NaN in the gradient of step 3: stopped, the params of step 2 kept */
    run.cfg.epochs = 10;
    run.save = tpath(path, "nan.params");
    run.save_diverged = tpath(dpath, "nan.params.diverged");
    fake_calls = 0;
    fake_nan_at = 3;
    m.init(p, 1);
    assert_int_equal(grt_train(&c, p, &d, NULL, &run, &res, &e), 1);
    assert_int_equal(e.code, GRT_E_DIVERGED);
    assert_contains(e.msg, "lin: error: training diverged at epoch 3, batch 1: the gradient of "
                           "'W' is NaN (element [0, 2]); ");
    /* a diverged run never replaces the file of --save: its params go beside it */
    assert_contains(e.msg, "nan.params is left as it was, the last good params are saved in ");
    assert_contains(e.msg, "nan.params.diverged; try a smaller learning rate (--lr) or "
                           "--standardize");
    assert_int_equal(access(path, F_OK), -1);
    assert_memory_equal(p, q, sizeof p);
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_params_load(dpath, &m, p, NULL, NULL, &e), 0);
    assert_memory_equal(p, q, sizeof p);

    /* mini-batches: the batch is named */
    run.cfg.batch = 4; /* 3 batches an epoch */
    fake_calls = 0;
    fake_nan_at = 5;
    m.init(p, 1);
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_train(&c, p, &d, NULL, &run, &res, &e), 1);
    assert_contains(e.msg, "training diverged at epoch 2, batch 2: the gradient of 'W' is NaN");
    fake_nan_at = 0;

    /* an update that overflows: the param named, the step undone */
    run.cfg.batch = 0;
    run.cfg.lr = 1e300;
    run.save = run.save_diverged = NULL;
    m.init(p, 1);
    memcpy(q, p, sizeof p);
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_train(&c, p, &d, NULL, &run, &res, &e), 1);
    assert_contains(e.msg, "lin: error: training diverged at epoch ");
    if (sizeof(grt_real) == 4) {
        assert_contains(e.msg, "epoch 1, batch 1: the update made 'W' infinite (element [0, 0]); "
                               "try a smaller learning rate (--lr)");
        assert_memory_equal(p, q, sizeof p);
    }
    grt_ctx_free(&c);

    /* end to end: status 1, the message, the last good params saved */
    {
        char csv[512];
        write_csv(tpath(csv, "nan.csv"), &d, NULL, 1);
        fake_calls = 0;
        fake_nan_at = 2;
        assert_int_equal(run_main(&m, NULL, "train", csv, "--batch", "all", "--save",
                                  tpath(path, "nan2.params"), "-q", NULL),
                         1);
    }
    assert_contains(s = err_text(), "lin: error: training diverged at epoch 2, batch 1: the "
                                    "gradient of 'W' is NaN (element [0, 2]); ");
    assert_contains(s, "nan2.params is left as it was, the last good params are saved in ");
    free(s);
    assert_int_equal(access(path, F_OK), -1);
    strcat(path, ".diverged");
    assert_int_equal(grt_params_load(path, &m, p, NULL, NULL, &e), 0);
    fake_nan_at = 0;

    /* an infinite loss at the params of step 4: those are no good, the
     * params of step 3 (before the last update) are saved, and the message
     * names the largest param (what overflowed the loss) */
    grt_ctx_init(&c, &m);
    run.cfg.batch = 0;
    run.cfg.lr = 0.1;
    run.cfg.epochs = 2;
    run.save = run.save_diverged = NULL;
    m.init(q, 1);
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_train(&c, q, &d, NULL, &run, &res, &e), 0); /* 2 updates */
    run.cfg.epochs = 10;
    run.save = tpath(dpath, "inf.params");
    run.save_diverged = tpath(path, "inf.params.diverged");
    fake_calls = 0;
    fake_inf_loss_at = 4;
    m.init(p, 1);
    assert_int_equal(grt_train(&c, p, &d, NULL, &run, &res, &e), 1);
    assert_contains(e.msg, "lin: error: training diverged at epoch 4, batch 1: the loss is "
                           "infinite; the largest param is '");
    assert_contains(e.msg, "inf.params is left as it was, the last good params are saved in ");
    memset(p, 0, sizeof p);
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_params_load(path, &m, p, NULL, NULL, &e), 0);
    assert_memory_equal(p, q, sizeof p);
    /* at the very first step: nothing good to save, nothing is written */
    run.save = tpath(path, "inf0.params");
    run.save_diverged = tpath(dpath, "inf0.params.diverged");
    fake_calls = 0;
    fake_inf_loss_at = 1;
    m.init(p, 1);
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_train(&c, p, &d, NULL, &run, &res, &e), 1);
    assert_contains(e.msg, "epoch 1, batch 1: the loss is infinite; ");
    assert_contains(e.msg, "so nothing is saved (");
    assert_contains(e.msg, "inf0.params is left as it was)");
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(access(dpath, F_OK), -1);
    fake_inf_loss_at = 0;
    grt_ctx_free(&c);
    grt_data_free(&d);
}

/* ------------------------------------------------------------------ export */

/* The header dict of a .npy file's bytes, checked for the format's rules. */
static char *npy_header(const unsigned char *b, size_t n)
{
    size_t hl;
    char *h;
    assert_true(n >= 10);
    assert_memory_equal(b, "\x93NUMPY\x01\x00", 8);
    hl = b[8] | (size_t)b[9] << 8;
    assert_true(10 + hl <= n);
    assert_int_equal((10 + hl) % 64, 0);
    assert_int_equal(b[10 + hl - 1], '\n');
    h = malloc(hl + 1);
    memcpy(h, b + 10, hl);
    h[hl] = '\0';
    return h;
}

static void test_npy(void **state)
{
    float f[6] = {1, 2, 3, 4, 5, 6.5f};
    double x = -2.5;
    int dim[2] = {2, 3};
    unsigned char *b;
    char *h, name[64];
    size_t n;
    (void)state;
    b = grt_npy_encode(f, 6, 4, 2, dim, &n);
    h = npy_header(b, n);
    {
        static const char want[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        size_t at = 10 + strlen(h);
        assert_true(strncmp(h, want, strlen(want)) == 0);
        assert_int_equal(at, 128); /* as numpy pads it */
        assert_int_equal(n, at + 24);
        assert_true(b[at] == 0 && b[at + 1] == 0 && b[at + 2] == 0x80 && b[at + 3] == 0x3f);
        assert_memory_equal(b + at + 20, "\x00\x00\xd0\x40", 4); /* 6.5f, little-endian */
    }
    free(h);
    free(b);
    b = grt_npy_encode(&x, 1, 8, 1, dim + 1, &n);
    h = npy_header(b, n);
    assert_true(strstr(h, "'descr': '<f8'") && strstr(h, "'shape': (3,), }"));
    free(h);
    free(b);
    b = grt_npy_encode(&x, 1, 8, 0, dim, &n);
    h = npy_header(b, n);
    assert_non_null(strstr(h, "'shape': (), }"));
    assert_int_equal(n, 10 + strlen(h) + 8);
    free(h);
    free(b);
    grt_safe_name(name, sizeof name, "h1.W");
    assert_string_equal(name, "h1.W");
    grt_safe_name(name, sizeof name, "a/b c");
    assert_string_equal(name, "a_b_c");
    grt_safe_name(name, sizeof name, ".hidden");
    assert_string_equal(name, "_.hidden");
    grt_safe_name(name, sizeof name, "..");
    assert_string_equal(name, "_..");
}

static void test_export(void **state)
{
    grt_model m = fake_softmax(8);
    grt_real p[9];
    double mean[2] = {1, 2}, sd[2] = {3, 4};
    grt_stats s = {2, mean, sd, NULL, 0, 0, {0}};
    char params[512], dir[512], path[2200], npz[512], *b, *h;
    size_t n, i;
    grt_err e;
    (void)state;
    for (i = 0; i < 9; i++)
        p[i] = (grt_real)i / 4;
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_params_save(tpath(params, "x.params"), &m, p, &s, NULL, &e), 0);
    tpath(dir, "npy");
    assert_int_equal(run_main(&m, NULL, "export", params, dir, NULL), 0);
    b = out_text();
    snprintf(path, sizeof path, "%s/W.npy\n%s/b.npy\n%s/standardize_mean.npy\n"
                                "%s/standardize_std.npy\n", dir, dir, dir, dir);
    assert_string_equal(b, path);
    free(b);
    snprintf(path, sizeof path, "%s/W.npy", dir);
    b = slurp(path, &n);
    h = npy_header((unsigned char *)b, n);
    assert_non_null(strstr(h, sizeof(grt_real) == 4 ? "'<f4'" : "'<f8'"));
    assert_non_null(strstr(h, "'shape': (3, 2), }"));
    assert_int_equal(n, 10 + strlen(h) + 6 * sizeof(grt_real));
    assert_memory_equal(b + 10 + strlen(h), p, 6 * sizeof(grt_real)); /* little-endian here */
    free(h);
    free(b);
    snprintf(path, sizeof path, "%s/standardize_std.npy", dir);
    b = slurp(path, &n);
    h = npy_header((unsigned char *)b, n);
    assert_non_null(strstr(h, "'<f8'"));
    assert_int_equal(n, 10 + strlen(h) + 16);
    assert_memory_equal(b + 10 + strlen(h), sd, 16);
    free(h);
    free(b);
    assert_int_equal(count_files(dir, ".tmp."), 0);
    /* again into the same directory: replaced */
    assert_int_equal(run_main(&m, NULL, "export", params, dir, "-q", NULL), 0);

    /* one .npz: a ZIP of stored .npy entries with their CRC-32 */
    tpath(npz, "x.npz");
    assert_int_equal(run_main(&m, NULL, "export", params, npz, NULL), 0);
    b = slurp(npz, &n);
    {
        const unsigned char *u = (const unsigned char *)b, *eocd = u + n - 22;
        size_t at = 0;
        int entries = 0;
        assert_true(n > 22 && grt_get_le(eocd, 4) == 0x06054b50);
        assert_int_equal(grt_get_le(eocd + 10, 2), 4);
        while (grt_get_le(u + at, 4) == 0x04034b50) {
            size_t size = grt_get_le(u + at + 18, 4), nl = grt_get_le(u + at + 26, 2);
            const unsigned char *data = u + at + 30 + nl;
            assert_int_equal(grt_get_le(u + at + 8, 2), 0); /* stored */
            assert_true(grt_get_le(u + at + 14, 4) == crc32(0, data, (uInt)size));
            h = npy_header(data, size);
            free(h);
            at += 30 + nl + size;
            entries++;
        }
        assert_int_equal(entries, 4);
        assert_int_equal(grt_get_le(eocd + 16, 4), at); /* the central directory follows */
        assert_true(memcmp(u + 30, "W.npy", 5) == 0);
    }
    free(b);

    /* errors */
    assert_int_equal(run_main(&m, NULL, "export", params, NULL), 2);
    assert_int_equal(run_main(&m, NULL, "export", params, tpath(path, "none/sub"), NULL), 2);
    assert_contains(b = err_text(), "none/sub: error: cannot create the directory");
    free(b);
    assert_int_equal(run_main(&m, NULL, "export", params, params, NULL), 2);
    assert_contains(b = err_text(), "x.params: error: not a directory");
    free(b);
}

/* --------------------------------------------------------------------- IDX */

/* Writes an IDX file: the magic's type and dims, then data (n bytes), gzipped
 * or not. */
static void write_idx(const char *path, int gz, int type, int ndims, const uint32_t *dims,
                      const unsigned char *data, size_t n)
{
    unsigned char h[64];
    size_t hl = 4, k;
    int d;
    h[0] = h[1] = 0;
    h[2] = (unsigned char)type;
    h[3] = (unsigned char)ndims;
    for (d = 0; d < ndims; d++, hl += 4)
        for (k = 0; k < 4; k++)
            h[hl + k] = (unsigned char)(dims[d] >> (24 - 8 * k));
    if (gz) {
        gzFile f = gzopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(gzwrite(f, h, (unsigned)hl), (int)hl);
        if (n)
            assert_int_equal(gzwrite(f, data, (unsigned)n), (int)n);
        assert_int_equal(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(h, 1, hl, f), hl);
        assert_int_equal(fwrite(data, 1, n, f), n);
        assert_int_equal(fclose(f), 0);
    }
}

static void test_idx(void **state)
{
    grt_model m = fake_softmax(8); /* 2 inputs: images of 1x2 "pixels" */
    unsigned char px[2 * 40], lab[40];
    uint32_t di[3] = {40, 1, 2}, dl[1] = {40};
    char im[512], lb[512], tmp[512];
    grt_data d;
    grt_err e;
    int gz;
    size_t i;
    (void)state;
    for (i = 0; i < 40; i++) {
        px[2 * i] = (unsigned char)(i * 6);
        px[2 * i + 1] = (unsigned char)(255 - i);
        lab[i] = (unsigned char)(i % 3);
    }
    for (gz = 0; gz < 2; gz++) {
        tpath(im, gz ? "im.idx.gz" : "im.idx");
        tpath(lb, gz ? "lb.idx.gz" : "lb.idx");
        write_idx(im, gz, 8, 3, di, px, sizeof px);
        write_idx(lb, gz, 8, 1, dl, lab, sizeof lab);
        memset(&e, 0, sizeof e);
        assert_int_equal(grt_idx_load(im, lb, &m, &d, &e), 0);
        assert_int_equal(d.n, 40);
        assert_int_equal(d.nx, 2);
        assert_int_equal(d.ny, 1);
        assert_true(d.x[0] == 0 && d.x[1] == 1 && d.x[2] == 6 / 255.0 && d.y[5] == 2);
        assert_true(d.x[2 * 39 + 1] == (255 - 39) / 255.0);
        grt_data_free(&d);
        /* images alone (predict) */
        assert_int_equal(grt_idx_load(im, NULL, &m, &d, &e), 0);
        assert_int_equal(d.ny, 0);
        grt_data_free(&d);
    }

    /* errors, each naming the file and the place */
    for (gz = 0; gz < 2; gz++) {
        const char *sfx = gz ? ".gz" : "";
        snprintf(tmp, sizeof tmp, "%s/t.idx%s", tmpdir, sfx);
        /* truncated in record 27 */
        write_idx(tmp, gz, 8, 3, di, px, 2 * 26 + 1);
        memset(&e, 0, sizeof e);
        assert_int_equal(grt_idx_load(tmp, NULL, &m, &d, &e), 1);
        assert_int_equal(e.code, GRT_E_IDX);
        assert_contains(e.msg, "t.idx");
        assert_contains(e.msg, ": error: truncated IDX file: its header says 40 records of 2 "
                               "bytes, but the data stops in record 27 (after 53 of 80 data "
                               "bytes)");
        /* more data than the header says */
        di[0] = 39;
        write_idx(tmp, gz, 8, 3, di, px, sizeof px);
        di[0] = 40;
        memset(&e, 0, sizeof e);
        assert_int_equal(grt_idx_load(tmp, NULL, &m, &d, &e), 1);
        assert_contains(e.msg, "IDX file longer than its header says");
        /* another element type */
        write_idx(tmp, gz, 0x0D, 3, di, px, sizeof px);
        memset(&e, 0, sizeof e);
        assert_int_equal(grt_idx_load(tmp, NULL, &m, &d, &e), 1);
        assert_contains(e.msg, "IDX element type 0x0d (float) is not supported");
        /* a header cut short */
        write_idx(tmp, gz, 8, 3, di, px, 0);
        {
            size_t k;
            char *all = slurp(tmp, &k);
            free(all);
        }
    }
    /* a gzip stream cut short */
    {
        size_t k;
        char *all;
        write_idx(tmp, 1, 8, 3, di, px, sizeof px);
        all = slurp(tmp, &k);
        write_bytes(tmp, all, k - 12);
        free(all);
        memset(&e, 0, sizeof e);
        assert_int_equal(grt_idx_load(tmp, NULL, &m, &d, &e), 1);
        assert_int_equal(e.code, GRT_E_IDX);
    }
    snprintf(tmp, sizeof tmp, "%s/t.idx", tmpdir);
    write_text(tmp, "1,2,0\n");
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_idx_load(tmp, NULL, &m, &d, &e), 1);
    assert_contains(e.msg, "t.idx: error: not an IDX file: it starts with 31 2c 32 2c");
    write_bytes(tmp, "\0\0\x08\x03\0\0", 6);
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_idx_load(tmp, NULL, &m, &d, &e), 1);
    assert_contains(e.msg, "t.idx: error: truncated IDX file: the header ends after 6 of its 16 "
                           "bytes");
    write_bytes(tmp, "", 0);
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_idx_load(tmp, NULL, &m, &d, &e), 1);
    assert_int_equal(e.code, GRT_E_EMPTY);
    /* images of another size than the model's input */
    di[1] = 2;
    write_idx(tmp, 0, 8, 3, di, px, sizeof px);
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_idx_load(tmp, NULL, &m, &d, &e), 1);
    assert_contains(e.msg, "t.idx: error: images of 2x2 = 4 values, but model 'soft3' takes 2 "
                           "input values per example");
    di[1] = 1;
    /* counts that differ */
    dl[0] = 39;
    write_idx(tmp, 0, 8, 1, dl, lab, 39);
    dl[0] = 40;
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_idx_load(im, tmp, &m, &d, &e), 1);
    assert_contains(e.msg, "t.idx: error: 39 labels, but ");
    assert_contains(e.msg, "im.idx.gz has 40 images");
    /* a label out of the class range */
    lab[17] = 3;
    write_idx(tmp, 0, 8, 1, dl, lab, sizeof lab);
    lab[17] = 2;
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_idx_load(im, tmp, &m, &d, &e), 1);
    assert_int_equal(e.code, GRT_E_CLASS);
    assert_contains(e.msg, "t.idx: error: label 3 of record 18 (byte 25) is not a class index of "
                           "target 'label', an integer in 0..2");
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_idx_load(tpath(tmp, "none.idx"), NULL, &m, &d, &e), 2);
    assert_int_equal(e.code, GRT_E_IO);
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_idx_load(tmpdir, NULL, &m, &d, &e), 2);
}

static void test_main_idx(void **state)
{
    grt_model m = fake_softmax(8);
    grt_data c;
    unsigned char px[2 * 90], lab[90];
    uint32_t di[3] = {90, 1, 2}, dl[1] = {90};
    char im[512], lb[512], params[512], csv[512], *s, *t;
    size_t i;
    (void)state;
    /* the three clusters, moved into [0, 255] */
    cluster_data(&c, 90, 8);
    for (i = 0; i < 90; i++) {
        px[2 * i] = (unsigned char)(128 + 40 * c.x[2 * i]);
        px[2 * i + 1] = (unsigned char)(128 + 40 * c.x[2 * i + 1]);
        lab[i] = (unsigned char)c.y[i];
        c.x[2 * i] = px[2 * i];
        c.x[2 * i + 1] = px[2 * i + 1];
    }
    write_idx(tpath(im, "m_im.idx.gz"), 1, 8, 3, di, px, sizeof px);
    write_idx(tpath(lb, "m_lb.idx"), 0, 8, 1, dl, lab, sizeof lab);
    tpath(params, "m.params");
    assert_int_equal(run_main(&m, NULL, "train", "--images", im, "--labels", lb,
                              "--valid-images", im, "--valid-labels", lb, "--standardize",
                              "--epochs", "20", "--save", params, "-q", NULL),
                     0);
    assert_contains(s = out_text(), "valid accuracy 1.0000 (90/90)\n");
    free(s);
    assert_int_equal(run_main(&m, NULL, "eval", params, "--images", im, "--labels", lb, NULL), 0);
    assert_contains(s = out_text(), "accuracy 1.0000 (90/90)\n");
    free(s);
    /* predict on IDX images = predict on the same values as CSV, scaled */
    assert_int_equal(run_main(&m, NULL, "predict", params, "--images", im, NULL), 0);
    s = out_text();
    for (i = 0; i < 180; i++)
        c.x[i] /= 255;
    write_csv(tpath(csv, "m.csv"), &c, NULL, 0);
    assert_int_equal(run_main(&m, NULL, "predict", params, csv, NULL), 0);
    t = out_text();
    assert_string_equal(s, t);
    free(s);
    free(t);
    assert_int_equal(run_main(&m, NULL, "gradcheck", "--images", im, "--labels", lb, "-q", NULL),
                     0);
    /* the command line's rules */
    assert_int_equal(run_main(&m, NULL, "train", "--images", im, NULL), 2);
    assert_contains(s = err_text(), "--images needs --labels (the targets) for train");
    free(s);
    assert_int_equal(run_main(&m, NULL, "train", csv, "--images", im, "--labels", lb, NULL), 2);
    assert_contains(s = err_text(), "train takes DATA or --images, not both");
    free(s);
    assert_int_equal(run_main(&m, NULL, "train", "--labels", lb, NULL), 2);
    assert_int_equal(run_main(&m, NULL, "train", csv, "--valid-images", im, NULL), 2);
    assert_int_equal(run_main(&m, NULL, "predict", params, "--images", im, "--labels", lb, NULL),
                     2);
    assert_int_equal(run_main(&m, NULL, "eval", params, "--images", lb, "--labels", lb, NULL), 1);
    assert_contains(s = err_text(), "m_lb.idx: error: images of 1 = 1 values, but model 'soft3' "
                                    "takes 2 input values per example");
    free(s);
    grt_data_free(&c);
}

/* ------------------------------------------------------------ logs, plots */

static void test_log_and_plot(void **state)
{
    grt_model m = fake_softmax(8);
    grt_data d;
    grt_history h;
    grt_err e;
    char data[512], log[512], svg[512], svg2[512], path[512], *s;
    size_t n;
    int k;
    (void)state;
    cluster_data(&d, 60, 12);
    write_csv(tpath(data, "l.csv"), &d, NULL, 1);
    tpath(log, "train_log.csv");
    tpath(svg, "train.svg");
    assert_int_equal(run_main(&m, NULL, "train", data, "--epochs", "7", "--validate", "0.2",
                              "--log", log, "--plot", svg, NULL),
                     0);
    assert_contains(s = err_text(), "wrote ");
    free(s);
    s = slurp(log, NULL);
    assert_true(strncmp(s, "epoch,loss,acc,val_loss,val_acc,lr,seconds\n1,", 45) == 0);
    free(s);
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_log_read(log, &h, &e), 0);
    assert_int_equal(h.n, 7);
    for (k = 0; k < 7; k++)
        assert_true(h.row[k].x == k + 1 && h.row[k].loss > 0 && h.row[k].val_loss > 0 &&
                    h.row[k].val_acc >= 0 && h.row[k].val_acc <= 1 && h.row[k].lr == 0.1 &&
                    h.row[k].seconds >= 0);
    grt_history_free(&h);
    s = slurp(svg, &n);
    assert_true(strncmp(s, "<?xml", 5) == 0 && strstr(s, "<svg ") && strstr(s, "</svg>\n"));
    assert_non_null(strstr(s, "soft3: loss per epoch"));
    assert_non_null(strstr(s, ">train loss<"));
    assert_non_null(strstr(s, ">valid loss<"));
    assert_non_null(strstr(s, ">valid acc<"));
    assert_non_null(strstr(s, ">train acc<")); /* the running accuracy of each epoch */
    assert_non_null(strstr(s, ">epoch<"));
    assert_null(strstr(s, ">kept<"));
    for (k = 0, path[0] = 0; k < 3; k++) {
        const char *p = s;
        int lines = 0;
        while ((p = strstr(p, "<polyline")))
            lines++, p++;
        assert_int_equal(lines, 4);
    }
    free(s);
    /* early stopping: the kept epoch marked on the chart of --plot. A
     * validation set with a third of its labels wrong: its loss rises once
     * the model grows confident, in float and double alike */
    {
        char flipped[512];
        size_t i;
        for (i = 0; i < d.n; i += 3)
            d.y[i] = (double)(((int)d.y[i] + 1) % 3);
        write_csv(tpath(flipped, "flipped.csv"), &d, NULL, 1);
        assert_int_equal(run_main(&m, NULL, "train", data, "--epochs", "200", "--valid", flipped,
                                  "--patience", "2", "--plot", tpath(path, "kept.svg"), "-q",
                                  NULL),
                         0);
    }
    assert_contains(s = out_text(), "kept epoch ");
    free(s);
    s = slurp(path, NULL);
    assert_non_null(strstr(s, ">kept<"));
    free(s);

    /* plot: LOG.csv gives LOG.svg, -o elsewhere, -o - to stdout; the same chart */
    assert_int_equal(run_main(&m, NULL, "plot", log, NULL), 0);
    tpath(svg2, "train_log.svg");
    assert_true(same_file(svg, svg2));
    assert_int_equal(run_main(&m, NULL, "plot", log, "-o", tpath(path, "other.svg"), NULL), 0);
    assert_true(same_file(svg, path));
    assert_int_equal(run_main(&m, NULL, "plot", log, "-o", "-", NULL), 0);
    assert_true(same_file(svg, tpath(path, "out.txt")));

    /* no validation: one curve; a loss over decades: a log axis */
    write_text(log, "epoch,loss,valid_loss,valid_acc,lr,seconds\n1,100,,,0.1,0\n2,1,,,0.1,1\n"
                    "3,0.01,,,0.1,2\n");
    assert_int_equal(run_main(&m, NULL, "plot", log, "-o", svg, NULL), 0);
    s = slurp(svg, NULL);
    assert_non_null(strstr(s, "loss (log scale)"));
    assert_null(strstr(s, ">valid loss<"));
    free(s);
    /* a resumed run appends to its log */
    write_text(log, "epoch,loss\n1,0.5\n");
    assert_int_equal(run_main(&m, NULL, "plot", log, "-o", svg, "-q", NULL), 0);

    /* bad logs: the line named */
    write_text(log, "epoch,loss,valid_loss\n1,0.5,0.4\n2,abc,0.3\n");
    assert_int_equal(run_main(&m, NULL, "plot", log, NULL), 1);
    assert_contains(s = err_text(), "train_log.csv:3:3: error: 'abc' is not a number (column "
                                    "'loss')");
    free(s);
    write_text(log, "a,b\n1,2\n");
    assert_int_equal(run_main(&m, NULL, "plot", log, NULL), 1);
    assert_contains(s = err_text(), "train_log.csv:1:1: error: not a training log");
    free(s);
    write_text(log, "epoch,loss\n");
    assert_int_equal(run_main(&m, NULL, "plot", log, NULL), 1);
    assert_contains(s = err_text(), "no epochs in the log");
    free(s);
    write_text(log, "epoch,loss\n1,2,3\n");
    assert_int_equal(run_main(&m, NULL, "plot", log, NULL), 1);
    assert_int_equal(run_main(&m, NULL, "plot", tpath(path, "nolog.csv"), NULL), 2);
    assert_int_equal(run_main(&m, NULL, "plot", NULL), 2);
    grt_data_free(&d);
}

/* --------------------------------------------------------------- gradcheck */

static void test_gradcheck(void **state)
{
    static const grt_model *models[1];
    grt_model lin = fake_linear(3), soft = fake_softmax(4), logi = fake_logistic(8),
              l1 = fake_l1(5);
    grt_model *all[4] = {&lin, &soft, &logi, &l1};
    grt_gc_opts o;
    grt_data d;
    grt_ctx c;
    grt_err e;
    grt_real p[9];
    double w;
    char *s;
    int k;
    (void)state;
    (void)models;
    memset(&o, 0, sizeof o);
    o.tol = sizeof(grt_real) == 4 ? GRT_GC_TOL_FLOAT : GRT_GC_TOL_DOUBLE;
    o.seed = 1;
    for (k = 0; k < 4; k++) {
        grt_model *m = all[k];
        fake_max_batch = m->max_batch;
        grt_random_data(m, 16, 3, &d);
        m->init(p, 9);
        if (m == &lin || m == &l1) /* further from the data's residual kinks */
            p[0] = 1.5f, p[1] = -2, p[2] = 0.7f;
        grt_ctx_init(&c, m);
        memset(&e, 0, sizeof e);
        assert_int_equal(grt_gradcheck(&c, p, &d, &o, &w, &e), 0);
        print_message("  gradcheck %-6s worst relative error %.3g\n", m->name, w);
        assert_true(w < o.tol);
        grt_ctx_free(&c);
        grt_data_free(&d);
    }
    /* random targets: class indices, 0 or 1 for binary models */
    grt_random_data(&soft, 50, 3, &d);
    for (k = 0; k < 50; k++)
        assert_true(d.y[k] == 0 || d.y[k] == 1 || d.y[k] == 2);
    grt_data_free(&d);
    grt_random_data(&logi, 50, 3, &d);
    for (k = 0; k < 50; k++)
        assert_true(d.y[k] == 0 || d.y[k] == 1);
    for (k = 0; k < 100; k++)
        assert_true(d.x[k] >= -1 && d.x[k] < 1);
    grt_data_free(&d);

    /* a gradient 3% off in one value is found, whatever the precision */
    fake_max_batch = 3;
    fake_grad_scale = 1.03;
    grt_random_data(&lin, 16, 3, &d);
    lin.init(p, 9);
    grt_ctx_init(&c, &lin);
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_gradcheck(&c, p, &d, &o, &w, &e), 1);
    assert_int_equal(e.code, GRT_E_GRADCHECK);
    assert_contains(e.msg, "lin: error: gradcheck failed: the gradient of 'W' at [0, 0] is ");
    grt_ctx_free(&c);
    grt_data_free(&d);

    /* the command */
    assert_int_equal(run_main(&lin, NULL, "gradcheck", NULL), 1);
    fake_grad_scale = 1;
    fake_max_batch = soft.max_batch;
    assert_int_equal(run_main(&soft, NULL, "gradcheck", "--seed", "4", "--examples", "8", NULL),
                     0);
    s = out_text();
    assert_contains(s, "gradcheck soft3 (" GRT_REAL_NAME "): 8 random examples (seed 4), params "
                       "from init (seed 4)\n");
    assert_contains(s, "  W[3,2]                6 of 6      worst ");
    assert_contains(s, "  b[3]                  3 of 3      worst ");
    assert_contains(s, "worst relative error ");
    assert_contains(s, ": ok\n");
    free(s);
    assert_int_equal(run_main(&soft, NULL, "gradcheck", "--tol", "0", NULL), 2);
    assert_int_equal(run_main(&soft, NULL, "gradcheck", "--examples", "0", NULL), 2);
}

/* ------------------------------------------------------------ text models */

/* "abc" repeated: a bigram model learns it exactly. */
static void abc_text(const char *path, size_t n)
{
    char *s = malloc(n + 1);
    size_t i;
    assert_non_null(s);
    for (i = 0; i < n; i++)
        s[i] = "abc"[i % 3];
    s[n] = '\0';
    write_text(path, s);
    free(s);
}

/* Token ids and class indices out of range, in CSV and IDX: errors naming
 * the file, row and column; accuracy per position of class(V)[T]. */
static void test_token_data(void **state)
{
    grt_model m = fake_bigram(4, 5, 4);
    grt_data d;
    grt_err e;
    grt_ctx c;
    grt_score s;
    grt_real *p;
    size_t k;
    (void)state;
    assert_int_equal(grt_model_check(&m, &e), 0);
    memset(&e, 0, sizeof e);
    assert_int_equal(csv_text(&m, GRT_CSV_TARGETS, "t.csv", "0,1,2,3,1,2,3,4\n0,1,7,3,1,2,3,4\n",
                              &d, &e),
                     1);
    assert_contains(e.msg, "t.csv:2:5: error: '7' is not a token id of input 'tok', an "
                           "integer in 0..4 (field 3)");
    memset(&e, 0, sizeof e);
    assert_int_equal(csv_text(&m, GRT_CSV_INPUTS, "t.csv", "0,1,2,1.5\n", &d, &e), 1);
    assert_non_null(strstr(e.msg, "'1.5' is not a token id"));
    memset(&e, 0, sizeof e);
    assert_int_equal(csv_text(&m, GRT_CSV_TARGETS, "t.csv", "0,1,2,3,1,2,3,5\n", &d, &e), 1);
    assert_contains(e.msg, "t.csv:1:15: error: '5' is not a class index of target 'next', "
                           "an integer in 0..4 (field 8)");
    /* per position: 3 examples of 4 positions, E makes id i predict i + 1 */
    memset(&e, 0, sizeof e);
    assert_int_equal(csv_text(&m, GRT_CSV_TARGETS, "t.csv",
                              "0,1,2,3,1,2,3,4\n0,1,2,3,1,2,3,0\n4,4,4,4,0,0,0,1\n", &d, &e),
                     0);
    p = calloc(25, sizeof(grt_real));
    for (k = 0; k < 5; k++)
        p[k * 5 + (k + 1) % 5] = 10;
    grt_ctx_init(&c, &m);
    grt_evaluate(&c, p, &d, &s);
    assert_int_equal(s.total, 12);
    assert_int_equal(s.correct, 4 + 3 + 3);
    grt_ctx_free(&c);
    free(p);
    grt_data_free(&d);
    /* gradcheck's random examples: token ids, never other values */
    grt_random_data(&m, 50, 3, &d);
    for (k = 0; k < 50 * 4; k++)
        assert_true(d.x[k] >= 0 && d.x[k] <= 4 && d.x[k] == floor(d.x[k]));
    grt_data_free(&d);
    assert_int_equal(run_main(&m, NULL, "gradcheck", NULL), 0);
    assert_int_equal(run_main(&m, NULL, "train", "x.csv", "--standardize", NULL), 2);
    /* a model description with a class target wider than its outputs */
    m.output_size = 19;
    assert_int_equal(grt_model_check(&m, &e), 1);
    assert_non_null(strstr(e.msg, "class target 'next' of 4 values needs 5 outputs each"));
}

static void test_text_vocab(void **state)
{
    grt_stats s;
    grt_err e;
    unsigned char ids[16];
    (void)state;
    memset(&s, 0, sizeof s);
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_vocab_build((const unsigned char *)"hello\nworld", 11, 8, "h.txt", &s, &e),
                     0);
    assert_int_equal(s.nvocab, 8);
    assert_memory_equal(s.vocab, "\ndehlorw", 8);
    assert_int_equal(grt_text_encode((const unsigned char *)"held", 4, &s, 8, "x", "p", ids, &e),
                     0);
    assert_true(ids[0] == 3 && ids[1] == 2 && ids[2] == 4 && ids[3] == 1);
    assert_int_equal(
        grt_text_encode((const unsigned char *)"he\nlXo", 6, &s, 8, "x.txt", "p.params", ids, &e),
        1);
    assert_string_equal(e.msg, "x.txt:2:2: error: character 'X' is not in the vocabulary of "
                               "p.params (the 8 characters of the training text)");
    memset(&e, 0, sizeof e);
    memset(&s, 0, sizeof s);
    assert_int_equal(grt_vocab_build((const unsigned char *)"hello\nworld", 11, 7, "h.txt", &s, &e),
                     1);
    assert_string_equal(e.msg, "h.txt: error: 8 distinct characters (bytes), but the model's "
                               "vocabulary holds 7 (its input is int(7)); compile it with a "
                               "vocabulary of at least 8, or 256 to read bytes");
}

/* train --text, eval --text and sample, with a small vocabulary and with
 * bytes. */
static void test_text_train_sample(void **state)
{
    grt_model m = fake_bigram(4, 5, 6), b;
    char txt[512], p[512], q[512], lg[512], *s;
    grt_real *params = malloc(256 * 256 * sizeof(grt_real));
    grt_stats st;
    grt_err e;
    double loss;
    (void)state;
    tpath(txt, "abc.txt");
    tpath(p, "abc.params");
    tpath(q, "abc2.params");
    tpath(lg, "abc_log.csv");
    abc_text(txt, 300);
    m.train.validate = 0.1;
    if (run_main(&m, NULL, "train", "--text", txt, "--steps", "60", "--save", p, "--log", lg,
                 NULL) != 0)
        print_error("%s", err_text()), fail();
    s = err_text();
    /* a line about every tenth of the run */
    assert_non_null(strstr(s, "step 6/60  loss "));
    assert_non_null(strstr(s, "step 60/60  loss "));
    assert_non_null(strstr(s, "val_loss "));
    assert_non_null(strstr(s, " tok/s "));
    free(s);
    s = slurp(lg, NULL);
    assert_true(strncmp(s, "step,loss,acc,val_loss,val_acc,lr,seconds\n6,", 44) == 0);
    free(s);
    s = out_text();
    assert_non_null(strstr(s, "valid loss "));
    free(s);
    /* the vocabulary is in the file: the three characters */
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_params_load(p, &m, params, &st, NULL, &e), 0);
    assert_int_equal(st.nvocab, 3);
    assert_memory_equal(st.vocab, "abc", 3);
    grt_stats_free(&st);
    /* eval: the loss per character, low once learnt */
    assert_int_equal(run_main(&m, NULL, "eval", p, "--text", txt, NULL), 0);
    s = out_text();
    assert_int_equal(sscanf(s, "loss %lf", &loss), 1);
    assert_true(loss < 0.05);
    assert_non_null(strstr(s, "\nbits per character "));
    free(s);
    /* sample: the likeliest continuation of "ab" is "cabca..." */
    assert_int_equal(run_main(&m, NULL, "sample", p, "--prompt", "ab", "--tokens", "7",
                              "--temperature", "0", NULL),
                     0);
    s = out_text();
    assert_string_equal(s, "abcabcabc\n");
    free(s);
    /* drawn with a temperature: the same seed, the same text */
    assert_int_equal(run_main(&m, NULL, "sample", p, "--tokens", "30", "--seed", "5", "--top-k",
                              "2", NULL),
                     0);
    s = out_text();
    assert_int_equal(strlen(s), 31);
    assert_int_equal(strspn(s, "abc"), 30);
    free(s);
    /* characters the vocabulary lacks */
    assert_int_equal(run_main(&m, NULL, "sample", p, "--prompt", "abxcyx", NULL), 1);
    s = err_text();
    assert_non_null(strstr(s, "--prompt: error: 'x', 'y' are not in the vocabulary of "));
    free(s);
    write_text(q, "abcabcabcd");
    assert_int_equal(run_main(&m, NULL, "eval", p, "--text", q, NULL), 1);
    s = err_text();
    assert_non_null(strstr(s, "abc2.params:1:10: error: character 'd' is not in the vocabulary"));
    free(s);
    /* more characters than the model's vocabulary */
    write_text(q, "abcdefg");
    assert_int_equal(run_main(&m, NULL, "train", "--text", q, "-q", NULL), 1);
    s = err_text();
    assert_non_null(strstr(s, "7 distinct characters (bytes), but the model's vocabulary holds 5"));
    free(s);
    /* not a text model */
    {
        grt_model lin = fake_linear(8);
        assert_int_equal(run_main(&lin, NULL, "train", "--text", txt, NULL), 2);
        m = fake_bigram(4, 5, 6);
    }
    /* V = 256: bytes, no vocabulary saved */
    b = fake_bigram(8, 256, 3);
    assert_int_equal(run_main(&b, NULL, "train", "--text", txt, "--steps", "40", "--save", q,
                              "-q", NULL),
                     0);
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_params_load(q, &b, params, &st, NULL, &e), 0);
    assert_int_equal(st.nvocab, 0);
    grt_stats_free(&st);
    assert_int_equal(run_main(&b, NULL, "sample", q, "--prompt", "bc", "--tokens", "4",
                              "--temperature", "0", NULL),
                     0);
    s = out_text();
    assert_string_equal(s, "bcabca\n");
    free(s);
    free(params);
}

/* A text run of 40 steps, and 20 then 20 resumed: the same bytes; the
 * cosine schedule's warm-up in the log. */
static void test_text_resume_cosine(void **state)
{
    grt_model m = fake_bigram(4, 5, 6);
    char txt[512], a[512], b[512], c[512], lg[512], *s, *row;
    (void)state;
    tpath(txt, "abc3.txt");
    tpath(a, "t_a.params");
    tpath(b, "t_b.params");
    tpath(c, "t_c.params");
    tpath(lg, "t_log.csv");
    abc_text(txt, 200);
    m.train.sched = GRT_COSINE;
    m.train.sched_a = 10;
    m.train.sched_b = 0.01;
    m.train.steps = 40;
    assert_int_equal(run_main(&m, NULL, "train", "--text", txt, "--save", a, "--log", lg, "-q",
                              NULL),
                     0);
    /* step 4: lr 0.1 * 4 / 10 (warm-up); step 40, the last: min_lr */
    s = slurp(lg, NULL);
    row = strstr(s, "\n4,");
    assert_non_null(row);
    {
        /* the lr column is the sixth */
        int k;
        char *f = row + 1;
        for (k = 0; k < 5; k++)
            f = strchr(f, ',') + 1;
        assert_true(fabs(strtod(f, NULL) - 0.04) < 1e-12);
        f = strstr(s, "\n40,") + 1;
        for (k = 0; k < 5; k++)
            f = strchr(f, ',') + 1;
        assert_true(fabs(strtod(f, NULL) - 0.01) < 1e-12);
    }
    free(s);
    assert_int_equal(run_main(&m, NULL, "train", "--text", txt, "--steps", "40", "--stop-after",
                              "20", "--save", b, "-q", NULL),
                     0);
    assert_false(same_file(a, b));
    assert_int_equal(run_main(&m, NULL, "train", "--text", txt, "--resume", b, "--save", c, "-q",
                              NULL),
                     0);
    assert_true(same_file(a, c));
}

/* Model state: saved with the params, restored by --resume (the same bytes
 * as a run straight through), used by predict; a file without it gets
 * init_state's values. */
static void test_model_state(void **state)
{
    grt_model m = fake_running(4);
    grt_data d;
    char data[512], a[512], b[512], c[512], *s;
    grt_real params[4];
    grt_stats st;
    grt_err e;
    double out, want;
    (void)state;
    linear_data(&d, 40, 3, 0.1, 0);
    write_csv(tpath(data, "run.csv"), &d, NULL, 1);
    tpath(a, "run_a.params");
    tpath(b, "run_b.params");
    tpath(c, "run_c.params");
    assert_int_equal(run_main(&m, NULL, "train", data, "--epochs", "4", "--save", a, "-q", NULL), 0);
    memset(&e, 0, sizeof e);
    assert_int_equal(grt_params_load(a, &m, params, &st, NULL, &e), 0);
    assert_int_equal(st.nstate, 2);
    assert_true(st.state[1] == 40); /* 4 epochs of 10 batches */
    assert_true(st.state[0] != 0);
    /* predict subtracts the saved running mean */
    write_text(tpath(c, "run_x.csv"), "1,2,3\n");
    assert_int_equal(run_main(&m, NULL, "predict", a, c, NULL), 0);
    s = out_text();
    out = strtod(s, NULL);
    want = params[0] * (1 - st.state[0]) + params[1] * 2 + params[2] * 3 + params[3];
    assert_true(fabs(out - want) < 1e-5 * (1 + fabs(want)));
    free(s);
    grt_stats_free(&st);
    /* resumed: the same bytes */
    assert_int_equal(run_main(&m, NULL, "train", data, "--epochs", "2", "--save", b, "-q", NULL), 0);
    assert_int_equal(run_main(&m, NULL, "train", data, "--epochs", "4", "--resume", b, "--save", c,
                              "-q", NULL),
                     0);
    assert_true(same_file(a, c));
    /* the same model without state refuses a file with some; a file
     * without state gives the stateful model init_state's values */
    {
        grt_model r0 = fake_linear(4); /* the same model, without state */
        r0.name = m.name;
        r0.hash = m.hash;
        assert_int_equal(run_main(&r0, NULL, "eval", a, data, NULL), 1);
        s = err_text();
        assert_non_null(strstr(s, "the file holds 2 running statistics, the model 'running' keeps 0"));
        free(s);
        if (run_main(&r0, NULL, "train", data, "--epochs", "1", "--save", b, "-q", NULL) != 0)
            print_error("%s", err_text()), fail();
        memset(&e, 0, sizeof e);
        assert_int_equal(grt_params_load(b, &m, params, &st, NULL, &e), 0);
        assert_null(st.state);
        grt_stats_free(&st);
    }
    grt_data_free(&d);
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
        T(test_param_flags),
        T(test_softmax_accuracy),
        T(test_binary_accuracy),
        T(test_params_roundtrip),
        T(test_params_damaged),
        T(test_params_other_model),
        T(test_params_precision_version),
        T(test_params_unknown_section),
        T(test_params_save_failures),
        T(test_outset),
        T(test_outfile),
        T(test_cleanup_on_signal),
        T(test_model_check),
        T(test_main_usage),
        T(test_main_info),
        T(test_main_train_eval_predict),
        T(test_main_classifier),
        T(test_main_errors),
        T(test_opt_trajectories),
        T(test_full_batch_is_mean),
        T(test_minibatch_steps),
        T(test_schedules_in_training),
        T(test_parse_specs),
        T(test_main_overrides),
        T(test_resume_bit_for_bit),
        T(test_params_state_roundtrip),
        T(test_params_killed_mid_write),
        T(test_nan_stops_training),
        T(test_npy),
        T(test_export),
        T(test_idx),
        T(test_main_idx),
        T(test_log_and_plot),
        T(test_gradcheck),
        T(test_token_data),
        T(test_text_vocab),
        T(test_text_train_sample),
        T(test_text_resume_cosine),
        T(test_model_state),
#undef T
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
