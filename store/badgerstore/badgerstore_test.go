package badgerstore_test

import (
	"testing"

	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/badgerstore"
	"github.com/flowscript/flowscript/store/storetest"
)

func openInMemory(t *testing.T) store.Store {
	t.Helper()
	s, err := badgerstore.OpenInMemory(badgerstore.Options{})
	if err != nil {
		t.Fatalf("OpenInMemory: %v", err)
	}
	return s
}

func openDir(t *testing.T, dir string, opts badgerstore.Options) *badgerstore.Store {
	t.Helper()
	s, err := badgerstore.Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

func TestConformanceInMemory(t *testing.T) {
	storetest.Run(t, openInMemory)
}

func TestConformanceOnDisk(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openDir(t, t.TempDir(), badgerstore.Options{})
	})
}

func TestDurableOnDisk(t *testing.T) {
	storetest.RunDurable(t, func(t *testing.T, dir string) store.Store {
		return openDir(t, dir, badgerstore.Options{})
	})
}

func TestDurableOnDiskFast(t *testing.T) {
	storetest.RunDurable(t, func(t *testing.T, dir string) store.Store {
		return openDir(t, dir, badgerstore.Options{Durability: badgerstore.Fast})
	})
}
