/*
 * parser.y: the grammar of the model language (docs/language.md), as a
 * pure bison parser that builds the AST of ast.c.
 *
 * Statements end at a NEWLINE token; lexer.l leaves out the newlines inside
 * brackets and after a trailing operator, so the grammar never sees line
 * continuations. Each action is one builder call; the few helpers below
 * (lists with a tail pointer, statements with their parts) keep it so.
 *
 * Errors: a syntax error is reported by yyreport_syntax_error below in a
 * compiler's words ("expected ')' before name 'a2'", with a note pointing
 * at the bracket it should close), then `error NEWLINE` drops the rest of
 * the statement and parsing goes on, so one run reports every statement's
 * first error. Recovery inside a train block stays inside it. Lexical
 * errors (bad numbers, too deep nesting) are reported by the lexer, which
 * then returns YYerror: bison recovers without a second message.
 */

%code requires {
#include "gradc.h"

/* Bracket nesting is capped: deeper input is an error, never a stack
 * overflow in the parser or in the passes that recurse on expressions. */
enum { MAX_NESTING = 256, BRACKET_STACK = MAX_NESTING + 64 };

/* An open bracket: for "expected ')' to close '(' at 4:12". */
typedef struct Bracket {
    int ch;  /* '(', '[' or '{' */
    Loc loc; /* where it is */
} Bracket;

/* A token's semantic value, as the %union below has it (bison declares
 * YYSTYPE after this block). */
typedef union YYSTYPE_LAST { const char *str; int ch; } YYSTYPE_LAST;

/* The scanner's state (flex's yyextra), shared with the error reporter. */
typedef struct LexState {
    Arena *arena;     /* for names and number texts */
    Diag *diag;       /* for lexical errors; also holds the source */
    int line, col;    /* position of the next byte, 1-based */
    size_t off;       /* byte offset of the next byte */
    int last;         /* last token returned (0: none yet) */
    int prev_last;    /* the token before it */
    size_t tok_off, tok_len; /* bytes of the last token, in diag->src */
    int at_eof;       /* the scanner has reached the end of the input */
    Bracket stack[BRACKET_STACK]; /* open brackets, innermost last */
    int nstack;       /* their number */
    int paren_depth;  /* how many of them are '(' or '[' (no newlines then) */
    Bracket prev_top; /* innermost open bracket before the last token */
    int has_prev_top; /* whether there was one */
    int too_deep;     /* nesting error reported; quiet until the next NEWLINE */
    int tok_line, prev_tok_line; /* line of the last token returned, and of
                                    the one before it */
    YYSTYPE_LAST val; /* the last token's value and location, to replay it */
    Loc loc;
    int replay;       /* 1: yylex returns a NEWLINE, then (2) the last token again */
    int step_line;    /* line of the text lex_step saw last */
} LexState;

/* Argument and statement lists under construction: O(1) appends. */
typedef struct ExprList { Expr *head, *tail; } ExprList;
typedef struct StmtList { Stmt *head, *tail; } StmtList;

/* The parser's state (no globals). */
typedef struct ParseState {
    Arena *arena;     /* where the AST goes */
    Diag *diag;       /* where syntax errors go */
    Ast *ast;         /* the statements parsed so far */
    LexState *lex;    /* the scanner's state */
    Loc brace_reported; /* a '{' already reported as unclosed */
} ParseState;
}

%code provides {
/* lexer.l: the state of a new scan; forgetting the open brackets after a
 * syntax error so that the next newline ends the broken statement. */
void lex_state_init(LexState *lx, Arena *a, Diag *d);
void lex_drop_brackets(LexState *lx);
int lex_replay_line(LexState *lx);
}

