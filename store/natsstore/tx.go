package natsstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowscript/flowscript/store"
)

// tx is a transaction: reads at one stream sequence (the snapshot),
// writes buffered here until commit.
type tx struct {
	s        *Store
	ctx      context.Context
	writable bool
	snap     uint64
	// anchor is the subject of the message at snap, on a replicated
	// stream: see lastAt
	anchor string

	// reads holds, per subject read, the revision (stream sequence of the
	// key's last message, 0 if it had none) at the snapshot.
	reads map[string]uint64
	// writes holds the buffered writes by subject.
	writes map[string]*write
	// guards holds the subjects Guard read; their revisions are in reads.
	guards map[string]bool
	// cache holds what Prefetch read at the snapshot, by subject (nil:
	// absent), for the reads that follow
	cache map[string]*rec
	bytes int
	err   error // the first refused write; it fails the transaction
	done  bool
}

type write struct {
	key   []byte
	value []byte // nil on delete
	del   bool
}

var errTxDone = errors.New("natsstore: transaction used after it ended")

// newTx begins a transaction. A View takes its snapshot now; an Update
// takes it at its first read, so that a transaction that only writes
// costs no read (its commit checks what it needs).
func (s *Store) newTx(ctx context.Context, writable bool) (*tx, error) {
	t := &tx{
		s: s, ctx: ctx, writable: writable,
		reads:  map[string]uint64{},
		writes: map[string]*write{},
		guards: map[string]bool{},
		cache:  map[string]*rec{},
	}
	if !writable {
		if err := t.snapshot(); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (t *tx) snapshot() error {
	if t.snap != 0 {
		return nil
	}
	snap, err := t.s.now(t.ctx)
	if err != nil {
		return err
	}
	if t.s.replicas > 1 {
		// The anchor of the snapshot's reads (see lastAtAnchored). A
		// replica behind snap has no message from snap on; the message
		// at snap pushed out already (its subject changed History
		// times since): take a newer snapshot.
		began := time.Now()
		for wait := 200 * time.Microsecond; t.anchor == ""; wait = min(2*wait, 20*time.Millisecond) {
			recs, _, _, err := t.s.direct(t.ctx, getRequest{Seq: snap})
			if err != nil {
				return err
			}
			if len(recs) > 0 {
				t.anchor = recs[0].subject
				break
			}
			// Behind, or gone? (Asked only now: a get by a wildcard
			// subject costs the server more than one by sequence.)
			if recs, _, _, err = t.s.direct(t.ctx, getRequest{Seq: snap, NextFor: t.s.allSubjects}); err != nil {
				return err
			}
			if len(recs) > 0 && recs[0].seq > snap {
				if snap, err = t.s.now(t.ctx); err != nil {
					return err
				}
				continue
			}
			if time.Since(began) > t.s.timeout {
				return fmt.Errorf("natsstore: stream %s: no replica that answers has message %d within %s", t.s.stream, snap, t.s.timeout)
			}
			if err := sleepCtx(t.ctx, wait); err != nil {
				return err
			}
		}
	}
	t.snap = snap
	return nil
}

func (t *tx) end() { t.done = true }

// stored reads the values of subjects at the snapshot, recording their
// revisions. A subject missing from the answer is absent at the
// snapshot, unless its value then has been pushed out of the stream's
// history: that is ErrSnapshotTooOld (a conflict inside Update).
// Subjects Prefetch read come from its cache; keep adds these to it.
func (t *tx) stored(subjects []string) (map[string]*rec, error) {
	return t.storedKeep(subjects, false)
}

func (t *tx) storedKeep(subjects []string, keep bool) (map[string]*rec, error) {
	if err := t.snapshot(); err != nil {
		return nil, err
	}
	out := make(map[string]*rec, len(subjects))
	var ask []string
	for _, subj := range subjects {
		if r, ok := t.cache[subj]; ok {
			if r != nil {
				out[subj] = r
			}
			continue
		}
		ask = append(ask, subj)
	}
	if len(ask) == 0 {
		return out, nil
	}
	got, _, err := t.s.lastAtAnchored(t.ctx, ask, t.snap, t.anchor)
	if errors.Is(err, ErrSnapshotTooOld) && t.writable {
		return nil, t.fail(fmt.Errorf("%w: %w", errConflict, err))
	}
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, subj := range ask {
		if got[subj] == nil {
			missing = append(missing, subj)
		}
	}
	if err := t.absent(missing); err != nil {
		return nil, err
	}
	for _, subj := range ask {
		r := got[subj]
		if r != nil && r.deleted() {
			t.reads[subj], r = r.seq, nil
		} else if r != nil {
			t.reads[subj], out[subj] = r.seq, r
		} else {
			t.reads[subj] = 0
		}
		if keep {
			t.cache[subj] = r
		}
	}
	return out, nil
}

// absent checks that subjects, which have no revision at or before the
// snapshot, were absent then rather than pushed out of the stream's
// history since. One subject is checked by its first message after the
// snapshot: absent then if there is none or it replaced nothing. Many
// are asked together for their last message now: one with none, or
// whose last message replaced nothing (its first ever, after the
// snapshot), was absent; the others are checked one by one.
func (t *tx) absent(subjects []string) error {
	unsure := subjects
	if len(subjects) > 1 {
		now, _, err := t.s.lastAt(t.ctx, subjects, 0)
		if err != nil {
			return err
		}
		unsure = nil
		for _, subj := range subjects {
			if r := now[subj]; r != nil && (r.prev() != 0 || r.seq <= t.snap) {
				unsure = append(unsure, subj)
			}
		}
	}
	for _, subj := range unsure {
		next, err := t.s.firstAfter(t.ctx, subj, t.snap)
		if err != nil {
			return err
		}
		if next != nil && next.prev() != 0 {
			err := fmt.Errorf("%w: a key changed more than %d times since the transaction began", ErrSnapshotTooOld, t.s.opts.History)
			if t.writable {
				// Fails the attempt even if fn ignores it: Update
				// runs fn again on a fresh snapshot.
				return t.fail(fmt.Errorf("%w: %w", errConflict, err))
			}
			return err
		}
	}
	return nil
}

// Prefetch reads keys at the snapshot ahead of the Gets that follow, in
// as few requests as the server allows (1,024 subjects each) instead of
// one request per Get. A caller that knows which keys it will read (the
// journal's committer: the records its ops check before they replace
// them) calls it first; it changes nothing else.
func (t *tx) Prefetch(keys [][]byte) error {
	if t.done {
		return errTxDone
	}
	var subjects []string
	seen := make(map[string]bool, len(keys))
	for _, key := range keys {
		subj := keySubject(t.s.keysBase, key)
		if _, own := t.writes[subj]; own || seen[subj] {
			continue
		}
		seen[subj] = true
		subjects = append(subjects, subj)
	}
	if len(subjects) == 0 {
		return nil
	}
	_, err := t.storedKeep(subjects, true)
	return err
}

// Get implements store.Tx.
func (t *tx) Get(key []byte) ([]byte, error) {
	if t.done {
		return nil, errTxDone
	}
	subj := keySubject(t.s.keysBase, key)
	if w, ok := t.writes[subj]; ok {
		if w.del {
			return nil, fmt.Errorf("%w: %q", store.ErrNotFound, abbrev(key))
		}
		return bytes.Clone(w.value), nil
	}
	got, err := t.stored([]string{subj})
	if err != nil {
		return nil, err
	}
	r := got[subj]
	if r == nil {
		return nil, fmt.Errorf("%w: %q", store.ErrNotFound, abbrev(key))
	}
	return bytes.Clone(r.data), nil
}

// Set implements store.Tx.
func (t *tx) Set(key, value []byte) error {
	return t.put(key, value, false)
}

// Delete implements store.Tx.
func (t *tx) Delete(key []byte) error {
	return t.put(key, nil, true)
}

func (t *tx) put(key, value []byte, del bool) error {
	if t.done {
		return errTxDone
	}
	if !t.writable {
		return fmt.Errorf("natsstore: %w", store.ErrReadOnly)
	}
	if t.err != nil {
		return t.err
	}
	if store.IsReserved(key) {
		return t.fail(fmt.Errorf("natsstore: %w: %q", store.ErrReservedKey, abbrev(key)))
	}
	subj := keySubject(t.s.keysBase, key)
	if len(subj) > maxSubjectLen {
		return t.fail(fmt.Errorf("natsstore: %w: a key of %d bytes is too long", store.ErrTooLarge, len(key)))
	}
	// The message carries the subject, the value and up to ~200 bytes of
	// headers.
	if len(subj)+len(value)+256 > t.s.maxPayload {
		return t.fail(fmt.Errorf("natsstore: %w: a value of %d bytes does not fit one message (the server's max_payload is %d)", store.ErrTooLarge, len(value), t.s.maxPayload))
	}
	old, rewrite := t.writes[subj]
	n := len(t.writes)
	if !rewrite {
		n++
	}
	size := t.bytes + len(key) + len(value)
	if rewrite {
		size -= len(old.key) + len(old.value)
	}
	if n > t.s.opts.MaxBatch || size > t.s.limits.MaxBytes {
		return t.fail(fmt.Errorf("natsstore: %w: more than %d writes or %d bytes in one transaction", store.ErrTooLarge, t.s.limits.MaxWrites, t.s.limits.MaxBytes))
	}
	w := &write{key: bytes.Clone(key), del: del}
	if !del {
		w.value = bytes.Clone(value)
		if w.value == nil {
			w.value = []byte{}
		}
	}
	t.writes[subj] = w
	t.bytes = size
	return nil
}

func (t *tx) fail(err error) error {
	if t.err == nil {
		t.err = err
	}
	return err
}

// Guard implements store.Tx (the method store.Tx gains with Limits): it
// reads key, compares it with want, and holds the read to commit.
func (t *tx) Guard(key, want []byte) error {
	if t.done {
		return errTxDone
	}
	subj := keySubject(t.s.keysBase, key)
	got, err := t.stored([]string{subj})
	if err != nil {
		return t.failGuard(err)
	}
	var value []byte
	found := false
	if w, ok := t.writes[subj]; ok {
		value, found = w.value, !w.del
	} else if r := got[subj]; r != nil {
		value, found = r.data, true
	}
	if want == nil && found || want != nil && (!found || !bytes.Equal(value, want)) {
		return t.failGuard(fmt.Errorf("%w: key %q does not hold the expected value", ErrGuardFailed, abbrev(key)))
	}
	if t.writable {
		t.guards[subj] = true
	}
	return nil
}

func (t *tx) failGuard(err error) error {
	if t.writable {
		return t.fail(err)
	}
	return err
}

// Scan implements store.Tx. It lists the subjects under the narrowest
// token-aligned filter for prefix, reads their values at the snapshot,
// lays the transaction's own writes over them and sorts the keys.
func (t *tx) Scan(prefix []byte, opts store.ScanOptions, fn func(key, value []byte) error) error {
	if t.done {
		return errTxDone
	}
	// The snapshot comes first: a key listed later but committed before
	// it must not be missed.
	if err := t.snapshot(); err != nil {
		return err
	}
	type pair struct{ key, value []byte }
	var pairs []pair
	subjects, err := t.s.subjects(t.ctx, prefixFilter(t.s.keysBase, prefix))
	if err != nil {
		return err
	}
	var want []string
	for _, subj := range subjects {
		if _, own := t.writes[subj]; own {
			continue
		}
		key, err := subjectKey(t.s.keysBase, subj)
		if err != nil || !bytes.HasPrefix(key, prefix) {
			continue
		}
		want = append(want, subj)
	}
	got, err := t.stored(want)
	if err != nil {
		return err
	}
	for _, r := range got {
		key, _ := subjectKey(t.s.keysBase, r.subject)
		pairs = append(pairs, pair{key, r.data})
	}
	for _, w := range t.writes {
		if !w.del && bytes.HasPrefix(w.key, prefix) {
			pairs = append(pairs, pair{w.key, w.value})
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int { return bytes.Compare(a.key, b.key) })
	if opts.Reverse {
		slices.Reverse(pairs)
	}
	for _, p := range pairs {
		if opts.Start != nil {
			c := bytes.Compare(p.key, opts.Start)
			if !opts.Reverse && c < 0 || opts.Reverse && c > 0 {
				continue
			}
		}
		if err := t.ctx.Err(); err != nil {
			return err
		}
		value := bytes.Clone(p.value)
		if opts.KeysOnly {
			value = nil
		} else if value == nil {
			value = []byte{}
		}
		if err := fn(bytes.Clone(p.key), value); err != nil {
			if errors.Is(err, store.ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

// subjects lists the stream's subjects that match filter (paged by the
// client library).
func (s *Store) subjects(ctx context.Context, filter string) ([]string, error) {
	info, err := s.st.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, s.connError(err)
	}
	out := make([]string, 0, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		out = append(out, subj)
	}
	slices.Sort(out)
	return out, nil
}

// abbrev shortens a key for an error message.
func abbrev(key []byte) string {
	const most = 64
	if len(key) > most {
		return strings.ToValidUTF8(string(key[:most]), "?") + "…"
	}
	return string(key)
}
