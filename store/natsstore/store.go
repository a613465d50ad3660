package natsstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowscript/flowscript/store"
)

// Limits is store.Limits: what one transaction may hold.
type Limits = store.Limits

// ErrGuardFailed is store.ErrGuardFailed: a Tx.Guard found another value
// than it wanted, or the guarded key changed before the transaction
// committed. Update does not retry it.
var ErrGuardFailed = store.ErrGuardFailed

// ErrSnapshotTooOld: a key changed more than Options.History times since
// the transaction's snapshot was taken, so its value at the snapshot is
// gone. Update retries it as a conflict; View returns it.
var ErrSnapshotTooOld = errors.New("natsstore: snapshot too old")

// Message headers this package writes.
const (
	hdrOp           = "Flowscript-Op"   // "del" on a delete
	hdrPrev         = "Flowscript-Prev" // the revision the message replaces, 0 if none
	opDelete        = "del"
	hdrExpSeq       = "Nats-Expected-Last-Subject-Sequence"
	hdrExpSubj      = "Nats-Expected-Last-Subject-Sequence-Subject"
	hdrBatchID      = "Nats-Batch-Id"
	hdrBatchSeq     = "Nats-Batch-Sequence"
	hdrBatchSize    = "Flowscript-Batch-Size" // messages in the batch, on each
	hdrTxn          = "Flowscript-Txn"        // the transaction's id, on each write
	hdrExpStreamSeq = "Nats-Expected-Last-Sequence"
	hdrTTL          = "Nats-TTL"
	// markerTTL is how long a marker message stays: it matters only
	// while its batch commits.
	markerTTL = "10s"
)

// Store is a store.Store on one JetStream stream.
type Store struct {
	opts   Options
	srv    *server.Server // started by Open for Options.Dir, else nil
	nc     *nats.Conn
	js     jetstream.JetStream
	st     jetstream.Stream
	stream string
	// created: Open created the stream; replicas: its replication factor
	created  bool
	replicas int
	// floor is the highest stream sequence this Store knows committed
	// (its own commits, its snapshots): a snapshot is never older, so a
	// replica that has not caught up yet is waited for (advance, now)
	floor atomic.Uint64

	keysBase      string // subjects of keys: fs.<stream>.k.<tokens>
	markerBase    string // read markers: fs.<stream>.x.r.<n>
	headSubject   string // one message, so that every stream has a last sequence to read
	allSubjects   string // fs.<stream>.>
	directSubject string
	timeout       time.Duration
	limits        Limits
	maxPayload    int
	batchSlots    chan struct{} // atomic batches in flight (the server allows 50 per stream)
	replies       replies

	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	running sync.WaitGroup
}

var _ store.Store = (*Store)(nil)

// Open connects to JetStream as opts say, creates the stream when it does
// not exist (or updates its configuration) and returns the Store.
func Open(opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Store{
		opts:          opts,
		stream:        opts.Stream,
		keysBase:      "fs." + opts.Stream + ".k",
		markerBase:    "fs." + opts.Stream + ".x.r",
		headSubject:   "fs." + opts.Stream + ".x.head",
		allSubjects:   "fs." + opts.Stream + ".>",
		directSubject: "$JS.API.DIRECT.GET." + opts.Stream,
		timeout:       30 * time.Second,
		batchSlots:    make(chan struct{}, 32),
		closing:       make(chan struct{}),
	}
	if err := s.connect(); err != nil {
		s.shutdown()
		return nil, err
	}
	if err := s.ensureStream(); err != nil {
		s.shutdown()
		return nil, err
	}
	s.maxPayload = int(s.nc.MaxPayload())
	s.limits = Limits{MaxWrites: opts.MaxBatch - checkSlots, MaxBytes: maxTxBytes}
	return s, nil
}