%code {
#include "lexer.h"

#include <string.h>

#define YYMAXDEPTH 10000

static void yyerror(Loc *loc, void *scanner, ParseState *ps, const char *msg);

static const Loc nowhere;

static ExprList xl_one(Expr *e)
{
    ExprList l = { e, e };
    return l;
}

static ExprList xl_add(ExprList l, Expr *e)
{
    if (!l.head)
        return xl_one(e);
    l.tail->next = e;
    l.tail = e;
    return l;
}

static StmtList sl_add(StmtList l, Stmt *s)
{
    if (!s)
        return l;
    if (l.tail)
        l.tail->next = s;
    else
        l.head = s;
    l.tail = s;
    return l;
}

/* A statement with its parts. */
static Stmt *mk(ParseState *ps, StmtKind kind, Loc loc, const char *name, Loc name_loc,
                Expr *shape, Expr *value)
{
    Stmt *s = ast_stmt(ps->arena, kind, loc, name, name_loc);
    s->shape = shape;
    s->value = value;
    return s;
}

static void add_broken(ParseState *ps, StmtKind kind, Loc name_loc, const char *name)
{
    Stmt *s = ast_stmt(ps->arena, kind, name_loc, name, name_loc);
    s->next = ps->ast->broken;
    ps->ast->broken = s;
}

/* e, if its tree is deeper than MAX_EXPR_DEPTH (reported at its start). */
static const Expr *first_too_deep(const Expr *e)
{
    return e && e->depth > MAX_EXPR_DEPTH ? e : NULL;
}

/* A statement that parsed joins the AST, unless an expression of it nests
 * deeper than the passes that recurse on expressions allow. */
static int stmt_depth_ok(ParseState *ps, Stmt *s)
{
    const Expr *e = first_too_deep(s->value);
    if (!e)
        e = first_too_deep(s->shape);
    if (!e)
        return 1;
    diag_error(ps->diag, e->loc, "expression nested too deeply (more than %d levels)",
               MAX_EXPR_DEPTH);
    return 0;
}

static void add_stmt(ParseState *ps, Stmt *s)
{
    if (!stmt_depth_ok(ps, s)) {
        if (s->name && s->kind != S_MODEL && s->kind != S_PRECISION)
            add_broken(ps, s->kind, s->name_loc, s->name);
        return;
    }
    if (s->kind == S_TRAIN || s->kind == S_DEF) {
        /* items too deep are dropped from the block */
        Stmt **p = &s->items;
        while (*p) {
            if (stmt_depth_ok(ps, *p))
                p = &(*p)->next;
            else
                *p = (*p)->next;
        }
    }
    ast_add_stmt(ps->ast, s);
}

static Stmt *mk_train(ParseState *ps, Loc loc, StmtList items)
{
    Stmt *s = ast_stmt(ps->arena, S_TRAIN, loc, NULL, nowhere);
    s->items = items.head;
    return s;
}

/* blocks: a declaration with its words (nodecay, frozen), a def */
static Stmt *with_flags(Stmt *s, ExprList words)
{
    s->flags = words.head;
    return s;
}

static Stmt *mk_def(ParseState *ps, Loc loc, const char *name, Loc name_loc, Loc args_loc,
                    ExprList args, StmtList body, Expr *ret)
{
    Stmt *s = mk(ps, S_DEF, loc, name, name_loc, ast_list(ps->arena, args_loc, args.head), ret);
    s->items = body.head;
    return s;
}
}

%define api.pure full
%define api.location.type {Loc}
%define parse.error custom
%define parse.lac full
%locations
%expect 0
%parse-param {void *scanner} {ParseState *ps}
%lex-param {void *scanner}

%union {
    const char *str;  /* NAME, NUMBER: arena copies of the text */
    int ch;           /* INVALID: the byte */
    Expr *expr;
    Stmt *stmt;
    ExprList list;
    StmtList stmts;
}

%token <str> NAME "name"
%token <str> NUMBER "number"
%token <ch> INVALID "invalid character"
%token NEWLINE "newline"
%token MODEL "'model'" INPUT "'input'" TARGET "'target'" PARAM "'param'"
%token CONST "'const'" INIT "'init'" CLASS "'class'" MINIMIZE "'minimize'"
%token MAXIMIZE "'maximize'" OUTPUT "'output'" TRAIN "'train'" PRECISION "'precision'"
%token ELLIPSIS "'...'" /* tokens and sequences */
%token DEF "'def'" RETURN "'return'"

