package builtins

import (
	"fmt"
	"regexp"
	"strings"

	"go.starlark.net/starlark"

	"github.com/flowscript/flowscript/dag"
)

// Definition returns the definition builtins: what a script sees while its
// top level declares a workflow.
func Definition() starlark.StringDict {
	d := starlark.StringDict{
		"workflow":     starlark.NewBuiltin("workflow", workflowFn),
		"task":         starlark.NewBuiltin("task", taskFn),
		"shell":        starlark.NewBuiltin("shell", shellFn),
		"sub_workflow": starlark.NewBuiltin("sub_workflow", subWorkflowFn),
		"param":        starlark.NewBuiltin("param", paramFn),
		"secret":       starlark.NewBuiltin("secret", secretFn),
		"output":       starlark.NewBuiltin("output", outputFn),
	}
	for name, fn := range dynamicBuiltins() { // dynamic.go
		d[name] = fn
	}
	return d
}

func builderFor(thread *starlark.Thread, fn string) (*Builder, error) {
	b := BuilderOf(thread)
	if b == nil {
		return nil, fmt.Errorf("%s: workflows can only be declared while a script is evaluated, not inside a running step", fn)
	}
	return b, nil
}

var (
	secretNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	paramNamePattern  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)
)

func workflowFn(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	b, err := builderFor(thread, "workflow")
	if err != nil {
		return nil, err
	}
	if b.Planner != "" {
		return nil, fmt.Errorf("workflow: cannot be called in the body of planner %q: a planner adds steps to the run's workflow", b.Planner)
	}
	if len(args) > 0 {
		return nil, fmt.Errorf("workflow: takes keyword arguments only, such as workflow(name = \"deploy\")")
	}
	var (
		name, description string
		version           = 0
		maxDepth          = 0
		params            starlark.Value
		secrets           starlark.Value
		timeout           starlark.Value
	)
	if err := starlark.UnpackArgs("workflow", args, kwargs,
		"name?", &name, "version?", &version, "params?", &params, "secrets?", &secrets,
		"timeout?", &timeout, "max_depth?", &maxDepth, "description?", &description); err != nil {
		return nil, err
	}
	pos := callerPos(thread)
	if pos.File != b.RootFile {
		// a loaded file's call declares nothing, so that the root's own
		// workflow() is neither refused as a second call nor overridden
		b.errorf(pos, "workflow() may only be called in the root file %s, not in a loaded file", b.RootFile)
		return starlark.None, nil
	}
	if b.workflowPos != nil {
		b.errorf(pos, "workflow() is called more than once (first at %s)", *b.workflowPos)
		return starlark.None, nil
	}
	b.workflowPos = &pos
	w := b.Workflow
	w.Pos = pos
	if name != "" {
		w.Name = name
	}
	w.Description = description
	if version < 0 {
		b.errorf(pos, "workflow: version must be 1 or more, got %d", version)
	} else {
		w.Version = version
	}
	if maxDepth != 0 && (maxDepth < 1 || maxDepth > dag.MaxDepthLimit) {
		b.errorf(pos, "workflow: max_depth must be between 1 and %d, got %d", dag.MaxDepthLimit, maxDepth)
	} else {
		w.MaxDepth = maxDepth
	}
	if d, ok := b.duration(pos, "workflow", "timeout", timeout); ok {
		w.Timeout = d
	}
	if params != nil && params != starlark.None {
		dict, ok := params.(*starlark.Dict)
		if !ok {
			return nil, fmt.Errorf("workflow: params must be a dict of name to default value, got %s", params.Type())
		}
		for _, item := range dict.Items() {
			k, ok := item[0].(starlark.String)
			if !ok {
				return nil, fmt.Errorf("workflow: param names must be strings, got %s", item[0].Type())
			}
			if !paramNamePattern.MatchString(string(k)) {
				b.errorf(pos, "workflow: param name %q is not valid (use letters, digits, _ and -, not starting with a digit)", string(k))
			}
			v, err := ToData(item[1], pos, false)
			if err != nil {
				return nil, fmt.Errorf("workflow: param %q: %w", string(k), err)
			}
			w.Params = append(w.Params, dag.Param{Name: string(k), Default: v})
		}
	}
	if secrets != nil && secrets != starlark.None {
		names, err := stringList(secrets)
		if err != nil {
			return nil, fmt.Errorf("workflow: secrets: %w", err)
		}
		seen := map[string]bool{}
		for _, s := range names {
			if !secretNamePattern.MatchString(s) {
				b.errorf(pos, "workflow: secret name %q is not valid (use letters, digits and _, like an environment variable)", s)
			}
			if seen[s] {
				b.errorf(pos, "workflow: secret %q is listed twice", s)
			}
			seen[s] = true
		}
		w.Secrets = names
	}
	return starlark.None, nil
}