func (s *Store) connect() error {
	o := s.opts
	srv := o.Server
	if o.Dir != "" {
		var err error
		srv, err = server.NewServer(&server.Options{
			JetStream:       true,
			StoreDir:        o.Dir,
			DontListen:      true,
			NoLog:           true,
			NoSigs:          true,
			SyncAlways:      o.Durability == Durable,
			MaxPayload:      ownMaxPayload,
			JetStreamLimits: server.JSLimitOpts{MaxBatchSize: o.MaxBatch},
		})
		if err != nil {
			return fmt.Errorf("natsstore: starting a JetStream server in %s: %w", o.Dir, err)
		}
		s.srv = srv
		go srv.Start()
		if !srv.ReadyForConnections(30 * time.Second) {
			return fmt.Errorf("natsstore: the JetStream server in %s did not start", o.Dir)
		}
	}
	if srv != nil {
		if !srv.JetStreamEnabled() {
			return errors.New("natsstore: the in-process server does not run JetStream")
		}
		if o.Durability == Durable && o.Replicas < 3 && !o.MustExist && !srv.JetStreamConfig().SyncAlways {
			return errors.New("natsstore: durable mode on a single server needs sync_always (or Replicas >= 3); the in-process server does not sync every write (use Fast, or start it with SyncAlways)")
		}
	}
	var err error
	if srv != nil {
		s.nc, err = nats.Connect("", nats.InProcessServer(srv), nats.MaxReconnects(-1))
	} else {
		s.nc, err = nats.Connect(o.URL, nats.MaxReconnects(-1))
	}
	if err != nil {
		return fmt.Errorf("natsstore: connecting: %w", err)
	}
	if err := s.replies.start(s.nc); err != nil {
		return fmt.Errorf("natsstore: subscribing: %w", err)
	}
	s.js, err = jetstream.New(s.nc)
	return err
}

func (s *Store) ensureStream() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	cfg := jetstream.StreamConfig{
		Name:               s.stream,
		Description:        "flowscript database (store/natsstore)",
		Subjects:           []string{"fs." + s.stream + ".>"},
		Storage:            jetstream.FileStorage,
		Replicas:           max(s.opts.Replicas, 1),
		MaxMsgsPerSubject:  int64(s.opts.History),
		Discard:            jetstream.DiscardOld,
		AllowDirect:        true,
		AllowAtomicPublish: true,
		AllowMsgTTL:        true,
	}
	var st jetstream.Stream
	var err error
	if s.opts.MustExist {
		err = retryAPI(ctx, func(ctx context.Context) (err error) { st, err = s.js.Stream(ctx, s.stream); return err })
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("%w: no stream %s on the server", ErrNoDatabase, s.stream)
		}
		if err != nil {
			return fmt.Errorf("natsstore: opening stream %s: %w", s.stream, err)
		}
	} else {
		err = retryAPI(ctx, func(ctx context.Context) (err error) { st, err = s.js.CreateStream(ctx, cfg); return err })
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			err = retryAPI(ctx, func(ctx context.Context) (err error) { st, err = s.js.Stream(ctx, s.stream); return err })
		} else if err == nil {
			s.created = true
		}
		if err != nil {
			return fmt.Errorf("natsstore: creating stream %s: %w", s.stream, err)
		}
	}
	// Reopening: refuse a stream that is not a database of ours, and
	// (unless MustExist) bring our settings (History, Replicas if
	// given) up to date.
	if got := st.CachedInfo().Config.Subjects; !slices.Equal(got, cfg.Subjects) {
		return fmt.Errorf("natsstore: stream %s exists with subjects %q, not %q: it is not a flowscript database; name another stream", s.stream, got, cfg.Subjects)
	}
	if !s.created && !s.opts.MustExist {
		have := st.CachedInfo().Config
		if s.opts.Replicas == 0 {
			cfg.Replicas = have.Replicas
		}
		if have.Replicas != cfg.Replicas || have.MaxMsgsPerSubject != cfg.MaxMsgsPerSubject || !have.AllowAtomicPublish || !have.AllowDirect || !have.AllowMsgTTL {
			if err = retryAPI(ctx, func(ctx context.Context) (err error) { st, err = s.js.UpdateStream(ctx, cfg); return err }); err != nil {
				return fmt.Errorf("natsstore: updating stream %s: %w", s.stream, err)
			}
		}
	}
	if c := st.CachedInfo().Config; !c.AllowAtomicPublish || !c.AllowDirect {
		return fmt.Errorf("natsstore: the server did not enable atomic batch publish and direct gets on stream %s: natsstore needs nats-server 2.12 or later (2.15.3 or later recommended)", s.stream)
	}
	s.st = st
	s.replicas = st.CachedInfo().Config.Replicas
	// The stream's leader answered the info: every commit acknowledged
	// before Open is at or below its last sequence, so reads never see
	// less than what was committed before the Store was opened, even on
	// a replica that is behind (what another process committed and then
	// told about, e.g. by ending).
	s.advance(st.CachedInfo().State.LastSeq)
	if s.opts.MustExist {
		return nil
	}
	head := &nats.Msg{Subject: s.headSubject, Header: nats.Header{hdrExpSeq: []string{"0"}}, Data: []byte("flowscript")}
	if err := retryAPI(ctx, func(ctx context.Context) error { _, err := s.js.PublishMsg(ctx, head); return err }); err != nil && !isWrongLastSeq(err) {
		return fmt.Errorf("natsstore: writing the head of stream %s: %w", s.stream, err)
	}
	return nil
}

