package builtins

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/flowscript/flowscript/internal/procgroup"
)

// DefaultMaxOutputBytes caps each captured stream of a shell command.
const DefaultMaxOutputBytes = 1 << 20

// DefaultShellGrace is how long a command's process group has between
// SIGTERM and SIGKILL.
const DefaultShellGrace = 5 * time.Second

// stderrTailBytes is how much of the end of stderr is kept for messages.
const stderrTailBytes = 4 << 10

// ShellRequest is one command for RunShell.
type ShellRequest struct {
	// Command is run as /bin/sh -c Command.
	Command string
	// Env is added to the engine's own environment (and wins over it).
	Env map[string]string
	// Dir is the working directory; "" means the engine's.
	Dir string
	// Stdout and Stderr receive everything the command writes, uncapped
	// (the step's log). They may be nil, and may be the same writer: writes
	// to them are never concurrent.
	Stdout, Stderr io.Writer
	// Secrets are masked as *** in the captured Stdout, Stderr and
	// StderrTail, also where a cap cuts through one (the sinks are not
	// masked here: the caller gives masking writers).
	Secrets []string
	// Grace is the time between SIGTERM and SIGKILL; 0 means
	// DefaultShellGrace.
	Grace time.Duration
}

// ShellResult is what a command did.
type ShellResult struct {
	// Stdout and Stderr are the first maxBytes bytes of each stream.
	Stdout, Stderr string
	// ExitCode is the command's exit status; a command ended by a signal
	// reports 128 + the signal number, as shells do; -1 means it never ran.
	ExitCode int
	// Truncated reports that Stdout or Stderr were cut at maxBytes.
	Truncated bool
	// StderrTail is the end of stderr (up to 4 KiB), complete even when
	// Stderr was truncated.
	StderrTail string
}

// ExitError is nil for exit code 0, and otherwise says so with the last
// line the command wrote to stderr:
// "command exited with status 2: no such file".
func (r ShellResult) ExitError() error {
	if r.ExitCode == 0 {
		return nil
	}
	msg := fmt.Sprintf("command exited with status %d", r.ExitCode)
	if line := lastLine(r.StderrTail); line != "" {
		msg += ": " + line
	}
	return errors.New(msg)
}

// lastLine is the last non-blank line of s, shortened to 300 bytes.
func lastLine(s string) string {
	s = strings.TrimRight(s, " \t\r\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// RunShell runs req.Command with /bin/sh -c in its own process group,
// copying its output to req.Stdout and req.Stderr and capturing up to
// maxBytes of each stream (0 means DefaultMaxOutputBytes).
//
// When ctx ends, the whole process group gets SIGTERM, and SIGKILL after
// req.Grace; RunShell returns once the command has been reaped, with an
// error that wraps ctx.Err() and says "timed out" or "cancelled". Processes
// the command leaves behind in its group when it exits on its own are
// stopped the same way. A non-zero exit is not an error: see
// ShellResult.ExitCode and ExitError.
func RunShell(ctx context.Context, req ShellRequest, maxBytes int) (ShellResult, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxOutputBytes
	}
	grace := req.Grace
	if grace <= 0 {
		grace = DefaultShellGrace
	}
	res := ShellResult{ExitCode: -1}
	if err := ctx.Err(); err != nil {
		return res, contextError("command", ctx)
	}
	env := os.Environ()
	for k, v := range req.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return res, fmt.Errorf("environment variable name %q is not valid", k)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return res, fmt.Errorf("environment variable %s contains a NUL byte", k)
		}
		env = append(env, k+"="+v)
	}

	var sinkMu sync.Mutex
	stdout := newCapture(maxBytes, 0, req.Secrets, req.Stdout, &sinkMu)
	stderr := newCapture(maxBytes, stderrTailBytes, req.Secrets, req.Stderr, &sinkMu)

	outR, outW, err := os.Pipe()
	if err != nil {
		return res, fmt.Errorf("cannot run command: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return res, fmt.Errorf("cannot run command: %w", err)
	}
	cmd := exec.Command("/bin/sh", "-c", req.Command)
	cmd.Env = env
	cmd.Dir = req.Dir
	cmd.Stdin = nil // /dev/null
	cmd.Stdout = outW
	cmd.Stderr = errW
	cmd.SysProcAttr = procgroup.Attr()
	err = cmd.Start()
	// The child holds its own copies of the write ends now.
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return res, fmt.Errorf("cannot run command: %w", err)
	}
	pgid := cmd.Process.Pid

	var copiers sync.WaitGroup
	copiers.Add(2)
	go func() { defer copiers.Done(); stdout.readFrom(outR) }()
	go func() { defer copiers.Done(); stderr.readFrom(errR) }()

	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // the status is in cmd.ProcessState
		close(exited)
	}()

	cancelled := false
	select {
	case <-exited:
		// Stop whatever the command left running in its group.
		procgroup.Stop(pgid, grace, nil)
	case <-ctx.Done():
		cancelled = true
		procgroup.Stop(pgid, grace, exited)
		<-exited
	}

	// The group is gone, so the pipes are closed unless a process that left
	// the group (setsid) still holds them: do not wait for it for long.
	copied := make(chan struct{})
	go func() { copiers.Wait(); close(copied) }()
	select {
	case <-copied:
	case <-time.After(time.Second):
		outR.Close()
		errR.Close()
		<-copied
	}
	outR.Close()
	errR.Close()

	stdout.finish()
	stderr.finish()
	res.Stdout, res.Stderr = stdout.head.String(), stderr.head.String()
	res.Truncated = stdout.truncated || stderr.truncated
	res.StderrTail = string(stderr.tailBytes())
	res.ExitCode = exitCode(cmd.ProcessState)
	if cancelled {
		return res, contextError("command", ctx)
	}
	return res, nil
}

