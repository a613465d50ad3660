// Package lease makes one process at a time the owner of a database kept
// in a shared store (store/natsstore), and fences every commit of the
// engine on that ownership.
//
// # Keys
//
// Two keys of the database hold the ownership:
//
//	owner/lease  the owner's token (who it is, a random id); absent: free
//	owner/beat   the owner's heartbeat: its id and a counter
//
// The owner rewrites owner/beat every Interval (a quarter of the takeover
// time). Every transaction of a Fenced store first guards owner/lease
// (store.Tx.Guard): it commits only while the lease still holds the
// owner's own token, so the heartbeat, which changes only owner/beat,
// never fences out the owner's own commits.
//
// # Takeover
//
// Clocks of different machines are never compared. A process that wants
// the database reads both keys; if the lease is absent it takes it at
// once; otherwise it watches the heartbeat with its own clock, and once
// neither key has changed for the takeover time it writes its own token,
// guarding both keys at the values it watched (so a heartbeat that comes
// late but lands first wins). From that commit on, the deposed owner's
// commits fail with store.ErrGuardFailed: none of them lands, whole or in
// part. A deposed owner learns it from its next heartbeat or commit, or
// when it has not renewed for the takeover time, and is told through
// Config.Lost; it must then stop (its runs stay unfinished for the new
// owner).
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowscript/flowscript/store"
)

// The keys of the ownership.
var (
	LeaseKey = []byte("owner/lease")
	BeatKey  = []byte("owner/beat")
)

// DefaultTakeover is how long an owner may stay silent before another
// process takes the database.
const DefaultTakeover = 10 * time.Second

// Token is what the lease key holds: who owns the database.
type Token struct {
	ID    string    `json:"id"`
	Host  string    `json:"host"`
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
}

func (t Token) String() string {
	return fmt.Sprintf("process %d on %s (owner %s, since %s)", t.PID, t.Host, t.ID, t.Since.UTC().Format(time.RFC3339))
}

// OwnedError: the database has a live owner (its heartbeat moved while
// this process watched).
type OwnedError struct{ Owner Token }

func (e *OwnedError) Error() string {
	return "the database is owned by " + e.Owner.String()
}

// Config tunes Acquire.
type Config struct {
	// Takeover is how long the owner's heartbeat must stay still before
	// the lease is taken from it; 0 means DefaultTakeover.
	Takeover time.Duration
	// Wait: keep waiting while the owner is alive (serve). Without it,
	// Acquire returns an *OwnedError as soon as the heartbeat moves.
	Wait bool
	// Waiting, if set, is told once that another process owns the
	// database and this one waits for it to go silent.
	Waiting func(owner Token)
	// Lost, if set, is called once (on its own goroutine) when this
	// process is no longer the owner: the lease was taken, or it could
	// not be renewed for Takeover.
	Lost func(err error)
}

func (c Config) takeover() time.Duration {
	if c.Takeover <= 0 {
		return DefaultTakeover
	}
	return c.Takeover
}

// Interval is how often an owner renews its heartbeat.
func (c Config) Interval() time.Duration { return c.takeover() / 4 }

// poll is how often a waiting process reads the keys.
func (c Config) poll() time.Duration {
	return min(max(c.takeover()/20, 20*time.Millisecond), time.Second)
}

// Lease is the ownership of one database by this process.
type Lease struct {
	st    store.Store
	cfg   Config
	token []byte
	me    Token
	// Previous is the owner this process took the database from (zero
	// when the lease was free), and Waited how long it watched its
	// silent heartbeat.
	Previous Token
	Waited   time.Duration

	mu       sync.Mutex
	lost     error
	lastBeat time.Time
	beats    atomic.Uint64 // heartbeats written
	stop     chan struct{}
	done     chan struct{}
}

// ErrLost wraps the reason a Lease ended while its process still ran.
var ErrLost = errors.New("lost ownership of the database")

func newToken() (Token, []byte, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Token{}, nil, err
	}
	host, _ := os.Hostname()
	t := Token{ID: hex.EncodeToString(b[:]), Host: host, PID: os.Getpid(), Since: time.Now()}
	data, err := json.Marshal(t)
	return t, data, err
}

// ReadOwner returns the current owner, if any.
func ReadOwner(ctx context.Context, st store.Store) (Token, bool, error) {
	lease, _, err := read(ctx, st)
	if err != nil || lease == nil {
		return Token{}, false, err
	}
	return decode(lease), true, nil
}

func decode(lease []byte) Token {
	var t Token
	if json.Unmarshal(lease, &t) != nil {
		t.ID = string(lease)
	}
	return t
}

func read(ctx context.Context, st store.Store) (lease, beat []byte, err error) {
	err = st.View(ctx, func(tx store.Tx) error {
		var err error
		if lease, err = get(tx, LeaseKey); err != nil {
			return err
		}
		beat, err = get(tx, BeatKey)
		return err
	})
	return lease, beat, err
}

