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
	"sort"
	"strings"
	"sync"
	"time"
)

// The process that holds a database answers the flowscript commands of
// other processes on a unix socket in the database directory: a command
// that finds the database locked sends its whole invocation there, and
// the holder runs it against its own engine and streams the output back.
// The flowscript CLI's holders (run, resume, serve) and an embedding
// program's Engine.Serve are the same server; only the commands they
// answer differ.
//
// Wire format, one JSON object per line. The client sends an Invocation;
// the server answers {"ack":true,"pid":N} at once, then {"out":..},
// {"err":..} and {"run":..} frames, and {"exit":N} last. A client that
// goes away (closes its end) ends the command's context.

const (
	// SocketName is the socket's file in the database directory.
	SocketName = "flowscript.sock"
	// SocketAddrFile, in the database directory, holds the socket's path
	// when the database path is too long for a unix socket address (about
	// 108 bytes): the socket is then in the temporary directory.
	SocketAddrFile = "flowscript.sock.addr"
	// MaxSocketPath is the longest socket path used as it is.
	MaxSocketPath = 100
)

// Invocation is a flowscript command another process sent to this one.
type Invocation struct {
	// Args is the command line, the program name first.
	Args []string `json:"args"`
	// Cwd and Env are the sender's working directory and environment.
	Cwd string            `json:"cwd"`
	Env map[string]string `json:"env"`
	// TTY: the sender's standard output is a terminal, of Size.
	TTY  bool     `json:"tty,omitempty"`
	Size TermSize `json:"size"`
}

// TermSize is a terminal's size in characters; zero where unknown.
type TermSize struct {
	Cols int `json:"cols,omitempty"`
	Rows int `json:"rows,omitempty"`
}

// Frame is one line of a server's answer. Exactly one field is set,
// except that the first frame is an Ack with the PID.
type Frame struct {
	Ack bool `json:"ack,omitempty"`
	// PID is the holder's process id, sent with the ack.
	PID int    `json:"pid,omitempty"`
	Out string `json:"out,omitempty"`
	Err string `json:"err,omitempty"`
	// Run names the run the command follows (run, rerun, watch), so that
	// the client's Ctrl-C can say where it goes on.
	Run  string `json:"run,omitempty"`
	Exit *int   `json:"exit,omitempty"`
}

// A Call is one invocation being answered: the command line, where its
// output goes, and how to tell the sender which run it follows.
type Call struct {
	Invocation
	// Stdout and Stderr reach the sender's standard output and error.
	Stdout, Stderr io.Writer
	fw             *frameWriter
	srv            *Server
}

// Follow tells the sender that the command follows run id: when its user
// presses Ctrl-C, the sender says that the run goes on in this process
// and how to watch or cancel it.
func (c *Call) Follow(id string) { c.fw.send(Frame{Run: id}) }

// Stopping reports that the server is ending the commands it answers
// (Server.Shutdown, or Engine.Close): a command whose context ended for
// that reason may tell its sender what stays unfinished.
func (c *Call) Stopping() bool { return c.srv.ctx.Err() != nil }

// ServeOptions tunes Serve and Listen. The zero value answers the
// inspecting and controlling commands on the socket of the database
// directory: show, runs, tree, history, logs, watch and cancel.
type ServeOptions struct {
	// Commands, when set, answers every invocation instead (the flowscript
	// CLI passes its own commands). It writes the command's output to
	// call.Stdout and call.Stderr and returns its exit code; ctx ends when
	// the sender goes away or the server shuts down.
	Commands func(ctx context.Context, call *Call) int
	// Listener, when set, is where invocations arrive instead of the
	// socket in the database directory (the flowscript CLI answers on a
	// listener bridged over NATS for a database on NATS JetStream). The
	// server closes it. An engine not opened on a directory needs one.
	Listener net.Listener
	// Waiting, when set, is called by Server.Close with the commands still
	// being answered, as typed ("flowscript run x.star"), before it waits
	// for them.
	Waiting func(commands []string)
	// RequestTimeout bounds the wait for a connection's invocation line
	// (0: 5 s). A client sends it at once; one that connects and sends
	// nothing, or half a line, is dropped without an answer, so that it
	// cannot keep Close (which waits for the commands) waiting for ever.
	RequestTimeout time.Duration
}

const (
	// maxInvocation bounds an invocation line (args, cwd and environment).
	maxInvocation = 16 << 20
	// defaultRequestTimeout is ServeOptions.RequestTimeout's default.
	defaultRequestTimeout = 5 * time.Second
)

// A Server answers the flowscript commands of other processes for an
// engine (Engine.Listen).
type Server struct {
	ln       net.Listener
	path     string // the socket file, removed on close; "" for a given Listener
	addrFile string
	opts     ServeOptions
	wg       sync.WaitGroup
	once     sync.Once
	// ctx is every command's parent: Shutdown ends it.
	ctx  context.Context
	stop context.CancelFunc

	mu     sync.Mutex
	active map[int]string // commands being answered, as typed
	nextID int
}

// Serve makes the engine's database reachable from the flowscript
// command of other processes: while this engine holds the database,
// `flowscript show/runs/tree/history/logs/watch/cancel --db DIR` (DIR the
// directory Open was given) are answered by this engine, for the runs it
// runs. It returns once the socket is bound; Close unbinds it. Listen is
// the same with the server's lifetime in the caller's hands.
func (e *Engine) Serve(opts ServeOptions) error {
	if e.srv != nil {
		return errors.New("flowscript: Serve was called already")
	}
	s, err := e.Listen(opts)
	if err != nil {
		return err
	}
	e.srv = s
	return nil
}