%type <expr> expr postfix primary arg list initspec
%type <list> args arglist exprs callargs
%type <expr> sub sliceend /* tokens and sequences */
%type <list> subs
%type <stmt> decl item item_line train
%type <stmts> items
%type <stmt> def body_line
%type <stmts> body
%type <list> words names

%left '+' '-'
%left '*' '/' '@'
%precedence NEG
%right '^'

%%

file
    : %empty
    | file stmt
    ;

/* After a syntax error in a declaration or binding its name is kept (in
 * ast->broken), so that its uses are not reported as unknown names; a
 * statement that is whole before the error (input x[3] junk) is kept
 * itself. */
stmt
    : NEWLINE
    | decl NEWLINE           { add_stmt(ps, $1); }
    | decl error NEWLINE     { yyerrok; add_stmt(ps, $1); } /* whole, then junk: kept */
    | error NEWLINE          { yyerrok; }
    | NAME '=' error NEWLINE { yyerrok; add_broken(ps, S_LET, @1, $1); }
    | CONST NAME '=' error NEWLINE
                             { yyerrok; add_broken(ps, S_CONST, @2, $2); }
    | INPUT NAME error NEWLINE
                             { yyerrok; add_broken(ps, S_INPUT, @2, $2); }
    | TARGET NAME error NEWLINE
                             { yyerrok; add_broken(ps, S_TARGET, @2, $2); }
    | PARAM NAME error NEWLINE
                             { yyerrok; add_broken(ps, S_PARAM, @2, $2); }
    ;

decl
    : MODEL NAME             { $$ = mk(ps, S_MODEL, @$, $2, @2, NULL, NULL); }
    | PRECISION NAME         { $$ = mk(ps, S_PRECISION, @$, $2, @2, NULL, NULL); }
    | CONST NAME '=' expr    { $$ = mk(ps, S_CONST, @$, $2, @2, NULL, $4); }
    | INPUT NAME list        { $$ = mk(ps, S_INPUT, @$, $2, @2, $3, NULL); }
    | TARGET NAME list       { $$ = mk(ps, S_TARGET, @$, $2, @2, $3, NULL); }
    | TARGET NAME ':' CLASS callargs
                             { $$ = mk(ps, S_TARGET, @$, $2, @2, NULL,
                                       ast_call(ps->arena, loc_span(@4, @5), "class", @4, $5.head)); }
    /* tokens and sequences: input tok: int(V)[T], target next: class(V)[T] */
    | INPUT NAME ':' NAME callargs list
                             { $$ = mk(ps, S_INPUT, @$, $2, @2, $6,
                                       ast_call(ps->arena, loc_span(@4, @5), $4, @4, $5.head)); }
    | TARGET NAME ':' CLASS callargs list
                             { $$ = mk(ps, S_TARGET, @$, $2, @2, $6,
                                       ast_call(ps->arena, loc_span(@4, @5), "class", @4, $5.head)); }
    | PARAM NAME list        { $$ = mk(ps, S_PARAM, @$, $2, @2, $3, NULL); }
    | PARAM NAME list INIT initspec
                             { $$ = mk(ps, S_PARAM, @$, $2, @2, $3, $5); }
    | NAME '=' expr          { $$ = mk(ps, S_LET, @$, $1, @1, NULL, $3); }
    | MINIMIZE expr          { $$ = mk(ps, S_MINIMIZE, @$, NULL, nowhere, NULL, $2); }
    | MAXIMIZE expr          { $$ = mk(ps, S_MAXIMIZE, @$, NULL, nowhere, NULL, $2); }
    | OUTPUT expr            { $$ = mk(ps, S_OUTPUT, @$, NULL, nowhere, NULL, $2); }
    | train
    /* blocks: words after a declaration, def */
    | INPUT NAME list words  { $$ = with_flags(mk(ps, S_INPUT, @$, $2, @2, $3, NULL), $4); }
    | TARGET NAME list words { $$ = with_flags(mk(ps, S_TARGET, @$, $2, @2, $3, NULL), $4); }
    | PARAM NAME list words  { $$ = with_flags(mk(ps, S_PARAM, @$, $2, @2, $3, NULL), $4); }
    | PARAM NAME list INIT initspec words
                             { $$ = with_flags(mk(ps, S_PARAM, @$, $2, @2, $3, $5), $6); }
    | NAME '=' expr words    { $$ = with_flags(mk(ps, S_LET, @$, $1, @1, NULL, $3), $4); }
    | def
    ;

