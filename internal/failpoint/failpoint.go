// Package failpoint lets tests stop a process at a named point: the
// crash tests set $FLOWSCRIPT_FAILPOINT in the environment of a
// flowscript process, and the process kills itself with SIGKILL when it
// reaches that point for the n-th time, as a power cut or kill -9 at that
// instant would.
//
// The variable is read once; with it unset, Hit is one load of a nil
// pointer. It is a test tool: nothing else sets the variable.
//
//	FLOWSCRIPT_FAILPOINT=NAME[:N]     kill at the N-th hit of NAME (default 1)
//
// Names are chosen by the code that calls Hit; the store uses
// "before-commit:<prefix>" and "after-commit:<prefix>" for a commit that
// writes a key with that prefix (run/, step/, hist/, child/, notice/, ...).
package failpoint

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// EnvVar names the environment variable that arms a failpoint.
const EnvVar = "FLOWSCRIPT_FAILPOINT"

type point struct {
	name  string
	after int64
	hits  atomic.Int64
}

var armed = parse(os.Getenv(EnvVar))

func parse(s string) *point {
	if s == "" {
		return nil
	}
	p := &point{name: s, after: 1}
	if i := strings.LastIndexByte(s, ':'); i > 0 {
		if n, err := strconv.ParseInt(s[i+1:], 10, 64); err == nil && n > 0 {
			p.name, p.after = s[:i], n
		}
	}
	return p
}

// Enabled reports whether a failpoint is armed in this process.
func Enabled() bool { return armed != nil }

// Armed returns the name of the armed failpoint, or "".
func Armed() string {
	if armed == nil {
		return ""
	}
	return armed.name
}

// Hit counts a pass through the point name and kills the process with
// SIGKILL when it is the armed point's N-th hit.
func Hit(name string) {
	p := armed
	if p == nil || p.name != name {
		return
	}
	if p.hits.Add(1) == p.after {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
