/*
 * ast.c: the syntax tree's builders, called one per grammar action by
 * parser.y, and its dump for `gradc --emit=ast`.
 *
 * Every node comes from the compilation's arena, so bison's error recovery
 * can drop half-built trees without leaking. Strings (names, number texts)
 * are not copied: the parser passes arena copies, and they live as long as
 * the tree.
 *
 * The dump is an S-expression per statement, prefixed by the statement's
 * LINE:COL; its format is documented in docs/emit-tokens-ast.md and is
 * stable (tests compare it byte for byte).
 */
#include "gradc.h"

#include <stdlib.h>

static Expr *new_expr(Arena *a, ExprKind kind, Loc loc)
{
    Expr *e = arena_alloc(a, sizeof(Expr));
    e->kind = kind;
    e->loc = loc;
    e->depth = 1;
    return e;
}

static int count_args(const Expr *e)
{
    int n = 0;
    for (; e; e = e->next)
        n++;
    return n;
}

/* the depth of a node above these operands (any may be NULL) */
static int above(const Expr *l, const Expr *r)
{
    int d = l ? l->depth : 0;
    if (r && r->depth > d)
        d = r->depth;
    return d + 1;
}

static int above_args(const Expr *args)
{
    int d = 0;
    for (; args; args = args->next)
        if (args->depth > d)
            d = args->depth;
    return d + 1;
}

Expr *ast_num(Arena *a, Loc loc, const char *text)
{
    Expr *e = new_expr(a, E_NUM, loc);
    e->text = text;
    e->num = strtod(text, NULL);
    return e;
}

Expr *ast_name(Arena *a, Loc loc, const char *name)
{
    Expr *e = new_expr(a, E_NAME, loc);
    e->name = name;
    e->name_loc = loc;
    return e;
}

Expr *ast_unary(Arena *a, Loc loc, int op, Expr *operand)
{
    Expr *e = new_expr(a, E_UNARY, loc);
    e->op = op;
    e->lhs = operand;
    e->depth = above(operand, NULL);
    return e;
}

Expr *ast_binary(Arena *a, Loc loc, int op, Expr *l, Expr *r)
{
    Expr *e = new_expr(a, E_BINARY, loc);
    e->op = op;
    e->lhs = l;
    e->rhs = r;
    e->depth = above(l, r);
    return e;
}

Expr *ast_call(Arena *a, Loc loc, const char *name, Loc name_loc, Expr *args)
{
    Expr *e = new_expr(a, E_CALL, loc);
    e->name = name;
    e->name_loc = name_loc;
    e->args = args;
    e->nargs = count_args(args);
    e->depth = above_args(args);
    return e;
}

Expr *ast_list(Arena *a, Loc loc, Expr *items)
{
    Expr *e = new_expr(a, E_LIST, loc);
    e->args = items;
    e->nargs = count_args(items);
    e->depth = above_args(items);
    return e;
}

Expr *ast_field(Arena *a, Loc loc, Expr *base, const char *name, Loc name_loc)
{
    Expr *e = new_expr(a, E_FIELD, loc);
    e->lhs = base;
    e->name = name;
    e->name_loc = name_loc;
    e->depth = above(base, NULL);
    return e;
}

Expr *ast_kwarg(Arena *a, Loc loc, const char *name, Loc name_loc, Expr *value)
{
    Expr *e = new_expr(a, E_KWARG, loc);
    e->name = name;
    e->name_loc = name_loc;
    e->lhs = value;
    e->depth = above(value, NULL);
    return e;
}

/* tokens and sequences */
Expr *ast_index(Arena *a, Loc loc, Expr *base, Expr *subs)
{
    Expr *e = new_expr(a, E_INDEX, loc);
    e->lhs = base;
    e->args = subs;
    e->nargs = count_args(subs);
    int d = above_args(subs);
    e->depth = base && base->depth + 1 > d ? base->depth + 1 : d;
    return e;
}

Expr *ast_slice(Arena *a, Loc loc, Expr *start, Expr *stop, Expr *step)
{
    Expr *e = new_expr(a, E_SLICE, loc);
    e->lhs = start;
    e->rhs = stop;
    e->args = step;
    e->depth = above(start, stop);
    if (step && step->depth + 1 > e->depth)
        e->depth = step->depth + 1;
    return e;
}

Expr *ast_ellipsis(Arena *a, Loc loc)
{
    return new_expr(a, E_ELLIPSIS, loc);
}

Expr *ast_append_arg(Expr *head, Expr *e)
{
    if (!head)
        return e;
    Expr *p = head;
    while (p->next)
        p = p->next;
    p->next = e;
    return head;
}

Stmt *ast_stmt(Arena *a, StmtKind kind, Loc loc, const char *name, Loc name_loc)
{
    Stmt *s = arena_alloc(a, sizeof(Stmt));
    s->kind = kind;
    s->loc = loc;
    s->name = name;
    s->name_loc = name_loc;
    return s;
}

