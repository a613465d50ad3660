package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flowscript/flowscript"
)

// FuzzHolderAnswers plays a holder that answers a forwarded command with
// arbitrary bytes (frames cut short, garbage, huge or missing exit codes):
// the forwarding side must never panic or hang, and must end with an
// exit code or an error once the holder closes the connection.
//
//	go test ./cmd/flowscript -run '^$' -fuzz FuzzHolderAnswers -fuzztime 10m -parallel 1
func FuzzHolderAnswers(f *testing.F) {
	f.Add([]byte("{\"ack\":true}\n{\"out\":\"hi\\n\"}\n{\"exit\":0}\n"))
	f.Add([]byte("{\"ack\":true}\n{\"err\":\"no\\n\"}\n{\"exit\":2}\n"))
	f.Add([]byte("{\"ack\":true}\n{\"out\":\"cut"))
	f.Add([]byte("{\"ack\":false}\n"))
	f.Add([]byte("{\"ack\":true}\n{\"exit\":99999999999999999999}\n"))
	f.Add([]byte("\n\n\n"))
	f.Fuzz(func(t *testing.T, answer []byte) {
		client, holder := net.Pipe()
		go func() {
			defer holder.Close()
			// read the request line, as the holder does, then answer
			if _, err := bufio.NewReader(holder).ReadBytes('\n'); err != nil {
				return
			}
			holder.Write(answer)
		}()
		var stdout, stderr bytes.Buffer
		done := make(chan struct{})
		go func() {
			defer close(done)
			converse(client, []string{"flowscript", "runs"}, &stdout, &stderr)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("converse did not end after the holder closed the connection (answer %q)", answer)
		}
	})
}

