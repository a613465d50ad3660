package dag

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// A plan is what a planner step declared at run time (SPEC §4b): the
// steps that joined its run, and where each Starlark function they use
// is found again after a restart (a global of one of the run's source
// files). It is stored with the planner step's record, so a run's
// workflow is its declared steps followed by the steps of its plans.

// Plan is the steps one planner step added to its run.
type Plan struct {
	Steps []*Step
	// Bodies maps a body key (a task's id, or BodyKey(step, part)) to the
	// global that holds the function.
	Bodies map[string]GlobalRef
}

// GlobalRef names a global of a source file.
type GlobalRef struct {
	File string `json:"file"`
	Name string `json:"name"`
}

type planJSON struct {
	Steps  []stepJSON           `json:"steps"`
	Bodies map[string]GlobalRef `json:"bodies,omitempty"`
}

type depJSON struct {
	Step     string    `json:"step"`
	Cond     Condition `json:"cond,omitempty"`
	Implicit bool      `json:"implicit,omitempty"`
	Via      string    `json:"via,omitempty"`
	Pos      Pos       `json:"pos"`
}

type childJSON struct {
	Name                string `json:"name"`
	Version             int    `json:"version,omitempty"`
	Detach              bool   `json:"detach,omitempty"`
	IdempotencyKey      any    `json:"idempotency_key,omitempty"`
	IdempotencyStrategy string `json:"idempotency_strategy,omitempty"`
	Script              any    `json:"script,omitempty"`
}

type dynJSON struct {
	Items          any           `json:"items,omitempty"`
	InputsFn       bool          `json:"inputs_fn,omitempty"`
	MaxConcurrency int           `json:"max_concurrency,omitempty"`
	OnFailure      string        `json:"on_failure,omitempty"`
	MaxIterations  int           `json:"max_iterations,omitempty"`
	Delay          time.Duration `json:"delay,omitempty"`
}

type stepJSON struct {
	ID         string        `json:"id"`
	Kind       Kind          `json:"kind"`
	Pos        Pos           `json:"pos"`
	After      []depJSON     `json:"after,omitempty"`
	Inputs     any           `json:"inputs,omitempty"`
	Body       string        `json:"body,omitempty"`
	Handler    string        `json:"handler,omitempty"`
	Command    string        `json:"command,omitempty"`
	Env        any           `json:"env,omitempty"`
	Dir        string        `json:"dir,omitempty"`
	Retries    int           `json:"retries,omitempty"`
	RetryDelay time.Duration `json:"retry_delay,omitempty"`
	Timeout    time.Duration `json:"timeout,omitempty"`
	Optional   bool          `json:"optional,omitempty"`
	Priority   any           `json:"priority,omitempty"`
	Child      *childJSON    `json:"child,omitempty"`
	Dynamic    *dynJSON      `json:"dynamic,omitempty"`
}

// refJSON is a reference inside an encoded value: {"\u0000ref": {...}}.
// A map of the data whose keys start with NUL is wrapped in
// {"\u0000map": ...}, so no data can pass for a reference.
type refJSON struct {
	Kind RefKind `json:"kind"`
	Step string  `json:"step,omitempty"`
	Name string  `json:"name,omitempty"`
	Path []any   `json:"path,omitempty"`
	Pos  Pos     `json:"pos"`
}

const (
	refTag = "\x00ref"
	mapTag = "\x00map"
)

func encodePlanValue(v any) any {
	switch v := v.(type) {
	case *Ref:
		return map[string]any{refTag: refJSON{Kind: v.Kind, Step: v.Step, Name: v.Name, Path: v.Path, Pos: v.Pos}}
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = encodePlanValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		tagged := false
		for k, e := range v {
			out[k] = encodePlanValue(e)
			tagged = tagged || strings.HasPrefix(k, "\x00")
		}
		if tagged {
			return map[string]any{mapTag: out}
		}
		return out
	}
	return v
}

func decodePlanValue(v any) (any, error) {
	switch v := v.(type) {
	case []any:
		for i, e := range v {
			x, err := decodePlanValue(e)
			if err != nil {
				return nil, err
			}
			v[i] = x
		}
		return v, nil
	case map[string]any:
		if r, ok := v[refTag]; ok && len(v) == 1 {
			data, err := json.Marshal(r)
			if err != nil {
				return nil, err
			}
			var rj refJSON
			if err := json.Unmarshal(data, &rj); err != nil {
				return nil, fmt.Errorf("damaged reference: %v", err)
			}
			path := make([]any, len(rj.Path))
			for i, k := range rj.Path {
				if f, ok := k.(float64); ok {
					path[i] = int64(f)
				} else {
					path[i] = k
				}
			}
			if len(path) == 0 {
				path = nil
			}
			return &Ref{Kind: rj.Kind, Step: rj.Step, Name: rj.Name, Path: path, Pos: rj.Pos}, nil
		}
		if m, ok := v[mapTag].(map[string]any); ok && len(v) == 1 {
			v = m
		}
		for k, e := range v {
			x, err := decodePlanValue(e)
			if err != nil {
				return nil, err
			}
			v[k] = x
		}
		return v, nil
	}
	return v, nil
}

