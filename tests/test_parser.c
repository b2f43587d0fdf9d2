/*
 * test_parser.c: the front end (lexer.l, parser.y, ast.c) on its own.
 *
 * Good input is checked through the --emit=ast dump, byte for byte, and
 * the AST fields sema relies on (values, locations, argument counts); bad
 * input through the exact diagnostics, captured with open_memstream, and
 * the error count. Hostile input (binary garbage, deep nesting, huge names)
 * must give errors, never a crash; run this under valgrind too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gradc.h"

#include <stdlib.h>
#include <string.h>

/* One parse of src: the AST dump, the diagnostics, the counts. */
typedef struct Run {
    Arena *arena;
    Diag d;
    Ast *ast;
    char *diags;  /* everything diag printed */
    char *dump;   /* ast_dump */
    int errors;
} Run;

static Run run_bytes(const char *src, size_t len)
{
    Run r;
    memset(&r, 0, sizeof r);
    size_t dlen = 0, alen = 0;
    char *buf = NULL;
    /* the parser reads src up to len; keep a NUL after it as read_file does */
    char *copy = malloc(len + 1);
    assert_non_null(copy);
    memcpy(copy, src, len);
    copy[len] = '\0';
    r.arena = arena_new();
    diag_init(&r.d, "t.nn", copy, len);
    r.d.out = open_memstream(&r.diags, &dlen);
    assert_non_null(r.d.out);
    r.ast = parse_source(r.arena, &r.d);
    assert_non_null(r.ast);
    fclose(r.d.out);
    FILE *f = open_memstream(&buf, &alen);
    assert_non_null(f);
    ast_dump(r.ast, f);
    fclose(f);
    r.dump = buf;
    r.errors = r.d.errors;
    free(copy);
    /* the AST stays valid: its strings live in the arena */
    r.d.src = NULL;
    return r;
}

static Run run(const char *src)
{
    return run_bytes(src, strlen(src));
}

static void done(Run *r)
{
    diag_release(&r->d);
    arena_free(r->arena);
    free(r->diags);
    free(r->dump);
}

/* src parses without diagnostics to exactly dump. */
static void expect_ast(const char *src, const char *dump)
{
    Run r = run(src);
    assert_string_equal(r.diags, "");
    assert_int_equal(r.errors, 0);
    assert_string_equal(r.dump, dump);
    done(&r);
}

/* src gives exactly diags, with nerrors errors. */
static void expect_diags(const char *src, const char *diags, int nerrors)
{
    Run r = run(src);
    assert_string_equal(r.diags, diags);
    assert_int_equal(r.errors, nerrors);
    done(&r);
}

/* ------------------------------------------------------------ good input */

static const char seed_nn[] =
    "# seed.nn: the three-layer classifier of the backpropagation walk-through.\n"
    "model seed                     # optional; default: the file's base name\n"
    "\n"
    "input  x[3]                    # one example; the compiler adds the batch dimension\n"
    "target y[1]\n"
    "\n"
    "param W1[16, 3] init he        # init: zeros | ones | const(c) | normal(mean, std)\n"
    "param b1[16]                   #       uniform(lo, hi) | xavier | he   (default zeros)\n"
    "param W2[16, 16] init he\n"
    "param b2[16]\n"
    "param W3[1, 16] init xavier\n"
    "param b3[1]\n"
    "\n"
    "z1   = W1 @ x + b1             # names are single assignment: no name is bound twice\n"
    "a1   = relu(z1)\n"
    "a2   = relu(W2 @ a1 + b2)\n"
    "yhat = sigmoid(W3 @ a2 + b3)\n"
    "\n"
    "minimize bce(yhat, y)          # or: maximize EXPR (gradient ascent)\n"
    "output yhat                    # what `predict` prints; default: the last binding\n"
    "\n"
    "train {\n"
    "  optimizer sgd(lr = 0.1)      # see section 4\n"
    "  batch 32                     # 1: stochastic; all: full batch; N: mini-batch\n"
    "  epochs 100\n"
    "  shuffle on                   # on | off\n"
    "  seed 42\n"
    "}\n";

