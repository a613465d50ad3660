package flowscript

// Golden files of flowscript test: a run tree, normalised, and the run
// value a test sees.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/flowscript/flowscript/builtins"
	"github.com/flowscript/flowscript/dag"
	"github.com/rogpeppe/go-internal/diff"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// goldenNode is a run with its steps and its child runs, ordered by the
// parent's steps so that the order does not depend on timing.
type goldenNode struct {
	rec      *RunRecord
	children []*goldenNode
}

func goldenTree(ctx context.Context, eng *Engine, id string) (*goldenNode, error) {
	tree, err := eng.Tree(ctx, id)
	if err != nil {
		return nil, err
	}
	var build func(n *TreeNode) (*goldenNode, error)
	build = func(n *TreeNode) (*goldenNode, error) {
		rec, err := eng.Get(ctx, n.Run.ID)
		if err != nil {
			return nil, err
		}
		g := &goldenNode{rec: rec}
		for _, c := range n.Children {
			cg, err := build(c)
			if err != nil {
				return nil, err
			}
			g.children = append(g.children, cg)
		}
		stepIndex := map[string]int{}
		for i, s := range rec.Steps {
			stepIndex[s.ID] = i
		}
		// the children of a for_each or loop step (load[0], load[1], ...)
		// by iteration
		place := func(c *goldenNode) (int, int) {
			_, id := c.rec.Parent()
			if step, i, ok := dag.ParseDynamicChildID(id); ok {
				return stepIndex[step], i
			}
			return stepIndex[id], 0
		}
		sort.SliceStable(g.children, func(i, j int) bool {
			si, ii := place(g.children[i])
			sj, ij := place(g.children[j])
			return si < sj || si == sj && ii < ij
		})
		return g, nil
	}
	return build(tree)
}

var timeRE = regexp.MustCompile(`"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"`)

// normalised is the tree's JSON with run ids numbered in tree order,
// times and the workspace path replaced: what a golden file holds.
func (g *goldenNode) normalised(workspace string) ([]byte, error) {
	var ids []string
	var walk func(n *goldenNode)
	walk = func(n *goldenNode) {
		ids = append(ids, n.rec.ID)
		for _, c := range n.children {
			walk(c)
		}
	}
	walk(g)
	raw, err := g.json()
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return nil, err
	}
	text := out.String()
	for i, id := range ids {
		text = strings.ReplaceAll(text, id, fmt.Sprintf("<run-%d>", i+1))
	}
	if workspace != "" {
		text = strings.ReplaceAll(text, workspace, "<workspace>")
	}
	text = timeRE.ReplaceAllString(text, `"<time>"`)
	return []byte(text + "\n"), nil
}

func (g *goldenNode) json() ([]byte, error) {
	rec, err := json.Marshal(g.rec)
	if err != nil {
		return nil, err
	}
	children := make([]json.RawMessage, len(g.children))
	for i, c := range g.children {
		if children[i], err = c.json(); err != nil {
			return nil, err
		}
	}
	return json.Marshal(struct {
		Run      json.RawMessage   `json:"run"`
		Children []json.RawMessage `json:"children"`
	}{rec, children})
}

// runResult is what t.run returns.
type runResult struct {
	tree      *goldenNode
	workspace string
	attrs     starlark.StringDict
}

func newRunResult(tree *goldenNode, workspace string) (*runResult, error) {
	rec := tree.rec
	output, err := builtins.FromData(rec.Output)
	if err != nil {
		return nil, err
	}
	steps := starlark.NewDict(len(rec.Steps))
	for _, s := range rec.Steps {
		out, err := builtins.FromData(s.Output)
		if err != nil {
			return nil, err
		}
		steps.SetKey(starlark.String(s.ID), starlarkstruct.FromStringDict(starlarkstruct.Default, starlark.StringDict{
			"kind": starlark.String(s.Kind), "status": starlark.String(s.Status),
			"attempt": starlark.MakeInt(s.Attempt), "output": out, "error": optStr(s.Error),
		}))
	}
	params, err := builtins.FromData(rec.Params)
	if err != nil {
		return nil, err
	}
	children := make([]starlark.Value, len(tree.children))
	for i, c := range tree.children {
		if children[i], err = newRunResult(c, workspace); err != nil {
			return nil, err
		}
	}
	return &runResult{tree: tree, workspace: workspace, attrs: starlark.StringDict{
		"id": starlark.String(rec.ID), "workflow": starlark.String(rec.Workflow),
		"status": starlark.String(rec.Status), "output": output, "error": optStr(rec.Error),
		"steps": steps, "params": params, "parent_step_id": optStr(rec.ParentStepID),
		"children": starlark.NewList(children),
	}}, nil
}

func optStr(s *string) starlark.Value {
	if s == nil {
		return starlark.None
	}
	return starlark.String(*s)
}

func (r *runResult) String() string {
	return fmt.Sprintf("<run %s %s>", r.tree.rec.Workflow, r.tree.rec.Status)
}
func (r *runResult) Type() string          { return "run" }
func (r *runResult) Freeze()               {}
func (r *runResult) Truth() starlark.Bool  { return starlark.True }
func (r *runResult) Hash() (uint32, error) { return starlark.String(r.tree.rec.ID).Hash() }
func (r *runResult) AttrNames() []string   { return r.attrs.Keys() }
func (r *runResult) Attr(name string) (starlark.Value, error) {
	return r.attrs[name], nil
}

// golden is t.golden(r, name=None).
func (t *tester) golden(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var r *runResult
	var name string
	if err := starlark.UnpackArgs("golden", args, kwargs, "run", &r, "name?", &name); err != nil {
		return nil, err
	}
	got, err := r.tree.normalised(r.workspace)
	if err != nil {
		return nil, err
	}
	stem := strings.TrimSuffix(filepath.Base(t.file), "_test.star")
	base := t.test
	if name != "" {
		base += "_" + name
	}
	path := filepath.Join(filepath.Dir(t.file), "testdata", stem, base+".golden")
	if t.opts.Update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, got) {
			return starlark.None, nil
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			return nil, err
		}
		fmt.Fprintf(t.opts.Out, "    updated %s\n", path)
		return starlark.None, nil
	}
	want, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("golden file %s does not exist; create it with flowscript test --update", path)
	}
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(want, got) {
		return nil, fmt.Errorf("the run differs from %s (- golden, + this run; flowscript test --update rewrites it):\n%s", path, diff.Diff("golden", want, "run", got))
	}
	return starlark.None, nil
}
