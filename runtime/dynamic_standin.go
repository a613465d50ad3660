package runtime

// This file: stand-in children of for_each and loop steps, for tests
// (Options.StubChild, which `flowscript test`'s stub_workflows set). A
// stubbed child workflow is never looked up: each child runs a stand-in
// declared from source that the hook gives for the params the child is
// passed, so that children of one step given different inputs each get a
// stand-in that declares exactly those. The stand-in's source is stored
// with the child run (as a script= child's is), so show, tree and resume
// find it as they find any other run's.

import (
	"context"
	"sort"
	"strings"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/lang"
	"github.com/flowscript/flowscript/runtime/journal"
)

// childSource is what a child of the attempt runs, given its inputs:
// the program prepare found, or a stand-in when the workflow is stubbed.
type childSource struct {
	prog *lang.Program
	info childInfo
	src  *journal.Definition // stored with the child run when not nil
}

// stubbed reports whether the attempt's children are stand-ins.
func (d *dynamicStep) stubbed() bool {
	if d.e.opts.StubChild == nil {
		return false
	}
	_, ok := d.e.opts.StubChild(d.def.Child.Name, nil)
	return ok
}

// programFor is the program of a child given inputs in.
func (d *dynamicStep) programFor(ctx context.Context, in map[string]any) (childSource, error) {
	if !d.stub {
		return childSource{prog: d.prog, info: d.info}, nil
	}
	names := make([]string, 0, len(in))
	for k := range in {
		names = append(names, k)
	}
	sort.Strings(names)
	key := strings.Join(names, "\x00")
	if p, ok := d.stubs[key]; ok {
		return p, nil
	}
	src, _ := d.e.opts.StubChild(d.def.Child.Name, names)
	def := *d.def
	def.Child = &dag.Child{Name: d.def.Child.Name, Script: src}
	prog, info, snap, err := d.e.childProgramAt(ctx, d.ar.rec.Workspace, &def, src, 0)
	if err != nil {
		return childSource{}, err
	}
	if err := d.e.checkHandlers(prog.Workflow); err != nil {
		return childSource{}, err
	}
	p := childSource{prog: prog, info: info, src: snap}
	if d.stubs == nil {
		d.stubs = map[string]childSource{}
	}
	d.stubs[key] = p
	return p, nil
}
