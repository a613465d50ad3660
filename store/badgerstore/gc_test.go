package badgerstore

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flowscript/flowscript/internal/testio"
	"github.com/flowscript/flowscript/store"
)

// TestValueLogGC runs the background collection often while large values
// are overwritten, and checks that it neither fails nor outlives Close.
func TestValueLogGC(t *testing.T) {
	var out testio.SyncBuffer
	l := hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: &out})
	s, err := Open(t.TempDir(), Options{Durability: Fast, Logger: l, ValueLogGCInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	value := bytes.Repeat([]byte("v"), 200<<10)
	for i := 0; i < 200; i++ {
		err := s.Update(context.Background(), func(tx store.Tx) error {
			return tx.Set([]byte(fmt.Sprintf("k%d", i%10)), value)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	s.collectValueLog(context.Background())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.gcDone:
	default:
		t.Fatal("the collection goroutine outlived Close")
	}
	if log := out.String(); strings.Contains(log, "collection failed") {
		t.Fatalf("collection failed:\n%s", log)
	}
}
