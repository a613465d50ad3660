package dag

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// RenderOptions tunes the renderers. The zero value renders one workflow.
type RenderOptions struct {
	// Expand, when set, is asked for the workflow a sub_workflow step runs;
	// a non-nil answer is drawn nested inside that step. It receives the
	// nesting depth of the child (the root being 1).
	Expand func(s *Step, depth int) *Workflow
}

// Formats lists the names RenderFormat accepts.
var Formats = []string{"text", "dot", "mermaid", "json"}

// RenderFormat writes the workflow in the named format.
func RenderFormat(out io.Writer, w *Workflow, format string, opts RenderOptions) error {
	switch format {
	case "", "text":
		return RenderText(out, w, opts)
	case "dot":
		return RenderDot(out, w, opts)
	case "mermaid":
		return RenderMermaid(out, w, opts)
	case "json":
		return RenderJSON(out, w, opts)
	}
	return fmt.Errorf("unknown graph format %q (use one of: %s)", format, strings.Join(Formats, ", "))
}

// FormatDuration prints a duration the way scripts write one: "5m", "1h30m", "500ms".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func expandChild(s *Step, opts RenderOptions, depth int) *Workflow {
	if opts.Expand == nil || !s.Kind.RunsChildren() || s.Child == nil || !s.Child.Static() {
		return nil
	}
	return opts.Expand(s, depth+1)
}
