package main

import (
	"errors"
	"strings"
	"testing"
)

// A process that lost the ownership of its NATS database exits 3 also
// when its command, whose engine the lost handler closes, returns first
// with the store's "closed" error (TestNATSDeposedOwner saw exit 1 with
// "natsstore: store: store is closed" once in two runs of the suite);
// before the loss, that error is an ordinary failure.
func TestExitAfterLostOwnership(t *testing.T) {
	closed := errors.New("natsstore: store: store is closed")
	var out strings.Builder
	if code := exitAfter(closed, &out); code == exitLost || !strings.Contains(out.String(), "store is closed") {
		t.Errorf("before a loss: exit %d, stderr %q", code, out.String())
	}
	ownershipLost.Store(true)
	defer ownershipLost.Store(false)
	out.Reset()
	if code := exitAfter(closed, &out); code != exitLost || out.Len() != 0 {
		t.Errorf("after the loss: exit %d, stderr %q; want exit %d and nothing more", code, out.String(), exitLost)
	}
}
