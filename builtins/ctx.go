package builtins

import (
	"fmt"
	"strings"

	"go.starlark.net/starlark"
)

// NewCtx returns the ctx argument of a step body: ctx.inputs, ctx.params
// (dicts), ctx.run_id, ctx.step_id, ctx.workflow (strings), ctx.attempt
// (int), ctx.secret(name) and ctx.log(*args).
func NewCtx(sc *StepContext) starlark.Value {
	return &stepCtx{sc: sc}
}

type stepCtx struct {
	sc             *StepContext
	inputs, params starlark.Value // converted on first use
}

var (
	_ starlark.HasAttrs = (*stepCtx)(nil)

	ctxAttrs = []string{"attempt", "inputs", "log", "params", "run_id", "secret", "step_id", "workflow"}
)

func (c *stepCtx) String() string        { return fmt.Sprintf("<ctx of step %s>", c.sc.StepID) }
func (c *stepCtx) Type() string          { return "ctx" }
func (c *stepCtx) Freeze()               {}
func (c *stepCtx) Truth() starlark.Bool  { return starlark.True }
func (c *stepCtx) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: ctx") }
func (c *stepCtx) AttrNames() []string   { return ctxAttrs }

func (c *stepCtx) Attr(name string) (starlark.Value, error) {
	switch name {
	case "inputs":
		return c.dict(&c.inputs, c.sc.Inputs, "inputs")
	case "params":
		return c.dict(&c.params, c.sc.Params, "params")
	case "run_id":
		return starlark.String(c.sc.RunID), nil
	case "step_id":
		return starlark.String(c.sc.StepID), nil
	case "workflow":
		return starlark.String(c.sc.Workflow), nil
	case "attempt":
		return starlark.MakeInt(c.sc.Attempt), nil
	case "secret":
		return starlark.NewBuiltin("secret", c.secret).BindReceiver(c), nil
	case "log":
		return starlark.NewBuiltin("log", c.logFn).BindReceiver(c), nil
	}
	return nil, nil
}

func (c *stepCtx) dict(cache *starlark.Value, data map[string]any, what string) (starlark.Value, error) {
	if *cache != nil {
		return *cache, nil
	}
	if data == nil {
		data = map[string]any{}
	}
	v, err := FromData(data)
	if err != nil {
		return nil, fmt.Errorf("ctx.%s: %v", what, err)
	}
	*cache = v
	return v, nil
}

func (c *stepCtx) secret(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	if err := starlark.UnpackPositionalArgs("ctx.secret", args, kwargs, 1, &name); err != nil {
		return nil, err
	}
	if c.sc.Secret == nil {
		return nil, fmt.Errorf("ctx.secret: secret %q is not declared: add it to workflow(secrets = [...])", name)
	}
	v, err := c.sc.Secret(name)
	if err != nil {
		return nil, fmt.Errorf("ctx.secret: %v", err)
	}
	return starlark.String(v), nil
}

func (c *stepCtx) logFn(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(kwargs) > 0 {
		return nil, fmt.Errorf("ctx.log: unexpected keyword argument %s", kwargs[0][0])
	}
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		if s, ok := starlark.AsString(a); ok {
			b.WriteString(s)
		} else {
			b.WriteString(a.String())
		}
	}
	b.WriteByte('\n')
	if _, err := c.sc.log().Write([]byte(b.String())); err != nil {
		return nil, fmt.Errorf("ctx.log: %v", err)
	}
	return starlark.None, nil
}
