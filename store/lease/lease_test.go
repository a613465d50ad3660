package lease

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/natsstore"
)

// srv is the one in-process JetStream server of this test binary (no
// listener); each test has a stream of its own.
var srv *server.Server

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lease-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv, err = server.NewServer(&server.Options{JetStream: true, StoreDir: dir, DontListen: true, NoLog: true, NoSigs: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		fmt.Fprintln(os.Stderr, "nats-server did not start")
		os.Exit(1)
	}
	code := m.Run()
	srv.Shutdown()
	srv.WaitForShutdown()
	os.RemoveAll(dir)
	os.Exit(code)
}

var streams atomic.Int64

// twoProcesses opens two Stores on one new stream, each with its own
// connection, as two processes on two machines would.
func twoProcesses(t *testing.T) (a, b store.Store) {
	name := fmt.Sprintf("L%d", streams.Add(1))
	open := func() store.Store {
		s, err := natsstore.Open(natsstore.Options{Server: srv, Stream: name, Durability: natsstore.Fast})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	return open(), open()
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// die stops a lease's heartbeat without releasing it: what kill -9 does.
func (l *Lease) die() {
	close(l.stop)
	<-l.done
}

func write(f *Fenced, key string) error {
	return f.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.Set([]byte(key+"/1"), []byte("x")); err != nil {
			return err
		}
		return tx.Set([]byte(key+"/2"), []byte("x"))
	})
}

func present(t *testing.T, s store.Store, key string) bool {
	t.Helper()
	err := s.View(context.Background(), func(tx store.Tx) error {
		_, err := tx.Get([]byte(key))
		return err
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// TestTakeoverFencesDeposedOwner: A owns the database and commits; it
// goes silent (its heartbeat stops, its process does not know); B, which
// waits, takes the lease once the heartbeat has been still for the
// takeover time. A's next commit is refused with ErrGuardFailed, none of
// its writes lands, and A is told it lost the database; B's commits land.
func TestTakeoverFencesDeposedOwner(t *testing.T) {
	sa, sb := twoProcesses(t)
	ctx := ctxFor(t)
	lost := make(chan error, 1)
	cfg := Config{Takeover: 300 * time.Millisecond, Lost: func(err error) { lost <- err }}
	la, err := Acquire(ctx, sa, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if la.Previous.ID != "" {
		t.Fatalf("the first owner took the database from %v; it was free", la.Previous)
	}
	a := &Fenced{Store: sa, L: la}
	if err := write(a, "a-before"); err != nil {
		t.Fatalf("the owner's commit: %v", err)
	}

	// a live owner is not taken over: B, not waiting, is told who owns it
	_, err = Acquire(ctx, sb, Config{Takeover: 20 * time.Second})
	var owned *OwnedError
	if !errors.As(err, &owned) || owned.Owner.ID != la.Owner().ID {
		t.Fatalf("Acquire while A beats: %v; want an OwnedError naming A (%s)", err, la.Owner().ID)
	}

	la.die()
	lb, err := Acquire(ctx, sb, Config{Takeover: 300 * time.Millisecond, Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Release()
	if lb.Previous.ID != la.Owner().ID || lb.Waited < 300*time.Millisecond {
		t.Fatalf("B took over from %q after %s; want A (%s) after at least 300ms", lb.Previous.ID, lb.Waited, la.Owner().ID)
	}
	t.Logf("B took over after the heartbeat was still for %s", lb.Waited)

	err = write(a, "a-after")
	if !errors.Is(err, store.ErrGuardFailed) {
		t.Fatalf("the deposed owner's commit: %v; want ErrGuardFailed", err)
	}
	for _, k := range []string{"a-after/1", "a-after/2"} {
		if present(t, sb, k) {
			t.Fatalf("%s landed after A was deposed", k)
		}
	}
	if !present(t, sb, "a-before/1") || !present(t, sb, "a-before/2") {
		t.Fatal("A's commit from before the takeover is gone")
	}
	select {
	case err := <-lost:
		if !errors.Is(err, ErrLost) {
			t.Fatalf("Lost was told %v; want ErrLost", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the deposed owner was not told it lost the database")
	}
	if err := write(&Fenced{Store: sb, L: lb}, "b"); err != nil {
		t.Fatalf("the new owner's commit: %v", err)
	}
	if owner, ok, err := ReadOwner(ctx, sa); err != nil || !ok || owner.ID != lb.Owner().ID {
		t.Fatalf("ReadOwner = %v %v %v; want B", owner, ok, err)
	}
}

// TestHeartbeatDoesNotFenceOwner: an owner whose heartbeat beats many
// times meanwhile keeps committing: the fence is on the lease key, which
// the heartbeat does not change.
func TestHeartbeatDoesNotFenceOwner(t *testing.T) {
	sa, _ := twoProcesses(t)
	ctx := ctxFor(t)
	l, err := Acquire(ctx, sa, Config{Takeover: 80 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	f := &Fenced{Store: sa, L: l}
	for i := 0; l.beats.Load() < 5; i++ {
		if err := write(f, fmt.Sprintf("w%d", i)); err != nil {
			t.Fatalf("commit %d after %d beats: %v", i, l.beats.Load(), err)
		}
		if ctx.Err() != nil {
			t.Fatal("the heartbeat did not beat 5 times")
		}
	}
	if l.Err() != nil {
		t.Fatalf("the owner lost its lease: %v", l.Err())
	}
}

// TestReleaseFreesAtOnce: a released lease is taken without waiting.
func TestReleaseFreesAtOnce(t *testing.T) {
	sa, sb := twoProcesses(t)
	ctx := ctxFor(t)
	la, err := Acquire(ctx, sa, Config{Takeover: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := la.Release(); err != nil {
		t.Fatal(err)
	}
	lb, err := Acquire(ctx, sb, Config{Takeover: time.Hour})
	if err != nil {
		t.Fatalf("Acquire after a release: %v", err)
	}
	defer lb.Release()
	if lb.Previous.ID != "" {
		t.Fatalf("took the released database from %v", lb.Previous)
	}
	if err := write(&Fenced{Store: sa, L: la}, "late"); !errors.Is(err, store.ErrGuardFailed) {
		t.Fatalf("a commit after Release: %v; want ErrGuardFailed", err)
	}
}