/* param W[4] init ones nodecay frozen */
words
    : NAME                   { $$ = xl_one(ast_name(ps->arena, @1, $1)); }
    | words NAME             { $$ = xl_add($1, ast_name(ps->arena, @2, $2)); }
    ;

/* def block(x, y) { statements NEWLINE ... return EXPR } */
def
    : DEF NAME '(' ')' '{' body RETURN expr opt_newline '}'
                             { $$ = mk_def(ps, @$, $2, @2, @3, (ExprList){ NULL, NULL }, $6, $8); }
    | DEF NAME '(' names ')' '{' body RETURN expr opt_newline '}'
                             { $$ = mk_def(ps, @$, $2, @2, @4, $4, $7, $9); }
    ;

names
    : NAME                   { $$ = xl_one(ast_name(ps->arena, @1, $1)); }
    | names ',' NAME         { $$ = xl_add($1, ast_name(ps->arena, @3, $3)); }
    ;

opt_newline
    : %empty
    | NEWLINE
    ;

body
    : %empty                 { $$ = (StmtList){ NULL, NULL }; }
    | body body_line         { $$ = sl_add($1, $2); }
    ;

body_line
    : NEWLINE                { $$ = NULL; }
    | decl NEWLINE           { $$ = $1; }
    | error NEWLINE          { yyerrok; $$ = NULL; }
    ;

/* init he | init normal(0, 0.1) | init const(0.5) */
initspec
    : NAME                   { $$ = ast_name(ps->arena, @$, $1); }
    | NAME callargs          { $$ = ast_call(ps->arena, @$, $1, @1, $2.head); }
    | CONST callargs         { $$ = ast_call(ps->arena, @$, "const", @1, $2.head); }
    ;

/* train { key value NEWLINE ... }; the last item may share the '}' line. */
train
    : TRAIN '{' items '}'            { $$ = mk_train(ps, @$, $3); }
    | TRAIN '{' items item '}'       { $$ = mk_train(ps, @$, sl_add($3, $4)); }
    | TRAIN '{' items error '}'      { yyerrok; $$ = mk_train(ps, @$, $3); }
    ;

items
    : %empty                 { $$ = (StmtList){ NULL, NULL }; }
    | items item_line        { $$ = sl_add($1, $2); }
    ;

item_line
    : NEWLINE                { $$ = NULL; }
    | item NEWLINE           { $$ = $1; }
    | error NEWLINE          { yyerrok; $$ = NULL; }
    ;

item
    : NAME expr              { $$ = mk(ps, S_TRAIN_ITEM, @$, $1, @1, NULL, $2); }
    ;

expr
    : expr '+' expr          { $$ = ast_binary(ps->arena, @$, '+', $1, $3); }
    | expr '-' expr          { $$ = ast_binary(ps->arena, @$, '-', $1, $3); }
    | expr '*' expr          { $$ = ast_binary(ps->arena, @$, '*', $1, $3); }
    | expr '/' expr          { $$ = ast_binary(ps->arena, @$, '/', $1, $3); }
    | expr '@' expr          { $$ = ast_binary(ps->arena, @$, '@', $1, $3); }
    | expr '^' expr          { $$ = ast_binary(ps->arena, @$, '^', $1, $3); }
    | '-' expr %prec NEG     { $$ = ast_unary(ps->arena, @$, '-', $2); }
    | postfix
    ;

/* A.T, h1.W */
postfix
    : primary
    | postfix '.' NAME       { $$ = ast_field(ps->arena, @$, $1, $3, @3); }
    | postfix '[' subs ']'   { $$ = ast_index(ps->arena, @$, $1, $3.head); } /* tokens and sequences */
    ;
