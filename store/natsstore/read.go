package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// rec is one stored message as a direct get returns it.
type rec struct {
	subject string
	seq     uint64
	hdr     nats.Header
	data    []byte
}

func (r *rec) deleted() bool { return r.hdr.Get(hdrOp) == opDelete }

// prev is the revision the message replaced (0: none), from the header
// every commit of this package writes.
func (r *rec) prev() uint64 {
	n, _ := strconv.ParseUint(r.hdr.Get(hdrPrev), 10, 64)
	return n
}

// getRequest is the body of a JetStream direct get (ADR-31).
type getRequest struct {
	Seq       uint64   `json:"seq,omitempty"`
	NextFor   string   `json:"next_by_subj,omitempty"`
	Batch     int      `json:"batch,omitempty"`
	MultiLast []string `json:"multi_last,omitempty"`
	UpToSeq   uint64   `json:"up_to_seq,omitempty"`
}

// maxMultiLast is how many subjects the server answers in one multi-last
// request (nats-server's maxAllowedResponses).
const maxMultiLast = 1024

// direct sends a direct get and collects its answers: one message, or for
// batch and multi-last requests the messages up to the end-of-batch
// marker. It returns the messages, how many more the server held back
// (Nats-Num-Pending of the marker) and the stream sequence the answer is
// as of (Nats-UpTo-Sequence, multi-last only). No message is not an
// error.
func (s *Store) direct(ctx context.Context, req getRequest) (recs []*rec, pending, upTo uint64, err error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, 0, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	// A request that a node took with it when it went away is not
	// answered: ask again after attemptTimeout (reads are idempotent).
	for {
		recs, pending, upTo, err = s.directOnce(ctx, req, body)
		if err == nil || ctx.Err() != nil {
			return recs, pending, upTo, err
		}
		if errors.Is(err, errNoResponders) {
			// no replica answers on this server yet (a node that just
			// started, whose routes have not told it of the others)
			if serr := sleepCtx(ctx, retryPause); serr != nil {
				return nil, 0, 0, err
			}
			continue
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			return recs, pending, upTo, err
		}
	}
}

// errNoResponders: a direct get found no replica to answer it.
var errNoResponders = errors.New("no replica of the stream answered (503)")

func (s *Store) directOnce(ctx context.Context, req getRequest, body []byte) (recs []*rec, pending, upTo uint64, err error) {
	r := s.replies.open()
	defer s.replies.close(r)
	if err := s.nc.PublishRequest(s.directSubject, r.subject, body); err != nil {
		return nil, 0, 0, s.connError(err)
	}
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	multi := req.Batch > 0 || len(req.MultiLast) > 0
	for {
		m, err := r.next(ctx)
		if err != nil {
			return nil, 0, 0, s.connError(err)
		}
		if len(m.Data) == 0 {
			switch m.Header.Get("Status") {
			case "":
			case "404":
				return recs, 0, 0, nil
			case "503":
				return nil, 0, 0, fmt.Errorf("natsstore: direct get on stream %s: %w", s.stream, errNoResponders)
			case "204": // end of batch
				pending, _ = strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
				upTo, _ = strconv.ParseUint(m.Header.Get("Nats-UpTo-Sequence"), 10, 64)
				return recs, pending, upTo, nil
			default:
				return nil, 0, 0, fmt.Errorf("natsstore: direct get on stream %s: %s %s", s.stream, m.Header.Get("Status"), m.Header.Get("Description"))
			}
		}
		seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("natsstore: direct get on stream %s: an answer without a sequence", s.stream)
		}
		recs = append(recs, &rec{subject: m.Header.Get(jetstream.SubjectHeader), seq: seq, hdr: m.Header, data: m.Data})
		if !multi {
			return recs, 0, 0, nil
		}
	}
}

// replies routes the answers to direct gets, which may be many messages
// per request, from one wildcard subscription to the requests waiting for
// them (a subscription per request costs more than the request).
type replies struct {
	prefix string
	mu     sync.Mutex
	next   uint64
	open_  map[string]*reply
	sub    *nats.Subscription
}

type reply struct {
	subject string
	mu      sync.Mutex
	queue   []*nats.Msg
	ready   chan struct{} // signalled when queue grows
}

func (rs *replies) start(nc *nats.Conn) error {
	rs.prefix = nc.NewRespInbox() + "."
	rs.open_ = map[string]*reply{}
	sub, err := nc.Subscribe(rs.prefix+"*", rs.deliver)
	if err != nil {
		return err
	}
	rs.sub = sub
	return sub.SetPendingLimits(-1, -1)
}

func (rs *replies) deliver(m *nats.Msg) {
	rs.mu.Lock()
	r := rs.open_[m.Subject]
	rs.mu.Unlock()
	if r == nil {
		return // a request that gave up
	}
	r.mu.Lock()
	r.queue = append(r.queue, m)
	r.mu.Unlock()
	select {
	case r.ready <- struct{}{}:
	default:
	}
}

func (rs *replies) open() *reply {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.next++
	r := &reply{subject: rs.prefix + strconv.FormatUint(rs.next, 36), ready: make(chan struct{}, 1)}
	rs.open_[r.subject] = r
	return r
}

func (rs *replies) close(r *reply) {
	rs.mu.Lock()
	delete(rs.open_, r.subject)
	rs.mu.Unlock()
}

