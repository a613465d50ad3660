package dag

import (
	"fmt"
	"io"
	"strings"
)

// escapeMermaid makes text safe inside a double-quoted Mermaid label.
func escapeMermaid(s string) string {
	return strings.NewReplacer(`"`, "#quot;", "\n", " ").Replace(s)
}

// RenderMermaid writes the workflow as a Mermaid flowchart.
func RenderMermaid(out io.Writer, w *Workflow, opts RenderOptions) error {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	if err := renderMermaidBody(&b, w, opts, "", "  ", 1); err != nil {
		return err
	}
	_, err := io.WriteString(out, b.String())
	return err
}

func renderMermaidBody(b *strings.Builder, w *Workflow, opts RenderOptions, prefix, indent string, depth int) error {
	steps, err := TopoOrder(w)
	if err != nil {
		return err
	}
	// Mermaid ids allow letters, digits and underscores.
	node := func(id string) string { return mermaidID(prefix + id) }
	for _, s := range steps {
		label := escapeMermaid(s.ID) + "<br/>" + string(s.Kind)
		open, close := "[", "]"
		if s.Kind.RunsChildren() && s.Child != nil {
			label += ": " + escapeMermaid(s.Child.Name)
			open, close = "[[", "]]"
		}
		fmt.Fprintf(b, "%s%s%s\"%s\"%s\n", indent, node(s.ID), open, label, close)
		if child := expandChild(s, opts, depth); child != nil {
			fmt.Fprintf(b, "%ssubgraph %s [\"%s\"]\n", indent, node(s.ID)+"__sub", escapeMermaid(child.Name))
			if err := renderMermaidBody(b, child, opts, prefix+s.ID+"/", indent+"  ", depth+1); err != nil {
				return err
			}
			fmt.Fprintf(b, "%send\n", indent)
			fmt.Fprintf(b, "%s%s -.- %s\n", indent, node(s.ID), node(s.ID)+"__sub")
		}
	}
	for _, s := range steps {
		for _, d := range s.Deps() {
			arrow := "-->"
			if d.Implicit {
				arrow = "-.->"
			}
			if d.Cond != Succeeded {
				fmt.Fprintf(b, "%s%s %s|%s| %s\n", indent, node(d.Step), arrow, d.Cond, node(s.ID))
			} else {
				fmt.Fprintf(b, "%s%s %s %s\n", indent, node(d.Step), arrow, node(s.ID))
			}
		}
	}
	return nil
}

func mermaidID(s string) string {
	var b strings.Builder
	b.WriteString("s_")
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			fmt.Fprintf(&b, "_%x_", r)
		}
	}
	return b.String()
}
