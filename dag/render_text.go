package dag

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// RenderText writes a readable outline of the workflow, steps in
// topological order.
func RenderText(out io.Writer, w *Workflow, opts RenderOptions) error {
	var b strings.Builder
	if err := renderText(&b, w, opts, "", 1); err != nil {
		return err
	}
	_, err := io.WriteString(out, b.String())
	return err
}

func renderText(b *strings.Builder, w *Workflow, opts RenderOptions, indent string, depth int) error {
	steps, err := TopoOrder(w)
	if err != nil {
		return err
	}
	fmt.Fprintf(b, "%sworkflow %s", indent, w.Name)
	if w.Version > 0 {
		fmt.Fprintf(b, " version %d", w.Version)
	}
	b.WriteByte('\n')
	if w.Description != "" {
		fmt.Fprintf(b, "%s  description: %s\n", indent, w.Description)
	}
	if len(w.Params) > 0 {
		parts := make([]string, len(w.Params))
		for i, p := range w.Params {
			parts[i] = p.Name + "=" + FormatValue(p.Default)
		}
		fmt.Fprintf(b, "%s  params: %s\n", indent, strings.Join(parts, ", "))
	}
	if len(w.Secrets) > 0 {
		fmt.Fprintf(b, "%s  secrets: %s\n", indent, strings.Join(w.Secrets, ", "))
	}
	if w.Timeout > 0 {
		fmt.Fprintf(b, "%s  timeout: %s\n", indent, FormatDuration(w.Timeout))
	}
	if w.MaxDepth > 0 {
		fmt.Fprintf(b, "%s  max_depth: %d\n", indent, w.MaxDepth)
	}
	fmt.Fprintf(b, "%s  steps:\n", indent)
	for _, s := range steps {
		fmt.Fprintf(b, "%s    %s: %s%s\n", indent, s.ID, s.Kind, stepSummary(s))
		if deps := s.Deps(); len(deps) > 0 {
			parts := make([]string, len(deps))
			for i, d := range deps {
				parts[i] = d.String()
				if d.Implicit && d.Via != "" {
					parts[i] += " (via " + d.Via + ")"
				} else if d.Implicit {
					parts[i] += " (via a reference)"
				}
			}
			fmt.Fprintf(b, "%s      after: %s\n", indent, strings.Join(parts, ", "))
		}
		if len(s.Inputs) > 0 {
			fmt.Fprintf(b, "%s      inputs: %s\n", indent, FormatValue(s.Inputs))
		}
		if len(s.Env) > 0 {
			fmt.Fprintf(b, "%s      env: %s\n", indent, FormatValue(s.Env))
		}
		if opts := stepOptions(s); opts != "" {
			fmt.Fprintf(b, "%s      %s\n", indent, opts)
		}
		if child := expandChild(s, opts, depth); child != nil {
			if err := renderText(b, child, opts, indent+"      ", depth+1); err != nil {
				return err
			}
		}
	}
	if w.Output != nil {
		fmt.Fprintf(b, "%s  output: %s\n", indent, FormatValue(w.Output))
	}
	return nil
}

func stepSummary(s *Step) string {
	switch s.Kind {
	case KindTask:
		if s.Handler != "" {
			return fmt.Sprintf(" handler %q", s.Handler)
		}
		return " " + s.Body + "()"
	case KindShell:
		return " " + strconv.Quote(s.Command)
	case KindSubWorkflow:
		c := s.Child
		var b strings.Builder
		if c.Script != nil {
			fmt.Fprintf(&b, " %s (script %s)", c.Name, FormatValue(c.Script))
		} else {
			b.WriteString(" " + c.Name)
		}
		if c.Version > 0 {
			fmt.Fprintf(&b, " version %d", c.Version)
		}
		if c.Detach {
			b.WriteString(" (detached)")
		}
		return b.String()
	case KindForEach, KindLoop, KindPlanner:
		return dynamicSummary(s)
	}
	return ""
}

func stepOptions(s *Step) string {
	var parts []string
	if s.Dir != "" {
		parts = append(parts, "dir="+strconv.Quote(s.Dir))
	}
	if s.Retries > 0 {
		parts = append(parts, fmt.Sprintf("retries=%d retry_delay=%s", s.Retries, FormatDuration(s.RetryDelay)))
	}
	if s.Timeout > 0 {
		parts = append(parts, "timeout="+FormatDuration(s.Timeout))
	}
	if s.Optional {
		parts = append(parts, "optional")
	}
	if s.Priority != nil {
		parts = append(parts, "priority="+FormatValue(s.Priority))
	}
	if c := s.Child; c != nil {
		if c.IdempotencyKey != nil {
			parts = append(parts, "idempotency_key="+FormatValue(c.IdempotencyKey))
		}
		if c.IdempotencyStrategy != "" {
			parts = append(parts, "idempotency_strategy="+c.IdempotencyStrategy)
		}
	}
	parts = append(parts, dynamicOptions(s)...)
	return strings.Join(parts, " ")
}