static void test_seed_model(void **state)
{
    (void)state;
    expect_ast(seed_nn,
               "2:1 (model seed)\n"
               "4:1 (input x [3])\n"
               "5:1 (target y [1])\n"
               "7:1 (param W1 [16 3] (init he))\n"
               "8:1 (param b1 [16])\n"
               "9:1 (param W2 [16 16] (init he))\n"
               "10:1 (param b2 [16])\n"
               "11:1 (param W3 [1 16] (init xavier))\n"
               "12:1 (param b3 [1])\n"
               "14:1 (let z1 (+ (@ W1 x) b1))\n"
               "15:1 (let a1 (call relu z1))\n"
               "16:1 (let a2 (call relu (+ (@ W2 a1) b2)))\n"
               "17:1 (let yhat (call sigmoid (+ (@ W3 a2) b3)))\n"
               "19:1 (minimize (call bce yhat y))\n"
               "20:1 (output yhat)\n"
               "22:1 (train\n"
               "  23:3 (optimizer (call sgd (= lr 0.1)))\n"
               "  24:3 (batch 32)\n"
               "  25:3 (epochs 100)\n"
               "  26:3 (shuffle on)\n"
               "  27:3 (seed 42))\n");
}

/* The AST fields, not only their dump. */
static void test_seed_fields(void **state)
{
    (void)state;
    Run r = run(seed_nn);
    int n = 0;
    for (Stmt *s = r.ast->first; s; s = s->next)
        n++;
    assert_int_equal(n, 16);

    Stmt *s = r.ast->first->next->next->next; /* param W1[16, 3] init he */
    assert_int_equal(s->kind, S_PARAM);
    assert_string_equal(s->name, "W1");
    assert_int_equal(s->name_loc.first_line, 7);
    assert_int_equal(s->name_loc.first_column, 7);
    assert_int_equal(s->name_loc.last_column, 8);
    assert_int_equal(s->shape->kind, E_LIST);
    assert_int_equal(s->shape->nargs, 2);
    assert_int_equal(s->shape->args->kind, E_NUM);
    assert_true(s->shape->args->num == 16.0);
    assert_true(s->shape->args->next->num == 3.0);
    assert_int_equal(s->value->kind, E_NAME);
    assert_string_equal(s->value->name, "he");
    /* the statement spans "param W1[16, 3] init he" */
    assert_int_equal(s->loc.first_column, 1);
    assert_int_equal(s->loc.last_line, 7);
    assert_int_equal(s->loc.last_column, 23);

    Stmt *last = r.ast->last;
    assert_int_equal(last->kind, S_TRAIN);
    assert_null(last->name);
    assert_int_equal(last->loc.first_line, 22);
    assert_int_equal(last->loc.last_line, 28);
    Stmt *opt = last->items;
    assert_int_equal(opt->kind, S_TRAIN_ITEM);
    assert_string_equal(opt->name, "optimizer");
    assert_int_equal(opt->value->kind, E_CALL);
    assert_string_equal(opt->value->name, "sgd");
    assert_int_equal(opt->value->nargs, 1);
    Expr *kw = opt->value->args;
    assert_int_equal(kw->kind, E_KWARG);
    assert_string_equal(kw->name, "lr");
    assert_int_equal(kw->name_loc.first_column, 17);
    assert_true(kw->lhs->num == 0.1);
    assert_string_equal(kw->lhs->text, "0.1");

    /* yhat = sigmoid(W3 @ a2 + b3): the call spans sigmoid(...) */
    Stmt *yhat = r.ast->first;
    while (yhat && !(yhat->name && strcmp(yhat->name, "yhat") == 0))
        yhat = yhat->next;
    assert_non_null(yhat);
    Expr *call = yhat->value;
    assert_int_equal(call->loc.first_line, 17);
    assert_int_equal(call->loc.first_column, 8);
    assert_int_equal(call->loc.last_column, 28);
    assert_int_equal(call->name_loc.last_column, 14);
    Expr *sum = call->args;
    assert_int_equal(sum->kind, E_BINARY);
    assert_int_equal(sum->op, '+');
    assert_int_equal(sum->loc.first_column, 16);
    assert_int_equal(sum->loc.last_column, 27);
    done(&r);
}

/* tokens and sequences: int(V) inputs, class targets with a shape,
 * subscripts with slices and '...', binding tighter than any operator */
