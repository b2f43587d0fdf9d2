/*
 * test_diag.c: diag.c's output, byte for byte: the gcc-style header, the
 * echoed source line, the caret and its underline (spans, tabs, locations
 * past the end of the file, "nowhere"), the counts and the error limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gradc.h"

#include <stdlib.h>
#include <string.h>

/* A Diag over src writing into a memory buffer. */
typedef struct Capture {
    Diag d;
    char *text; /* what was printed, after finish() */
    size_t len;
} Capture;

static void start(Capture *c, const char *src, size_t len)
{
    memset(c, 0, sizeof *c);
    diag_init(&c->d, "seed.nn", src, len);
    c->d.out = open_memstream(&c->text, &c->len);
    assert_non_null(c->d.out);
}

static void finish(Capture *c)
{
    fclose(c->d.out);
    c->d.out = NULL;
}

static void release(Capture *c)
{
    diag_release(&c->d);
    free(c->text);
}

static Loc at(int l1, int c1, int l2, int c2)
{
    Loc l = { l1, c1, l2, c2 };
    return l;
}

static const char seed[] =
    "input x[3]\n"
    "a2 = relu(x)\n"
    "yhat = sigmoid(W4 @ a2 + b3)\n";

static void test_defaults_and_line_map(void **state)
{
    (void)state;
    Diag d;
    diag_init(&d, "f.nn", seed, strlen(seed));
    assert_ptr_equal(d.out, stderr);
    assert_int_equal(d.max_errors, 100);
    assert_int_equal(d.errors, 0);
    assert_int_equal(d.warnings, 0);
    assert_int_equal(d.color, 0);
    assert_int_equal(d.nlines, 3);
    assert_int_equal(d.line_start[0], 0);
    assert_int_equal(d.line_start[1], 11);
    assert_int_equal(d.line_start[2], 24);
    diag_release(&d);

    diag_init(&d, "f.nn", "", 0);
    assert_int_equal(d.nlines, 1);
    diag_release(&d);
    diag_init(&d, "f.nn", "a\n\nb", 4);
    assert_int_equal(d.nlines, 3);
    diag_release(&d);
}

static void test_caret_span(void **state)
{
    (void)state;
    Capture c;
    start(&c, seed, strlen(seed));
    diag_error(&c.d, at(3, 16, 3, 17), "unknown name '%s'", "W4");
    finish(&c);
    assert_string_equal(c.text,
                        "seed.nn:3:16: error: unknown name 'W4'\n"
                        "    3 | yhat = sigmoid(W4 @ a2 + b3)\n"
                        "      |                ^~\n");
    assert_int_equal(c.d.errors, 1);
    release(&c);
}

static void test_kinds_and_counts(void **state)
{
    (void)state;
    Capture c;
    start(&c, seed, strlen(seed));
    diag_warning(&c.d, at(1, 7, 1, 10), "param '%s' never reaches the objective", "x");
    diag_note(&c.d, at(2, 1, 2, 2), "declared here");
    diag_error(&c.d, at(2, 6, 2, 12), "bad");
    finish(&c);
    assert_string_equal(c.text,
                        "seed.nn:1:7: warning: param 'x' never reaches the objective\n"
                        "    1 | input x[3]\n"
                        "      |       ^~~~\n"
                        "seed.nn:2:1: note: declared here\n"
                        "    2 | a2 = relu(x)\n"
                        "      | ^~\n"
                        "seed.nn:2:6: error: bad\n"
                        "    2 | a2 = relu(x)\n"
                        "      |      ^~~~~~~\n");
    assert_int_equal(c.d.errors, 1);
    assert_int_equal(c.d.warnings, 1);
    release(&c);
}

static void test_tabs_kept(void **state)
{
    (void)state;
    static const char src[] = "\tz =\t foo(x)\n";
    Capture c;
    start(&c, src, strlen(src));
    diag_error(&c.d, at(1, 7, 1, 9), "unknown function 'foo'");
    finish(&c);
    assert_string_equal(c.text,
                        "seed.nn:1:7: error: unknown function 'foo'\n"
                        "    1 | \tz =\t foo(x)\n"
                        "      | \t   \t ^~~\n");
    release(&c);
}

