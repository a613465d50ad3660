package runtime

import (
	"fmt"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/runtime/core"
)

// The priority range, for runs and steps: higher runs first (defined in
// core, which orders the steps one decision starts by it). The runtime
// checks it here and only here; builtins checks literal priorities when a
// workflow is declared (builtins/define.go), and the CLI's --priority
// usage names it.
const (
	MinPriority = core.MinPriority
	MaxPriority = core.MaxPriority
)

// priorityOf is v as a priority, or false when v is not an int in range.
func priorityOf(v any) (int, bool) {
	n, ok := v.(int64)
	if !ok || !dag.PriorityInRange(n) {
		return 0, false
	}
	return int(n), true
}

// resolvedPriority is the priority a step's priority= resolved to (v),
// or the error of a step whose priority is not an int in range.
func resolvedPriority(v any) (int, error) {
	p, ok := priorityOf(v)
	if !ok {
		return 0, fmt.Errorf("priority must resolve to an int from %d to %d, got %s", MinPriority, MaxPriority, dag.FormatValue(v))
	}
	return p, nil
}
