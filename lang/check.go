package lang

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/flowscript/flowscript/dag"
)

// Registry finds workflow definitions stored outside the workspace (the
// store's registered definitions).
type Registry interface {
	// LookupDefinition returns the source snapshot of a registered
	// definition; version 0 means the latest. found is false when there is
	// no such definition.
	LookupDefinition(ctx context.Context, name string, version int) (def *Definition, found bool, err error)
	// DefinitionNames lists registered names, for "did you mean".
	DefinitionNames(ctx context.Context) ([]string, error)
}

// Definition is a registered workflow's source snapshot.
type Definition struct {
	Name    string
	Version int
	Hash    string
	Root    string
	Files   map[string][]byte
}

// nameIndex maps workflow names to the workspace files that declare them.
type nameIndex struct {
	byName   map[string][]string // name -> workspace-relative files
	failures map[string]error    // files that did not evaluate
}

func (ws *Workspace) nameIndex(ctx context.Context) (*nameIndex, error) {
	ws.mu.Lock()
	idx := ws.index
	ws.mu.Unlock()
	if idx != nil {
		return idx, nil
	}
	files, err := ws.starFiles()
	if err != nil {
		return nil, fmt.Errorf("cannot list the workspace %s: %v", ws.Root(), unwrapPathError(err))
	}
	idx = &nameIndex{byName: map[string][]string{}, failures: map[string]error{}}
	for _, f := range files {
		prog, err := ws.Load(ctx, f)
		if err != nil {
			idx.failures[f] = err
			continue
		}
		if len(prog.Workflow.Steps) == 0 && !prog.Declared {
			continue // a library of helpers, not a workflow
		}
		idx.byName[prog.Workflow.Name] = append(idx.byName[prog.Workflow.Name], f)
	}
	ws.mu.Lock()
	ws.index = idx
	ws.mu.Unlock()
	return idx, nil
}

// Resolve finds the workflow a sub_workflow step names: a workspace file
// that declares it, else a registered definition. version 0 means the
// latest.
func (ws *Workspace) Resolve(ctx context.Context, name string, version int) (*Program, error) {
	idx, err := ws.nameIndex(ctx)
	if err != nil {
		return nil, err
	}
	files := idx.byName[name]
	if len(files) > 1 {
		shown := make([]string, len(files))
		for i, f := range files {
			shown[i] = ws.Display(f)
		}
		return nil, fmt.Errorf("workflow %q is declared by more than one file: %s", name, strings.Join(shown, " and "))
	}
	if len(files) == 1 {
		prog, err := ws.Load(ctx, files[0])
		if err != nil {
			return nil, err
		}
		declared := prog.Workflow.Version
		if version == 0 || declared == 0 || declared == version {
			return prog, nil
		}
		if p, ok, err := ws.fromRegistry(ctx, name, version); ok || err != nil {
			return p, err
		}
		return nil, fmt.Errorf("%s version %d is not registered (%s declares version %d)", name, version, ws.Display(files[0]), declared)
	}
	if p, ok, err := ws.fromRegistry(ctx, name, version); ok || err != nil {
		return p, err
	}
	return nil, ws.unknownWorkflow(ctx, idx, name, version)
}

func (ws *Workspace) fromRegistry(ctx context.Context, name string, version int) (*Program, bool, error) {
	reg := ws.opts.Registry
	if reg == nil {
		return nil, false, nil
	}
	def, found, err := reg.LookupDefinition(ctx, name, version)
	if err != nil || !found {
		return nil, false, err
	}
	sub := NewWorkspaceFiles(def.Files, ws.opts)
	sub.display = "registered:" + def.Name + "@" + fmt.Sprint(def.Version)
	prog, err := sub.Load(ctx, def.Root)
	if err != nil {
		return nil, true, fmt.Errorf("registered workflow %s version %d no longer evaluates: %v", def.Name, def.Version, err)
	}
	if prog.Workflow.Version == 0 {
		prog.Workflow.Version = def.Version
	}
	return prog, true, nil
}

