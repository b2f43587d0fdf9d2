/*
 * fuzz_frontend.c: the libFuzzer target of gradc's front end and checker.
 *
 * One input is one model file. It goes through what `gradc --emit=tokens`,
 * `--emit=ast` and `--check` run (the scanner, the parser with its error
 * recovery, sema), and, when it checks clean, through the rest of the
 * pipeline up to the generated C (written to /dev/null), so that no input can
 * make any stage crash, hang or leak. Everything is freed at the end of each
 * input (the arena, the graph, the line map) so that LeakSanitizer sees real
 * leaks only.
 *
 * Built and run by tests/fuzz/run.sh (`make fuzz`); crashers found go to
 * tests/fuzz/regressions/, which tests/e2e/fuzz_regress.sh replays.
 */
#include "gradc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static FILE *null_out;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    null_out = fopen("/dev/null", "w");
    if (!null_out)
        abort();
    return 0;
}

static void full_pipeline(Model *m)
{
    simplify(m, 2, NULL);
    grad_build(m);
    simplify(m, 2, NULL);
    Plan plans[FN_COUNT];
    for (int i = 0; i < FN_COUNT; i++)
        plan_build(m, (FnKind)i, &plans[i]);
    for (int i = 0; i < FN_COUNT; i++)
        if (plans[i].too_big)
            return; /* main.c reports it and emits nothing */
    EmitOptions eo = {0, "fuzz.nn", "gradc fuzz.nn", 0};
    emit_c(m, plans, &eo, null_out);
    emit_h(m, plans, &eo, null_out);
    emit_main(m, plans, null_out);
    emit_grad(m, null_out);
    emit_stats(m, plans, null_out);
    /* plan.c allocates its arrays in the arena: nothing else to free */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* gradc reads files whole and NUL-terminates them (read_file) */
    char *src = malloc(size + 1);
    if (!src)
        return 0;
    memcpy(src, data, size);
    src[size] = '\0';

    Arena *a = arena_new();
    Diag d;
    diag_init(&d, "fuzz.nn", src, size);
    d.out = null_out;
    dump_tokens(a, &d, null_out);
    diag_release(&d);

    diag_init(&d, "fuzz.nn", src, size);
    d.out = null_out;
    Ast *ast = parse_source(a, &d);
    ast_dump(ast, null_out);
    Model *m = sema_check(a, &d, ast, "fuzz");
    if (m && !d.errors)
        full_pipeline(m);
    if (m)
        graph_release(&m->g);
    diag_release(&d);
    arena_free(a);
    free(src);
    return 0;
}