static void test_subscripts(void **state)
{
    (void)state;
    expect_ast("input tok: int(65)[8]\n"
               "target next: class(65)[8]\n"
               "a = E[tok] + wpe\n"
               "b = x[1:, ..., ::2, -1]\n"
               "c = -x[0]^2\n"
               "d = h.W[:3][0]\n",
               "1:1 (input tok [8] (call int 65))\n"
               "2:1 (target next [8] (call class 65))\n"
               "3:1 (let a (+ (index E tok) wpe))\n"
               "4:1 (let b (index x (: 1 _ _) ... (: _ _ 2) (- 1)))\n"
               "5:1 (let c (- (^ (index x 0) 2)))\n"
               "6:1 (let d (index (index (. h W) (: _ 3 _)) 0))\n");
}

static void test_precedence(void **state)
{
    (void)state;
    expect_ast("a = -x^2\n"
               "b = a - b - c\n"
               "c = a @ b + c\n"
               "d = 2 ^ 3 ^ 2\n"
               "e = -a * b\n"
               "f = a + b * c / d @ e\n"
               "g = (a + b) * -c\n"
               "h = a - -b\n"
               "i = -a.T ^ 2\n"
               "j = x ^ -1\n",
               "1:1 (let a (- (^ x 2)))\n"
               "2:1 (let b (- (- a b) c))\n"
               "3:1 (let c (+ (@ a b) c))\n"
               "4:1 (let d (^ 2 (^ 3 2)))\n"
               "5:1 (let e (* (- a) b))\n"
               "6:1 (let f (+ a (@ (/ (* b c) d) e)))\n"
               "7:1 (let g (* (+ a b) (- c)))\n"
               "8:1 (let h (- a (- b)))\n"
               "9:1 (let i (- (^ (. a T) 2)))\n"
               "10:1 (let j (^ x (- 1)))\n");
}

static void test_continuation(void **state)
{
    (void)state;
    expect_ast("a = f(x,\n"
               "      y)\n"
               "b = [1,\n"
               "     2\n"
               "    ]\n"
               "c = a +\n"
               "    b\n"
               "d = a *\n"
               "\n"
               "    # a comment between\n"
               "    b\n"
               "e = (a\n"
               "     + b)\n"
               "f =\n"
               "  h1.\n"
               "  W\n"
               "target t:\n"
               "  class(3)\n",
               "1:1 (let a (call f x y))\n"
               "3:1 (let b [1 2])\n"
               "6:1 (let c (+ a b))\n"
               "8:1 (let d (* a b))\n"
               "12:1 (let e (+ a b))\n"
               "14:1 (let f (. h1 W))\n"
               "17:1 (target t (call class 3))\n");
}

static void test_no_trailing_newline(void **state)
{
    (void)state;
    expect_ast("model m\nminimize x", "1:1 (model m)\n2:1 (minimize x)\n");
    expect_ast("train {\n  batch 1\n}", "1:1 (train\n  2:3 (batch 1))\n");
    expect_ast("a = 1 # comment at the end", "1:1 (let a 1)\n");
}

static void test_blank_lines_comments_crlf(void **state)
{
    (void)state;
    expect_ast("\n\n# only a comment\n\n\r\n  \t \nmodel m\r\n\n\n\ninput x[2]\r\n\n",
               "7:1 (model m)\n11:1 (input x [2])\n");
}

static void test_empty_file(void **state)
{
    (void)state;
    expect_ast("", "");
    expect_ast("\n\n\n", "");
    expect_ast("# nothing but comments\n   # and blanks\n", "");
}

static void test_train_block(void **state)
{
    (void)state;
    expect_ast("train {\n"
               "\n"
               "  optimizer adam(lr=1e-3, beta1 = 0.9,)\n"
               "\n"
               "  batch all\n"
               "  shuffle on\n"
               "  schedule step(10, 0.5)\n"
               "  schedule cosine\n"
               "  clip 1.0\n"
               "  validate 0.1\n"
               "\n"
               "}\n"
               "train {}\n"
               "train { batch 1 }\n"
               "train {\n"
               "  epochs 3 }\n",
               "1:1 (train\n"
               "  3:3 (optimizer (call adam (= lr 1e-3) (= beta1 0.9)))\n"
               "  5:3 (batch all)\n"
               "  6:3 (shuffle on)\n"
               "  7:3 (schedule (call step 10 0.5))\n"
               "  8:3 (schedule cosine)\n"
               "  9:3 (clip 1.0)\n"
               "  10:3 (validate 0.1))\n"
               "13:1 (train)\n"
               "14:1 (train\n"
               "  14:9 (batch 1))\n"
               "15:1 (train\n"
               "  16:3 (epochs 3))\n");
}

