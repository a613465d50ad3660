package natsstore

import (
	"context"
	"errors"
	"testing"

	"github.com/flowscript/flowscript/store"
)

// TestResolveLostAnswer: what a commit whose answer was lost turns into,
// found from the stream. It runs on a server of its own (the shared one
// belongs to the external tests).
func TestResolveLostAnswer(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), Durability: Fast})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.Set([]byte("k"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	subj := keySubject(s.keysBase, []byte("k"))
	landed, err := s.firstAfter(ctx, subj, 0)
	if err != nil || landed == nil {
		t.Fatalf("the commit's message: %v, %v", landed, err)
	}
	txn := landed.hdr.Get(hdrTxn)
	if txn == "" {
		t.Fatalf("the commit's message carries no %s header: %v", hdrTxn, landed.hdr)
	}
	lost := errors.New("answer lost")
	empty := &tx{}

	if err := s.resolve(ctx, empty, subj, 0, txn, lost); err != nil {
		t.Errorf("a commit that landed: %v; want nil", err)
	}
	if err := s.resolve(ctx, empty, subj, 0, "another", lost); !errors.Is(err, errConflict) {
		t.Errorf("another transaction's message after the revision: %v; want a conflict, retried", err)
	}
	err = s.resolve(ctx, empty, subj, landed.seq, txn, lost)
	if !errors.Is(err, lost) || errors.Is(err, errConflict) {
		t.Errorf("nothing after the revision: %v; want the cause, not a conflict", err)
	}
}
