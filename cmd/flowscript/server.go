package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flowscript/flowscript"
)

// The process that holds a database answers the commands of other
// processes on a unix socket in the database directory. A command that
// finds the database locked sends its whole invocation there; the holder
// runs it against its own engine and streams the output back.
//
// Wire format, one JSON object per line. The client sends a request; the
// server answers {"ack":true} at once, then {"out":..} and {"err":..}
// chunks, and {"exit":N} last.

const (
	socketName = "flowscript.sock"
	// socketAddrFile holds the socket's path when the database path is too
	// long for a unix socket address (about 108 bytes).
	socketAddrFile = "flowscript.sock.addr"
	maxSocketPath  = 100
	// maxRequest bounds a request line (args, cwd and the environment).
	maxRequest = 16 << 20
)

type request struct {
	Args []string          `json:"args"`
	Cwd  string            `json:"cwd"`
	Env  map[string]string `json:"env"`
	// TTY: the client's stdout is a terminal, of Size.
	TTY  bool     `json:"tty,omitempty"`
	Size termSize `json:"size"`
}

type frame struct {
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

type server struct {
	ln       net.Listener
	path     string
	addrFile string
	eng      *flowscript.Engine
	hub      *hub
	log      hclog.Logger
	wg       sync.WaitGroup
	// serving: the holder is flowscript serve.
	serving bool
	// stop ends the forwarded commands still running (serve stopping).
	ctx  context.Context
	stop context.CancelFunc

	// requestTimeout bounds the wait for a connection's request line (0:
	// forwardTimeout). A client sends it at once; one that connects and
	// sends nothing, or half a line, must not keep a handler (and so
	// close, which waits for the handlers) waiting forever.
	requestTimeout time.Duration

	mu     sync.Mutex
	active map[int]string // forwarded commands running now, as typed
	nextID int
}

// listen binds the socket of the database dir. Only the lock holder calls
// it, so a socket file already there is stale (its process was killed)
// and is replaced.
func listen(dir string, eng *flowscript.Engine, h *hub, log hclog.Logger, serving bool) (*server, error) {
	abs, err := filepath.Abs(filepath.Join(dir, socketName))
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &server{path: abs, eng: eng, hub: h, log: log, serving: serving, ctx: ctx, stop: stop, active: map[int]string{}}
	addrFile := filepath.Join(dir, socketAddrFile)
	os.Remove(addrFile)
	if len(abs) > maxSocketPath {
		sum := sha256.Sum256([]byte(abs))
		s.path = filepath.Join(os.TempDir(), "flowscript-"+hex.EncodeToString(sum[:8])+".sock")
		if err := os.WriteFile(addrFile, []byte(s.path), 0o600); err != nil {
			return nil, fmt.Errorf("cannot write %s: %v", addrFile, err)
		}
		s.addrFile = addrFile
	}
	os.Remove(s.path)
	ln, err := net.Listen("unix", s.path)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s for other commands: %v", s.path, err)
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

// close stops accepting commands and waits for the forwarded commands
// still running: a run sent here by another terminal is finished, not
// dropped, and stderr says what this process still waits for. With
// stopCommands (serve stopping), those commands are ended first: the runs
// they follow stay unfinished. Commands that arrive later open the
// database themselves.
func (s *server) close(stderr io.Writer, stopCommands bool) {
	s.ln.Close()
	os.Remove(s.path)
	if s.addrFile != "" {
		os.Remove(s.addrFile)
	}
	if stopCommands {
		s.stop()
	} else if waiting := s.running(); len(waiting) > 0 {
		fmt.Fprintf(stderr, "flowscript: still serving %s from other terminals (%s); this process exits when %s\n",
			plural(len(waiting), "command"), strings.Join(waiting, "; "), map[bool]string{true: "it ends", false: "they end"}[len(waiting) == 1])
	}
	s.wg.Wait()
	s.stop()
}

// running lists the forwarded commands running now, as typed.
func (s *server) running() []string {
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

func (s *server) handle(conn net.Conn) {
	defer conn.Close()
	lr := &io.LimitedReader{R: conn, N: maxRequest}
	r := bufio.NewReader(lr)
	var req request
	timeout := s.requestTimeout
	if timeout <= 0 {
		timeout = forwardTimeout
	}
	conn.SetReadDeadline(time.Now().Add(timeout))
	line, err := r.ReadBytes('\n')
	if err != nil || json.Unmarshal(line, &req) != nil || len(req.Args) == 0 {
		return
	}
	conn.SetReadDeadline(time.Time{})
	lr.N = 1 << 62
	fw := &frameWriter{enc: json.NewEncoder(conn)}
	if fw.send(frame{Ack: true, PID: os.Getpid()}) != nil {
		return
	}
	s.mu.Lock()
	id := s.nextID
	s.nextID++
	s.active[id] = "flowscript " + strings.Join(req.Args[1:], " ")
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
	s.log.Debug("serving a forwarded command", "args", strings.Join(req.Args[1:], " "))
	env := &appEnv{shared: s.eng, hub: s.hub, ctx: ctx, cwd: req.Cwd, environ: req.Env,
		serving: s.serving, tty: req.TTY, size: req.Size, onRun: func(id string) { fw.send(frame{Run: id}) },
		holderStopping: func() bool { return s.ctx.Err() != nil }}
	code := runWithEnv(req.Args, strings.NewReader(""), fw.stream(false), fw.stream(true), env)
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