// retryAPI calls fn with a context of attemptTimeout while it fails as
// transient says (an API request a departed node took with it, a
// cluster electing a leader), until ctx ends.
func retryAPI(ctx context.Context, fn func(ctx context.Context) error) error {
	for {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := fn(actx)
		cancel()
		if err == nil || !transient(err) || ctx.Err() != nil {
			return err
		}
		if err := sleepCtx(ctx, retryPause); err != nil {
			return err
		}
	}
}

// ErrNoDatabase: Options.MustExist and the stream does not exist.
var ErrNoDatabase = errors.New("natsstore: no such database")

// Replicas is the stream's replication factor.
func (s *Store) Replicas() int { return s.replicas }

// Limits implements store.Store: at most MaxBatch-16 writes (the rest of
// an atomic batch is kept for checks of keys read) and 8 MiB of keys and
// values.
func (s *Store) Limits() Limits { return s.limits }

// begin registers a running call; it fails once the Store is closed.
func (s *Store) begin() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("natsstore: %w", store.ErrClosed)
	}
	s.running.Add(1)
	return nil
}

// Update implements store.Store.
func (s *Store) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.running.Done()
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := s.attempt(ctx, fn)
		if !errors.Is(err, errConflict) {
			return err
		}
		if attempt >= s.opts.MaxUpdateAttempts {
			return fmt.Errorf("%w (%d attempts)", store.ErrConflict, attempt)
		}
		if err := backoff(ctx, attempt); err != nil {
			return err
		}
	}
}

// errConflict marks a lost race inside the package; Update retries it.
var errConflict = errors.New("natsstore: conflict")

func (s *Store) attempt(ctx context.Context, fn func(tx store.Tx) error) error {
	t, err := s.newTx(ctx, true)
	if err != nil {
		return err
	}
	defer t.end()
	if err := fn(t); err != nil {
		return err
	}
	if t.err != nil {
		return t.err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.commit(t)
}

// View implements store.Store.
func (s *Store) View(ctx context.Context, fn func(tx store.Tx) error) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.running.Done()
	if err := ctx.Err(); err != nil {
		return err
	}
	t, err := s.newTx(ctx, false)
	if err != nil {
		return err
	}
	defer t.end()
	return fn(t)
}

// backoff waits a little, growing with attempt, with jitter so that
// racing committers spread out.
func backoff(ctx context.Context, attempt int) error {
	limit := time.Duration(min(attempt, 20)) * 250 * time.Microsecond
	d := time.Duration(rand.Int64N(int64(limit))) + 50*time.Microsecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Close implements store.Store.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	s.running.Wait()
	s.shutdown()
	return nil
}

func (s *Store) shutdown() {
	if s.nc != nil {
		s.nc.Close()
	}
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
	}
}

// connError says which stream a connection-level failure concerns; once
// the Store is closed it wraps ErrClosed.
func (s *Store) connError(err error) error {
	select {
	case <-s.closing:
		if errors.Is(err, nats.ErrConnectionClosed) {
			return fmt.Errorf("natsstore: %w", store.ErrClosed)
		}
	default:
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("natsstore: stream %s: %w", s.stream, err)
}

func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return false
}

// StreamName is the JetStream stream that holds the database.
func (s *Store) StreamName() string { return s.stream }

// advance raises floor to seq.
func (s *Store) advance(seq uint64) {
	for {
		f := s.floor.Load()
		if seq <= f || s.floor.CompareAndSwap(f, seq) {
			return
		}
	}
}
