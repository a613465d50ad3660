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
	"strings"
	"sync"

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
)

type request struct {
	Args []string          `json:"args"`
	Cwd  string            `json:"cwd"`
	Env  map[string]string `json:"env"`
}

type frame struct {
	Ack  bool   `json:"ack,omitempty"`
	Out  string `json:"out,omitempty"`
	Err  string `json:"err,omitempty"`
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
}

// listen binds the socket of the database dir. Only the lock holder calls
// it, so a socket file already there is stale (its process was killed)
// and is replaced.
func listen(dir string, eng *flowscript.Engine, h *hub, log hclog.Logger) (*server, error) {
	abs, err := filepath.Abs(filepath.Join(dir, socketName))
	if err != nil {
		return nil, err
	}
	s := &server{path: abs, eng: eng, hub: h, log: log}
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
// dropped. Commands that arrive later open the database themselves.
func (s *server) close() {
	s.ln.Close()
	os.Remove(s.path)
	if s.addrFile != "" {
		os.Remove(s.addrFile)
	}
	s.wg.Wait()
}

func (s *server) handle(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	var req request
	line, err := r.ReadBytes('\n')
	if err != nil || json.Unmarshal(line, &req) != nil || len(req.Args) == 0 {
		return
	}
	fw := &frameWriter{enc: json.NewEncoder(conn)}
	if fw.send(frame{Ack: true}) != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// the client sends nothing more: a read ends when it goes away
		io.Copy(io.Discard, r)
		cancel()
	}()
	s.log.Debug("serving a forwarded command", "args", strings.Join(req.Args[1:], " "))
	env := &appEnv{shared: s.eng, hub: s.hub, ctx: ctx, cwd: req.Cwd, environ: req.Env}
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