func valueMap(v any) (map[string]any, error) {
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("damaged plan: %T where a dict was stored", v)
	}
	return m, nil
}

// EncodePlan is the stored form of a plan.
func EncodePlan(p *Plan) ([]byte, error) {
	pj := planJSON{Bodies: p.Bodies}
	for _, s := range p.Steps {
		sj := stepJSON{
			ID: s.ID, Kind: s.Kind, Pos: s.Pos, Body: s.Body, Handler: s.Handler,
			Command: s.Command, Dir: s.Dir, Retries: s.Retries, RetryDelay: s.RetryDelay,
			Timeout: s.Timeout, Optional: s.Optional, Priority: encodePlanValue(s.Priority),
		}
		if s.Inputs != nil {
			sj.Inputs = encodePlanValue(s.Inputs)
		}
		if s.Env != nil {
			sj.Env = encodePlanValue(s.Env)
		}
		for _, d := range s.After {
			sj.After = append(sj.After, depJSON{Step: d.Step, Cond: d.Cond, Implicit: d.Implicit, Via: d.Via, Pos: d.Pos})
		}
		if c := s.Child; c != nil {
			sj.Child = &childJSON{Name: c.Name, Version: c.Version, Detach: c.Detach,
				IdempotencyKey: encodePlanValue(c.IdempotencyKey), IdempotencyStrategy: c.IdempotencyStrategy,
				Script: encodePlanValue(c.Script)}
		}
		if d := s.Dynamic; d != nil {
			sj.Dynamic = &dynJSON{Items: encodePlanValue(d.Items), InputsFn: d.InputsFn, MaxConcurrency: d.MaxConcurrency,
				OnFailure: d.OnFailure, MaxIterations: d.MaxIterations, Delay: d.Delay}
		}
		pj.Steps = append(pj.Steps, sj)
	}
	return json.Marshal(&pj)
}

// DecodePlan reads a stored plan.
func DecodePlan(data []byte) (*Plan, error) {
	var raw struct {
		Steps  []json.RawMessage    `json:"steps"`
		Bodies map[string]GlobalRef `json:"bodies"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("damaged plan: %v", err)
	}
	p := &Plan{Bodies: raw.Bodies}
	for _, r := range raw.Steps {
		var sj stepJSON
		if err := json.Unmarshal(r, &sj); err != nil {
			return nil, fmt.Errorf("damaged plan: %v", err)
		}
		// the values again, numbers as workflow data has them
		var vals struct {
			Inputs   json.RawMessage `json:"inputs"`
			Env      json.RawMessage `json:"env"`
			Priority json.RawMessage `json:"priority"`
			Child    *struct {
				IdempotencyKey json.RawMessage `json:"idempotency_key"`
				Script         json.RawMessage `json:"script"`
			} `json:"child"`
			Dynamic *struct {
				Items json.RawMessage `json:"items"`
			} `json:"dynamic"`
		}
		if err := json.Unmarshal(r, &vals); err != nil {
			return nil, fmt.Errorf("damaged plan: %v", err)
		}
		val := func(raw json.RawMessage) (any, error) {
			if len(raw) == 0 {
				return nil, nil
			}
			v, err := DecodeJSON(raw)
			if err != nil {
				return nil, fmt.Errorf("damaged plan: %v", err)
			}
			return decodePlanValue(v)
		}
		s := &Step{
			ID: sj.ID, Kind: sj.Kind, Pos: sj.Pos, Body: sj.Body, Handler: sj.Handler,
			Command: sj.Command, Dir: sj.Dir, Retries: sj.Retries, RetryDelay: sj.RetryDelay,
			Timeout: sj.Timeout, Optional: sj.Optional,
		}
		for _, d := range sj.After {
			s.After = append(s.After, Dep{Step: d.Step, Cond: d.Cond, Implicit: d.Implicit, Via: d.Via, Pos: d.Pos})
		}
		var err error
		var in, env any
		if in, err = val(vals.Inputs); err != nil {
			return nil, err
		}
		if s.Inputs, err = valueMap(in); err != nil {
			return nil, err
		}
		if env, err = val(vals.Env); err != nil {
			return nil, err
		}
		if s.Env, err = valueMap(env); err != nil {
			return nil, err
		}
		if s.Priority, err = val(vals.Priority); err != nil {
			return nil, err
		}
		if c := sj.Child; c != nil {
			s.Child = &Child{Name: c.Name, Version: c.Version, Detach: c.Detach, IdempotencyStrategy: c.IdempotencyStrategy}
			if vals.Child != nil {
				if s.Child.IdempotencyKey, err = val(vals.Child.IdempotencyKey); err != nil {
					return nil, err
				}
				if s.Child.Script, err = val(vals.Child.Script); err != nil {
					return nil, err
				}
			}
		}
		if d := sj.Dynamic; d != nil {
			s.Dynamic = &Dynamic{InputsFn: d.InputsFn, MaxConcurrency: d.MaxConcurrency, OnFailure: d.OnFailure,
				MaxIterations: d.MaxIterations, Delay: d.Delay}
			if vals.Dynamic != nil {
				if s.Dynamic.Items, err = val(vals.Dynamic.Items); err != nil {
					return nil, err
				}
			}
		}
		p.Steps = append(p.Steps, s)
	}
	return p, nil
}