func taskFn(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	b, err := builderFor(thread, "task")
	if err != nil {
		return nil, err
	}
	var (
		id   string
		body starlark.Value
		sa   stepArgs
	)
	pairs := append([]any{"id", &id, "body", &body}, sa.pairs()...)
	if err := starlark.UnpackArgs("task", args, kwargs, pairs...); err != nil {
		return nil, err
	}
	s := &dag.Step{ID: id, Kind: dag.KindTask, Pos: callerPos(thread)}
	switch body := body.(type) {
	case starlark.String:
		if body == "" {
			return nil, fmt.Errorf("task: body is an empty handler name")
		}
		s.Handler = string(body)
	case *starlark.Function:
		s.Body = body.Name()
	default:
		return nil, fmt.Errorf("task: body must be a function def body(ctx) or the name of a registered task handler, got %s", body.Type())
	}
	if err := sa.fill(b, "task", s); err != nil {
		return nil, err
	}
	v := b.addStep("task", s)
	if fnBody, ok := body.(*starlark.Function); ok {
		if problem := arity(fnBody, 1); problem != "" {
			b.errorf(s.Pos, "task: body %s must take one parameter, ctx (%s)", fnBody.Name(), problem)
		}
		if b.steps[id] == s { // a duplicate id keeps the first step's body
			b.Bodies[id] = fnBody
		}
	}
	return v, nil
}

func shellFn(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	b, err := builderFor(thread, "shell")
	if err != nil {
		return nil, err
	}
	var (
		id, command string
		env         starlark.Value
		dir         starlark.Value
		sa          stepArgs
	)
	pairs := append([]any{"id", &id, "command", &command, "env?", &env, "dir?", &dir}, sa.pairs()...)
	if err := starlark.UnpackArgs("shell", args, kwargs, pairs...); err != nil {
		return nil, err
	}
	s := &dag.Step{ID: id, Kind: dag.KindShell, Pos: callerPos(thread), Command: command}
	if strings.TrimSpace(command) == "" {
		b.errorf(s.Pos, "shell: the command is empty")
	}
	if env != nil && env != starlark.None {
		dict, ok := env.(*starlark.Dict)
		if !ok {
			return nil, fmt.Errorf("shell: env must be a dict of name to value, got %s", env.Type())
		}
		v, err := ToData(dict, s.Pos, true)
		if err != nil {
			return nil, fmt.Errorf("shell: env%w", prefixIndex(err))
		}
		s.Env = v.(map[string]any)
		for k := range s.Env {
			if !secretNamePattern.MatchString(k) {
				b.errorf(s.Pos, "shell: env name %q is not a valid environment variable name", k)
			}
		}
	}
	if dir != nil && dir != starlark.None {
		d, ok := dir.(starlark.String)
		if !ok {
			return nil, fmt.Errorf("shell: dir must be a string, got %s", dir.Type())
		}
		s.Dir = string(d)
		if strings.HasPrefix(s.Dir, "/") || escapes(s.Dir) {
			b.errorf(s.Pos, "shell: dir %q must be a path inside the workspace, relative to it", s.Dir)
		}
	}
	if err := sa.fill(b, "shell", s); err != nil {
		return nil, err
	}
	return b.addStep("shell", s), nil
}

