package runtime

import (
	"context"
	"fmt"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/lang"
	"github.com/flowscript/flowscript/runtime/journal"
)

// TreeNode is a run and the runs it spawned.
type TreeNode struct {
	Run      RunRecord   `json:"run"`
	Children []*TreeNode `json:"children"`
}

// Tree returns the run and every descendant run, children in creation
// order.
func (e *Engine) Tree(ctx context.Context, idOrPrefix string) (*TreeNode, error) {
	id, err := e.ResolveID(ctx, idOrPrefix)
	if err != nil {
		return nil, err
	}
	var root *TreeNode
	err = e.j.View(ctx, func(tx *journal.Tx) error {
		var build func(id string, depth int) (*TreeNode, error)
		build = func(id string, depth int) (*TreeNode, error) {
			if depth > 64 {
				return nil, fmt.Errorf("run %s: the tree is deeper than any nesting limit allows", id)
			}
			rec, err := tx.Run(id)
			if err != nil {
				return nil, err
			}
			n := &TreeNode{Run: *rec, Children: []*TreeNode{}}
			normalizeRecord(&n.Run)
			kids, err := tx.Children(id)
			if err != nil {
				return nil, err
			}
			for _, kid := range kids {
				c, err := build(kid, depth+1)
				if err != nil {
					return nil, err
				}
				n.Children = append(n.Children, c)
			}
			return n, nil
		}
		var err error
		root, err = build(id, 0)
		return err
	})
	return root, err
}

// DefinitionInfo describes a registered workflow version.
type DefinitionInfo struct {
	Name         string         `json:"name"`
	Version      int            `json:"version"`
	Hash         string         `json:"hash"`
	Params       map[string]any `json:"params"`
	Secrets      []string       `json:"secrets"`
	RegisteredAt string         `json:"registered_at"`
}

// Definitions lists every registered workflow version, by name and
// version.
func (e *Engine) Definitions(ctx context.Context) ([]DefinitionInfo, error) {
	out := []DefinitionInfo{}
	err := e.j.View(ctx, func(tx *journal.Tx) error {
		return tx.Definitions(func(d *journal.Definition) error {
			for name, p := range d.Params {
				d.Params[name] = dag.NormalizeNumbers(p)
			}
			secrets := d.Secrets
			if secrets == nil {
				secrets = []string{}
			}
			out = append(out, DefinitionInfo{
				Name: d.Name, Version: d.Version, Hash: d.Hash, Params: d.Params,
				Secrets: secrets, RegisteredAt: d.RegisteredAt.UTC().Format(TimeFormat),
			})
			return nil
		})
	})
	return out, err
}

// Registered is one definition RegisterTree stored or found.
type Registered struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	New     bool   `json:"new"`
}

// RegisterTree registers the programs' workflows and every workspace
// workflow they reach through static sub_workflow steps, all in one
// transaction: when any definition is refused, nothing is stored.
func (e *Engine) RegisterTree(ctx context.Context, progs ...*lang.Program) ([]Registered, error) {
	var all []*lang.Program
	seen := map[*lang.Program]bool{}
	for _, prog := range progs {
		for _, p := range append([]*lang.Program{prog}, prog.Workspace.Reachable(ctx, prog)...) {
			if !seen[p] {
				seen[p] = true
				all = append(all, p)
			}
		}
	}
	return e.registerAll(ctx, all)
}
