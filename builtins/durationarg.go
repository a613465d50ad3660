package builtins

// This file: reading a duration argument (sh, http, sleep).

import (
	"fmt"
	"math"
	"time"

	libtime "go.starlark.net/lib/time"
	"go.starlark.net/starlark"
)

// durationArg reads a duration given as a string ("500ms", "5m"), a number
// of seconds, or a time.duration value.
func durationArg(fn, arg string, v starlark.Value) (time.Duration, error) {
	switch v := v.(type) {
	case starlark.String:
		d, err := time.ParseDuration(string(v))
		if err != nil {
			return 0, fmt.Errorf("%s: %s %q is not a duration such as \"500ms\", \"30s\" or \"5m\"", fn, arg, string(v))
		}
		return d, nil
	case starlark.Int:
		n, ok := v.Int64()
		if !ok || n > math.MaxInt64/int64(time.Second) || n < math.MinInt64/int64(time.Second) {
			return 0, fmt.Errorf("%s: %s %s seconds is out of range", fn, arg, v)
		}
		return time.Duration(n) * time.Second, nil
	case starlark.Float:
		f := float64(v) * float64(time.Second)
		if math.IsNaN(f) || f > math.MaxInt64 || f < math.MinInt64 {
			return 0, fmt.Errorf("%s: %s %s seconds is out of range", fn, arg, v)
		}
		return time.Duration(f), nil
	case libtime.Duration:
		return time.Duration(v), nil
	}
	return 0, fmt.Errorf("%s: %s must be a duration string such as \"5s\" or a number of seconds, got %s", fn, arg, v.Type())
}