// escapes reports whether a relative slash path climbs above its start.
func escapes(p string) bool {
	depth := 0
	for _, part := range strings.Split(p, "/") {
		switch part {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}

func subWorkflowFn(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	b, err := builderFor(thread, "sub_workflow")
	if err != nil {
		return nil, err
	}
	var (
		name     string
		id       string
		version  = 0
		detach   bool
		key      starlark.Value
		strategy string
		script   starlark.Value
		sa       stepArgs
	)
	// the order of SPEC §1: name, inputs, id, version, detach, after, ...
	if err := starlark.UnpackArgs("sub_workflow", args, kwargs,
		"name", &name, "inputs?", &sa.inputs, "id?", &id, "version?", &version,
		"detach?", &detach, "after?", &sa.after, "idempotency_key?", &key,
		"idempotency_strategy?", &strategy, "priority?", &sa.priority,
		"optional?", &sa.optional, "timeout?", &sa.timeout, "retries?", &sa.retries,
		"retry_delay?", &sa.retryDelay, "script?", &script); err != nil {
		return nil, err
	}
	if id == "" {
		id = name
	}
	pos := callerPos(thread)
	s := &dag.Step{ID: id, Kind: dag.KindSubWorkflow, Pos: pos, Child: &dag.Child{Name: name, Detach: detach}}
	if name == "" {
		b.errorf(pos, "sub_workflow: the workflow name is empty")
	}
	if version < 0 {
		b.errorf(pos, "sub_workflow: version must be 0 (the latest) or more, got %d", version)
	}
	s.Child.Version = version
	if key != nil && key != starlark.None {
		switch k := key.(type) {
		case starlark.String:
			s.Child.IdempotencyKey = string(k)
		case *RefValue:
			if k.Ref.Kind == dag.RefSecret {
				b.errorf(pos, "sub_workflow: idempotency_key cannot be a secret: the key is stored with the run, and secret values never are")
			}
			v, _ := ToData(k, pos, true)
			s.Child.IdempotencyKey = v
		default:
			return nil, fmt.Errorf("sub_workflow: idempotency_key must be a string or a reference, got %s", key.Type())
		}
	}
	if strategy != "" {
		if !dag.IsIdempotencyStrategy(strategy) {
			b.errorf(pos, "sub_workflow: idempotency_strategy %q is not one of %s%s", strategy, dag.StrategyList(), dag.DidYouMean(strategy, dag.IdempotencyStrategies))
		}
		s.Child.IdempotencyStrategy = strategy
	}
	if script != nil && script != starlark.None {
		switch sc := script.(type) {
		case starlark.String:
			s.Child.Script = string(sc)
		case *RefValue:
			if sc.Ref.Kind == dag.RefSecret {
				b.errorf(pos, "sub_workflow: script cannot be a secret: a script= child's source is stored with its run, and secret values never are")
			}
			v, _ := ToData(sc, pos, true)
			s.Child.Script = v
		default:
			return nil, fmt.Errorf("sub_workflow: script must be Starlark source (a string or a reference), got %s", script.Type())
		}
	}
	if err := sa.fill(b, "sub_workflow", s); err != nil {
		return nil, err
	}
	return b.addStep("sub_workflow", s), nil
}

func paramFn(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	if err := starlark.UnpackPositionalArgs("param", args, kwargs, 1, &name); err != nil {
		return nil, err
	}
	return &RefValue{Ref: &dag.Ref{Kind: dag.RefParam, Name: name, Pos: callerPos(thread)}}, nil
}

func secretFn(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	if err := starlark.UnpackPositionalArgs("secret", args, kwargs, 1, &name); err != nil {
		return nil, err
	}
	return &RefValue{Ref: &dag.Ref{Kind: dag.RefSecret, Name: name, Pos: callerPos(thread)}}, nil
}

func outputFn(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	b, err := builderFor(thread, "output")
	if err != nil {
		return nil, err
	}
	if b.Planner != "" {
		return nil, fmt.Errorf("output: cannot be called in the body of planner %q: the run's output is declared at the top level", b.Planner)
	}
	if len(args) > 0 {
		return nil, fmt.Errorf("output: takes keyword arguments only, such as output(url = d.output[\"url\"])")
	}
	pos := callerPos(thread)
	if b.outputSet {
		b.errorf(pos, "output() is called more than once (first at %s)", b.Workflow.OutputPos)
		return starlark.None, nil
	}
	b.outputSet = true
	out := make(map[string]any, len(kwargs))
	for _, kv := range kwargs {
		k := string(kv[0].(starlark.String))
		v, err := ToData(kv[1], pos, true)
		if err != nil {
			return nil, fmt.Errorf("output: %s%w", k, prefixIndex(err))
		}
		out[k] = v
	}
	b.Workflow.Output = out
	b.Workflow.OutputPos = pos
	return starlark.None, nil
}

func stringList(v starlark.Value) ([]string, error) {
	iter, ok := v.(starlark.Iterable)
	if !ok {
		return nil, fmt.Errorf("want a list of strings, got %s", v.Type())
	}
	if _, isStr := v.(starlark.String); isStr {
		return nil, fmt.Errorf("want a list of strings, got a string")
	}
	var out []string
	it := iter.Iterate()
	defer it.Done()
	var x starlark.Value
	for it.Next(&x) {
		s, ok := x.(starlark.String)
		if !ok {
			return nil, fmt.Errorf("want a list of strings, got an element of type %s", x.Type())
		}
		out = append(out, string(s))
	}
	return out, nil
}
