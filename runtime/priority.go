package runtime

import "github.com/flowscript/flowscript/runtime/core"

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
	if !ok || n < MinPriority || n > MaxPriority {
		return 0, false
	}
	return int(n), true
}
