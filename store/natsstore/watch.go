package natsstore

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowscript/flowscript/store"
)

// Watch implements store.Store with an ordered consumer on the narrowest
// subject filter for prefix, starting right after the stream's last
// sequence when Watch is called. Messages of one atomic batch have
// contiguous sequences and carry its id; they are handed to fn together.
//
// When the consumer has nothing more pending in the middle of a batch,
// the rest of the batch either does not match the filter or is still
// being stored: it is read with a direct get (batchRest) from a replica
// that has the whole batch, so the transaction is completed from it
// rather than split across two calls of fn, and none of it is skipped.
func (s *Store) Watch(ctx context.Context, prefix []byte, opts store.WatchOptions, fn func(events []store.Event) error) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("natsstore: %w", store.ErrClosed)
	}
	if ctx.Err() != nil {
		return nil
	}
	ended := func(err error) error {
		select {
		case <-s.closing:
			return fmt.Errorf("natsstore: watch: %w", store.ErrClosed)
		default:
		}
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	snap, err := s.now(ctx)
	if err != nil {
		return ended(err)
	}
	filter := prefixFilter(s.keysBase, prefix)
	cons, err := s.js.OrderedConsumer(ctx, s.stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    snap + 1,
	})
	if err != nil {
		return ended(fmt.Errorf("natsstore: watch on stream %s: %w", s.stream, err))
	}
	// Consume, not Messages: the consumer lives on one replica of the
	// stream, and a pull request sent before the consumer's interest has
	// reached the server this connection is on is answered "no
	// responders" (503). The ordered consumer's Consume makes a new
	// consumer at once when that happens; Messages ignores it and waits
	// for two missed heartbeats (10 s), then may lose the same race again.
	// The handler blocks until the loop below takes the message (or the
	// watch ends), so a slow fn holds back the pulls; the consumer's
	// heartbeat check is paused while the handler runs.
	msgs := make(chan jetstream.Msg)
	stop := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-stop:
		}
	})
	if err != nil {
		close(stop)
		return ended(fmt.Errorf("natsstore: watch on stream %s: %w", s.stream, err))
	}
	defer func() {
		close(stop) // first: a handler waiting on msgs returns
		cc.Stop()
	}()
	if opts.Ready != nil {
		opts.Ready()
	}

	var group []store.Event
	groupID := ""
	var skipTo uint64 // messages up to here were read with a direct get
	flush := func() error {
		evs := group
		group, groupID = nil, ""
		if len(evs) == 0 {
			return nil
		}
		return fn(evs)
	}
	add := func(subject string, hdr nats.Header, data []byte) {
		if ev, ok := s.event(prefix, subject, hdr, data); ok {
			group = append(group, ev)
		}
	}
	for {
		var m jetstream.Msg
		select {
		case m = <-msgs:
		case <-ctx.Done():
			return nil
		case <-s.closing:
			return ended(nil)
		}
		md, err := m.Metadata()
		if err != nil {
			return ended(fmt.Errorf("natsstore: watch on stream %s: %w", s.stream, err))
		}
		seq := md.Sequence.Stream
		if seq <= skipTo {
			continue
		}
		hdr := m.Headers()
		id := hdr.Get(hdrBatchID)
		if len(group) > 0 && (id == "" || id != groupID) {
			if err := flush(); err != nil {
				return err
			}
		}
		groupID = id
		add(m.Subject(), hdr, m.Data())
		pos, _ := strconv.ParseUint(hdr.Get(hdrBatchSeq), 10, 64)
		size, _ := strconv.ParseUint(hdr.Get(hdrBatchSize), 10, 64)
		if md.NumPending > 0 {
			continue
		}
		if id != "" && pos > 0 && pos < size {
			last := seq - pos + size
			recs, err := s.batchRest(ctx, filter, seq, last)
			if err != nil {
				return ended(err)
			}
			for _, r := range recs {
				if r.hdr.Get(hdrBatchID) == id {
					add(r.subject, r.hdr, r.data)
				}
			}
			skipTo = last
		}
		if err := flush(); err != nil {
			return err
		}
	}
}

// batchRest returns the messages on filter after seq up to last, the
// rest of the atomic batch that message seq belongs to (seq matches
// filter: the consumer delivered it). The consumer may deliver a batch's
// first messages while its replica is still storing the rest, and may
// live on another replica than the one that answers direct gets, which
// may not have the batch yet. A replica stores a batch whole under the
// lock direct gets take, so an answer that holds any message at or after
// seq comes from a replica that has all of the batch; the request starts
// at seq so that a replica that has the batch never answers empty
// (nothing is purged from the stream; a revision pushed out by History
// leaves a later one on the same subject). An empty answer is from a
// replica behind, and is asked again. An answer cut at the server's size
// limit is continued from its last message, anchored the same way.
func (s *Store) batchRest(ctx context.Context, filter string, seq, last uint64) ([]*rec, error) {
	var out []*rec
	from := seq
	began := time.Now()
	for wait := 200 * time.Microsecond; ; {
		recs, pending, _, err := s.direct(ctx, getRequest{Seq: from, NextFor: filter, Batch: int(last - from + 1)})
		if err != nil {
			return nil, err
		}
		if len(recs) == 0 {
			if time.Since(began) > s.timeout {
				return nil, fmt.Errorf("natsstore: watch on stream %s: no replica answered with the atomic batch ending at %d within %s", s.stream, last, s.timeout)
			}
			if err := sleepCtx(ctx, wait); err != nil {
				return nil, err
			}
			wait = min(2*wait, 20*time.Millisecond)
			continue
		}
		for _, r := range recs {
			if r.seq > from && r.seq <= last {
				out = append(out, r)
			}
		}
		end := recs[len(recs)-1].seq
		if end >= last || pending == 0 {
			return out, nil
		}
		from, began = end, time.Now()
	}
}

// event turns a stored message into the event a watch of prefix
// delivers, or reports that it falls outside prefix.
func (s *Store) event(prefix []byte, subject string, hdr nats.Header, data []byte) (store.Event, bool) {
	key, err := subjectKey(s.keysBase, subject)
	if err != nil || !bytes.HasPrefix(key, prefix) {
		return store.Event{}, false
	}
	if hdr.Get(hdrOp) == opDelete {
		return store.Event{Key: key, Deleted: true}, true
	}
	v := bytes.Clone(data)
	if v == nil {
		v = []byte{}
	}
	return store.Event{Key: key, Value: v}, true
}