func (ws *Workspace) unknownWorkflow(ctx context.Context, idx *nameIndex, name string, version int) error {
	var known []string
	for n := range idx.byName {
		known = append(known, n)
	}
	if reg := ws.opts.Registry; reg != nil {
		if names, err := reg.DefinitionNames(ctx); err == nil {
			known = append(known, names...)
		}
	}
	msg := fmt.Sprintf("unknown workflow %q: no file in the workspace %s declares it", name, ws.Root())
	if version > 0 {
		msg = fmt.Sprintf("unknown workflow %q version %d: no file in the workspace %s declares it", name, version, ws.Root())
	}
	if ws.opts.Registry != nil {
		msg += " and it is not registered"
	}
	msg += dag.DidYouMean(name, known)
	// a file that does not evaluate may be the one that was meant: name
	// those whose file name is the wanted name, count the others
	var failed, others []string
	for f := range idx.failures {
		if strings.TrimSuffix(path.Base(f), ".star") == name {
			failed = append(failed, f)
		} else {
			others = append(others, ws.Display(f))
		}
	}
	sort.Strings(failed)
	sort.Strings(others)
	for _, f := range failed {
		first := idx.failures[f].Error()
		if i := strings.IndexByte(first, '\n'); i >= 0 {
			first = first[:i]
		}
		msg += fmt.Sprintf("; %s could not be evaluated: %s", ws.Display(f), first)
	}
	switch len(others) {
	case 0:
	case 1:
		msg += fmt.Sprintf(" (1 other workspace file could not be evaluated: %s)", others[0])
	default:
		msg += fmt.Sprintf(" (%d other workspace files could not be evaluated: %s)", len(others), strings.Join(others, ", "))
	}
	return fmt.Errorf("%s", msg)
}

// Check runs the cross-workflow checks of SPEC §3 from the root program:
// every statically known child is resolved, its inputs checked against its
// params, workflow cycles and nesting depth are found. It returns the
// root's own errors too, and those of every child it reaches.
func (ws *Workspace) Check(ctx context.Context, root *Program) dag.ErrorList {
	c := &checker{ws: ws, ctx: ctx, resolved: map[childKey]*childResult{}}
	errs := append(dag.ErrorList{}, root.Errors...)
	graph := c.reach(root)
	errs = append(errs, c.errs...)
	errs = append(errs, c.cycles(root, graph)...)
	errs = append(errs, c.depth(root, graph)...)
	errs.Sort()
	return errs
}

type childKey struct {
	name    string
	version int
}

type childResult struct {
	prog *Program
	err  error
}

type checker struct {
	ws       *Workspace
	ctx      context.Context
	resolved map[childKey]*childResult
	errs     dag.ErrorList
}

// edge is a static sub_workflow step and the program it runs.
type edge struct {
	step  *dag.Step
	child *Program
}

// reach resolves every static child reachable from the root, recording
// resolution and input errors once per step, and returns the edges of each
// reached program.
func (c *checker) reach(root *Program) map[*Program][]edge {
	graph := map[*Program][]edge{}
	queue := []*Program{root}
	graph[root] = nil
	seen := map[*Program]bool{root: true}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		var edges []edge
		for _, s := range p.Workflow.Steps {
			if !s.Kind.RunsChildren() || s.Child == nil || !s.Child.Static() || s.Child.Name == "" {
				continue
			}
			child, err := c.resolve(s.Child.Name, s.Child.Version)
			if err != nil {
				c.errs.Add(s.Pos, "%s %q: %s", s.Kind, s.ID, errText(err))
				continue
			}
			c.checkInputs(s, child)
			c.checkDynamic(p, s, child) // dynamic_check.go
			edges = append(edges, edge{step: s, child: child})
			if !seen[child] {
				seen[child] = true
				c.errs = append(c.errs, child.Errors...)
				queue = append(queue, child)
			}
		}
		graph[p] = edges
		c.checkOutputKeys(p, edges)
	}
	return graph
}

func errText(err error) string {
	if l, ok := err.(dag.ErrorList); ok && len(l) > 0 {
		return "it does not evaluate: " + l[0].Error()
	}
	return err.Error()
}

func (c *checker) resolve(name string, version int) (*Program, error) {
	k := childKey{name, version}
	if r, ok := c.resolved[k]; ok {
		return r.prog, r.err
	}
	p, err := c.ws.Resolve(c.ctx, name, version)
	c.resolved[k] = &childResult{prog: p, err: err}
	return p, err
}

func (c *checker) checkInputs(s *dag.Step, child *Program) {
	keys := make([]string, 0, len(s.Inputs))
	for k := range s.Inputs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	cw := child.Workflow
	for _, k := range keys {
		if cw.Param(k) == nil {
			c.errs.Add(s.Pos, "%s has no param %q%s", cw.Name, k, dag.DidYouMean(k, cw.ParamNames()))
		}
	}
}

