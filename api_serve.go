package flowscript

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
)

// The process that holds a database answers the flowscript commands of
// other processes on a unix socket in the database directory: a command
// that finds the database locked sends its whole invocation there.
//
// Wire format, one JSON object per line. The client sends
// {"args": [...], "cwd": ..., "env": {...}}; the server answers
// {"ack":true} at once, then {"out":..} and {"err":..} chunks, and
// {"exit":N} last.

const (
	socketName = "flowscript.sock"
	// socketAddrFile holds the socket's path when the database path is too
	// long for a unix socket address (about 108 bytes).
	socketAddrFile = "flowscript.sock.addr"
	maxSocketPath  = 100
)

// Invocation is a flowscript command another process sent to this one.
type Invocation struct {
	// Args is the command line, the program name first.
	Args []string `json:"args"`
	// Cwd and Env are the sender's working directory and environment.
	Cwd string            `json:"cwd"`
	Env map[string]string `json:"env"`
}

// ServeOptions tunes Serve. The zero value answers the inspecting and
// controlling commands: show, runs, tree, history, logs and cancel.
type ServeOptions struct {
	// Commands, when set, runs every invocation instead (the flowscript
	// CLI passes its own commands). It writes the command's output to
	// stdout and stderr and returns its exit code; ctx ends when the
	// sender goes away.
	Commands func(ctx context.Context, inv Invocation, stdout, stderr io.Writer) int
}

// Serve makes the engine's database reachable from the flowscript
// command of other processes: while this engine holds the database,
// `flowscript show/runs/tree/history/logs/cancel --db DIR` (DIR the
// directory Open was given) are answered by this engine, for the runs it
// runs. It returns once the socket is bound; Close unbinds it.
func (e *Engine) Serve(opts ServeOptions) error {
	if e.dir == "" {
		return errors.New("flowscript: Serve needs an engine opened on a directory (Open), not in memory")
	}
	if e.srv != nil {
		return errors.New("flowscript: Serve was called already")
	}
	if opts.Commands == nil {
		opts.Commands = e.answer
	}
	s, err := listen(e.dir, opts.Commands)
	if err != nil {
		return err
	}
	e.srv = s
	return nil
}

type server struct {
	ln       net.Listener
	path     string
	addrFile string
	run      func(ctx context.Context, inv Invocation, stdout, stderr io.Writer) int
	wg       sync.WaitGroup
}

// listen binds the socket of the database dir. Only the lock holder calls
// it, so a socket file already there is stale (its process was killed)
// and is replaced.
func listen(dir string, run func(context.Context, Invocation, io.Writer, io.Writer) int) (*server, error) {
	abs, err := filepath.Abs(filepath.Join(dir, socketName))
	if err != nil {
		return nil, err
	}
	s := &server{path: abs, run: run}
	addrFile := filepath.Join(dir, socketAddrFile)
	os.Remove(addrFile)
	if len(abs) > maxSocketPath {
		sum := sha256.Sum256([]byte(abs))
		s.path = filepath.Join(os.TempDir(), "flowscript-"+hex.EncodeToString(sum[:8])+".sock")
		if err := os.WriteFile(addrFile, []byte(s.path), 0o600); err != nil {
			return nil, fmt.Errorf("flowscript: cannot write %s: %v", addrFile, err)
		}
		s.addrFile = addrFile
	}
	os.Remove(s.path)
	ln, err := net.Listen("unix", s.path)
	if err != nil {
		return nil, fmt.Errorf("flowscript: cannot listen on %s for other commands: %v", s.path, err)
	}
	os.Chmod(s.path, 0o600)
	s.ln = ln
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

func (s *server) accept() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(conn)
		}()
	}
}

// close stops accepting and waits for the commands being answered.
func (s *server) close() {
	s.ln.Close()
	os.Remove(s.path)
	if s.addrFile != "" {
		os.Remove(s.addrFile)
	}
	s.wg.Wait()
}

type frame struct {
	Ack bool `json:"ack,omitempty"`
	// PID is the holder's process id, sent with the ack.
	PID  int    `json:"pid,omitempty"`
	Out  string `json:"out,omitempty"`
	Err  string `json:"err,omitempty"`
	Exit *int   `json:"exit,omitempty"`
}

func (s *server) handle(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	var inv Invocation
	line, err := r.ReadBytes('\n')
	if err != nil || json.Unmarshal(line, &inv) != nil || len(inv.Args) == 0 {
		return
	}
	fw := &frameWriter{enc: json.NewEncoder(conn)}
	if fw.send(frame{Ack: true, PID: os.Getpid()}) != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// the client sends nothing more: a read ends when it goes away
		io.Copy(io.Discard, r)
		cancel()
	}()
	code := s.run(ctx, inv, fw.stream(false), fw.stream(true))
	fw.send(frame{Exit: &code})
}

// frameWriter sends frames from many goroutines.
type frameWriter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (f *frameWriter) send(fr frame) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.enc.Encode(fr)
}

type streamWriter struct {
	f     *frameWriter
	isErr bool
}

func (f *frameWriter) stream(isErr bool) io.Writer { return streamWriter{f, isErr} }

func (w streamWriter) Write(p []byte) (int, error) {
	fr := frame{Out: string(p)}
	if w.isErr {
		fr = frame{Err: string(p)}
	}
	if err := w.f.send(fr); err != nil {
		return 0, err
	}
	return len(p), nil
}