/* tokens and sequences: the subscripts of x[i, a:b, ..., ::2] */
subs
    : sub                    { $$ = xl_one($1); }
    | subs ',' sub           { $$ = xl_add($1, $3); }
    ;
sub
    : expr
    | ELLIPSIS               { $$ = ast_ellipsis(ps->arena, @$); }
    | sliceend ':' sliceend  { $$ = ast_slice(ps->arena, @$, $1, $3, NULL); }
    | sliceend ':' sliceend ':' sliceend
                             { $$ = ast_slice(ps->arena, @$, $1, $3, $5); }
    ;
sliceend
    : %empty                 { $$ = NULL; }
    | expr
    ;

primary
    : NUMBER                 { $$ = ast_num(ps->arena, @$, $1); }
    | NAME                   { $$ = ast_name(ps->arena, @$, $1); }
    | NAME callargs          { $$ = ast_call(ps->arena, @$, $1, @1, $2.head); }
    | '(' expr ')'           { $$ = $2; }
    | list
    ;

/* [16, 3]: a shape, or a list argument such as reshape's */
list
    : '[' ']'                { $$ = ast_list(ps->arena, @$, NULL); }
    | '[' exprs ']'          { $$ = ast_list(ps->arena, @$, $2.head); }
    | '[' exprs ',' ']'      { $$ = ast_list(ps->arena, @$, $2.head); }
    ;

exprs
    : expr                   { $$ = xl_one($1); }
    | exprs ',' expr         { $$ = xl_add($1, $3); }
    ;

callargs
    : '(' ')'                { $$ = xl_one(NULL); }
    | '(' args ')'           { $$ = $2; }
    ;

args
    : arglist
    | arglist ','
    ;

arglist
    : arg                    { $$ = xl_one($1); }
    | arglist ',' arg        { $$ = xl_add($1, $3); }
    ;

arg
    : expr
    | NAME '=' expr          { $$ = ast_kwarg(ps->arena, @$, $1, @1, $3); }
    ;

%%

/* ------------------------------------------------------- error messages */

/* The source text of the lookahead token, at most max bytes of it. */
static const char *token_text(ParseState *ps, char *buf, size_t size)
{
    LexState *lx = ps->lex;
    size_t n = lx->tok_len;
    const char *src = ps->diag->src + lx->tok_off;
    if (n + 1 > size) {
        memcpy(buf, src, size - 4);
        strcpy(buf + size - 4, "...");
    } else {
        memcpy(buf, src, n);
        buf[n] = '\0';
    }
    return buf;
}

static int is_keyword(yysymbol_kind_t k)
{
    switch (k) {
    case YYSYMBOL_MODEL: case YYSYMBOL_INPUT: case YYSYMBOL_TARGET:
    case YYSYMBOL_PARAM: case YYSYMBOL_CONST: case YYSYMBOL_INIT:
    case YYSYMBOL_CLASS: case YYSYMBOL_MINIMIZE: case YYSYMBOL_MAXIMIZE:
    case YYSYMBOL_OUTPUT: case YYSYMBOL_TRAIN: case YYSYMBOL_PRECISION:
    case YYSYMBOL_DEF: case YYSYMBOL_RETURN:
        return 1;
    default:
        return 0;
    }
}

/* What was found: "name 'a2'", "number '3'", "newline", "end of file",
 * "')'", "'param'". */
static const char *describe_found(ParseState *ps, yysymbol_kind_t k, int eof,
                                  char *buf, size_t size)
{
    char text[48];
    if (eof)
        return "end of file";
    switch (k) {
    case YYSYMBOL_NAME:
        snprintf(buf, size, "name '%s'", token_text(ps, text, sizeof text));
        return buf;
    case YYSYMBOL_NUMBER:
        snprintf(buf, size, "number '%s'", token_text(ps, text, sizeof text));
        return buf;
    default:
        return yysymbol_name(k);
    }
}

