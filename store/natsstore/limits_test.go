package natsstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/natsstore"
	"github.com/flowscript/flowscript/store/storetest"
)

func writeN(s store.Store, n, size int) error {
	value := make([]byte, size)
	return s.Update(context.Background(), func(tx store.Tx) error {
		for i := 0; i < n; i++ {
			if err := tx.Set([]byte(fmt.Sprintf("lim/%06d", i)), value); err != nil {
				return err
			}
		}
		return nil
	})
}

func TestLimits(t *testing.T) {
	s := openShared(t, natsstore.Options{Durability: natsstore.Fast, MaxBatch: 1000})
	defer s.Close()
	l := s.Limits()
	if l != (natsstore.Limits{MaxWrites: 984, MaxBytes: 8 << 20}) {
		t.Fatalf("Limits() = %+v; want 984 writes (a 1,000-message batch less 16 for checks of reads) and 8 MiB", l)
	}
	// At the limits: commits.
	per := l.MaxBytes/l.MaxWrites - len("lim/000000")
	if err := writeN(s, l.MaxWrites, per); err != nil {
		t.Fatalf("a transaction at the limits (%d writes of %d bytes): %v", l.MaxWrites, per, err)
	}
	// Past the batch: Set refuses, and Update refuses even if fn ignores it.
	var setErr error
	err := s.Update(context.Background(), func(tx store.Tx) error {
		for i := 0; i < 1001; i++ {
			if err := tx.Set([]byte(fmt.Sprintf("big/%06d", i)), nil); err != nil {
				setErr = err
				return nil
			}
		}
		return nil
	})
	if !errors.Is(setErr, store.ErrTooLarge) || !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("1,001 writes: Set %v, Update %v; want ErrTooLarge from both", setErr, err)
	}
	// Past the bytes: refused too.
	if err := writeN(s, 10, 1<<20-512); !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("ten values of 1 MiB on a server with 1 MiB messages: %v; want ErrTooLarge", err)
	}
	// Keys read and not written are checked by marker messages; when
	// they do not fit beside the writes, by the stream's last sequence.
	err = s.Update(context.Background(), func(tx store.Tx) error {
		for i := 0; i < 10; i++ {
			if err := guard(tx, fmt.Sprintf("g/%d", i), ""); err != nil {
				return err
			}
		}
		for i := 0; i < 995; i++ {
			if err := tx.Set([]byte(fmt.Sprintf("g2/%06d", i)), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("10 guards and 995 writes in a 1,000-message batch: %v", err)
	}
}

// TestServerBatchLimit checks what the notes say of JetStream: an atomic
// batch holds at most 1,000 messages unless the server is configured
// otherwise. The client here is told a larger limit, so that the server
// is the one to refuse.
func TestServerBatchLimit(t *testing.T) {
	srv, err := server.NewServer(&server.Options{JetStream: true, StoreDir: t.TempDir(), DontListen: true, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	s, err := natsstore.Open(natsstore.Options{Server: srv, Durability: natsstore.Fast, MaxBatch: 1100})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := writeN(s, 1000, 10); err != nil {
		t.Fatalf("1,000 messages in one batch: %v", err)
	}
	err = writeN(s, 1001, 10)
	if !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("1,001 messages in one batch: %v; want the server to refuse it (ErrTooLarge)", err)
	}
	t.Logf("server's answer: %v", err)
}

// TestDurableNeedsSync: durable mode on one server refuses a server that
// does not sync every write.
func TestDurableNeedsSync(t *testing.T) {
	_, err := natsstore.Open(natsstore.Options{Server: shared, Stream: "durable-refused"})
	if err == nil {
		t.Fatal("Open(Durable) on a server without sync_always: want an error")
	}
	t.Logf("%v", err)
}

func TestOpenOptions(t *testing.T) {
	for _, opts := range []natsstore.Options{
		{},
		{URL: "nats://127.0.0.1:4222", Dir: t.TempDir()},
		{URL: "http://127.0.0.1:4222"},
		{URL: "nats://127.0.0.1:4222/a.b"},
		{Dir: t.TempDir(), History: 1},
	} {
		if s, err := natsstore.Open(opts); err == nil {
			s.Close()
			t.Errorf("Open(%+v): want an error", opts)
		}
	}
}

// TestURL opens the Store over the network, naming the stream in the URL,
// and sees what a Store on the same stream wrote.
func TestURL(t *testing.T) {
	local := openShared(t, natsstore.Options{Durability: natsstore.Fast})
	defer local.Close()
	storetest.Set(t, local, "k", "v")
	remote, err := natsstore.Open(natsstore.Options{URL: shared.ClientURL() + "/" + local.StreamName(), Durability: natsstore.Fast})
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()
	if remote.StreamName() != local.StreamName() {
		t.Fatalf("stream %q; want the URL's %q", remote.StreamName(), local.StreamName())
	}
	if v, ok := storetest.Get(t, remote, "k"); !ok || v != "v" {
		t.Fatalf("k = %q, %v over the network; want v", v, ok)
	}
}

// TestForeignStreamRefused: a stream of the same name that is not a
// flowscript database is left alone.
func TestForeignStreamRefused(t *testing.T) {
	nc, err := nats.Connect("", nats.InProcessServer(shared))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "foreign", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	defer deleteStream(t, "foreign")
	if s, err := natsstore.Open(natsstore.Options{Server: shared, Stream: "foreign", Durability: natsstore.Fast}); err == nil {
		s.Close()
		t.Fatal("Open on a foreign stream: want an error")
	}
	info, err := js.Stream(context.Background(), "foreign")
	if err != nil {
		t.Fatal(err)
	}
	if got := info.CachedInfo().Config.Subjects; len(got) != 1 || got[0] != "orders.>" {
		t.Fatalf("the foreign stream's subjects became %q", got)
	}
}
