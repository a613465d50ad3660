package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/flowscript/flowscript"
)

// A process that lost the ownership of its NATS database exits 3, saying
// so, also when its command returns before the lost handler has run: with
// the error of a commit the fence refused ("run X stopped: a transition
// could not be stored") or of the store the handler closed. Before the
// loss, such an error is an ordinary failure. The ownership is lost for
// real here: the JetStream server stops, so the heartbeat cannot be
// renewed for the takeover time.
func TestExitAfterLostOwnership(t *testing.T) {
	srv, err := natsserver.NewServer(&natsserver.Options{
		JetStream: true, StoreDir: t.TempDir(), Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	defer srv.Shutdown()
	st, err := flowscript.OpenNATS("nats://"+srv.Addr().String()+"/lost", flowscript.NATSOptions{Durability: flowscript.Fast})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := st.Acquire(context.Background(), flowscript.AcquireOptions{Takeover: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	owned.Store(l)
	defer owned.Store(nil)

	refused := errors.New("run 01abc stopped: a transition could not be stored (store: guard failed); fix the cause, then continue it with flowscript resume")
	var out strings.Builder
	if code := exitAfter(refused, &out); code == exitLost || !strings.Contains(out.String(), "could not be stored") {
		t.Errorf("while owning: exit %d, stderr %q; want the command's own failure", code, out.String())
	}

	srv.Shutdown()
	srv.WaitForShutdown()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for l.Err() == nil {
		select {
		case <-ctx.Done():
			t.Fatal("the lease was not lost within a minute of its server stopping")
		case <-time.After(10 * time.Millisecond):
		}
	}
	// said once, with the reason, whichever of the handler and the
	// command comes first; never the command's own error
	for i, err := range []error{refused, errors.New("natsstore: store: store is closed")} {
		out.Reset()
		code := exitAfter(err, &out)
		said := strings.Contains(out.String(), "lost ownership of the database") && strings.Contains(out.String(), "could not be renewed")
		if code != exitLost || strings.Contains(out.String(), err.Error()) || said != (i == 0) || (i > 0 && out.Len() != 0) {
			t.Errorf("after the loss, %q: exit %d, stderr %q; want exit %d, the loss said the first time only", err, code, out.String(), exitLost)
		}
	}
}