/* What may come: "name", "number", "newline", "'init'", "']'". */
static const char *describe_expected(yysymbol_kind_t k)
{
    switch (k) {
    case YYSYMBOL_NAME: return "name";
    case YYSYMBOL_NUMBER: return "number";
    case YYSYMBOL_NEWLINE: return "newline";
    case YYSYMBOL_YYEOF: return "end of file";
    default: return yysymbol_name(k);
    }
}

static int has(const yysymbol_kind_t *set, int n, yysymbol_kind_t k)
{
    for (int i = 0; i < n; i++)
        if (set[i] == k)
            return 1;
    return 0;
}

static int is_operator(yysymbol_kind_t k)
{
    static const char ops[] = "+-*/@^.(";
    for (const char *p = ops; *p; p++)
        if (k == YYTRANSLATE((int)*p))
            return 1;
    return 0;
}

static int closer_of(int open)
{
    return open == '(' ? ')' : open == '[' ? ']' : '}';
}

/*
 * The message for a syntax error at the lookahead token, chosen in order:
 *   stray byte                       stray '$' in model
 *   end of file in open brackets     unexpected end of file; expected ')' to
 *                                    close '(' at L:C + note
 *   an expression may start here     expected expression before X (with
 *                                    "; the '(' at L:C is not closed" + note
 *                                    when X starts a later line)
 *   the open bracket may close here  expected ')' (to close '(' at L:C)
 *                                    before X + note
 *   a closer with no opener          unmatched ')'
 *   a statement may start here       expected a statement (...) before X
 *   otherwise, what may come         expected 'init' or newline before X
 * The note "'(' opened here" points at the bracket.
 * Afterwards the lexer forgets its open brackets, so that the newline at
 * the end of the line ends the statement being dropped.
 */
