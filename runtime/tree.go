package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/lang"
	"github.com/flowscript/flowscript/store"
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
	err = e.st.View(ctx, func(tx store.Tx) error {
		var build func(id string, depth int) (*TreeNode, error)
		build = func(id string, depth int) (*TreeNode, error) {
			if depth > 64 {
				return nil, fmt.Errorf("run %s: the tree is deeper than any nesting limit allows", id)
			}
			data, err := tx.Get(runKey(id))
			if err != nil {
				return nil, fmt.Errorf("run %s: %w", id, err)
			}
			n := &TreeNode{Children: []*TreeNode{}}
			if err := json.Unmarshal(data, &n.Run); err != nil {
				return nil, fmt.Errorf("run %s: damaged record: %v", id, err)
			}
			normalizeRecord(&n.Run)
			var kids []string
			err = tx.Scan(childPrefix(id), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
				kids = append(kids, string(k[len(childPrefix(id)):]))
				return nil
			})
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
	err := e.st.View(ctx, func(tx store.Tx) error {
		return tx.Scan([]byte(prefixDef), store.ScanOptions{}, func(k, v []byte) error {
			var d definitionRecord
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("definition %q: damaged record: %v", k, err)
			}
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

// RegisterTree registers a program's workflow and every workspace
// workflow it reaches through static sub_workflow steps.
func (e *Engine) RegisterTree(ctx context.Context, prog *lang.Program) ([]Registered, error) {
	progs := append([]*lang.Program{prog}, prog.Workspace.Reachable(ctx, prog)...)
	// refuse a conflict before storing anything
	for _, p := range progs {
		if err := e.checkVersionConflict(ctx, p); err != nil {
			return nil, err
		}
	}
	out := make([]Registered, 0, len(progs))
	for _, p := range progs {
		before, err := e.latestVersion(ctx, p.Workflow.Name)
		if err != nil {
			return out, err
		}
		v, err := e.Register(ctx, p)
		if err != nil {
			return out, err
		}
		out = append(out, Registered{Name: p.Workflow.Name, Version: v, New: v > before})
	}
	return out, nil
}

func (e *Engine) latestVersion(ctx context.Context, name string) (int, error) {
	var v int
	err := e.st.View(ctx, func(tx store.Tx) error {
		data, err := tx.Get(defMetaKey(name))
		if err == store.ErrNotFound {
			return nil
		}
		if err != nil {
			return err
		}
		v, err = strconv.Atoi(string(data))
		return err
	})
	return v, err
}

// checkVersionConflict refuses a program whose explicit version is
// registered with other content.
func (e *Engine) checkVersionConflict(ctx context.Context, p *lang.Program) error {
	w := p.Workflow
	if w.Version == 0 {
		return nil
	}
	def, err := e.definition(ctx, w.Name, w.Version)
	if err == store.ErrNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if def.Hash != p.Hash {
		return inputErrorf("%s version %d is already registered with different content; change version= or leave it out to get a new version", w.Name, w.Version)
	}
	return nil
}
