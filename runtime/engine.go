package runtime

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/oklog/ulid/v2"
	"go.starlark.net/starlark"

	"github.com/flowscript/flowscript/lang"
	"github.com/flowscript/flowscript/runtime/journal"
	"github.com/flowscript/flowscript/store"
)

// Handler is a task body written in Go by the host program, named by a
// string body: task("charge", "payments.charge").
type Handler func(ctx context.Context, t *TaskContext) (map[string]any, error)

// TaskContext is what a Go task handler receives.
type TaskContext struct {
	RunID    string
	StepID   string
	Workflow string
	Attempt  int
	Inputs   map[string]any
	Params   map[string]any
	// Log receives the step's log lines; secrets are masked.
	Log io.Writer
	// Secret resolves a secret the workflow declares.
	Secret func(name string) (string, error)
}

// Options tunes an engine. The zero value is the default.
type Options struct {
	Logger hclog.Logger
	// Workers bounds the step attempts that execute at once; 0 means 32.
	Workers int
	// MaxSteps bounds the Starlark steps of declaring a workflow (0: the
	// lang default); BodyMaxSteps those of one body attempt (0: 100 million).
	MaxSteps     uint64
	BodyMaxSteps uint64
	// BodyMaxMemory bounds the heap growth of one body attempt, in bytes
	// (0: $FLOWSCRIPT_MAX_STEP_MEMORY, else 1 GiB).
	BodyMaxMemory uint64
	// LookupSecret finds a secret's value; nil means the environment.
	LookupSecret func(name string) (string, bool)
	// Observer, when set, is told of every history event after it is
	// committed. It is called from many goroutines.
	Observer func(run *RunRecord, ev HistoryEvent)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxChildren bounds the child runs one run may spawn (0: 10,000).
	MaxChildren int
	// MaxEngineStops is how many times in a row the engine may stop while
	// a step runs before resume fails that step (0: $FLOWSCRIPT_MAX_ENGINE_STOPS, else 3).
	MaxEngineStops int
	// HTTPAllowHosts, when not nil, restricts http.* in step bodies to
	// these hosts ("api.example.com", "*.internal", "localhost:8080");
	// nil: $FLOWSCRIPT_HTTP_ALLOW, else every host.
	HTTPAllowHosts []string
	// StubChild, for tests, stands in for the children of for_each and
	// loop steps: when it returns ok for the child workflow's name, each
	// child runs source instead (a script declaring params, see
	// dynamic_standin.go). The root package's Stubs set it.
	StubChild func(name string, params []string) (source string, ok bool)
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.Workers <= 0 {
		o.Workers = 32
	}
	if o.BodyMaxSteps == 0 {
		o.BodyMaxSteps = 100_000_000
	}
	if o.LookupSecret == nil {
		o.LookupSecret = os.LookupEnv
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxEngineStops <= 0 {
		o.MaxEngineStops, _ = strconv.Atoi(os.Getenv("FLOWSCRIPT_MAX_ENGINE_STOPS"))
	}
	return o
}

// Engine runs workflows durably on a store.
type Engine struct {
	j    *journal.Journal
	opts Options
	log  hclog.Logger
	c    committer
	q    *workQueue

	base     context.Context // cancelled when the engine closes
	stopBase context.CancelFunc
	workers  sync.WaitGroup

	mu       sync.Mutex
	handlers map[string]Handler
	modules  starlark.StringDict
	active   map[string]*activeRun
	timers   map[*time.Timer]struct{}
	closed   bool

	idMu   sync.Mutex
	lastID time.Time // the time of the newest root run id

	stopWatch func() error // the watch of notices of runs that steps wait for
	live      liveLogs     // the output of the attempts running now
	// idemPending holds the idempotency keys that spawns decided but not
	// yet committed are binding, so that a spawn decided meanwhile sees
	// them; idemMu guards it and is never held across a commit.
	idemMu      sync.Mutex
	idemPending map[string]string

	progMu   sync.Mutex
	programs map[string]*lang.Program // evaluated definitions by content hash
	defs     map[defRef]*journal.Definition
	latest   map[string]int // the latest version of a name, as last read
	defGen   uint64         // counts registers, which may move latest
}

// New starts an engine on a store. The caller keeps ownership of the store
// and closes it after the engine.
func New(st store.Store, opts Options) *Engine {
	opts = opts.withDefaults()
	base, stop := context.WithCancel(context.Background())
	e := &Engine{
		j:           journal.New(st),
		opts:        opts,
		log:         opts.Logger,
		q:           newWorkQueue(opts.Workers),
		base:        base,
		stopBase:    stop,
		handlers:    map[string]Handler{},
		modules:     starlark.StringDict{},
		active:      map[string]*activeRun{},
		timers:      map[*time.Timer]struct{}{},
		programs:    map[string]*lang.Program{},
		defs:        map[defRef]*journal.Definition{},
		latest:      map[string]int{},
		idemPending: map[string]string{},
	}
	for i := 0; i < opts.Workers; i++ {
		e.workers.Add(1)
		go e.worker()
	}
	e.c = committer{e.j}
	if stop, err := e.j.WatchNotices(base, e.notice); err == nil {
		e.stopWatch = stop
	} else {
		e.log.Error("cannot watch for the ends of child runs; parents will learn of them on resume", "error", err)
	}
	return e
}

// RegisterHandler makes a Go task handler available under a name.
func (e *Engine) RegisterHandler(name string, h Handler) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.handlers[name] = h
}

