package natsstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/flowscript/flowscript/store"
)

// commit publishes the transaction's writes: one message when it writes
// one key and read nothing else, else one atomic batch. Every message
// expects its subject's last sequence to be the revision the transaction
// knows (read at the snapshot, or for a key it only wrote, the latest),
// and each key read but not written (guarded or not) rides on a marker
// message that expects its revision.
func (s *Store) commit(t *tx) error {
	if len(t.writes) == 0 {
		return nil
	}
	// A started commit is not interrupted by the caller's context.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), s.timeout)
	defer cancel()

	subjects := make([]string, 0, len(t.writes))
	var blind []string
	for subj := range t.writes {
		subjects = append(subjects, subj)
		if _, read := t.reads[subj]; !read {
			blind = append(blind, subj)
		}
	}
	slices.Sort(subjects)
	revs := make(map[string]uint64, len(subjects))
	if len(blind) > 0 {
		latest, _, err := s.lastAt(ctx, blind, 0)
		if err != nil {
			return err
		}
		for _, subj := range blind {
			if r := latest[subj]; r != nil {
				revs[subj] = r.seq
			}
		}
	}
	for subj := range t.writes {
		if rev, read := t.reads[subj]; read {
			revs[subj] = rev
		}
	}

	// Every key read and not written is checked too, each by a marker
	// message that expects the key's revision. When they do not all fit
	// beside the writes, the first message expects instead the stream's
	// last sequence to be the snapshot: nothing at all committed since,
	// a stronger check that conflicts more often.
	var markers []string
	for subj := range t.reads {
		if _, written := t.writes[subj]; !written {
			markers = append(markers, subj)
		}
	}
	slices.Sort(markers)
	wholeStream := len(markers)+len(t.writes) > s.opts.MaxBatch
	if wholeStream {
		markers = nil
	}
	txn := nuid.Next()
	var msgs []*nats.Msg
	for i, subj := range markers {
		msgs = append(msgs, &nats.Msg{
			Subject: s.markerBase + "." + strconv.Itoa(i),
			Header: nats.Header{
				hdrExpSubj: []string{subj},
				hdrExpSeq:  []string{strconv.FormatUint(t.reads[subj], 10)},
				hdrTTL:     []string{markerTTL},
			},
		})
	}
	for _, subj := range subjects {
		w := t.writes[subj]
		rev := strconv.FormatUint(revs[subj], 10)
		m := &nats.Msg{Subject: subj, Header: nats.Header{hdrExpSeq: []string{rev}, hdrPrev: []string{rev}, hdrTxn: []string{txn}}, Data: w.value}
		if w.del {
			m.Header.Set(hdrOp, opDelete)
		}
		msgs = append(msgs, m)
	}
	if wholeStream {
		msgs[0].Header.Set(hdrExpStreamSeq, strconv.FormatUint(t.snap, 10))
	}
	if len(msgs) > s.opts.MaxBatch {
		return fmt.Errorf("natsstore: %w: %d writes in one transaction; the batch limit is %d", store.ErrTooLarge, len(msgs), s.opts.MaxBatch)
	}

	var err error
	if len(msgs) == 1 {
		_, err = s.js.PublishMsg(ctx, msgs[0])
	} else {
		size := strconv.Itoa(len(msgs))
		for _, m := range msgs {
			m.Header.Set(hdrBatchSize, size)
		}
		select {
		case s.batchSlots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		_, err = jetstreamext.PublishMsgBatch(ctx, s.js, msgs)
		<-s.batchSlots
	}
	if err == nil {
		return nil
	}
	if !isWrongLastSeq(err) {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstreamext.JSErrCodeBatchPublishExceedsLimit {
			return fmt.Errorf("natsstore: %w: %d messages in one batch: %w (set Options.MaxBatch to the server's max_batch_size)", store.ErrTooLarge, len(msgs), err)
		}
		if errors.Is(err, nats.ErrMaxPayload) {
			return fmt.Errorf("natsstore: %w: %w", store.ErrTooLarge, err)
		}
		return s.resolve(ctx, t, subjects[0], revs[subjects[0]], txn, err)
	}
	return s.guardConflict(ctx, t, err)
}

// resolve finds out what became of a commit whose answer was lost (a
// timeout, a broken connection). Its messages expected subject's last
// revision to be rev, so if it landed its message is the first of
// subject after rev: carrying txn, the commit landed; carrying another
// transaction, it cannot land any more and is retried as a conflict;
// nothing there, the outcome is unknown (a batch may still be on its way
// for the server's ten-second batch timeout) and the error says so.
func (s *Store) resolve(ctx context.Context, t *tx, subject string, rev uint64, txn string, cause error) error {
	next, err := s.firstAfter(ctx, subject, rev)
	switch {
	case err != nil:
	case next != nil && next.hdr.Get(hdrTxn) == txn:
		return nil
	case next != nil:
		return s.guardConflict(ctx, t, cause)
	}
	return fmt.Errorf("natsstore: commit on stream %s: its outcome is unknown: %w", s.stream, s.connError(cause))
}

// guardConflict tells a lost race on a guarded key (ErrGuardFailed, not
// retried) from any other (retried): it compares the guarded keys'
// revisions now with those the transaction read.
func (s *Store) guardConflict(ctx context.Context, t *tx, cause error) error {
	if len(t.guards) > 0 {
		subjects := make([]string, 0, len(t.guards))
		for subj := range t.guards {
			subjects = append(subjects, subj)
		}
		now, _, err := s.lastAt(ctx, subjects, 0)
		if err != nil {
			return err
		}
		for _, subj := range subjects {
			var rev uint64
			if r := now[subj]; r != nil {
				rev = r.seq
			}
			if rev != t.reads[subj] {
				key, _ := subjectKey(s.keysBase, subj)
				return fmt.Errorf("%w: key %q changed before the transaction committed", ErrGuardFailed, abbrev(key))
			}
		}
	}
	return fmt.Errorf("%w: %w", errConflict, cause)
}