static void test_span_over_lines(void **state)
{
    (void)state;
    static const char src[] = "a = f(x,\n      y)\n";
    Capture c;
    start(&c, src, strlen(src));
    diag_error(&c.d, at(1, 5, 2, 8), "wrong call");
    finish(&c);
    assert_string_equal(c.text,
                        "seed.nn:1:5: error: wrong call\n"
                        "    1 | a = f(x,\n"
                        "      |     ^~~~\n");
    release(&c);
}

static void test_past_end_of_file(void **state)
{
    (void)state;
    Capture c;
    /* the file ends with a newline: the end is after the last line's text */
    start(&c, seed, strlen(seed));
    diag_error(&c.d, at(4, 1, 4, 1), "unexpected end of file");
    diag_error(&c.d, at(99, 7, 99, 9), "far away");
    finish(&c);
    assert_string_equal(c.text,
                        "seed.nn:3:29: error: unexpected end of file\n"
                        "    3 | yhat = sigmoid(W4 @ a2 + b3)\n"
                        "      |                             ^\n"
                        "seed.nn:3:29: error: far away\n"
                        "    3 | yhat = sigmoid(W4 @ a2 + b3)\n"
                        "      |                             ^\n");
    release(&c);

    /* no final newline; a column past the end of its line */
    start(&c, "ab\ncd", 5);
    diag_error(&c.d, at(2, 3, 2, 3), "end");
    diag_error(&c.d, at(1, 40, 1, 44), "beyond");
    finish(&c);
    assert_string_equal(c.text,
                        "seed.nn:2:3: error: end\n"
                        "    2 | cd\n"
                        "      |   ^\n"
                        "seed.nn:1:3: error: beyond\n"
                        "    1 | ab\n"
                        "      |   ^\n");
    release(&c);

    /* an empty file has one empty line */
    start(&c, "", 0);
    diag_error(&c.d, at(1, 1, 1, 1), "empty");
    finish(&c);
    assert_string_equal(c.text,
                        "seed.nn:1:1: error: empty\n"
                        "    1 | \n"
                        "      | ^\n");
    release(&c);
}

static void test_nowhere(void **state)
{
    (void)state;
    Capture c;
    start(&c, seed, strlen(seed));
    Loc none = { 0, 0, 0, 0 };
    diag_error(&c.d, none, "the model has no objective");
    diag_note(&c.d, none, "add 'minimize EXPR'");
    finish(&c);
    assert_string_equal(c.text,
                        "seed.nn: error: the model has no objective\n"
                        "seed.nn: note: add 'minimize EXPR'\n");
    assert_int_equal(c.d.errors, 1);
    release(&c);
}

static void test_unprintable_bytes(void **state)
{
    (void)state;
    static const char src[] = "x = \x1b[31m\0\xc3\xa9 y\r\nz\n";
    Capture c;
    start(&c, src, sizeof src - 1);
    diag_error(&c.d, at(1, 14, 1, 14), "stray");
    diag_error(&c.d, at(2, 1, 2, 1), "next");
    finish(&c);
    assert_string_equal(c.text,
                        "seed.nn:1:14: error: stray\n"
                        "    1 | x = ?[31m??? y\n"
                        "      |              ^\n"
                        "seed.nn:2:1: error: next\n"
                        "    2 | z\n"
                        "      | ^\n");
    release(&c);
}

static void test_line_numbers_wide(void **state)
{
    (void)state;
    size_t n = 12345;
    char *src = malloc(n * 2 + 1);
    assert_non_null(src);
    for (size_t i = 0; i < n; i++) {
        src[2 * i] = 'a';
        src[2 * i + 1] = '\n';
    }
    src[2 * n] = '\0';
    Capture c;
    start(&c, src, 2 * n);
    diag_error(&c.d, at(12345, 1, 12345, 1), "late");
    diag_error(&c.d, at(999, 1, 999, 1), "mid");
    finish(&c);
    assert_string_equal(c.text,
                        "seed.nn:12345:1: error: late\n"
                        " 12345 | a\n"
                        "       | ^\n"
                        "seed.nn:999:1: error: mid\n"
                        "  999 | a\n"
                        "      | ^\n");
    release(&c);
    free(src);
}