// FuzzHolderRequests is the other side: a client that sends the holder of
// a real Badger database arbitrary bytes as its request (lines cut short,
// not JSON, JSON of the wrong shape, huge or odd args, env and sizes).
// The holder must never panic or hang: a request it cannot read gets no
// answer at all; one it can read gets an ack first, every line it sends
// is one frame, and the last is an exit code.
//
// Commands that may block by design (watch, logs --follow, serve, repl),
// walk or write the file system outside the database (test, run, start,
// register) or reach the network (--store, nats) are not sent on: the
// socket belongs to the database's own user, and what is fuzzed here is
// the protocol, not the commands.
//
//	go test ./cmd/flowscript -run '^$' -fuzz FuzzHolderRequests -fuzztime 10m -parallel 1
func FuzzHolderRequests(f *testing.F) {
	dir := f.TempDir()
	eng, err := flowscript.Open(filepath.Join(dir, "db"), flowscript.Options{Logger: hclog.NewNullLogger()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { eng.Close() })
	prog, err := eng.Load(context.Background(), flowscript.Script("w.star", `
workflow(name = "w", params = {"n": 1})
task("a", lambda ctx: {"n": ctx.params["n"]})
`), flowscript.LoadOptions{})
	if err != nil {
		f.Fatal(err)
	}
	rec, err := eng.Run(context.Background(), prog, flowscript.RunOptions{})
	if err != nil {
		f.Fatal(err)
	}
	// a request cut short is dropped after this wait, not forwardTimeout
	defer func(d time.Duration) { holderRequestTimeout = d }(holderRequestTimeout)
	holderRequestTimeout = 50 * time.Millisecond
	ln := newPipeListener()
	s, err := serveOn(ln, eng, hclog.NewNullLogger(), true)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.close(io.Discard, true) })

	for _, args := range [][]string{
		{"flowscript", "runs"}, {"flowscript", "runs", "--json"}, {"flowscript", "show", rec.ID},
		{"flowscript", "history", rec.ID[:6], "--json"}, {"flowscript", "tree", rec.ID},
		{"flowscript", "logs", rec.ID}, {"flowscript", "cancel", rec.ID}, {"flowscript", "defs"},
		{"flowscript", "rerun", rec.ID, "--from", "a", "--dry-run"}, {"flowscript", "show"},
		{"flowscript", "nosuch"}, {"flowscript", "version"}, {"flowscript"},
	} {
		line, _ := json.Marshal(flowscript.Invocation{Args: args, Cwd: dir, Env: map[string]string{"HOME": dir}})
		f.Add(append(line, '\n'))
	}
	f.Add([]byte(`{"args":["flowscript","runs"],"size":{"rows":-1,"cols":99999999999}}` + "\n"))
	f.Add([]byte(`{"args":[],"cwd":"` + dir + `"}` + "\n"))
	f.Add([]byte(`{"args":null}` + "\n"))
	f.Add([]byte(`{"args":["flowscript","show","` + strings.Repeat("0", 5000) + `"]}` + "\n"))
	f.Add([]byte(`{"args":["flowscript","runs"]`))
	f.Add([]byte("not json\n"))
	f.Add([]byte("\n"))

	blocked := map[string]bool{"watch": true, "serve": true, "repl": true, "test": true, "run": true,
		"start": true, "register": true, "nats": true, "resume": true}
	f.Fuzz(func(t *testing.T, data []byte) {
		// what the holder will read: the first line
		first := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			first = data[:i+1]
		}
		var req flowscript.Invocation
		valid := json.Unmarshal(first, &req) == nil && len(req.Args) > 0 && bytes.HasSuffix(first, []byte("\n"))
		if valid {
			for _, a := range req.Args[1:] {
				a = strings.TrimLeft(a, "-")
				if name, _, _ := strings.Cut(a, "="); blocked[a] || name == "store" || name == "follow" || name == "f" ||
					name == "db" || name == "workspace" {
					t.Skip()
				}
			}
		}
		client, holder := net.Pipe()
		handled := make(chan struct{})
		ln.conns <- &signalConn{Conn: holder, closed: handled}
		go func() {
			client.Write(data)
		}()
		var frames [][]byte
		read := make(chan error, 1)
		go func() {
			r := bufio.NewReader(client)
			for {
				line, err := r.ReadBytes('\n')
				if len(line) > 0 {
					frames = append(frames, line)
				}
				if err != nil {
					read <- err
					return
				}
				var fr flowscript.Frame
				if json.Unmarshal(line, &fr) == nil && fr.Exit != nil {
					read <- nil
					return
				}
			}
		}()
		select {
		case <-read:
		case <-time.After(20 * time.Second):
			client.Close()
			t.Fatalf("the holder neither answered nor closed the connection within 20s (request %q)", first)
		}
		client.Close()
		select {
		case <-handled:
		case <-time.After(20 * time.Second):
			t.Fatalf("the holder's handler did not return after the client went away (request %q)", first)
		}
		if !valid {
			if len(frames) > 0 {
				t.Fatalf("an unreadable request %q got an answer: %q", first, frames)
			}
			return
		}
		if len(frames) < 2 {
			t.Fatalf("request %q: %d frames, want an ack and an exit code: %q", first, len(frames), frames)
		}
		for i, line := range frames {
			var fr flowscript.Frame
			if err := json.Unmarshal(line, &fr); err != nil {
				t.Fatalf("request %q: frame %d is not one JSON object: %q", first, i, line)
			}
			switch {
			case i == 0 && (!fr.Ack || fr.PID != os.Getpid()):
				t.Fatalf("request %q: the first frame %q is not the ack with the holder's pid", first, line)
			case i == len(frames)-1 && fr.Exit == nil:
				t.Fatalf("request %q: the last frame %q is not an exit code", first, line)
			case i > 0 && i < len(frames)-1 && (fr.Ack || fr.Exit != nil):
				t.Fatalf("request %q: frame %d %q: an ack or exit in the middle", first, i, line)
			}
		}
	})
}

// pipeListener hands the server the holder's ends of net.Pipe connections.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// signalConn closes closed when the server's handler closes the
// connection (it does when it returns).
type signalConn struct {
	net.Conn
	closed chan struct{}
	once   sync.Once
}

func (c *signalConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
