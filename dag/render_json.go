package dag

import (
	"encoding/json"
	"io"
	"sort"
	"time"
)

// JSONSchema is the version of the JSON form of a graph. It goes up when a
// field changes meaning or goes away; new fields may appear without it.
const JSONSchema = 1

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
