package main

import (
	"bytes"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flowscript/flowscript"
)

// A client that connects to the holder's socket and sends nothing, or half
// a request line, must not keep the holder from stopping: close waits for
// the handlers, and a handler waited for the request line forever (found
// by FuzzHolderRequests). The holder drops such a connection after
// forwardTimeout, without an answer.
func TestHolderDropsSilentClient(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	eng, err := flowscript.Open(dir, flowscript.Options{Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	s, err := listen(eng, hclog.NewNullLogger(), true)
	if err != nil {
		t.Fatal(err)
	}
	silent, err := dialHolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	half, err := dialHolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	if _, err := half.Write([]byte(`{"args":["flowscript","runs"]`)); err != nil {
		t.Fatal(err)
	}
	// a third client's whole conversation: the holder accepts connections
	// in order, so by its end the first two have their handlers
	third, err := dialHolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code, err := converse(third, []string{"flowscript", "version"}, &out, &out); err != nil || code != 0 {
		t.Fatalf("version through the holder: exit %d, %v: %s", code, err, out.String())
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		s.close(&bytes.Buffer{}, true)
	}()
	select {
	case <-closed:
	case <-time.After(10 * forwardTimeout):
		t.Fatal("the holder did not stop: its handlers still wait for the request of clients that sent none")
	}
	// neither got an answer: the holder closed both connections
	for name, c := range map[string]net.Conn{"silent": silent, "half": half} {
		c.SetReadDeadline(time.Now().Add(10 * forwardTimeout))
		n, err := c.Read(make([]byte, 1))
		if n != 0 || err == nil {
			t.Errorf("%s client: read %d bytes, err %v; want the connection closed without an answer", name, n, err)
		}
	}
}
