package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/flowscript/flowscript/store"
)

var limitsTests = []test{
	{"LimitsArePositive", testLimitsPositive},
	{"TransactionAtLimitsCommits", testAtLimits},
	{"GuardMatchingValue", testGuardMatches},
	{"GuardAbsentKey", testGuardAbsent},
	{"GuardMismatchIsNotRetried", testGuardMismatch},
	{"GuardHeldToCommit", testGuardHeld},
	{"GuardOtherConflictIsRetried", testGuardOtherConflict},
	{"GuardInView", testGuardInView},
}

func testLimitsPositive(t *testing.T, s store.Store) {
	l := s.Limits()
	if l.MaxWrites < 1000 || l.MaxBytes < 64<<10 {
		t.Fatalf("Limits() = %+v; a store must take at least 1,000 writes and 64 KiB in one transaction", l)
	}
	if l != s.Limits() {
		t.Fatalf("Limits() changed between two calls")
	}
}

// testAtLimits writes exactly MaxWrites keys holding MaxBytes bytes in
// all, in one transaction: what the limits promise must fit.
func testAtLimits(t *testing.T, s store.Store) {
	l := s.Limits()
	per := l.MaxBytes / l.MaxWrites
	key := func(i int) []byte { return []byte(fmt.Sprintf("lim/%08d", i)) }
	if per < len(key(0)) {
		t.Skipf("limits %+v leave fewer bytes per write than a key takes", l)
	}
	val := make([]byte, per-len(key(0)))
	for i := range val {
		val[i] = byte('a' + i%26)
	}
	err := s.Update(context.Background(), func(tx store.Tx) error {
		for i := 0; i < l.MaxWrites; i++ {
			if err := tx.Set(key(i), val); err != nil {
				return fmt.Errorf("write %d of %d: %w", i+1, l.MaxWrites, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("a transaction of %d writes and %d bytes (the limits %+v): %v", l.MaxWrites, l.MaxWrites*per, l, err)
	}
	n := 0
	err = s.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan([]byte("lim/"), store.ScanOptions{}, func(k, v []byte) error {
			if string(v) != string(val) {
				return fmt.Errorf("key %s holds %d bytes; want %d", k, len(v), len(val))
			}
			n++
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != l.MaxWrites {
		t.Fatalf("%d keys after the commit; want %d", n, l.MaxWrites)
	}
}

func testGuardMatches(t *testing.T, s store.Store) {
	Set(t, s, "lease", "owner-1")
	err := s.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.Guard([]byte("lease"), []byte("owner-1")); err != nil {
			return err
		}
		return tx.Set([]byte("work"), []byte("done"))
	})
	if err != nil {
		t.Fatalf("Update with a guard that holds: %v", err)
	}
	WantValue(t, s, "work", "done")
}

func testGuardAbsent(t *testing.T, s store.Store) {
	err := s.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.Guard([]byte("lease"), nil); err != nil {
			return err
		}
		return tx.Set([]byte("lease"), []byte("owner-1"))
	})
	if err != nil {
		t.Fatalf("Guard(absent key, nil): %v", err)
	}
	// now present: a guard that wants it absent fails, and fails the
	// transaction even though fn ignores the error
	err = s.Update(context.Background(), func(tx store.Tx) error {
		_ = tx.Guard([]byte("lease"), nil)
		return tx.Set([]byte("work"), []byte("done"))
	})
	if !errors.Is(err, store.ErrGuardFailed) {
		t.Fatalf("Guard(present key, nil) ignored by fn: Update returned %v; want ErrGuardFailed", err)
	}
	wantAbsent(t, s, "work")
	// an empty value is a value, not absence
	Set(t, s, "empty", "")
	err = s.Update(context.Background(), func(tx store.Tx) error { return tx.Guard([]byte("empty"), nil) })
	if !errors.Is(err, store.ErrGuardFailed) {
		t.Fatalf("Guard(key holding an empty value, nil): %v; want ErrGuardFailed", err)
	}
	if err := s.Update(context.Background(), func(tx store.Tx) error { return tx.Guard([]byte("empty"), []byte{}) }); err != nil {
		t.Fatalf("Guard(key holding an empty value, empty): %v", err)
	}
}

func testGuardMismatch(t *testing.T, s store.Store) {
	Set(t, s, "lease", "owner-2")
	calls := 0
	err := s.Update(context.Background(), func(tx store.Tx) error {
		calls++
		if err := tx.Set([]byte("work"), []byte("done")); err != nil {
			return err
		}
		return tx.Guard([]byte("lease"), []byte("owner-1"))
	})
	if !errors.Is(err, store.ErrGuardFailed) {
		t.Fatalf("Update with a guard that does not hold: %v; want ErrGuardFailed", err)
	}
	if calls != 1 {
		t.Fatalf("fn ran %d times; a failed guard must not be retried", calls)
	}
	wantAbsent(t, s, "work")
	if err := s.Update(context.Background(), func(tx store.Tx) error { return tx.Guard([]byte("nothing"), []byte("x")) }); !errors.Is(err, store.ErrGuardFailed) {
		t.Fatalf("Guard(absent key, value): %v; want ErrGuardFailed", err)
	}
}

// testGuardHeld changes the guarded key after Guard passed and before the
// transaction commits: the commit fails with ErrGuardFailed, once.
func testGuardHeld(t *testing.T, s store.Store) {
	Set(t, s, "lease", "owner-1")
	calls := 0
	err := s.Update(context.Background(), func(tx store.Tx) error {
		calls++
		if err := tx.Guard([]byte("lease"), []byte("owner-1")); err != nil {
			return err
		}
		if calls == 1 {
			// another owner takes the lease meanwhile
			if err := s.Update(context.Background(), func(tx2 store.Tx) error {
				return tx2.Set([]byte("lease"), []byte("owner-2"))
			}); err != nil {
				return fmt.Errorf("the concurrent update: %w", err)
			}
		}
		return tx.Set([]byte("work"), []byte("done"))
	})
	if !errors.Is(err, store.ErrGuardFailed) {
		t.Fatalf("guarded key changed before commit: Update returned %v; want ErrGuardFailed", err)
	}
	if calls != 1 {
		t.Fatalf("fn ran %d times; a guard that failed at commit must not be retried", calls)
	}
	wantAbsent(t, s, "work")
	WantValue(t, s, "lease", "owner-2")
}

// testGuardOtherConflict loses a race on a key that is not guarded: that
// conflict is retried as any other, and the guard is checked again.
func testGuardOtherConflict(t *testing.T, s store.Store) {
	Set(t, s, "lease", "owner-1", "counter", "0")
	calls := 0
	err := s.Update(context.Background(), func(tx store.Tx) error {
		calls++
		if err := tx.Guard([]byte("lease"), []byte("owner-1")); err != nil {
			return err
		}
		v, err := tx.Get([]byte("counter"))
		if err != nil {
			return err
		}
		if calls == 1 {
			if err := s.Update(context.Background(), func(tx2 store.Tx) error {
				return tx2.Set([]byte("counter"), []byte("5"))
			}); err != nil {
				return fmt.Errorf("the concurrent update: %w", err)
			}
		}
		return tx.Set([]byte("counter"), append(v, '+'))
	})
	if err != nil {
		t.Fatalf("a conflict on an unguarded key: %v; want it retried", err)
	}
	if calls != 2 {
		t.Fatalf("fn ran %d times; want 2 (the conflict retried once)", calls)
	}
	WantValue(t, s, "counter", "5+")
}

func testGuardInView(t *testing.T, s store.Store) {
	Set(t, s, "lease", "owner-1")
	err := s.View(context.Background(), func(tx store.Tx) error {
		if err := tx.Guard([]byte("lease"), []byte("owner-1")); err != nil {
			return fmt.Errorf("matching guard: %w", err)
		}
		if err := tx.Guard([]byte("lease"), []byte("owner-2")); !errors.Is(err, store.ErrGuardFailed) {
			return fmt.Errorf("mismatching guard returned %v; want ErrGuardFailed", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
