package dag

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// A value in a workflow (a step's inputs, env, the workflow output, a param
// default) is plain data: nil, bool, int64, float64, string, []any,
// map[string]any — and, except in param defaults, *Ref anywhere inside.

// RefKind says what a reference points at.
type RefKind string

const (
	RefOutput     RefKind = "output"       // a step's output, or a field inside it
	RefParam      RefKind = "param"        // a run parameter
	RefSecret     RefKind = "secret"       // a declared secret, resolved only inside a running step
	RefChildRunID RefKind = "child_run_id" // the run id of a sub_workflow step's child
)

// Ref is a reference resolved at run time.
type Ref struct {
	Kind RefKind
	Step string // for output and child_run_id
	Name string // for param and secret
	Path []any  // string or int keys into the value
	Pos  Pos    // where the reference was made
}

// String renders the reference the way a script writes it.
func (r *Ref) String() string {
	var b strings.Builder
	switch r.Kind {
	case RefOutput:
		b.WriteString(r.Step + ".output")
	case RefChildRunID:
		b.WriteString(r.Step + ".child_run_id")
	case RefParam:
		fmt.Fprintf(&b, "param(%q)", r.Name)
	case RefSecret:
		fmt.Fprintf(&b, "secret(%q)", r.Name)
	}
	for _, k := range r.Path {
		switch k := k.(type) {
		case string:
			fmt.Fprintf(&b, "[%q]", k)
		default:
			fmt.Fprintf(&b, "[%v]", k)
		}
	}
	return b.String()
}

// WithKey returns a reference one level deeper.
func (r *Ref) WithKey(key any, pos Pos) *Ref {
	path := make([]any, len(r.Path), len(r.Path)+1)
	copy(path, r.Path)
	return &Ref{Kind: r.Kind, Step: r.Step, Name: r.Name, Path: append(path, key), Pos: pos}
}

// WalkRefs calls fn for every reference inside v, depth first, in a stable
// order (map keys sorted).
func WalkRefs(v any, fn func(*Ref)) {
	switch v := v.(type) {
	case *Ref:
		fn(v)
	case []any:
		for _, e := range v {
			WalkRefs(e, fn)
		}
	case map[string]any:
		if len(v) == 1 { // no order to settle
			for _, e := range v {
				WalkRefs(e, fn)
			}
			return
		}
		for _, k := range sortedKeys(v) {
			WalkRefs(v[k], fn)
		}
	}
}

// MapRefs copies a value, replacing every reference by what fn returns
// for it; the first error stops the walk.
func MapRefs(v any, fn func(*Ref) (any, error)) (any, error) {
	switch v := v.(type) {
	case *Ref:
		return fn(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			x, err := MapRefs(e, fn)
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			x, err := MapRefs(e, fn)
			if err != nil {
				return nil, err
			}
			out[k] = x
		}
		return out, nil
	}
	return v, nil
}

// ReplaceRefs is MapRefs for a replacement that cannot fail.
func ReplaceRefs(v any, fn func(*Ref) any) any {
	out, _ := MapRefs(v, func(r *Ref) (any, error) { return fn(r), nil })
	return out
}

// EncodeValue turns a value into JSON-ready data, each reference becoming
// {"$ref": "<as written>"}.
func EncodeValue(v any) any {
	return ReplaceRefs(v, func(r *Ref) any { return map[string]any{"$ref": r.String()} })
}

// FormatValue renders a value in Starlark-like syntax, for text output.
func FormatValue(v any) string {
	var b strings.Builder
	formatValue(&b, v)
	return b.String()
}

func formatValue(b *strings.Builder, v any) {
	switch v := v.(type) {
	case nil:
		b.WriteString("None")
	case bool:
		if v {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case string:
		b.WriteString(strconv.Quote(v))
	case *Ref:
		b.WriteString(v.String())
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			formatValue(b, e)
		}
		b.WriteByte(']')
	case map[string]any:
		b.WriteByte('{')
		for i, k := range sortedKeys(v) {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(b, "%q: ", k)
			formatValue(b, v[k])
		}
		b.WriteByte('}')
	default:
		fmt.Fprint(b, v)
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
