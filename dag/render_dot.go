package dag

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// RenderDot writes the workflow as a Graphviz digraph. Edges run from a step
// to the steps that wait for it, labelled with their condition unless it is
// "succeeded"; implicit edges from references are dashed.
func RenderDot(out io.Writer, w *Workflow, opts RenderOptions) error {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n", strconv.Quote(w.Name))
	b.WriteString("  rankdir=LR;\n  compound=true;\n  node [shape=box, style=rounded];\n")
	if err := renderDotBody(&b, w, opts, "", "  ", 1); err != nil {
		return err
	}
	b.WriteString("}\n")
	_, err := io.WriteString(out, b.String())
	return err
}

func renderDotBody(b *strings.Builder, w *Workflow, opts RenderOptions, prefix, indent string, depth int) error {
	steps, err := TopoOrder(w)
	if err != nil {
		return err
	}
	node := func(id string) string { return strconv.Quote(prefix + id) }
	for _, s := range steps {
		label := escapeDot(s.ID) + "\\n" + string(s.Kind)
		if s.Kind.RunsChildren() && s.Child != nil {
			label += ": " + escapeDot(s.Child.Name)
		}
		shape := ""
		switch {
		case s.Kind == KindSubWorkflow:
			shape = ", shape=component"
		case s.Kind.IsDynamic():
			shape = ", shape=component, peripheries=2" // one node for many children
		}
		fmt.Fprintf(b, "%s%s [label=\"%s\"%s];\n", indent, node(s.ID), label, shape)
		if child := expandChild(s, opts, depth); child != nil {
			cprefix := prefix + s.ID + "/"
			fmt.Fprintf(b, "%ssubgraph %s {\n", indent, strconv.Quote("cluster_"+prefix+s.ID))
			fmt.Fprintf(b, "%s  label=%s;\n", indent, strconv.Quote(child.Name))
			if err := renderDotBody(b, child, opts, cprefix, indent+"  ", depth+1); err != nil {
				return err
			}
			fmt.Fprintf(b, "%s}\n", indent)
			if len(child.Steps) > 0 {
				// an edge into the cluster: drawn to its border (compound)
				fmt.Fprintf(b, "%s%s -> %s [style=dotted, arrowhead=none, lhead=%s];\n", indent, node(s.ID), strconv.Quote(cprefix+child.Steps[0].ID), strconv.Quote("cluster_"+prefix+s.ID))
			}
		}
	}
	for _, s := range steps {
		for _, d := range s.Deps() {
			var attrs []string
			if d.Cond != Succeeded {
				attrs = append(attrs, "label="+strconv.Quote(string(d.Cond)))
			}
			if d.Cond == Failed {
				attrs = append(attrs, "color=red")
			}
			if d.Implicit {
				attrs = append(attrs, "style=dashed")
			}
			a := ""
			if len(attrs) > 0 {
				a = " [" + strings.Join(attrs, ", ") + "]"
			}
			fmt.Fprintf(b, "%s%s -> %s%s;\n", indent, node(d.Step), node(s.ID), a)
		}
	}
	return nil
}

// escapeDot makes text safe inside a double-quoted dot string.
func escapeDot(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