// checkOutputKeys reports references into the output of a static child
// that declares output(...) naming a key it does not declare (SPEC §4).
func (c *checker) checkOutputKeys(p *Program, edges []edge) {
	declared := map[string]*Program{}
	for _, e := range edges {
		if e.child.Workflow.Output != nil && !e.step.Child.Detach && e.step.Kind != dag.KindForEach {
			declared[e.step.ID] = e.child
		}
	}
	if len(declared) == 0 {
		return
	}
	check := func(r *dag.Ref) {
		child, ok := declared[r.Step]
		if r.Kind != dag.RefOutput || !ok || len(r.Path) == 0 {
			return
		}
		k, ok := r.Path[0].(string)
		if !ok {
			return
		}
		out := child.Workflow.Output
		if _, ok := out[k]; ok {
			return
		}
		keys := make([]string, 0, len(out))
		for n := range out {
			keys = append(keys, n)
		}
		sort.Strings(keys)
		c.errs.Add(r.Pos, "%s's output has no key %q: %s declares output(%s)%s", r.Step, k, child.Workflow.Name, strings.Join(keys, ", "), dag.DidYouMean(k, keys))
	}
	for _, s := range p.Workflow.Steps {
		s.WalkRefs(func(_ string, r *dag.Ref) { check(r) })
	}
	dag.WalkRefs(p.Workflow.Output, check)
}

// cycles reports each group of workflows that reach one another once, as
// a path from its first-reached member back to it, at the step that starts
// the path.
func (c *checker) cycles(root *Program, graph map[*Program][]edge) dag.ErrorList {
	var errs dag.ErrorList
	// order programs by when they were reached from the root (BFS order)
	order := []*Program{root}
	pos := map[*Program]int{root: 0}
	for i := 0; i < len(order); i++ {
		for _, e := range graph[order[i]] {
			if _, ok := pos[e.child]; !ok {
				pos[e.child] = len(order)
				order = append(order, e.child)
			}
		}
	}
	reported := map[*Program]bool{}
	for _, start := range order {
		if reported[start] {
			continue
		}
		path := shortestCycle(start, graph)
		if path == nil {
			continue
		}
		names := []string{start.Workflow.Name}
		for _, e := range path {
			names = append(names, e.child.Workflow.Name)
			reported[e.child] = true
		}
		errs.Add(path[0].step.Pos, "workflow cycle: %s", strings.Join(names, " -> "))
	}
	return errs
}

// shortestCycle finds a shortest path of edges from start back to start.
func shortestCycle(start *Program, graph map[*Program][]edge) []edge {
	type via struct {
		from *Program
		e    edge
	}
	prev := map[*Program]via{}
	queue := []*Program{start}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, e := range graph[p] {
			if e.child == start {
				path := []edge{e}
				for cur := p; cur != start; cur = prev[cur].from {
					path = append([]edge{prev[cur].e}, path...)
				}
				return path
			}
			if _, seen := prev[e.child]; !seen {
				prev[e.child] = via{from: p, e: e}
				queue = append(queue, e.child)
			}
		}
	}
	return nil
}

// depth reports the steps at which the chain of nested runs grows past the
// root's max_depth, with the chain. Cycles are left to cycles().
func (c *checker) depth(root *Program, graph map[*Program][]edge) dag.ErrorList {
	var errs dag.ErrorList
	limit := root.Workflow.EffectiveMaxDepth()
	type state struct {
		p     *Program
		depth int
	}
	visited := map[state]bool{}
	var walk func(p *Program, chain []string, onChain map[*Program]bool)
	walk = func(p *Program, chain []string, onChain map[*Program]bool) {
		st := state{p, len(chain)}
		if visited[st] {
			return
		}
		visited[st] = true
		for _, e := range graph[p] {
			if onChain[e.child] {
				continue // a cycle, reported on its own
			}
			next := append(chain[:len(chain):len(chain)], e.child.Workflow.Name)
			if len(next) > limit {
				errs.Add(e.step.Pos, "sub-workflow nesting depth %d exceeds the limit of %d (chain: %s)", len(next), limit, strings.Join(next, " -> "))
				continue
			}
			onChain[e.child] = true
			walk(e.child, next, onChain)
			delete(onChain, e.child)
		}
	}
	walk(root, []string{root.Workflow.Name}, map[*Program]bool{root: true})
	return errs
}

// Reachable returns every workflow the root reaches through statically
// known sub_workflow steps, directly or not, each once, the root left out.
// Children that cannot be resolved are left out too (Check reports them).
func (ws *Workspace) Reachable(ctx context.Context, root *Program) []*Program {
	c := &checker{ws: ws, ctx: ctx, resolved: map[childKey]*childResult{}}
	graph := c.reach(root)
	var out []*Program
	seen := map[*Program]bool{root: true}
	queue := []*Program{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, e := range graph[p] {
			if !seen[e.child] {
				seen[e.child] = true
				out = append(out, e.child)
				queue = append(queue, e.child)
			}
		}
	}
	return out
}