static void test_declarations(void **state)
{
    (void)state;
    expect_ast("model fmnist_mlp\n"
               "precision double\n"
               "const N = 128\n"
               "input img[1, 28, 28]\n"
               "target label: class(10)\n"
               "target y[N]\n"
               "param W[N, 784] init normal(0, 0.01)\n"
               "param b[N] init const(0.5)\n"
               "param c[N] init zeros\n"
               "param s[] init uniform(-1, 1)\n"
               "param t[2, 3,]\n"
               "maximize -mse(yhat, y)\n"
               "output softmax(z)\n",
               "1:1 (model fmnist_mlp)\n"
               "2:1 (precision double)\n"
               "3:1 (const N 128)\n"
               "4:1 (input img [1 28 28])\n"
               "5:1 (target label (call class 10))\n"
               "6:1 (target y [N])\n"
               "7:1 (param W [N 784] (init (call normal 0 0.01)))\n"
               "8:1 (param b [N] (init (call const 0.5)))\n"
               "9:1 (param c [N] (init zeros))\n"
               "10:1 (param s [] (init (call uniform (- 1) 1)))\n"
               "11:1 (param t [2 3])\n"
               "12:1 (maximize (- (call mse yhat y)))\n"
               "13:1 (output (call softmax z))\n");
}

static void test_class_target_fields(void **state)
{
    (void)state;
    Run r = run("target label: class(10)\nparam b[4] init const(0.5)\n");
    assert_int_equal(r.errors, 0);
    Stmt *t = r.ast->first;
    assert_int_equal(t->kind, S_TARGET);
    assert_null(t->shape);
    assert_int_equal(t->value->kind, E_CALL);
    assert_string_equal(t->value->name, "class");
    assert_int_equal(t->value->nargs, 1);
    assert_int_equal(t->value->name_loc.first_column, 15);
    assert_int_equal(t->value->loc.first_column, 15);
    assert_int_equal(t->value->loc.last_column, 23);
    Stmt *p = t->next;
    assert_string_equal(p->value->name, "const");
    assert_int_equal(p->value->kind, E_CALL);
    assert_true(p->value->args->num == 0.5);
    done(&r);
}

static void test_calls_kwargs_fields(void **state)
{
    (void)state;
    expect_ast("h1 = dense(x, 16, relu)\n"
               "h2 = conv2d(img, out=32, k=5, stride=1, pad=same)\n"
               "p = maxpool2d(h2, 2)\n"
               "q = avgpool2d(p, 2)\n"
               "r = dropout(q, 0.5)\n"
               "s = sum(x, axis=0) + mean(x, axis=1)\n"
               "t = reshape(x, [2, 8]) + flatten(x)\n"
               "u = A.T @ h1.W + transpose(A)\n"
               "v = concat(a, b, axis=0)\n"
               "w = f()\n"
               "z = leaky_relu(x, 0.01).T\n",
               "1:1 (let h1 (call dense x 16 relu))\n"
               "2:1 (let h2 (call conv2d img (= out 32) (= k 5) (= stride 1) (= pad same)))\n"
               "3:1 (let p (call maxpool2d h2 2))\n"
               "4:1 (let q (call avgpool2d p 2))\n"
               "5:1 (let r (call dropout q 0.5))\n"
               "6:1 (let s (+ (call sum x (= axis 0)) (call mean x (= axis 1))))\n"
               "7:1 (let t (+ (call reshape x [2 8]) (call flatten x)))\n"
               "8:1 (let u (+ (@ (. A T) (. h1 W)) (call transpose A)))\n"
               "9:1 (let v (call concat a b (= axis 0)))\n"
               "10:1 (let w (call f))\n"
               "11:1 (let z (. (call leaky_relu x 0.01) T))\n");
}

static void test_numbers(void **state)
{
    (void)state;
    Run r = run("a = [12, 0.5, .5, 1e-3, 2.5E+4, 7., 1e5]\n");
    assert_int_equal(r.errors, 0);
    assert_string_equal(r.dump, "1:1 (let a [12 0.5 .5 1e-3 2.5E+4 7. 1e5])\n");
    const double want[] = { 12, 0.5, 0.5, 1e-3, 2.5e4, 7, 1e5 };
    int i = 0;
    for (Expr *e = r.ast->first->value->args; e; e = e->next, i++) {
        assert_int_equal(e->kind, E_NUM);
        assert_true(e->num == want[i]);
    }
    assert_int_equal(i, 7);
    done(&r);
}

