/*
 * emit_dot.c: --emit=dot, the forward and backward graphs in one Graphviz
 * file; --emit=dot-forward and --emit=dot-backward, one of them.
 *
 * The whole graph is drawn as a mirror: the forward cluster runs top to
 * bottom (boxes), the backward cluster beside it bottom to top (ellipses),
 * and each adjoint sits on the rank of its primal, linked to it by a short
 * dashed red line, so that dL/dz1 stands next to z1 and the backward pass
 * reads upwards as it is computed. Parameters are filled yellow; forward
 * values the backward pass reads are bold blue (saved for backward), and
 * the edges that carry them are blue too. The backward part alone draws
 * those saved values as well, as the inputs it reads.
 */
#include "gradc.h"

#include <string.h>

/* A node: its label, op and shape; box or ellipse; params filled, saved
 * values bold blue, both in one style attribute. */
static void node(Model *m, Ref r, int saved, FILE *out)
{
    char l[128], sh[64];
    Node *x = N(&m->g, r);
    int param = x->op == OP_PARAM;
    node_label(m, r, l, sizeof l);
    fprintf(out, "    n%d [label=\"%s\\n%s %s\", shape=%s", r, l, op_name[x->op],
            shape_str(x->shape, sh, sizeof sh), x->backward ? "ellipse" : "box");
    if (saved || param)
        fprintf(out, ", style=\"%s%s%s\"", saved ? "bold" : "", saved && param ? "," : "",
                param ? "filled" : "");
    if (saved)
        fprintf(out, ", color=blue");
    if (param)
        fprintf(out, ", fillcolor=lightyellow");
    fprintf(out, "];\n");
}

/* part: "" both, "-forward", "-backward" (what follows "dot" in the kind) */
void emit_dot(Model *m, FILE *out, const char *part)
{
    Graph *g = &m->g;
    Plan p;
    plan_build(m, FN_LOSS_GRAD, &p);
    int fwd = strcmp(part, "-backward") != 0, bwd = strcmp(part, "-forward") != 0;
    unsigned char *in = xcalloc((size_t)g->n, 1), *saved = xcalloc((size_t)g->n, 1);
    unsigned char *drawn = xcalloc((size_t)g->n, 1);
    for (int i = 0; i < p.norder; i++)
        in[p.order[i]] = 1;
    for (int i = 0; i < p.norder; i++) {
        Node *x = N(g, p.order[i]);
        if (x->backward)
            for (int k = 0; k < op_nin[x->op]; k++)
                if (!N(g, x->in[k])->backward)
                    saved[x->in[k]] = 1;
    }
    for (int i = 0; i < p.norder; i++) {
        Ref r = p.order[i];
        drawn[r] = N(g, r)->backward ? bwd : fwd || saved[r];
    }
    /* the primal of each drawn adjoint, and each gradient's param: the
     * node it stands beside (0: none) */
    Ref *beside = xcalloc((size_t)g->n, sizeof(Ref));
    for (int i = 0; i < p.norder; i++) {
        Ref r = p.order[i];
        Node *x = N(g, r);
        if (x->backward && x->adj_of && in[x->adj_of] && drawn[x->adj_of])
            beside[r] = x->adj_of;
    }
    for (int k = 0; k < m->nparams; k++) {
        Ref gr = m->grads[k], pr = m->params[k]->ref;
        if (gr && in[gr] && N(g, gr)->backward && in[pr] && drawn[pr])
            beside[gr] = pr;
    }

    fprintf(out, "digraph \"%s%s\" {\n", m->name, part);
    fprintf(out, "  rankdir=TB;\n  newrank=true;\n");
    fprintf(out, "  node [fontname=\"Helvetica\", fontsize=10];\n");
    fprintf(out, "  edge [arrowsize=0.7];\n");
    for (int pass = 0; pass < 2; pass++) {
        if (pass ? !bwd : !fwd && !bwd)
            continue;
        const char *name = pass ? "backward" : fwd ? "forward" : "saved";
        fprintf(out, "  subgraph cluster_%s {\n    label=\"%s\";\n", name,
                pass || fwd ? name : "saved for backward");
        for (int i = 0; i < p.norder; i++) {
            Ref r = p.order[i];
            if (drawn[r] && N(g, r)->backward == pass)
                node(m, r, saved[r], out);
        }
        fprintf(out, "  }\n");
    }
    /* edges: forward ones downwards; backward ones drawn from the later node
     * with dir=back, so the backward cluster rises beside the forward one */
    for (int i = 0; i < p.norder; i++) {
        Ref r = p.order[i];
        Node *x = N(g, r);
        if (!drawn[r])
            continue;
        for (int k = 0; k < op_nin[x->op]; k++) {
            Ref a = x->in[k];
            if (!drawn[a])
                continue;
            Node *an = N(g, a);
            if (an->shape.rank == 0 && (an->op == OP_CONST || an->op == OP_BATCHN || an->op == OP_DIV) &&
                x->backward)
                /* 1/n and the like feed every gradient: thin, and no pull on the layout */
                fprintf(out, "  n%d -> n%d [color=gray, constraint=false];\n", a, r);
            else if (!x->backward)
                fprintf(out, "  n%d -> n%d;\n", a, r);
            else if (!N(g, a)->backward)
                fprintf(out, "  n%d -> n%d [color=blue%s];\n", a, r, fwd ? ", constraint=false" : "");
            else if (fwd)
                fprintf(out, "  n%d -> n%d [dir=back];\n", r, a);
            else
                fprintf(out, "  n%d -> n%d;\n", a, r);
        }
    }
    if (fwd && bwd)
        for (int i = 0; i < p.norder; i++) {
            Ref r = p.order[i];
            if (!beside[r])
                continue;
            fprintf(out, "  { rank=same; n%d; n%d; }\n", beside[r], r);
            fprintf(out, "  n%d -> n%d [style=dashed, color=red, arrowhead=none];\n", beside[r], r);
        }
    fprintf(out, "}\n");
    free(in);
    free(saved);
    free(drawn);
    free(beside);
}
