package dag

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// JSONSchema is the version of the JSON form of a graph. It goes up when a
// field changes meaning or goes away; new fields may appear without it.
const JSONSchema = 1

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

// ---- text ----

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

func expandChild(s *Step, opts RenderOptions, depth int) *Workflow {
	if opts.Expand == nil || !s.Kind.RunsChildren() || s.Child == nil || !s.Child.Static() {
		return nil
	}
	return opts.Expand(s, depth+1)
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

// ---- dot ----

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

// escapeMermaid makes text safe inside a double-quoted Mermaid label.
func escapeMermaid(s string) string {
	return strings.NewReplacer(`"`, "#quot;", "\n", " ").Replace(s)
}

// ---- mermaid ----

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

// ---- json ----

// GraphJSON is the JSON form of a workflow's graph.
type GraphJSON struct {
	Schema   int          `json:"schema"`
	Workflow WorkflowJSON `json:"workflow"`
	Steps    []StepJSON   `json:"steps"`
	Edges    []EdgeJSON   `json:"edges"`
	Output   any          `json:"output"`
	Order    []string     `json:"order"`
}

// WorkflowJSON describes the workflow itself.
type WorkflowJSON struct {
	Name        string         `json:"name"`
	Version     *int           `json:"version"`
	Description string         `json:"description,omitempty"`
	File        string         `json:"file"`
	Params      map[string]any `json:"params"`
	Secrets     []string       `json:"secrets"`
	Timeout     *string        `json:"timeout"`
	MaxDepth    int            `json:"max_depth"`
}

// StepJSON describes one step.
type StepJSON struct {
	ID         string         `json:"id"`
	Kind       Kind           `json:"kind"`
	Pos        string         `json:"pos"`
	After      []DepJSON      `json:"after"`
	Inputs     map[string]any `json:"inputs"`
	Body       string         `json:"body,omitempty"`
	Handler    string         `json:"handler,omitempty"`
	Command    string         `json:"command,omitempty"`
	Env        map[string]any `json:"env,omitempty"`
	Dir        string         `json:"dir,omitempty"`
	Retries    int            `json:"retries"`
	RetryDelay string         `json:"retry_delay"`
	Timeout    *string        `json:"timeout"`
	Optional   bool           `json:"optional"`
	Priority   any            `json:"priority"`
	Child      *ChildJSON     `json:"child,omitempty"`
	Dynamic    *DynamicJSON   `json:"dynamic,omitempty"`
}

// DepJSON is one dependency of a step.
type DepJSON struct {
	Step      string    `json:"step"`
	Condition Condition `json:"condition"`
	Implicit  bool      `json:"implicit"`
}

// ChildJSON describes what a sub_workflow step runs.
type ChildJSON struct {
	Name                string     `json:"name"`
	Version             *int       `json:"version"`
	Detach              bool       `json:"detach"`
	IdempotencyKey      any        `json:"idempotency_key"`
	IdempotencyStrategy *string    `json:"idempotency_strategy"`
	Script              any        `json:"script"`
	Graph               *GraphJSON `json:"graph,omitempty"`
}

// EdgeJSON is an edge from an upstream step to a step that waits for it.
type EdgeJSON struct {
	From      string    `json:"from"`
	To        string    `json:"to"`
	Condition Condition `json:"condition"`
	Implicit  bool      `json:"implicit"`
}

// RenderJSON writes the graph's JSON form, indented.
func RenderJSON(out io.Writer, w *Workflow, opts RenderOptions) error {
	g, err := BuildGraphJSON(w, opts)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return err
	}
	_, err = out.Write(append(data, '\n'))
	return err
}

// BuildGraphJSON builds the JSON form of a workflow's graph.
func BuildGraphJSON(w *Workflow, opts RenderOptions) (*GraphJSON, error) {
	return buildGraphJSON(w, opts, 1)
}

func buildGraphJSON(w *Workflow, opts RenderOptions, depth int) (*GraphJSON, error) {
	order, err := TopoOrder(w)
	if err != nil {
		return nil, err
	}
	g := &GraphJSON{
		Schema: JSONSchema,
		Workflow: WorkflowJSON{
			Name:        w.Name,
			Version:     optInt(w.Version),
			Description: w.Description,
			File:        w.File,
			Params:      map[string]any{},
			Secrets:     append([]string{}, w.Secrets...),
			Timeout:     optDuration(w.Timeout),
			MaxDepth:    w.EffectiveMaxDepth(),
		},
		Steps: []StepJSON{},
		Edges: []EdgeJSON{},
	}
	for _, p := range w.Params {
		g.Workflow.Params[p.Name] = p.Default
	}
	for _, s := range order {
		g.Order = append(g.Order, s.ID)
	}
	for _, s := range w.Steps {
		sj := StepJSON{
			ID:         s.ID,
			Kind:       s.Kind,
			Pos:        s.Pos.String(),
			After:      []DepJSON{},
			Inputs:     encodeMap(s.Inputs),
			Body:       s.Body,
			Handler:    s.Handler,
			Command:    s.Command,
			Dir:        s.Dir,
			Retries:    s.Retries,
			RetryDelay: FormatDuration(s.RetryDelay),
			Timeout:    optDuration(s.Timeout),
			Optional:   s.Optional,
			Priority:   EncodeValue(s.Priority),
		}
		if len(s.Env) > 0 {
			sj.Env = encodeMap(s.Env)
		}
		for _, d := range s.Deps() {
			sj.After = append(sj.After, DepJSON{Step: d.Step, Condition: d.Cond, Implicit: d.Implicit})
			g.Edges = append(g.Edges, EdgeJSON{From: d.Step, To: s.ID, Condition: d.Cond, Implicit: d.Implicit})
		}
		if c := s.Child; c != nil {
			cj := &ChildJSON{
				Name:           c.Name,
				Version:        optInt(c.Version),
				Detach:         c.Detach,
				IdempotencyKey: EncodeValue(c.IdempotencyKey),
				Script:         EncodeValue(c.Script),
			}
			if c.IdempotencyStrategy != "" {
				st := c.IdempotencyStrategy
				cj.IdempotencyStrategy = &st
			}
			if child := expandChild(s, opts, depth); child != nil {
				cg, err := buildGraphJSON(child, opts, depth+1)
				if err != nil {
					return nil, err
				}
				cj.Graph = cg
			}
			sj.Child = cj
		}
		sj.Dynamic = dynamicJSON(s)
		g.Steps = append(g.Steps, sj)
	}
	if w.Output != nil {
		g.Output = encodeMap(w.Output)
	}
	sort.SliceStable(g.Edges, func(i, j int) bool {
		return w.StepIndex(g.Edges[i].To) < w.StepIndex(g.Edges[j].To)
	})
	return g, nil
}

func encodeMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return EncodeValue(m).(map[string]any)
}

func optInt(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}

func optDuration(d time.Duration) *string {
	if d == 0 {
		return nil
	}
	s := FormatDuration(d)
	return &s
}
