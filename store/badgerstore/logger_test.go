package badgerstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/flowscript/flowscript/internal/testio"
	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/badgerstore"
)

func TestLogger(t *testing.T) {
	for _, c := range []struct {
		level     hclog.Level
		want, not []string
	}{
		{hclog.Trace, []string{"[DEBUG] test.badger:", "[TRACE] test.badger:", "[DEBUG] test: database opened"}, nil},
		{hclog.Debug, []string{"[DEBUG] test.badger:"}, []string{"[TRACE]"}},
		{hclog.Info, nil, []string{"[DEBUG]", "[TRACE]"}},
	} {
		t.Run(c.level.String(), func(t *testing.T) {
			var out testio.SyncBuffer
			l := hclog.New(&hclog.LoggerOptions{Name: "test", Level: c.level, Output: &out})
			s := openDir(t, t.TempDir(), badgerstore.Options{Logger: l})
			err := s.Update(context.Background(), func(tx store.Tx) error { return tx.Set([]byte("k"), []byte("v")) })
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			got := out.String()
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("log lacks %q:\n%s", w, got)
				}
			}
			for _, n := range c.not {
				if strings.Contains(got, n) {
					t.Errorf("log has %q:\n%s", n, got)
				}
			}
			if strings.Contains(got, "\n\n") {
				t.Errorf("log has blank lines:\n%s", got)
			}
		})
	}
}
