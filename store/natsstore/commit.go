package natsstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

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

	if len(msgs) > 1 {
		size := strconv.Itoa(len(msgs))
		for _, m := range msgs {
			m.Header.Set(hdrBatchSize, size)
		}
	}
	err := s.publish(ctx, msgs)
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
		if !transient(err) {
			return s.resolve(ctx, t, subjects[0], revs[subjects[0]], txn, err)
		}
		// The answer was lost (a node of a cluster went away, the stream
		// is electing a leader): find out whether the commit landed, and
		// while nothing says it did or could not, publish it again. Every
		// message expects the revision of its subject, so at most one of
		// the copies can land, and each carries txn.
		for {
			next, rerr := s.firstAfter(ctx, subjects[0], revs[subjects[0]])
			switch {
			case rerr != nil:
			case next != nil && next.hdr.Get(hdrTxn) == txn:
				s.advance(next.seq)
				return nil
			case next != nil:
				return s.guardConflict(ctx, t, err)
			}
			if ctx.Err() != nil {
				return fmt.Errorf("natsstore: commit on stream %s: its outcome is unknown: %w", s.stream, s.connError(err))
			}
			if err2 := sleepCtx(ctx, retryPause); err2 != nil {
				return fmt.Errorf("natsstore: commit on stream %s: its outcome is unknown: %w", s.stream, s.connError(err))
			}
			if perr := s.publish(ctx, msgs); perr == nil {
				return nil
			} else if !transient(perr) && !isWrongLastSeq(perr) {
				// e.g. the first copy still in flight on the server
				err = perr
			}
		}
	}
	return s.guardConflict(ctx, t, err)
}

// attemptTimeout bounds one publish of a commit: past it the commit is
// looked for and published again (within Store.timeout in all), so that
// a commit sent to a node that died, or to a stream electing a new
// leader, does not wait the whole timeout.
const attemptTimeout = 3 * time.Second

// retryPause is the pause between such attempts.
const retryPause = 100 * time.Millisecond

// publish sends msgs once: one plain publish, or one atomic batch.
func (s *Store) publish(ctx context.Context, msgs []*nats.Msg) error {
	actx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	if len(msgs) == 1 {
		ack, err := s.js.PublishMsg(actx, msgs[0])
		if err == nil {
			s.advance(ack.Sequence)
		}
		return err
	}
	select {
	case s.batchSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	ack, err := jetstreamext.PublishMsgBatch(actx, s.js, msgs)
	<-s.batchSlots
	if err == nil && ack != nil {
		s.advance(ack.Sequence)
	}
	return err
}

// transient reports whether err says that an answer was lost rather than
// that the server refused the commit.
func transient(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == 10008 // JetStream system temporarily unavailable
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrDisconnected)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
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
