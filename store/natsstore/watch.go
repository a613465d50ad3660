package natsstore

import (
	"bytes"
	"context"
	"fmt"
	"strconv"

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
// being stored: a direct get of the batch's remaining sequences waits
// for the batch (direct gets take the stream's isolation lock that an
// atomic commit holds), so the transaction is completed from it rather
// than split across two calls of fn.
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
	it, err := cons.Messages()
	if err != nil {
		return ended(fmt.Errorf("natsstore: watch on stream %s: %w", s.stream, err))
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-ctx.Done():
		case <-s.closing:
		case <-stop:
		}
		it.Stop()
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
		m, err := it.Next()
		if err != nil {
			return ended(fmt.Errorf("natsstore: watch on stream %s: %w", s.stream, err))
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
			recs, _, _, err := s.direct(ctx, getRequest{Seq: seq + 1, NextFor: filter, Batch: int(last - seq)})
			if err != nil {
				return ended(err)
			}
			for _, r := range recs {
				if r.seq <= last && r.hdr.Get(hdrBatchID) == id {
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