// RegisterModule adds a Starlark value that scripts see under name.
func (e *Engine) RegisterModule(name string, v starlark.Value) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.modules[name] = v
}

// LangOptions are the evaluation options scripts of this engine use.
func (e *Engine) LangOptions() lang.Options {
	e.mu.Lock()
	defer e.mu.Unlock()
	mods := make(starlark.StringDict, len(e.modules))
	for k, v := range e.modules {
		mods[k] = v
	}
	return lang.Options{MaxSteps: e.opts.MaxSteps, Predeclared: mods, Registry: registry{e}}
}

func (e *Engine) handler(name string) (Handler, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	h, ok := e.handlers[name]
	return h, ok
}

// Close stops the engine: running step attempts are interrupted and their
// runs stay unfinished, for Resume to continue. Nothing is written for
// the interrupted attempts.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	for t := range e.timers {
		t.Stop()
	}
	e.mu.Unlock()
	e.stopBase()
	if e.stopWatch != nil {
		e.stopWatch()
	}
	e.q.close()
	e.workers.Wait()
	e.j.Close()
	return nil
}

func (e *Engine) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

func (e *Engine) now() time.Time { return e.opts.Now().UTC() }

// newID makes a root run's id and its creation time: ids made here come
// out in strictly increasing order of their times.
func (e *Engine) newID() (string, time.Time) {
	e.idMu.Lock()
	defer e.idMu.Unlock()
	t := e.now()
	if !t.After(e.lastID) {
		t = e.lastID.Add(time.Nanosecond)
	}
	e.lastID = t
	var random [6]byte
	_, _ = rand.Read(random[:])
	return runIDAt(t, 0, random[:]), t
}

// runIDAt makes a run id, a lower-case ULID, that sorts by t to the
// nanosecond, then by seq: the ULID's time holds t's millisecond, the
// first 32 bits of its entropy the rest of t and seq, and rest (6 bytes)
// the remainder.
func runIDAt(t time.Time, seq int, rest []byte) string {
	var id ulid.ULID
	_ = id.SetTime(ulid.Timestamp(t))
	var entropy [10]byte
	binary.BigEndian.PutUint32(entropy[:4], uint32(t.Nanosecond()%1_000_000)<<12|uint32(seq&0xfff))
	copy(entropy[4:], rest)
	_ = id.SetEntropy(entropy[:])
	return strings.ToLower(id.String())
}

// afterFunc arms a timer that Close stops.
func (e *Engine) afterFunc(d time.Duration, fn func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		e.mu.Lock()
		delete(e.timers, t)
		e.mu.Unlock()
		fn()
	})
	e.timers[t] = struct{}{}
}

// Stats counts the engine's writes since it started.
type Stats struct {
	// Transactions is the number of store transactions committed (each
	// synced, in durable mode); Commits the groups of writes they carried
	// (one per transition, or per transitions decided together).
	Transactions, Commits uint64
}

// Stats returns the engine's write counts.
func (e *Engine) Stats() Stats {
	txs, commits := e.j.Stats()
	return Stats{Transactions: txs, Commits: commits}
}