// Listen starts a server that answers the flowscript commands of other
// processes on the socket of the engine's database directory (or on
// opts.Listener) until it is closed. Only the process that holds the
// database may bind its socket, so a socket file already there is stale
// (its process was killed) and is replaced.
func (e *Engine) Listen(opts ServeOptions) (*Server, error) {
	if opts.Commands == nil {
		opts.Commands = e.answer
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Server{ln: opts.Listener, opts: opts, ctx: ctx, stop: stop, active: map[int]string{}}
	if s.ln == nil {
		if e.dir == "" {
			stop()
			return nil, errors.New("flowscript: Listen needs an engine opened on a directory (Open), or a ServeOptions.Listener")
		}
		if err := s.bind(e.dir); err != nil {
			stop()
			return nil, err
		}
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// bind listens on the socket of the database dir.
func (s *Server) bind(dir string) error {
	abs, err := filepath.Abs(filepath.Join(dir, SocketName))
	if err != nil {
		return err
	}
	s.path = abs
	addrFile := filepath.Join(dir, SocketAddrFile)
	os.Remove(addrFile)
	if len(abs) > MaxSocketPath {
		sum := sha256.Sum256([]byte(abs))
		s.path = filepath.Join(os.TempDir(), "flowscript-"+hex.EncodeToString(sum[:8])+".sock")
		if err := os.WriteFile(addrFile, []byte(s.path), 0o600); err != nil {
			return fmt.Errorf("cannot write %s: %v", addrFile, err)
		}
		s.addrFile = addrFile
	}
	os.Remove(s.path)
	ln, err := net.Listen("unix", s.path)
	if err != nil {
		return fmt.Errorf("cannot listen on %s for other commands: %v", s.path, err)
	}
	os.Chmod(s.path, 0o600)
	s.ln = ln
	return nil
}

// SocketPath is the socket of the database directory dir that a client
// dials: the path in SocketAddrFile when there is one, else the socket in
// dir, made relative to the working directory when the absolute path is
// too long for a socket address.
func SocketPath(dir string) string {
	path := filepath.Join(dir, SocketName)
	if data, err := os.ReadFile(filepath.Join(dir, SocketAddrFile)); err == nil {
		return strings.TrimSpace(string(data))
	}
	if abs, err := filepath.Abs(path); err == nil && len(abs) > MaxSocketPath {
		if wd, err := os.Getwd(); err == nil {
			if rel, err := filepath.Rel(wd, abs); err == nil && len(rel) < len(abs) {
				return rel
			}
		}
	}
	return path
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(conn)
		}()
	}
}

// unbind stops accepting: commands sent afterwards open the database
// themselves once it is free.
func (s *Server) unbind() {
	s.once.Do(func() {
		s.ln.Close()
		if s.path != "" {
			os.Remove(s.path)
		}
		if s.addrFile != "" {
			os.Remove(s.addrFile)
		}
	})
}

// Close stops accepting commands and waits for the ones being answered
// to end (a run another terminal started here is finished, not dropped);
// ServeOptions.Waiting hears which they are.
func (s *Server) Close() error {
	s.unbind()
	if waiting := s.Active(); len(waiting) > 0 && s.opts.Waiting != nil {
		s.opts.Waiting(waiting)
	}
	s.wg.Wait()
	s.stop()
	return nil
}

// Shutdown stops accepting commands and ends the ones being answered
// (their context ends; Call.Stopping reports it), then waits for them:
// the runs they follow stay unfinished.
func (s *Server) Shutdown() error {
	s.unbind()
	s.stop()
	s.wg.Wait()
	return nil
}

// Active lists the commands being answered now, as typed, oldest first.
func (s *Server) Active() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int, 0, len(s.active))
	for id := range s.active {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = s.active[id]
	}
	return out
}

// serveConn answers the one invocation a client sends on conn: it reads
// the request, acknowledges it, runs the command and streams its frames
// back until the command ends or the client goes away.
func (s *Server) serveConn(conn net.Conn) {
	defer conn.Close()
	lr := &io.LimitedReader{R: conn, N: maxInvocation}
	r := bufio.NewReader(lr)
	var inv Invocation
	timeout := s.opts.RequestTimeout
	if timeout <= 0 {
		timeout = defaultRequestTimeout
	}
	conn.SetReadDeadline(time.Now().Add(timeout))
	line, err := r.ReadBytes('\n')
	if err != nil || json.Unmarshal(line, &inv) != nil || len(inv.Args) == 0 {
		return
	}
	conn.SetReadDeadline(time.Time{})
	lr.N = 1 << 62
	fw := &frameWriter{enc: json.NewEncoder(conn)}
	if fw.send(Frame{Ack: true, PID: os.Getpid()}) != nil {
		return
	}
	s.mu.Lock()
	id := s.nextID
	s.nextID++
	s.active[id] = strings.Join(append([]string{"flowscript"}, inv.Args[1:]...), " ")
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.active, id)
		s.mu.Unlock()
	}()
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	go func() {
		// the client sends nothing more: a read ends when it goes away
		io.Copy(io.Discard, r)
		cancel()
	}()
	call := &Call{Invocation: inv, Stdout: fw.stream(false), Stderr: fw.stream(true), fw: fw, srv: s}
	code := s.opts.Commands(ctx, call)
	fw.send(Frame{Exit: &code})
}

// frameWriter sends frames from many goroutines.
type frameWriter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (f *frameWriter) send(fr Frame) error {
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
	fr := Frame{Out: string(p)}
	if w.isErr {
		fr = Frame{Err: string(p)}
	}
	if err := w.f.send(fr); err != nil {
		return 0, err
	}
	return len(p), nil
}