// answer runs the commands an embedding program serves by default.
func (e *Engine) answer(ctx context.Context, inv Invocation, stdout, stderr io.Writer) int {
	cmd, args, flags, err := parseInvocation(inv.Args)
	if err != nil {
		fmt.Fprintf(stderr, "flowscript: %v\n", err)
		return 2
	}
	oneRun := func() (string, bool) {
		if len(args) != 1 {
			fmt.Fprintf(stderr, "flowscript %s: name exactly one RUN\n", cmd)
			return "", false
		}
		return args[0], true
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "flowscript: %v\n", err)
		if errors.Is(err, ErrInput) {
			return 2
		}
		return 1
	}
	asJSON := flags["json"] == "true"
	switch cmd {
	case "show":
		id, ok := oneRun()
		if !ok {
			return 2
		}
		rec, err := e.Get(ctx, id)
		if err != nil {
			return fail(err)
		}
		if asJSON {
			writeJSON(stdout, rec)
			return 0
		}
		fmt.Fprintf(stdout, "run %s\n  workflow: %s version %d\n  status: %s\n", rec.ID, rec.Workflow, rec.Version, rec.Status)
		if rec.Error != nil {
			fmt.Fprintf(stdout, "  error: %s\n", *rec.Error)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  STEP\tKIND\tSTATUS\tATTEMPT")
		for _, st := range rec.Steps {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\n", st.ID, st.Kind, st.Status, st.Attempt)
		}
		tw.Flush()
		return 0
	case "runs":
		runs, err := e.List(ctx, ListFilter{Status: RunStatus(flags["status"]), Workflow: flags["workflow"]})
		if err != nil {
			return fail(err)
		}
		if asJSON {
			writeJSON(stdout, runs)
			return 0
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tWORKFLOW\tVERSION\tSTATUS")
		for i := len(runs) - 1; i >= 0; i-- { // newest first
			r := runs[i]
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", r.ID, r.Workflow, r.Version, r.Status)
		}
		tw.Flush()
		return 0
	case "tree":
		id, ok := oneRun()
		if !ok {
			return 2
		}
		n, err := e.Tree(ctx, id)
		if err != nil {
			return fail(err)
		}
		var walk func(n *TreeNode, indent string)
		walk = func(n *TreeNode, indent string) {
			fmt.Fprintf(stdout, "%s%s  %s v%d  %s\n", indent, n.Run.ID, n.Run.Workflow, n.Run.Version, n.Run.Status)
			for _, c := range n.Children {
				walk(c, indent+"  ")
			}
		}
		walk(n, "")
		return 0
	case "history":
		id, ok := oneRun()
		if !ok {
			return 2
		}
		evs, err := e.History(ctx, id)
		if err != nil {
			return fail(err)
		}
		if asJSON {
			writeJSON(stdout, evs)
			return 0
		}
		for _, ev := range evs {
			fmt.Fprintf(stdout, "%d %s %s %s %s\n", ev.Seq, ev.Time.UTC().Format(TimeFormat), ev.Type, ev.Step, ev.Status)
		}
		return 0
	case "logs":
		id, ok := oneRun()
		if !ok {
			return 2
		}
		logs, err := e.Logs(ctx, id, flags["step"])
		if err != nil {
			return fail(err)
		}
		for _, l := range logs {
			fmt.Fprintf(stdout, "--- %s (attempt %d)\n%s", l.Step, l.Attempt, l.Text)
			if l.Text != "" && !strings.HasSuffix(l.Text, "\n") {
				fmt.Fprintln(stdout)
			}
		}
		return 0
	case "cancel":
		id, ok := oneRun()
		if !ok {
			return 2
		}
		rec, err := e.Cancel(ctx, id)
		if errors.Is(err, ErrAlreadyEnded) {
			fmt.Fprintf(stdout, "run %s already ended\n", id)
			return 0
		}
		if err != nil {
			return fail(err)
		}
		final, err := e.Wait(ctx, rec.ID)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "%s %s\n", final.ID, final.Status)
		return 0
	}
	fmt.Fprintf(stderr, "flowscript: %q is not available while this program holds the database; it answers %s\n", cmd, strings.Join(servedCommands, ", "))
	return 2
}

var servedCommands = []string{"show", "runs", "tree", "history", "logs", "cancel"}

func served(cmd string) bool {
	for _, c := range servedCommands {
		if c == cmd {
			return true
		}
	}
	return false
}

// parseInvocation splits a command line into the command, its
// positional arguments and its flags (the global flags are dropped: the
// database is this engine's).
func parseInvocation(argv []string) (cmd string, args []string, flags map[string]string, err error) {
	flags = map[string]string{}
	var unknown error
	withValue := map[string]bool{"db": true, "log-level": true, "log-format": true, "step": true, "status": true, "workflow": true, "limit": true, "since": true}
	bools := map[string]bool{"json": true, "quiet": true}
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			if cmd == "" {
				cmd = a
			} else {
				args = append(args, a)
			}
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case bools[name]:
			if !hasValue {
				value = "true"
			}
		case withValue[name]:
			if !hasValue {
				if i+1 >= len(argv) {
					return "", nil, nil, fmt.Errorf("flag needs an argument: --%s", name)
				}
				i++
				value = argv[i]
			}
		default:
			// said once the command is known: a command this engine does
			// not serve is refused as such, whatever its flags
			if unknown == nil {
				unknown = fmt.Errorf("unknown flag --%s", name)
			}
			continue
		}
		flags[name] = value
	}
	if cmd == "" {
		return "", nil, nil, errors.New("name a command")
	}
	if unknown != nil && served(cmd) {
		return "", nil, nil, unknown
	}
	return cmd, args, flags, nil
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