static int yyreport_syntax_error(const yypcontext_t *ctx, void *scanner, ParseState *ps)
{
    (void)scanner;
    LexState *lx = ps->lex;
    Diag *d = ps->diag;
    yysymbol_kind_t tok = yypcontext_token(ctx);
    Loc loc = *yypcontext_location(ctx);
    int eof = tok == YYSYMBOL_YYEOF || (tok == YYSYMBOL_NEWLINE && lx->at_eof);

    if (tok == YYSYMBOL_INVALID) {
        unsigned char c = lx->tok_len ? (unsigned char)d->src[lx->tok_off] : 0;
        if (c > 0x20 && c < 0x7f)
            diag_error(d, loc, "stray '%c' in model", c);
        else
            diag_error(d, loc, "stray '\\x%02x' in model", c);
        lex_drop_brackets(lx);
        return 0;
    }

    yysymbol_kind_t exp[YYNTOKENS];
    int n = yypcontext_expected_tokens(ctx, exp, YYNTOKENS);
    if (n < 0)
        return n;

    char fbuf[80];
    const char *found = describe_found(ps, tok, eof, fbuf, sizeof fbuf);
    const Bracket *b = lx->has_prev_top ? &lx->prev_top : NULL;
    int closer = b ? closer_of(b->ch) : 0;
    int closer_expected = b && has(exp, n, YYTRANSLATE(closer));
    int note = 0;

    /* A '{' of a train block is open until its '}': at a keyword (a new
     * statement) or the end of the file, the '}' is what is missing. */
    if (b && b->ch == '{' && !(eof || is_keyword(tok)))
        closer_expected = 0;
    if (b && b->ch == '{' && (eof || closer_expected)) {
        if (ps->brace_reported.first_line == b->loc.first_line &&
            ps->brace_reported.first_column == b->loc.first_column)
            return 0; /* said once for this block */
        ps->brace_reported = b->loc;
    }

    if (eof && b) {
        diag_error(d, loc, "unexpected end of file; expected '%c' to close '%c' at %d:%d",
                   closer, b->ch, b->loc.first_line, b->loc.first_column);
        note = 1;
    } else if (has(exp, n, YYSYMBOL_NUMBER)) {
        /* at the start of a later line, the open bracket is the likely cause */
        if (b && b->ch != '{' && loc.first_line > b->loc.first_line) {
            diag_error(d, loc, "expected expression before %s; the '%c' at %d:%d is not closed",
                       found, b->ch, b->loc.first_line, b->loc.first_column);
            note = 1;
        } else
            diag_error(d, loc, "expected expression before %s", found);
    } else if ((tok == YYTRANSLATE(')') || tok == YYTRANSLATE(']') || tok == YYTRANSLATE('}'))
               && (!b || (b->ch == '{') != (tok == YYTRANSLATE('}')))) {
        /* a closing bracket with nothing of its kind open */
        diag_error(d, loc, "unmatched %s", found);
    } else if (closer_expected) {
        diag_error(d, loc, "expected '%c' (to close '%c' at %d:%d) before %s", closer, b->ch,
                   b->loc.first_line, b->loc.first_column, found);
        note = 1;
    } else if (has(exp, n, YYSYMBOL_MODEL)) {
        diag_error(d, loc, "expected a statement (a declaration or 'NAME = EXPR') before %s",
                   found);
    } else {
        /* List what may come, leaving out what could continue any
         * expression (operators, '.', a call's '(') unless nothing else
         * may come, and a newline at the start of a line (blank lines make
         * no token, nor does one after '{'); a newline goes last. */
        const char *what[4];
        int m = 0, too_many = 0, others = 0;
        int bol = lx->prev_last == NEWLINE || lx->prev_last == 0 || lx->prev_last == '{';
        for (int i = 0; i < n; i++)
            if (!is_operator(exp[i]) && !(exp[i] == YYSYMBOL_NEWLINE && bol))
                others = 1;
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < n; i++) {
                if ((others && is_operator(exp[i])) || (exp[i] == YYSYMBOL_NEWLINE && bol))
                    continue;
                if ((exp[i] == YYSYMBOL_NEWLINE) != (pass == 1))
                    continue;
                if (m == 4)
                    too_many = 1;
                else
                    what[m++] = describe_expected(exp[i]);
            }
        if (m == 0 || too_many) {
            diag_error(d, loc, "unexpected %s", found);
        } else {
            char list[160] = "";
            for (int i = 0; i < m; i++) {
                if (i > 0)
                    strcat(list, i == m - 1 ? " or " : ", ");
                strcat(list, what[i]);
            }
            const char *kw = is_keyword(tok) && has(exp, n, YYSYMBOL_NAME)
                ? " (a keyword, not a name)" : "";
            diag_error(d, loc, "expected %s before %s%s", list, found, kw);
        }
    }
    if (note)
        diag_note(d, b->loc, "'%c' opened here", b->ch);
    /* a token that starts a line after an unclosed bracket starts the next
     * statement: the error does not hide it */
    lex_replay_line(lx);
    lex_drop_brackets(lx);
    return 0;
}

/* Only called when the parser's stack is exhausted (syntax errors go to
 * yyreport_syntax_error): the input nests deeper than YYMAXDEPTH without
 * brackets, e.g. thousands of unary minus signs. Parsing stops. */
static void yyerror(Loc *loc, void *scanner, ParseState *ps, const char *msg)
{
    (void)scanner;
    (void)msg;
    diag_error(ps->diag, *loc, "expression nested too deeply (parser stack exhausted)");
}

Ast *parse_source(Arena *a, Diag *d)
{
    Ast *ast = arena_alloc(a, sizeof(Ast));
    if (d->len > (size_t)0x7fffffff) {
        diag_error(d, nowhere, "file too large to parse");
        return ast;
    }
    LexState lx;
    lex_state_init(&lx, a, d);
    ParseState ps = { a, d, ast, &lx, { 0, 0, 0, 0 } };
    yyscan_t scanner;
    if (yylex_init_extra(&lx, &scanner) != 0)
        die("out of memory (scanner)");
    YY_BUFFER_STATE buf = yy_scan_bytes(d->src, (int)d->len, scanner);
    yyparse(scanner, &ps);
    yy_delete_buffer(buf, scanner);
    yylex_destroy(scanner);
    return ast;
}