void ast_add_stmt(Ast *ast, Stmt *s)
{
    s->next = NULL;
    if (ast->last)
        ast->last->next = s;
    else
        ast->first = s;
    ast->last = s;
}

void ast_add_item(Stmt *train, Stmt *item)
{
    item->next = NULL;
    Stmt **p = &train->items;
    while (*p)
        p = &(*p)->next;
    *p = item;
}

/* ------------------------------------------------------------------ dump */

static void dump_args(const Expr *e, FILE *out)
{
    for (; e; e = e->next) {
        fputc(' ', out);
        ast_dump_expr(e, out);
    }
}

/* Prefix form: (op a b), (- a) for negation, (call f args...), [a b],
 * (. base name), (= name value). */
void ast_dump_expr(const Expr *e, FILE *out)
{
    if (!e) {
        fputs("nil", out);
        return;
    }
    switch (e->kind) {
    case E_NUM:
        fputs(e->text ? e->text : "?", out);
        break;
    case E_NAME:
        fputs(e->name, out);
        break;
    case E_UNARY:
        fprintf(out, "(%c ", e->op);
        ast_dump_expr(e->lhs, out);
        fputc(')', out);
        break;
    case E_BINARY:
        fprintf(out, "(%c ", e->op);
        ast_dump_expr(e->lhs, out);
        fputc(' ', out);
        ast_dump_expr(e->rhs, out);
        fputc(')', out);
        break;
    case E_CALL:
        fprintf(out, "(call %s", e->name);
        dump_args(e->args, out);
        fputc(')', out);
        break;
    case E_LIST:
        fputc('[', out);
        for (const Expr *p = e->args; p; p = p->next) {
            if (p != e->args)
                fputc(' ', out);
            ast_dump_expr(p, out);
        }
        fputc(']', out);
        break;
    case E_FIELD:
        fputs("(. ", out);
        ast_dump_expr(e->lhs, out);
        fprintf(out, " %s)", e->name);
        break;
    case E_KWARG:
        fprintf(out, "(= %s ", e->name);
        ast_dump_expr(e->lhs, out);
        fputc(')', out);
        break;
    /* tokens and sequences */
    case E_INDEX:
        fputs("(index ", out);
        ast_dump_expr(e->lhs, out);
        for (const Expr *p = e->args; p; p = p->next) {
            fputc(' ', out);
            ast_dump_expr(p, out);
        }
        fputc(')', out);
        break;
    case E_SLICE: {
        const Expr *part[3] = {e->lhs, e->rhs, e->args};
        fputs("(:", out);
        for (int i = 0; i < 3; i++) {
            fputc(' ', out);
            if (part[i])
                ast_dump_expr(part[i], out);
            else
                fputc('_', out);
        }
        fputc(')', out);
        break;
    }
    case E_ELLIPSIS:
        fputs("...", out);
        break;
    }
}

static const char *stmt_word(StmtKind k)
{
    switch (k) {
    case S_MODEL: return "model";
    case S_PRECISION: return "precision";
    case S_CONST: return "const";
    case S_INPUT: return "input";
    case S_TARGET: return "target";
    case S_PARAM: return "param";
    case S_LET: return "let";
    case S_MINIMIZE: return "minimize";
    case S_MAXIMIZE: return "maximize";
    case S_OUTPUT: return "output";
    case S_TRAIN: return "train";
    case S_TRAIN_ITEM: return "item";
    case S_DEF: return "def";
    }
    return "?";
}

static void dump_stmt(const Stmt *s, FILE *out, int indent)
{
    fprintf(out, "%*s%d:%d (", indent, "", s->loc.first_line, s->loc.first_column);
    /* A train item prints as (key value), everything else as (kind ...). */
    if (s->kind == S_TRAIN_ITEM)
        fputs(s->name ? s->name : "?", out);
    else {
        fputs(stmt_word(s->kind), out);
        if (s->name)
            fprintf(out, " %s", s->name);
    }
    if (s->shape) {
        fputc(' ', out);
        ast_dump_expr(s->shape, out);
    }
    if (s->value) {
        fputc(' ', out);
        if (s->kind == S_PARAM) {
            fputs("(init ", out);
            ast_dump_expr(s->value, out);
            fputc(')', out);
        } else
            ast_dump_expr(s->value, out);
    }
    for (const Expr *w = s->flags; w; w = w->next)
        fprintf(out, " %s", w->name);
    for (const Stmt *it = s->items; it; it = it->next) {
        fputc('\n', out);
        dump_stmt(it, out, indent + 2);
    }
    fputc(')', out);
}

void ast_dump(const Ast *ast, FILE *out)
{
    for (const Stmt *s = ast->first; s; s = s->next) {
        dump_stmt(s, out, 0);
        fputc('\n', out);
    }
}