static void test_keywords_prefix_names(void **state)
{
    (void)state;
    /* names that start with a keyword are names */
    expect_ast("models = inputs + target_1 + param2 + classes + train_x\n",
               "1:1 (let models (+ (+ (+ (+ inputs target_1) param2) classes) train_x))\n");
}

/* ------------------------------------------------------------ bad input */

static void test_missing_paren(void **state)
{
    (void)state;
    expect_diags("a1 = relu(z1\n"
                 "a2 = relu(W2 @ a1 + b2)\n"
                 "minimize a2\n",
                 "t.nn:2:1: error: expected ')' (to close '(' at 1:10) before name 'a2'\n"
                 "    2 | a2 = relu(W2 @ a1 + b2)\n"
                 "      | ^~\n"
                 "t.nn:1:10: note: '(' opened here\n"
                 "    1 | a1 = relu(z1\n"
                 "      |          ^\n",
                 1);
    expect_diags("x = [3 x]\n",
                 "t.nn:1:8: error: expected ']' (to close '[' at 1:5) before name 'x'\n"
                 "    1 | x = [3 x]\n"
                 "      |        ^\n"
                 "t.nn:1:5: note: '[' opened here\n"
                 "    1 | x = [3 x]\n"
                 "      |     ^\n",
                 1);
    expect_diags("f = g(a]\n",
                 "t.nn:1:8: error: expected ')' (to close '(' at 1:6) before ']'\n"
                 "    1 | f = g(a]\n"
                 "      |        ^\n"
                 "t.nn:1:6: note: '(' opened here\n"
                 "    1 | f = g(a]\n"
                 "      |      ^\n",
                 1);
}

static void test_eof_in_bracket(void **state)
{
    (void)state;
    expect_diags("a = f(x,\n",
                 "t.nn:1:9: error: unexpected end of file; expected ')' to close '(' at 1:6\n"
                 "    1 | a = f(x,\n"
                 "      |         ^\n"
                 "t.nn:1:6: note: '(' opened here\n"
                 "    1 | a = f(x,\n"
                 "      |      ^\n",
                 1);
    expect_diags("train {\n  batch 1\n",
                 "t.nn:2:10: error: unexpected end of file; expected '}' to close '{' at 1:7\n"
                 "    2 |   batch 1\n"
                 "      |          ^\n"
                 "t.nn:1:7: note: '{' opened here\n"
                 "    1 | train {\n"
                 "      |       ^\n",
                 1);
    expect_diags("a = b +",
                 "t.nn:1:8: error: expected expression before end of file\n"
                 "    1 | a = b +\n"
                 "      |        ^\n",
                 1);
}

static void test_missing_brace(void **state)
{
    (void)state;
    /* said once, not for every statement after it */
    expect_diags("train {\n"
                 "  batch 32\n"
                 "minimize x\n"
                 "output y\n",
                 "t.nn:3:1: error: expected '}' (to close '{' at 1:7) before 'minimize'\n"
                 "    3 | minimize x\n"
                 "      | ^~~~~~~~\n"
                 "t.nn:1:7: note: '{' opened here\n"
                 "    1 | train {\n"
                 "      |       ^\n",
                 1);
}

/* A statement broken by an unclosed bracket ends where the next line's
 * keyword starts a statement; that keyword, if wrong where it stands (a
 * 'train' inside a train block), is reported once, not replayed forever
 * (found by the fuzzer: tests/fuzz/regressions/timeout-5f0338c5b048d1c8.nn). */
static void test_replay_once(void **state)
{
    (void)state;
    expect_diags("train {validate f(0\n"
                 "train {v\n"
                 "}\n",
                 "t.nn:2:1: error: expected ')' (to close '(' at 1:18) before 'train'\n"
                 "    2 | train {v\n"
                 "      | ^~~~~\n"
                 "t.nn:1:18: note: '(' opened here\n"
                 "    1 | train {validate f(0\n"
                 "      |                  ^\n"
                 "t.nn:2:1: error: expected '}' (to close '{' at 1:7) before 'train'\n"
                 "    2 | train {v\n"
                 "      | ^~~~~\n"
                 "t.nn:1:7: note: '{' opened here\n"
                 "    1 | train {validate f(0\n"
                 "      |       ^\n",
                 2);
}