func (r *reply) next(ctx context.Context) (*nats.Msg, error) {
	for {
		r.mu.Lock()
		if len(r.queue) > 0 {
			m := r.queue[0]
			r.queue = r.queue[1:]
			r.mu.Unlock()
			return m, nil
		}
		r.mu.Unlock()
		select {
		case <-r.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// lastAt returns the last message of each of subjects as of stream
// sequence upTo (0: now), in no particular order, and the sequence the
// answer is as of. Subjects without a message then are left out.
func (s *Store) lastAt(ctx context.Context, subjects []string, upTo uint64) (map[string]*rec, uint64, error) {
	return s.lastAtAnchored(ctx, subjects, upTo, "")
}

// lastAtAnchored is lastAt checking, on a replicated stream, that the
// replica that answers is not behind (any replica answers a direct get,
// and one may lag behind the leader). Asked as of now, the answer must
// be as of floor or later. Asked as of upTo, anchor (the subject of the
// message at upTo, the last of its subject then) is asked in the same
// request and must come back at upTo: a replica that has not reached
// upTo yet answers as of its own last message. A stale answer is asked
// again. Should message upTo have been pushed out of the stream since
// (its subject changed History times), it can no longer anchor
// anything: that is ErrSnapshotTooOld.
func (s *Store) lastAtAnchored(ctx context.Context, subjects []string, upTo uint64, anchor string) (map[string]*rec, uint64, error) {
	began := time.Now()
	for wait := 200 * time.Microsecond; ; wait = min(2*wait, 20*time.Millisecond) {
		out, at, fresh, err := s.lastAtOnce(ctx, subjects, upTo, anchor)
		if err != nil || fresh || s.replicas <= 1 {
			return out, at, err
		}
		if anchor != "" {
			next, err := s.firstAfter(ctx, anchor, upTo-1)
			if err != nil {
				return nil, 0, err
			}
			if next != nil && next.seq > upTo {
				return nil, 0, fmt.Errorf("%w: message %d, the snapshot's, is no longer in the stream", ErrSnapshotTooOld, upTo)
			}
		}
		if time.Since(began) > s.timeout {
			return nil, 0, fmt.Errorf("natsstore: stream %s: the replica that answers has not caught up (sequence %d) within %s", s.stream, max(upTo, s.floor.Load()), s.timeout)
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return nil, 0, err
		}
	}
}

// lastAtOnce asks once; fresh is false when an answer came from a
// replica that is behind (see lastAtAnchored). An answer cut at the
// server's byte limit is completed by another request, which asks the
// anchor again.
func (s *Store) lastAtOnce(ctx context.Context, subjects []string, upTo uint64, anchor string) (map[string]*rec, uint64, bool, error) {
	out := make(map[string]*rec, len(subjects))
	fresh := true
	// extra is a subject asked to check the answer: the anchor, or,
	// asked as of now on a replicated stream, the head (always there,
	// so that the answer is never an empty 404 and says what sequence it
	// is as of). own: asked only for that, left out of the result.
	extra := anchor
	if upTo == 0 && s.replicas > 1 {
		extra = s.headSubject
	}
	for len(subjects) > 0 {
		n := min(len(subjects), maxMultiLast-1)
		chunk := subjects[:n:n]
		own := extra != "" && !slices.Contains(chunk, extra)
		if own {
			chunk = append(chunk, extra)
		}
		anchored := anchor == ""
		for {
			recs, pending, at, err := s.direct(ctx, getRequest{MultiLast: chunk, UpToSeq: upTo})
			if err != nil {
				return nil, 0, false, err
			}
			if upTo == 0 {
				upTo = at
				if at < s.floor.Load() {
					fresh = false
				}
			}
			for _, r := range recs {
				if r.subject == extra {
					if anchor != "" {
						anchored = r.seq == upTo
					}
					if own {
						continue
					}
				}
				out[r.subject] = r
			}
			if pending == 0 || len(recs) == 0 {
				break
			}
			// The answer was cut at the server's byte limit: ask again
			// for the subjects it did not cover.
			var rest []string
			for _, subj := range chunk {
				if out[subj] == nil && !(own && subj == extra) {
					rest = append(rest, subj)
				}
			}
			if len(rest) == 0 {
				break
			}
			if own {
				rest = append(rest, extra)
			}
			chunk = rest
		}
		if !anchored {
			fresh = false
		}
		subjects = subjects[n:]
	}
	return out, upTo, fresh, nil
}

// firstAfter returns the first message of subject after stream sequence
// seq, or nil.
func (s *Store) firstAfter(ctx context.Context, subject string, seq uint64) (*rec, error) {
	recs, _, _, err := s.direct(ctx, getRequest{Seq: seq + 1, NextFor: subject})
	if err != nil || len(recs) == 0 {
		return nil, err
	}
	return recs[0], nil
}

// now returns the stream's last sequence, read under the stream's
// isolation lock so that it never falls inside an atomic batch.
//
// On a replicated stream any replica may answer a direct get, and one
// may lag behind the leader: an answer older than what this Store has
// seen committed (floor) is asked again until the replica has caught up,
// so that a process reads its own commits and its reads never go back.
// (The other reads of a snapshot go, like this one, to the replica on
// the server the connection is on: NATS prefers a local member of a
// queue group.)
func (s *Store) now(ctx context.Context) (uint64, error) {
	began := time.Now()
	for wait := 200 * time.Microsecond; ; wait = min(2*wait, 20*time.Millisecond) {
		_, at, err := s.lastAt(ctx, []string{s.headSubject}, 0)
		if err != nil {
			return 0, err
		}
		if at == 0 {
			return 0, fmt.Errorf("natsstore: stream %s lost its head message %s", s.stream, s.headSubject)
		}
		if at >= s.floor.Load() {
			s.advance(at)
			return at, nil
		}
		if time.Since(began) > s.timeout {
			return 0, fmt.Errorf("natsstore: stream %s: the replica that answers has not caught up with sequence %d within %s", s.stream, s.floor.Load(), s.timeout)
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return 0, err
		}
	}
}
