package flowscript

// This file: stand-ins for tests (Options.Stubs): task steps and child
// workflows replaced by fixed outcomes.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"go.starlark.net/starlark"

	"github.com/flowscript/flowscript/builtins"
)

// Stubs replace task steps and child workflows with fixed outcomes, so a
// test can run a workflow without its side effects (Options.Stubs; the
// `flowscript test` command's stub_tasks= and stub_workflows=). Stubs
// apply to every workflow of the tree the engine declares.
type Stubs struct {
	// Tasks maps a step id to the outcome of the task or shell steps of
	// that id: no body or command runs. A stubbed shell step runs as a
	// task, so its record shows kind "task".
	Tasks map[string]Stub
	// Workflows maps a workflow name to the outcome of every child run of
	// that workflow: those of sub_workflow steps, of for_each and loop
	// steps (each iteration), and of the steps a planner declares. Each
	// child is a stand-in run (so the tree and the records look as they
	// would) that declares the params it is passed and ends with the
	// stub's Output or fails with its Fail message; the real workflow is
	// not looked up at run time.
	Workflows map[string]Stub
}

// Stub is a fixed outcome: Output (may be nil), or a failure with the
// message Fail when it is not empty.
type Stub struct {
	Output map[string]any
	Fail   string
}

const (
	stubTaskHandler     = "flowscript.stub.task:"
	stubWorkflowHandler = "flowscript.stub.workflow:"
	stubWorkflowStep    = "stubbed"
)

// install registers the stub handlers and wraps the step builtins so that
// stubbed steps are declared with them.
func (s *Stubs) install(e *Engine) error {
	for id, st := range s.Tasks {
		e.RegisterHandler(stubTaskHandler+id, st.handler())
	}
	for name, st := range s.Workflows {
		if _, err := json.Marshal(st.Output); err != nil {
			return fmt.Errorf("stub of workflow %s: its output cannot be stored: %v", name, err)
		}
		e.RegisterHandler(stubWorkflowHandler+name, st.handler())
	}
	defs := builtins.Definition()
	task, _ := defs["task"].(*starlark.Builtin)
	shell, _ := defs["shell"].(*starlark.Builtin)
	sub, _ := defs["sub_workflow"].(*starlark.Builtin)
	if task == nil || shell == nil || sub == nil {
		return errors.New("flowscript: the step builtins cannot be stubbed in this build")
	}
	e.RegisterModule("task", starlark.NewBuiltin("task", func(th *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if id, ok := argString(args, kwargs, 0, "id"); ok {
			if _, stubbed := s.Tasks[id]; stubbed {
				args, kwargs = setArg(args, kwargs, 1, "body", starlark.String(stubTaskHandler+id))
			}
		}
		// called directly, not through starlark.Call: the step keeps the
		// position of the script's call
		return task.CallInternal(th, args, kwargs)
	}))
	e.RegisterModule("shell", starlark.NewBuiltin("shell", func(th *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		id, ok := argString(args, kwargs, 0, "id")
		if _, stubbed := s.Tasks[id]; !ok || !stubbed {
			return shell.CallInternal(th, args, kwargs)
		}
		var kept []starlark.Tuple
		for _, kv := range kwargs {
			switch kv[0].(starlark.String) {
			case "id", "command", "env", "dir":
			default:
				kept = append(kept, kv)
			}
		}
		return task.CallInternal(th, starlark.Tuple{starlark.String(id), starlark.String(stubTaskHandler + id)}, kept)
	}))
	e.RegisterModule("sub_workflow", starlark.NewBuiltin("sub_workflow", func(th *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		name, ok := argString(args, kwargs, 0, "name")
		st, stubbed := s.Workflows[name]
		if !ok || !stubbed {
			return sub.CallInternal(th, args, kwargs)
		}
		var inputs []string
		if v, ok := argValue(args, kwargs, 1, "inputs"); ok {
			if d, ok := v.(*starlark.Dict); ok {
				for _, k := range d.Keys() {
					if ks, ok := k.(starlark.String); ok {
						inputs = append(inputs, string(ks))
					}
				}
			}
		}
		var kept []starlark.Tuple
		for _, kv := range kwargs {
			if kv[0].(starlark.String) != "version" {
				kept = append(kept, kv)
			}
		}
		kept = append(kept, starlark.Tuple{starlark.String("script"), starlark.String(stubScript(name, inputs, st))})
		// positional: name, inputs, id, version, detach; the stand-in has
		// no version
		if len(args) > 4 {
			kept = append(kept, starlark.Tuple{starlark.String("detach"), args[4]})
		}
		return sub.CallInternal(th, args[:min(len(args), 3)], kept)
	}))
	return nil
}

// dynamicChild is the source of the stand-in for a child of a for_each
// or loop step (and of those a planner declares) of a stubbed workflow,
// declaring the params the child is passed; ok is false when name is not
// stubbed. The runtime asks it as each child's inputs are known.
func (s *Stubs) dynamicChild(name string, params []string) (string, bool) {
	st, ok := s.Workflows[name]
	if !ok {
		return "", false
	}
	return stubScript(name, params, st), true
}

func (st Stub) handler() Handler {
	return func(ctx context.Context, t *TaskContext) (map[string]any, error) {
		if st.Fail != "" {
			return nil, errors.New(st.Fail)
		}
		return st.Output, nil
	}
}

// stubScript is the source of a stand-in child: it declares the params
// its parent passes, one step that ends as the stub says, and the stub's
// output as the workflow's.
func stubScript(name string, inputs []string, st Stub) string {
	var b strings.Builder
	params := make([]string, len(inputs))
	for i, in := range inputs {
		params[i] = fmt.Sprintf("%q: None", in)
	}
	fmt.Fprintf(&b, "workflow(name = %q, params = {%s})\n", name, strings.Join(params, ", "))
	fmt.Fprintf(&b, "task(%q, %q)\n", stubWorkflowStep, stubWorkflowHandler+name)
	if st.Fail == "" && st.Output != nil {
		data, _ := json.Marshal(st.Output)
		fmt.Fprintf(&b, "output(**json.decode(%q))\n", string(data))
	}
	return b.String()
}