func get(tx store.Tx, key []byte) ([]byte, error) {
	v, err := tx.Get(key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return v, err
}

// Acquire makes this process the owner of the database in st, taking the
// lease when it is free or once its owner has been silent for
// cfg.Takeover, and starts the heartbeat. Release (or Fenced's Close)
// gives it back.
func Acquire(ctx context.Context, st store.Store, cfg Config) (*Lease, error) {
	me, token, err := newToken()
	if err != nil {
		return nil, err
	}
	l := &Lease{st: st, cfg: cfg, token: token, me: me, stop: make(chan struct{}), done: make(chan struct{})}
	var seenLease, seenBeat []byte
	var seenAt time.Time
	told := false
	for first := true; ; first = false {
		lease, beat, err := read(ctx, st)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		changed := first || string(lease) != string(seenLease) || string(beat) != string(seenBeat)
		if changed {
			if !first && lease != nil && !cfg.Wait {
				return nil, &OwnedError{Owner: decode(lease)}
			}
			seenLease, seenBeat, seenAt = lease, beat, now
		}
		if lease == nil || now.Sub(seenAt) >= cfg.takeover() {
			err := l.take(ctx, lease, beat)
			if err == nil {
				if lease != nil {
					l.Previous, l.Waited = decode(lease), now.Sub(seenAt)
				}
				l.lastBeat = time.Now()
				go l.heartbeat()
				return l, nil
			}
			if !errors.Is(err, store.ErrGuardFailed) {
				return nil, err
			}
			continue // someone moved first: look again
		}
		if !told && cfg.Waiting != nil {
			told = true
			cfg.Waiting(decode(lease))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(cfg.poll()):
		}
	}
}

// take writes this process's token, if both keys still hold what was read.
func (l *Lease) take(ctx context.Context, lease, beat []byte) error {
	return l.st.Update(ctx, func(tx store.Tx) error {
		if err := tx.Guard(LeaseKey, lease); err != nil {
			return err
		}
		if err := tx.Guard(BeatKey, beat); err != nil {
			return err
		}
		if err := tx.Set(LeaseKey, l.token); err != nil {
			return err
		}
		return tx.Set(BeatKey, l.beatValue(0))
	})
}

func (l *Lease) beatValue(n uint64) []byte { return fmt.Appendf(nil, "%s %d", l.me.ID, n) }

// Owner is this process's token.
func (l *Lease) Owner() Token { return l.me }

// Guard fences tx on the lease: it fails with store.ErrGuardFailed unless
// this process still owns the database when tx commits.
func (l *Lease) Guard(tx store.Tx) error {
	if err := l.Err(); err != nil {
		return fmt.Errorf("%w (%w)", store.ErrGuardFailed, err)
	}
	return tx.Guard(LeaseKey, l.token)
}

// Err is nil while the lease is held, else why it was lost.
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// lose records that the lease is gone and tells cfg.Lost, once.
func (l *Lease) lose(err error) {
	l.mu.Lock()
	first := l.lost == nil
	if first {
		l.lost = fmt.Errorf("%w: %w", ErrLost, err)
	}
	lost, tell := l.lost, l.cfg.Lost
	l.mu.Unlock()
	if first && tell != nil {
		go tell(lost)
	}
}

// SetLost sets Config.Lost after Acquire; if the lease is already lost,
// fn is called at once (on its own goroutine).
func (l *Lease) SetLost(fn func(err error)) {
	l.mu.Lock()
	l.cfg.Lost = fn
	lost := l.lost
	l.mu.Unlock()
	if lost != nil {
		go fn(lost)
	}
}

func (l *Lease) heartbeat() {
	defer close(l.done)
	t := time.NewTicker(l.cfg.Interval())
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		if l.Err() != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.cfg.takeover())
		n := l.beats.Load() + 1
		err := l.st.Update(ctx, func(tx store.Tx) error {
			if err := tx.Guard(LeaseKey, l.token); err != nil {
				return err
			}
			return tx.Set(BeatKey, l.beatValue(n))
		})
		cancel()
		switch {
		case err == nil:
			l.beats.Store(n)
			l.lastBeat = time.Now()
		case errors.Is(err, store.ErrGuardFailed):
			l.lose(l.takenBy())
			return
		case time.Since(l.lastBeat) >= l.cfg.takeover():
			l.lose(fmt.Errorf("the heartbeat could not be renewed for %s (%v): another process may own the database now", l.cfg.takeover(), err))
			return
		}
	}
}

// takenBy says who holds the lease now.
func (l *Lease) takenBy() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if t, ok, err := ReadOwner(ctx, l.st); err == nil && ok {
		return fmt.Errorf("taken over by %s", t)
	}
	return errors.New("the lease was taken or released")
}

// Release stops the heartbeat and frees the lease if this process still
// holds it, so that a waiting process takes the database at once.
func (l *Lease) Release() error {
	select {
	case <-l.stop:
		return nil
	default:
		close(l.stop)
	}
	<-l.done
	if l.Err() != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := l.st.Update(ctx, func(tx store.Tx) error {
		if err := tx.Guard(LeaseKey, l.token); err != nil {
			return err
		}
		if err := tx.Delete(LeaseKey); err != nil {
			return err
		}
		return tx.Delete(BeatKey)
	})
	if errors.Is(err, store.ErrGuardFailed) {
		return nil
	}
	return err
}
