package badgerstore

import (
	"context"
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
)

const (
	// gcDiscardRatio: a value log file is rewritten when at least this
	// share of it is garbage.
	gcDiscardRatio = 0.5
	// gcMaxRewrites bounds the files rewritten in one round, so a round
	// stays short and cheap.
	gcMaxRewrites = 4
)

// startGC runs value-log garbage collection every interval until Close.
// Badger keeps values of valueThreshold bytes or more in its value log and
// never reclaims the space of overwritten or deleted ones by itself.
func (s *Store) startGC(interval time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopGC = cancel
	s.gcDone = make(chan struct{})
	go func() {
		defer close(s.gcDone)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.collectValueLog(ctx)
			}
		}
	}()
}

// collectValueLog rewrites value log files while each round frees one,
// up to gcMaxRewrites.
func (s *Store) collectValueLog(ctx context.Context) {
	for i := 0; i < gcMaxRewrites && ctx.Err() == nil; i++ {
		err := s.db.RunValueLogGC(gcDiscardRatio)
		switch {
		case err == nil:
			s.opts.Logger.Debug("value log garbage collected", "dir", s.dir)
			continue
		case errors.Is(err, badger.ErrNoRewrite), errors.Is(err, badger.ErrRejected):
		default:
			s.opts.Logger.Warn("value log garbage collection failed", "dir", s.dir, "error", err)
		}
		return
	}
}
