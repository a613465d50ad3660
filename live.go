package flowscript

import "github.com/flowscript/flowscript/runtime"

// Types of the live views of runs (the CLI's watch and logs --follow).
type (
	// TreeNode is a run with the runs below it (Engine.Tree).
	TreeNode = runtime.TreeNode
	// LiveLogEntry is one step attempt's log as of now, Running while the
	// attempt still runs (Engine.LogsNow).
	LiveLogEntry = runtime.LiveLogEntry
)
