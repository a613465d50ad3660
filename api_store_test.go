package flowscript_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/flowscript/flowscript"
)

// startJetStream runs a JetStream server on a random loopback port for
// the test and returns its URL.
func startJetStream(t *testing.T) string {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		JetStream: true, StoreDir: t.TempDir(), Host: "127.0.0.1", Port: server.RANDOM_PORT,
		NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return "nats://" + srv.Addr().String()
}

// A database on NATS through the root API alone: the owner's engine runs
// a workflow; a second process sees the owner, cannot take a live
// database, reads the run with a read-only engine that refuses to start
// one; once the owner's engine closes (releasing the lease) the database
// is free again.
func TestNATSStoreOwnership(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a JetStream server")
	}
	url := startJetStream(t) + "/apitest"
	ctx := context.Background()
	st, err := flowscript.OpenNATS(url, flowscript.NATSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Stream() != "apitest" {
		t.Errorf("Stream() = %q, want apitest (the URL's name)", st.Stream())
	}
	if _, ok, err := st.Owner(ctx); err != nil || ok {
		t.Fatalf("a new database has an owner: %v %v", ok, err)
	}
	l, err := st.Acquire(ctx, flowscript.AcquireOptions{Takeover: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if l.Previous.ID != "" {
		t.Errorf("a free database was taken from %v", l.Previous)
	}
	eng, err := st.Engine(l, flowscript.Options{})
	if err != nil {
		t.Fatal(err)
	}
	prog, err := eng.Load(ctx, flowscript.Script("hi.star", `task("a", lambda ctx: {"n": 1})`), flowscript.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := eng.Run(ctx, prog, flowscript.RunOptions{})
	if err != nil || rec.Status != flowscript.RunSucceeded {
		t.Fatalf("run on NATS: %v %+v", err, rec)
	}

	other, err := flowscript.OpenNATS(url, flowscript.NATSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	owner, ok, err := other.Owner(ctx)
	if err != nil || !ok || owner.ID != l.Owner().ID {
		t.Errorf("Owner() = %v %v %v, want %v", owner, ok, err, l.Owner())
	}
	// the owner's heartbeat moves while the other watches it
	var told flowscript.Owner
	_, err = other.Acquire(ctx, flowscript.AcquireOptions{Takeover: 30 * time.Second, Waiting: func(o flowscript.Owner) { told = o }})
	var owned *flowscript.OwnedError
	if !errors.As(err, &owned) || owned.Owner.ID != l.Owner().ID || told.ID != l.Owner().ID {
		t.Errorf("Acquire of a live database: %v (told %v)", err, told)
	}
	ro, err := other.ReadOnlyEngine(errors.New("this process only reads"), flowscript.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ro.Get(ctx, rec.ID)
	if err != nil || got.Status != flowscript.RunSucceeded || flowscript.FormatValue(got.Steps[0].Output) != `{"n": 1}` {
		t.Errorf("read-only Get: %v %+v", err, got)
	}
	if _, err := ro.Start(ctx, prog, flowscript.RunOptions{}); err == nil || !strings.Contains(err.Error(), "this process only reads") {
		t.Errorf("read-only Start: %v, want the reason", err)
	}
	ro.Close()

	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	third, err := flowscript.OpenNATS(url, flowscript.NATSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if _, ok, err := third.Owner(ctx); err != nil || ok {
		t.Errorf("after the owner's Close the database is still owned: %v %v", ok, err)
	}
}