func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// contextError says why ctx ended, in the words "timed out" or "cancelled",
// wrapping ctx.Err() (and the cause, when one was given).
func contextError(what string, ctx context.Context) error {
	err := ctx.Err()
	word := "cancelled"
	if errors.Is(err, context.DeadlineExceeded) {
		word = "timed out"
	}
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return &ctxErr{msg: fmt.Sprintf("%s %s: %v", what, word, cause), err: err, cause: cause}
	}
	return &ctxErr{msg: what + " " + word, err: err}
}

type ctxErr struct {
	msg        string
	err, cause error
}

func (e *ctxErr) Error() string { return e.msg }
func (e *ctxErr) Unwrap() []error {
	if e.cause == nil {
		return []error{e.err}
	}
	return []error{e.err, e.cause}
}

// capture keeps the first max bytes of a stream (and, when tail > 0, its
// last tail bytes) and copies everything to sink.
type capture struct {
	max       int
	head      bytes.Buffer
	truncated bool
	tail      int
	ring      []byte
	masker    *Masker // nil without secrets
	sink      io.Writer
	mu        *sync.Mutex // serializes the sinks of one command
}

func (c *capture) readFrom(r io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			c.write(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// newCapture keeps the first max bytes of a stream and, if tail > 0, its
// last tail bytes, with secrets masked before anything is cut: what is
// kept holds no part of a secret. sink gets the stream as it comes.
func newCapture(max, tail int, secrets []string, sink io.Writer, mu *sync.Mutex) *capture {
	c := &capture{max: max, tail: tail, sink: sink, mu: mu}
	if len(secrets) > 0 {
		c.masker = NewMasker(writerFunc(c.keep), secrets)
	}
	return c
}

type writerFunc func(p []byte)

func (f writerFunc) Write(p []byte) (int, error) {
	f(p)
	return len(p), nil
}

func (c *capture) write(p []byte) {
	if c.masker != nil {
		_, _ = c.masker.Write(p)
	} else {
		c.keep(p)
	}
	if c.sink != nil {
		c.mu.Lock()
		_, _ = c.sink.Write(p) // a failing log must not block the command
		c.mu.Unlock()
	}
}

// finish keeps what the masker still held back, at the stream's end.
func (c *capture) finish() {
	if c.masker != nil {
		_ = c.masker.Close()
	}
}

func (c *capture) keep(p []byte) {
	if room := c.max - c.head.Len(); room > 0 {
		c.head.Write(p[:min(room, len(p))])
		if len(p) > room {
			c.truncated = true
		}
	} else {
		c.truncated = true
	}
	if c.tail > 0 {
		c.ring = append(c.ring, p...)
		if len(c.ring) > 2*c.tail {
			c.ring = append(c.ring[:0], c.ring[len(c.ring)-c.tail:]...)
		}
	}
}

func (c *capture) tailBytes() []byte {
	if len(c.ring) > c.tail {
		return c.ring[len(c.ring)-c.tail:]
	}
	return c.ring
}
