package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/flowscript/flowscript/store"
)

var scanTests = []test{
	{"ScanOrder", testScanOrder},
	{"ScanPrefixIsolation", testScanPrefixIsolation},
	{"ScanStart", testScanStart},
	{"ScanReverse", testScanReverse},
	{"ScanPrefixOfHighBytes", testScanHighBytes},
	{"ScanErrStop", testScanStop},
	{"ScanErrorReturned", testScanError},
	{"ScanKeysOnly", testScanKeysOnly},
	{"ScanSeesOwnWrites", testScanOwnWrites},
	{"ScanManyKeys", testScanMany},
}

// scanFixture writes keys under p/ and around it, and returns the p/
// pairs in ascending order.
func scanFixture(t *testing.T, s store.Store) []kv {
	t.Helper()
	Set(t, s,
		"p/b", "2", "p/a", "1", "p/\x00", "0", "p/c/x", "4", "p/c", "3",
		"p/\xff", "5", "p/\xff\xff", "6",
		"p", "outside", "p.", "outside", "o/z", "outside", "q/a", "outside", "p0", "outside")
	return []kv{
		{"p/\x00", "0"}, {"p/a", "1"}, {"p/b", "2"}, {"p/c", "3"}, {"p/c/x", "4"},
		{"p/\xff", "5"}, {"p/\xff\xff", "6"},
	}
}

func reversed(in []kv) []kv {
	out := make([]kv, len(in))
	for i, p := range in {
		out[len(in)-1-i] = p
	}
	return out
}

func testScanOrder(t *testing.T, s store.Store) {
	want := scanFixture(t, s)
	wantKVs(t, "Scan(p/)", scan(t, s, "p/", store.ScanOptions{}), want)
	all := scan(t, s, "", store.ScanOptions{})
	if len(all) != len(want)+5 {
		t.Fatalf("Scan(empty prefix) visits %d keys, want %d: %q", len(all), len(want)+5, all)
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].k >= all[i].k {
			t.Fatalf("Scan(empty prefix) not in ascending order: %q before %q", all[i-1].k, all[i].k)
		}
	}
}

func testScanPrefixIsolation(t *testing.T, s store.Store) {
	want := scanFixture(t, s)
	wantKVs(t, "Scan(p/c)", scan(t, s, "p/c", store.ScanOptions{}), want[3:5])
	wantKVs(t, "Scan(p/c/)", scan(t, s, "p/c/", store.ScanOptions{}), want[4:5])
	wantKVs(t, "Scan(p/d)", scan(t, s, "p/d", store.ScanOptions{}), nil)
	wantKVs(t, "Scan(q/)", scan(t, s, "q/", store.ScanOptions{}), []kv{{"q/a", "outside"}})
	wantKVs(t, "Scan(p/ reverse)", scan(t, s, "p/", store.ScanOptions{Reverse: true}), reversed(want))
	wantKVs(t, "Scan(p/c reverse)", scan(t, s, "p/c", store.ScanOptions{Reverse: true}), reversed(want[3:5]))
}

func testScanStart(t *testing.T, s store.Store) {
	want := scanFixture(t, s)
	for _, c := range []struct {
		start string
		want  []kv
	}{
		{"p/b", want[2:]},       // inclusive
		{"p/bb", want[3:]},      // between keys
		{"p/", want},            // the prefix itself
		{"a", want},             // before the prefix
		{"p/\xff\xff\xff", nil}, // after the last key
		{"q", nil},              // after the prefix
	} {
		wantKVs(t, fmt.Sprintf("Scan(p/, Start %q)", c.start),
			scan(t, s, "p/", store.ScanOptions{Start: []byte(c.start)}), c.want)
	}
}

func testScanReverse(t *testing.T, s store.Store) {
	want := scanFixture(t, s)
	for _, c := range []struct {
		start string
		want  []kv
	}{
		{"p/b", reversed(want[:3])},      // inclusive
		{"p/bb", reversed(want[:3])},     // between keys
		{"p/\xff", reversed(want[:6])},   // inclusive, high byte
		{"q", reversed(want)},            // after the prefix
		{"\xff\xff\xff", reversed(want)}, // after everything
		{"p/", nil},                      // the prefix itself, no such key
		{"a", nil},                       // before the prefix
	} {
		wantKVs(t, fmt.Sprintf("Scan(p/, Reverse, Start %q)", c.start),
			scan(t, s, "p/", store.ScanOptions{Reverse: true, Start: []byte(c.start)}), c.want)
	}
	all := scan(t, s, "", store.ScanOptions{Reverse: true})
	for i := 1; i < len(all); i++ {
		if all[i-1].k <= all[i].k {
			t.Fatalf("reverse Scan(empty prefix) not in descending order: %q before %q", all[i-1].k, all[i].k)
		}
	}
}

