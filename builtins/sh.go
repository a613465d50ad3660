package builtins

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

var envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// shFn is sh(cmd, env={}, dir=None, timeout=None, check=True): it runs
// /bin/sh -c cmd in the workspace (or dir, relative to it) and returns
// struct(stdout, stderr, exit_code). The output also goes to the step's log.
func shFn(thread *starlark.Thread, sc *StepContext, name string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		command string
		env     starlark.Value = starlark.None
		dir     starlark.Value = starlark.None
		timeout starlark.Value = starlark.None
		check                  = true
	)
	if err := starlark.UnpackArgs(name, args, kwargs, "cmd", &command, "env?", &env, "dir?", &dir, "timeout?", &timeout, "check?", &check); err != nil {
		return nil, err
	}
	if strings.TrimSpace(command) == "" {
		return nil, fmt.Errorf("%s: the command is empty", name)
	}
	envMap, err := envArg(name, env)
	if err != nil {
		return nil, err
	}
	workdir := sc.Dir
	if dir != starlark.None {
		d, ok := starlark.AsString(dir)
		if !ok {
			return nil, fmt.Errorf("%s: dir must be a string, got %s", name, dir.Type())
		}
		if d != "" {
			if !filepath.IsLocal(d) {
				return nil, fmt.Errorf("%s: dir %q must be a path inside the workspace, relative to it", name, d)
			}
			workdir = filepath.Join(sc.Dir, d)
		}
	}

	stepCtx := sc.context()
	ctx := stepCtx
	var limit time.Duration
	if timeout != starlark.None {
		limit, err = durationArg(name, "timeout", timeout)
		if err != nil {
			return nil, err
		}
		if limit <= 0 {
			return nil, fmt.Errorf("%s: timeout must be positive, got %s", name, limit)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(stepCtx, limit)
		defer cancel()
	}

	streams := MarkStreams(sc.log(), sc.Masks) // out|/err| lines, as a shell step's
	res, err := RunShell(ctx, ShellRequest{
		Command: command,
		Env:     envMap,
		Dir:     workdir,
		Stdout:  streams.Out,
		Stderr:  streams.Err,
		Secrets: sc.Masks,
	}, sc.MaxOutputBytes)
	streams.Close()
	if err != nil {
		switch {
		case stepCtx.Err() != nil:
			return nil, fmt.Errorf("%s: %w", name, contextError("step", stepCtx))
		case ctx.Err() != nil:
			return nil, &ctxErr{msg: fmt.Sprintf("%s: command timed out after %s", name, limit), err: ctx.Err()}
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if check && res.ExitCode != 0 {
		return nil, fmt.Errorf("%s: %w", name, res.ExitError())
	}
	return starlarkstruct.FromStringDict(starlarkstruct.Default, starlark.StringDict{
		"stdout":    starlark.String(res.Stdout),
		"stderr":    starlark.String(res.Stderr),
		"exit_code": starlark.MakeInt(res.ExitCode),
	}), nil
}

// envArg reads env={name: value}: strings are kept as they are, numbers
// and bools are written as str() writes them.
func envArg(fn string, v starlark.Value) (map[string]string, error) {
	if v == starlark.None {
		return nil, nil
	}
	d, ok := v.(*starlark.Dict)
	if !ok {
		return nil, fmt.Errorf("%s: env must be a dict of name to value, got %s", fn, v.Type())
	}
	out := make(map[string]string, d.Len())
	for _, item := range d.Items() {
		k, ok := starlark.AsString(item[0])
		if !ok {
			return nil, fmt.Errorf("%s: env names must be strings, got %s", fn, item[0].Type())
		}
		if !envNamePattern.MatchString(k) {
			return nil, fmt.Errorf("%s: env name %q is not a valid environment variable name", fn, k)
		}
		switch x := item[1].(type) {
		case starlark.String:
			out[k] = string(x)
		case starlark.Int, starlark.Float, starlark.Bool:
			out[k] = x.String()
		default:
			return nil, fmt.Errorf("%s: env[%q] must be a string or a number, got %s", fn, k, x.Type())
		}
	}
	return out, nil
}