/* An expression cut short by a line that starts a new statement names the
 * bracket left open. */
static void test_unclosed_before_statement(void **state)
{
    (void)state;
    expect_diags("a = W @ (x +\n"
                 "minimize a\n",
                 "t.nn:2:1: error: expected expression before 'minimize'; the '(' at 1:9 is not closed\n"
                 "    2 | minimize a\n"
                 "      | ^~~~~~~~\n"
                 "t.nn:1:9: note: '(' opened here\n"
                 "    1 | a = W @ (x +\n"
                 "      |         ^\n",
                 1);
}

static void test_expected_messages(void **state)
{
    (void)state;
    expect_diags("model\n"
                 "input x\n"
                 "param W[3] 5\n"
                 "z = a 5\n"
                 "}\n"
                 "param class[3]\n"
                 "minimize\n"
                 "target t: class 10\n"
                 "train {\n  3 4\n}\n",
                 "t.nn:1:6: error: expected name before newline\n"
                 "    1 | model\n"
                 "      |      ^\n"
                 "t.nn:2:8: error: expected ':' or '[' before newline\n"
                 "    2 | input x\n"
                 "      |        ^\n"
                 "t.nn:3:12: error: expected name, 'init' or newline before number '5'\n"
                 "    3 | param W[3] 5\n"
                 "      |            ^\n"
                 "t.nn:4:7: error: expected name, '[' or newline before number '5'\n"
                 "    4 | z = a 5\n"
                 "      |       ^\n"
                 "t.nn:5:1: error: unmatched '}'\n"
                 "    5 | }\n"
                 "      | ^\n"
                 "t.nn:6:7: error: expected name before 'class' (a keyword, not a name)\n"
                 "    6 | param class[3]\n"
                 "      |       ^~~~~\n"
                 "t.nn:7:9: error: expected expression before newline\n"
                 "    7 | minimize\n"
                 "      |         ^\n"
                 "t.nn:8:17: error: expected '(' before number '10'\n"
                 "    8 | target t: class 10\n"
                 "      |                 ^~\n"
                 "t.nn:10:3: error: expected name or '}' before number '3'\n"
                 "   10 |   3 4\n"
                 "      |   ^\n",
                 9);
}

static void test_stray_characters(void **state)
{
    (void)state;
    expect_diags("x = a $ b\n"
                 "y = a; z = 1\n"
                 "w = \x01\n",
                 "t.nn:1:7: error: stray '$' in model\n"
                 "    1 | x = a $ b\n"
                 "      |       ^\n"
                 "t.nn:2:6: error: stray ';' in model\n"
                 "    2 | y = a; z = 1\n"
                 "      |      ^\n"
                 "t.nn:3:5: error: stray '\\x01' in model\n"
                 "    3 | w = ?\n"
                 "      |     ^\n",
                 3);
}

static void test_bad_numbers(void **state)
{
    (void)state;
    expect_diags("a = 3x + 1\n"
                 "b = 1e\n"
                 "c = 2.5e+ 1\n"
                 "d = 1.5_\n"
                 "minimize a\n",
                 "t.nn:1:5: error: invalid number '3x'\n"
                 "    1 | a = 3x + 1\n"
                 "      |     ^~\n"
                 "t.nn:2:5: error: invalid number '1e'\n"
                 "    2 | b = 1e\n"
                 "      |     ^~\n"
                 "t.nn:3:5: error: invalid number '2.5e+'\n"
                 "    3 | c = 2.5e+ 1\n"
                 "      |     ^~~~~\n"
                 "t.nn:4:5: error: invalid number '1.5_'\n"
                 "    4 | d = 1.5_\n"
                 "      |     ^~~~\n",
                 4);
    /* the statement after a bad one still parses */
    Run r = run("a = 3x\nminimize a\n");
    assert_string_equal(r.dump, "2:1 (minimize a)\n");
    done(&r);
    /* also when it leaves a bracket open */
    r = run("a = f(3x\nminimize a\n");
    assert_int_equal(r.errors, 1);
    assert_string_equal(r.dump, "2:1 (minimize a)\n");
    done(&r);
}