static void test_max_errors(void **state)
{
    (void)state;
    Capture c;
    start(&c, seed, strlen(seed));
    c.d.max_errors = 2;
    diag_error(&c.d, at(1, 1, 1, 5), "one");
    diag_error(&c.d, at(2, 1, 2, 2), "two");
    diag_note(&c.d, at(2, 1, 2, 2), "a note of two");
    diag_error(&c.d, at(3, 1, 3, 4), "three");
    diag_note(&c.d, at(3, 1, 3, 4), "a note of three");
    diag_warning(&c.d, at(3, 1, 3, 4), "a warning");
    diag_error(&c.d, at(3, 1, 3, 4), "four");
    finish(&c);
    assert_string_equal(c.text,
                        "seed.nn:1:1: error: one\n"
                        "    1 | input x[3]\n"
                        "      | ^~~~~\n"
                        "seed.nn:2:1: error: two\n"
                        "    2 | a2 = relu(x)\n"
                        "      | ^~\n"
                        "seed.nn:2:1: note: a note of two\n"
                        "    2 | a2 = relu(x)\n"
                        "      | ^~\n"
                        "seed.nn: too many errors, stopping\n");
    assert_int_equal(c.d.errors, 4);
    assert_int_equal(c.d.warnings, 1);
    release(&c);

    /* 0: no limit */
    start(&c, seed, strlen(seed));
    c.d.max_errors = 0;
    for (int i = 0; i < 150; i++)
        diag_error(&c.d, at(0, 0, 0, 0), "e%d", i);
    finish(&c);
    assert_non_null(strstr(c.text, "seed.nn: error: e149\n"));
    assert_null(strstr(c.text, "too many"));
    assert_int_equal(c.d.errors, 150);
    release(&c);
}

static void verror(Diag *d, const char *kind, Loc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_verror(d, kind, loc, fmt, ap);
    va_end(ap);
}

/* diag_verror counts by kind, for passes that pick the kind at run time. */
static void test_verror_counts(void **state)
{
    (void)state;
    Capture c;
    start(&c, seed, strlen(seed));
    verror(&c.d, "error", at(1, 1, 1, 1), "x %d", 1);
    verror(&c.d, "warning", at(1, 1, 1, 1), "y");
    diag_warning(&c.d, at(1, 1, 1, 1), "z");
    verror(&c.d, "note", at(0, 0, 0, 0), "n");
    finish(&c);
    assert_string_equal(c.text,
                        "seed.nn:1:1: error: x 1\n"
                        "    1 | input x[3]\n"
                        "      | ^\n"
                        "seed.nn:1:1: warning: y\n"
                        "    1 | input x[3]\n"
                        "      | ^\n"
                        "seed.nn:1:1: warning: z\n"
                        "    1 | input x[3]\n"
                        "      | ^\n"
                        "seed.nn: note: n\n");
    assert_int_equal(c.d.errors, 1);
    assert_int_equal(c.d.warnings, 2);
    release(&c);
}

static void test_loc_span(void **state)
{
    (void)state;
    Loc a = at(2, 3, 2, 5), b = at(4, 1, 4, 9), none = at(0, 0, 0, 0);
    Loc s = loc_span(a, b);
    assert_int_equal(s.first_line, 2);
    assert_int_equal(s.first_column, 3);
    assert_int_equal(s.last_line, 4);
    assert_int_equal(s.last_column, 9);
    s = loc_span(none, b);
    assert_int_equal(s.first_line, 4);
    assert_int_equal(s.first_column, 1);
    s = loc_span(a, none);
    assert_int_equal(s.last_line, 2);
    assert_int_equal(s.last_column, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_line_map),
        cmocka_unit_test(test_caret_span),
        cmocka_unit_test(test_kinds_and_counts),
        cmocka_unit_test(test_tabs_kept),
        cmocka_unit_test(test_span_over_lines),
        cmocka_unit_test(test_past_end_of_file),
        cmocka_unit_test(test_nowhere),
        cmocka_unit_test(test_unprintable_bytes),
        cmocka_unit_test(test_line_numbers_wide),
        cmocka_unit_test(test_max_errors),
        cmocka_unit_test(test_verror_counts),
        cmocka_unit_test(test_loc_span),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