func testScanHighBytes(t *testing.T, s store.Store) {
	Set(t, s, "\xfe", "a", "\xfe\xff", "b", "\xfe\xff\x00", "c", "\xfe\xff\xff", "d", "\xff", "e", "\xff\x00", "f")
	want := []kv{{"\xfe\xff", "b"}, {"\xfe\xff\x00", "c"}, {"\xfe\xff\xff", "d"}}
	wantKVs(t, "Scan(fe ff)", scan(t, s, "\xfe\xff", store.ScanOptions{}), want)
	wantKVs(t, "Scan(fe ff, Reverse)", scan(t, s, "\xfe\xff", store.ScanOptions{Reverse: true}), reversed(want))
	wantKVs(t, "Scan(ff, Reverse)", scan(t, s, "\xff", store.ScanOptions{Reverse: true}), []kv{{"\xff\x00", "f"}, {"\xff", "e"}})
}

func testScanStop(t *testing.T, s store.Store) {
	want := scanFixture(t, s)
	for _, reverse := range []bool{false, true} {
		var got []kv
		err := s.View(context.Background(), func(tx store.Tx) error {
			return tx.Scan([]byte("p/"), store.ScanOptions{Reverse: reverse}, func(k, v []byte) error {
				got = append(got, kv{string(k), string(v)})
				if len(got) == 2 {
					return store.ErrStop
				}
				return nil
			})
		})
		if err != nil {
			t.Fatalf("Scan ended by ErrStop returned %v; want nil", err)
		}
		w := want[:2]
		if reverse {
			w = reversed(want)[:2]
		}
		wantKVs(t, "Scan until ErrStop", got, w)
	}
	// A wrapped ErrStop stops the scan too.
	n := 0
	err := s.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan([]byte("p/"), store.ScanOptions{}, func(k, v []byte) error {
			n++
			return fmt.Errorf("enough: %w", store.ErrStop)
		})
	})
	if err != nil || n != 1 {
		t.Fatalf("Scan ended by a wrapped ErrStop: %v after %d keys; want nil after 1", err, n)
	}
}

func testScanError(t *testing.T, s store.Store) {
	scanFixture(t, s)
	errMine := errors.New("mine")
	n := 0
	err := s.View(context.Background(), func(tx store.Tx) error {
		err := tx.Scan([]byte("p/"), store.ScanOptions{}, func(k, v []byte) error {
			n++
			if n == 3 {
				return fmt.Errorf("at %s: %w", k, errMine)
			}
			return nil
		})
		if !errors.Is(err, errMine) {
			t.Errorf("Scan returned %v; want the callback's error", err)
		}
		return err
	})
	if !errors.Is(err, errMine) || n != 3 {
		t.Fatalf("View returned %v after %d keys; want the callback's error after 3", err, n)
	}
}

func testScanKeysOnly(t *testing.T, s store.Store) {
	want := scanFixture(t, s)
	got := scan(t, s, "p/", store.ScanOptions{KeysOnly: true})
	for i := range want {
		want[i].v = ""
	}
	wantKVs(t, "Scan(KeysOnly)", got, want)
}

func testScanOwnWrites(t *testing.T, s store.Store) {
	Set(t, s, "w/a", "old", "w/b", "old", "w/c", "old")
	err := s.Update(context.Background(), func(tx store.Tx) error {
		for _, op := range []error{
			tx.Set([]byte("w/a"), []byte("new")),
			tx.Delete([]byte("w/b")),
			tx.Set([]byte("w/ab"), []byte("new")),
			tx.Set([]byte("w/d"), []byte("new")),
		} {
			if op != nil {
				return op
			}
		}
		var got []kv
		err := tx.Scan([]byte("w/"), store.ScanOptions{}, func(k, v []byte) error {
			got = append(got, kv{string(k), string(v)})
			return nil
		})
		wantKVs(t, "Scan inside Update", got, []kv{{"w/a", "new"}, {"w/ab", "new"}, {"w/c", "old"}, {"w/d", "new"}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testScanMany(t *testing.T, s store.Store) {
	const n = 2000
	var want []kv
	err := s.Update(context.Background(), func(tx store.Tx) error {
		for i := 0; i < n; i++ {
			k, v := fmt.Sprintf("m/%05d", i), fmt.Sprintf("value %d", i)
			want = append(want, kv{k, v})
			if err := tx.Set([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantKVs(t, "Scan(m/)", scan(t, s, "m/", store.ScanOptions{}), want)
	wantKVs(t, "Scan(m/, Reverse)", scan(t, s, "m/", store.ScanOptions{Reverse: true}), reversed(want))
	wantKVs(t, "Scan(m/, Start m/01000)", scan(t, s, "m/", store.ScanOptions{Start: []byte("m/01000")}), want[1000:])
}