static void test_all_errors_reported(void **state)
{
    (void)state;
    Run r = run("model\n"             /* expected name */
                "a = (b +\n"          /* expected ')' before '=' (line 3) */
                "c = d e\n"
                "x = $\n"             /* stray */
                "param W[3 init he\n" /* expected ']' */
                "ok = 1\n"
                "y = 1x\n"            /* invalid number */
                "minimize\n"          /* expected expression */
                "minimize ok\n");
    assert_int_equal(r.errors, 6);
    assert_string_equal(r.dump, "6:1 (let ok 1)\n9:1 (minimize ok)\n");
    done(&r);
}

static void test_binary_garbage(void **state)
{
    (void)state;
    static const char garbage[] =
        "\x7f" "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0>\0\x01\0\0\0\x10\x10\0\0\0\0\0\0"
        "\n\0\0\0\xff\xfe\xfd model \0 (\0[\0{\0\n\x80\x81\x82";
    Run r = run_bytes(garbage, sizeof garbage - 1);
    assert_true(r.errors > 0);
    assert_non_null(strstr(r.diags, "stray '\\x7f' in model"));
    /* no raw control bytes reach the terminal */
    for (const char *p = r.diags; *p; p++)
        assert_true(*p == '\n' || *p == '\t' || (*p >= 0x20 && *p < 0x7f));
    done(&r);

    /* random bytes of every kind, a few rounds */
    unsigned seed = 12345;
    for (int round = 0; round < 50; round++) {
        char buf[512];
        for (size_t i = 0; i < sizeof buf; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = (char)(seed >> 16);
        }
        Run g = run_bytes(buf, sizeof buf);
        assert_true(g.errors > 0);
        done(&g);
    }
}

static void test_nul_in_file(void **state)
{
    (void)state;
    static const char src[] = "a = 1\n\0\nb = 2\n";
    Run r = run_bytes(src, sizeof src - 1);
    assert_string_equal(r.diags,
                        "t.nn:2:1: error: stray '\\x00' in model\n"
                        "    2 | ?\n"
                        "      | ^\n");
    assert_string_equal(r.dump, "1:1 (let a 1)\n3:1 (let b 2)\n");
    done(&r);
}

static void test_deep_nesting(void **state)
{
    (void)state;
    enum { N = 10000 };
    char *src = malloc(3 * N + 64);
    assert_non_null(src);
    strcpy(src, "a = ");
    char *p = src + 4;
    memset(p, '(', N);
    p += N;
    *p++ = 'x';
    memset(p, ')', N);
    p += N;
    strcpy(p, "\nminimize a\n");
    Run r = run(src);
    assert_int_equal(r.errors, 1);
    assert_non_null(strstr(r.diags, "t.nn:1:261: error: expression nested too deeply (more than 256 open brackets)\n"));
    assert_string_equal(r.dump, "2:1 (minimize a)\n");
    done(&r);

    /* 256 is fine */
    p = src;
    p += sprintf(p, "a = ");
    memset(p, '[', 256);
    p += 256;
    *p++ = '1';
    memset(p, ']', 256);
    p += 256;
    strcpy(p, "\n");
    r = run(src);
    assert_int_equal(r.errors, 0);
    done(&r);

    /* no brackets, but the parser's stack runs out: an error, not a crash */
    p = src;
    p += sprintf(p, "a = ");
    for (int i = 0; i < N; i++) {
        *p++ = '-';
        *p++ = ' ';
    }
    strcpy(p, "x\n");
    r = run(src);
    assert_int_equal(r.errors, 1);
    assert_non_null(strstr(r.diags, "error: expression nested too deeply (parser stack exhausted)\n"));
    done(&r);
    free(src);
}

static void test_long_name(void **state)
{
    (void)state;
    char src[400];
    memset(src, 'n', 300);
    strcpy(src + 300, " = 1\n");
    Run r = run(src);
    assert_int_equal(r.errors, 1);
    assert_non_null(strstr(r.diags, "t.nn:1:1: error: name too long (300 characters, the limit is 255)\n"));
    /* still a name: the statement is there */
    assert_non_null(r.ast->first);
    assert_int_equal(r.ast->first->kind, S_LET);
    assert_int_equal((int)strlen(r.ast->first->name), 300);
    done(&r);

    memset(src, 'n', 255);
    strcpy(src + 255, " = 1\n");
    r = run(src);
    assert_int_equal(r.errors, 0);
    done(&r);
}

