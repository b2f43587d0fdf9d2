/*
 * emit_dot.c: --emit=dot, the forward and backward graphs in one Graphviz
 * file. Forward nodes are boxes in one cluster, backward nodes ellipses in
 * another; a dashed edge links each adjoint to its primal, and forward
 * values that the backward pass reads are drawn bold (saved for backward).
 */
#include "gradc.h"

#include <string.h>

static void label(Model *m, Ref r, FILE *out)
{
    char l[128], sh[64];
    Node *x = N(&m->g, r);
    node_label(m, r, l, sizeof l);
    fprintf(out, "\"%s\\n%s %s\"", l, op_name[x->op], shape_str(x->shape, sh, sizeof sh));
}

void emit_dot(Model *m, FILE *out)
{
    Graph *g = &m->g;
    Plan p;
    plan_build(m, FN_LOSS_GRAD, &p);
    unsigned char *in = xcalloc((size_t)g->n, 1), *saved = xcalloc((size_t)g->n, 1);
    for (int i = 0; i < p.norder; i++)
        in[p.order[i]] = 1;
    for (int i = 0; i < p.norder; i++) {
        Node *x = N(g, p.order[i]);
        if (x->backward)
            for (int k = 0; k < op_nin[x->op]; k++)
                if (!N(g, x->in[k])->backward)
                    saved[x->in[k]] = 1;
    }
    fprintf(out, "digraph \"%s\" {\n  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=10];\n",
            m->name);
    for (int pass = 0; pass < 2; pass++) {
        fprintf(out, "  subgraph cluster_%s {\n    label=\"%s\";\n", pass ? "backward" : "forward",
                pass ? "backward" : "forward");
        for (int i = 0; i < p.norder; i++) {
            Ref r = p.order[i];
            Node *x = N(g, r);
            if (x->backward != pass)
                continue;
            fprintf(out, "    n%d [label=", r);
            label(m, r, out);
            fprintf(out, ", shape=%s%s%s];\n", pass ? "ellipse" : "box",
                    saved[r] ? ", style=bold, color=blue" : "",
                    x->op == OP_PARAM ? ", style=filled, fillcolor=lightyellow" : "");
        }
        fprintf(out, "  }\n");
    }
    for (int i = 0; i < p.norder; i++) {
        Ref r = p.order[i];
        Node *x = N(g, r);
        for (int k = 0; k < op_nin[x->op]; k++)
            fprintf(out, "  n%d -> n%d;\n", x->in[k], r);
        if (x->adj_of && in[x->adj_of])
            fprintf(out, "  n%d -> n%d [style=dashed, color=red, constraint=false, label=\"adjoint\"];\n",
                    r, x->adj_of);
    }
    for (int k = 0; k < m->nparams; k++)
        if (m->grads[k] && in[m->params[k]->ref])
            fprintf(out, "  n%d -> n%d [style=dashed, color=red, constraint=false, label=\"dL/d%s\"];\n",
                    m->grads[k], m->params[k]->ref, m->params[k]->name);
    fprintf(out, "}\n");
    free(in);
    free(saved);
}
