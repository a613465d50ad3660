package builtins

import (
	"fmt"
	"time"

	libtime "go.starlark.net/lib/time"
	"go.starlark.net/starlark"
)

// sleepFn is sleep(duration): it pauses the step, and returns early with an
// error when the step's context ends.
func sleepFn(thread *starlark.Thread, sc *StepContext, name string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var v starlark.Value
	if err := starlark.UnpackPositionalArgs(name, args, kwargs, 1, &v); err != nil {
		return nil, err
	}
	d, err := durationArg(name, "duration", v)
	if err != nil {
		return nil, err
	}
	if d < 0 {
		return nil, fmt.Errorf("%s: duration %s is negative", name, d)
	}
	ctx := sc.context()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%s: %w", name, contextError("step", ctx))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return starlark.None, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w", name, contextError("step", ctx))
	}
}

// timeNow is time.now(): the step's clock, as a time.time value.
func timeNow(thread *starlark.Thread, sc *StepContext, name string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackPositionalArgs(name, args, kwargs, 0); err != nil {
		return nil, err
	}
	return libtime.Time(sc.now()), nil
}