static void test_too_many_errors(void **state)
{
    (void)state;
    char *src = malloc(200 * 4 + 1);
    assert_non_null(src);
    char *p = src;
    for (int i = 0; i < 200; i++)
        p += sprintf(p, "$$$\n");
    Run r = run(src);
    assert_int_equal(r.errors, 200);
    /* 100 errors of three lines, then one line */
    int lines = 0;
    for (const char *q = r.diags; *q; q++)
        lines += *q == '\n';
    assert_int_equal(lines, 301);
    assert_non_null(strstr(r.diags, "\nt.nn: too many errors, stopping\n"));
    done(&r);
    free(src);
}

/* ---------------------------------------------------------- token dump */

static char *tokens(const char *src, size_t len, int *errors)
{
    Arena *a = arena_new();
    Diag d;
    char *out = NULL, *err = NULL;
    size_t olen = 0, elen = 0;
    diag_init(&d, "t.nn", src, len);
    d.out = open_memstream(&err, &elen);
    FILE *f = open_memstream(&out, &olen);
    dump_tokens(a, &d, f);
    fclose(f);
    fclose(d.out);
    *errors = d.errors;
    free(err);
    diag_release(&d);
    arena_free(a);
    return out;
}

static void test_token_dump(void **state)
{
    (void)state;
    static const char src[] = "param W1[16, 3] init he  # c\n"
                              "z = (a +\n"
                              "  .5e-3) $\n"
                              "\n"
                              "t: {} \t3x";
    int errors = 0;
    char *out = tokens(src, sizeof src - 1, &errors);
    assert_string_equal(out,
                        "1:1 param 'param'\n"
                        "1:7 NAME 'W1'\n"
                        "1:9 '[' '['\n"
                        "1:10 NUMBER '16'\n"
                        "1:12 ',' ','\n"
                        "1:14 NUMBER '3'\n"
                        "1:15 ']' ']'\n"
                        "1:17 init 'init'\n"
                        "1:22 NAME 'he'\n"
                        "1:29 NEWLINE '\\n'\n"
                        "2:1 NAME 'z'\n"
                        "2:3 '=' '='\n"
                        "2:5 '(' '('\n"
                        "2:6 NAME 'a'\n"
                        "2:8 '+' '+'\n"
                        "3:3 NUMBER '.5e-3'\n"
                        "3:8 ')' ')'\n"
                        "3:10 INVALID '$'\n"
                        "3:11 NEWLINE '\\n'\n"
                        "5:1 NAME 't'\n"
                        "5:2 ':' ':'\n"
                        "5:4 '{' '{'\n"
                        "5:5 '}' '}'\n"
                        "5:8 ERROR '3x'\n"
                        "5:10 NEWLINE ''\n"
                        "5:10 EOF ''\n");
    assert_int_equal(errors, 1); /* the bad number; the parser reports '$' */
    free(out);

    out = tokens("", 0, &errors);
    assert_string_equal(out, "1:1 EOF ''\n");
    free(out);

    /* the quote starts a string, which the lexer refuses (an ERROR token),
     * running to the end of the line: both escapes in one token */
    static const char odd[] = "\0\x80'\\";
    out = tokens(odd, sizeof odd - 1, &errors);
    assert_string_equal(out,
                        "1:1 INVALID '\\x00'\n"
                        "1:2 INVALID '\\x80'\n"
                        "1:3 ERROR '\\'\\\\'\n"
                        "1:5 NEWLINE ''\n"
                        "1:5 EOF ''\n");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_model),
        cmocka_unit_test(test_seed_fields),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_subscripts),
        cmocka_unit_test(test_continuation),
        cmocka_unit_test(test_no_trailing_newline),
        cmocka_unit_test(test_blank_lines_comments_crlf),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_train_block),
        cmocka_unit_test(test_declarations),
        cmocka_unit_test(test_class_target_fields),
        cmocka_unit_test(test_calls_kwargs_fields),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_keywords_prefix_names),
        cmocka_unit_test(test_missing_paren),
        cmocka_unit_test(test_eof_in_bracket),
        cmocka_unit_test(test_missing_brace),
        cmocka_unit_test(test_replay_once),
        cmocka_unit_test(test_unclosed_before_statement),
        cmocka_unit_test(test_expected_messages),
        cmocka_unit_test(test_stray_characters),
        cmocka_unit_test(test_bad_numbers),
        cmocka_unit_test(test_all_errors_reported),
        cmocka_unit_test(test_binary_garbage),
        cmocka_unit_test(test_nul_in_file),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_long_name),
        cmocka_unit_test(test_too_many_errors),
        cmocka_unit_test(test_token_dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
