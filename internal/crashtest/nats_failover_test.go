package crashtest

// TestNATSFailover: kill -9 the owner of a database on NATS JetStream; a
// waiting `flowscript serve` on another connection takes it over and
// finishes the run tree.
//
// The test process runs one JetStream server (nats-server, in-process,
// listening on 127.0.0.1 only, sync_always). Each round keeps its
// database in a stream of its own, named by $FLOWSCRIPT_STORE, which
// every flowscript process of the round inherits. A round:
//
//  1. starts A, `flowscript serve`, which takes the free database;
//  2. once A holds the lease (read from the stream by the test), starts
//     B, `flowscript serve`, which waits: A's heartbeat moves; then
//     `flowscript start main.star` (the three-level tree of
//     TestCrashTree), which is sent to A over NATS;
//  3. at a random moment of the run, stops B (SIGSTOP), kills A with
//     SIGKILL and reads the whole tree with the read commands (`runs`,
//     `show`, which read the stream and own nothing): the snapshot of
//     what A committed; then lets B go on (SIGCONT);
//  4. B takes over once A's heartbeat has been still for
//     --takeover-after (2 s here), resumes every unfinished run and
//     finishes the tree; the test follows it with the read commands while
//     B owns the database, then stops B (SIGTERM: it gives the lease back)
//     and reads the tree again.
//
// The two snapshots and the ledger go through TestCrashTree's checks
// unchanged (checkTree: T1–T4 and the ledger's invariants 2–6): the nine
// runs end succeeded with the crash-free run's output (no run lost), one
// child per sub_workflow step attempt (no child started twice), and no
// step whose success A committed starts again in B (no finished step run
// again). The takeover time, from the kill to B's "took over" line, is
// logged per round; it includes the snapshot taken while B was stopped.
//
// 3 rounds by default (make test); FLOWSCRIPT_RELIABILITY_ROUNDS=N runs N
// (make reliability: 30), FLOWSCRIPT_CRASH_SEED replays a run.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/flowscript/flowscript/store/lease"
	"github.com/flowscript/flowscript/store/natsstore"
)

const failoverTakeover = 2 * time.Second

// startNATS runs a JetStream server on a random loopback port for the
// test and returns its URL.
func startNATS(t *testing.T) (*server.Server, string) {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		JetStream:  true,
		StoreDir:   t.TempDir(),
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		NoLog:      true,
		NoSigs:     true,
		SyncAlways: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv, "nats://" + srv.Addr().String()
}

// proc is a flowscript process of a round that runs beside others.
type proc struct {
	cmd  *exec.Cmd
	gen  *generation
	done chan error
	mu   sync.Mutex
	errb strings.Builder
	// took receives the moment the process printed that it took the
	// database over
	took chan time.Time
}

// spawn starts a generation without waiting for it.
func (r *round) spawn(ctx context.Context, name string, args ...string) *proc {
	t := r.t
	t.Helper()
	cmd := r.command(ctx, args...)
	r.procs++
	cmd.Env = append(cmd.Env, fmt.Sprintf("CRASHTEST_PROC=%d", r.procs))
	p := &proc{cmd: cmd, gen: &generation{cmd: name, proc: r.procs}, done: make(chan error, 1), took: make(chan time.Time, 1)}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.gens = append(r.gens, p.gen)
	spawnedMu.Lock()
	spawned[r] = append(spawned[r], p)
	spawnedMu.Unlock()
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, "took over the database") {
				select {
				case p.took <- time.Now():
				default:
				}
			}
			p.mu.Lock()
			fmt.Fprintln(&p.errb, line)
			p.mu.Unlock()
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() {
		<-read
		p.done <- cmd.Wait()
	}()
	return p
}

// spawned are the processes each round spawned, for messages.
var (
	spawnedMu sync.Mutex
	spawned   = map[*round][]*proc{}
)

// running is the stderr so far of the round's spawned processes.
func (r *round) running() string {
	spawnedMu.Lock()
	defer spawnedMu.Unlock()
	var b strings.Builder
	for _, p := range spawned[r] {
		p.mu.Lock()
		fmt.Fprintf(&b, "--- round %d: %s (proc %d), so far:\n%s", r.n, p.gen.cmd, p.gen.proc, p.errb.String())
		p.mu.Unlock()
	}
	return b.String()
}

// wait waits for the process to end and adds its stderr to the round's.
func (r *round) wait(p *proc) error {
	err := <-p.done
	p.mu.Lock()
	fmt.Fprintf(&r.stderr, "--- round %d: %s (proc %d) ended %v, killed %v:\n%s", r.n, p.gen.cmd, p.gen.proc, err, p.gen.killed, p.errb.String())
	p.mu.Unlock()
	return err
}

func (p *proc) signal(sig syscall.Signal) {
	if p.cmd.Process != nil {
		p.cmd.Process.Signal(sig)
	}
}

// waitOwner waits until the process with pid owns the round's database.
func waitOwner(t *testing.T, st *natsstore.Store, pid int, exited chan error) bool {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		owner, ok, err := lease.ReadOwner(context.Background(), st)
		if err != nil {
			t.Fatal(err)
		}
		if ok && owner.PID == pid {
			return true
		}
		select {
		case err := <-exited:
			exited <- err
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatalf("process %d did not take the database within a minute", pid)
	return false
}

type failoverStats struct {
	killed   bool
	takeover time.Duration
}

// natsTarget is where a round keeps its database: one server, or a
// cluster.
type natsTarget interface {
	// storeURL is --store for a database in stream
	storeURL(stream string) string
	// open opens the database in stream (creating it)
	open(t *testing.T, stream string) *natsstore.Store
}

// oneServer is an in-process server of the test.
type oneServer struct {
	srv *server.Server
	url string
}

func (o oneServer) storeURL(stream string) string { return o.url + "/" + stream }

func (o oneServer) open(t *testing.T, stream string) *natsstore.Store {
	db, err := natsstore.Open(natsstore.Options{Server: o.srv, Stream: stream})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// failover runs one round: A runs the tree and is killed, B takes over.
func (r *round) failover(target natsTarget, refDur time.Duration) failoverStats {
	t := r.t
	t.Helper()
	var st failoverStats
	stream := fmt.Sprintf("failover%d", r.n)
	t.Setenv("FLOWSCRIPT_STORE", target.storeURL(stream))
	db := target.open(t, stream)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	killAfter := time.Duration(10+r.rng.IntN(int(refDur.Milliseconds())*9/10)) * time.Millisecond
	takeover := "--takeover-after=" + failoverTakeover.String()
	a := r.spawn(ctx, "serve", "serve", "--durability", "durable", takeover)
	if !waitOwner(t, db, a.cmd.Process.Pid, a.done) {
		r.wait(a)
		t.Fatalf("round %d: the first serve ended before owning the database\n%s", r.n, r.stderr.String())
	}
	b := r.spawn(ctx, "serve", "serve", "--durability", "durable", takeover)
	// start is sent to the owner over NATS and returns once the run is stored
	r.cli("start", "main.star")
	time.Sleep(killAfter)
	b.signal(syscall.SIGSTOP)
	a.signal(syscall.SIGKILL)
	r.wait(a)
	a.gen.killed = isKilled(a.cmd.ProcessState)
	a.gen.linesAtKill = r.ledgerLength()
	killedAt := time.Now()
	r.takeSnapshot(a.gen)
	b.signal(syscall.SIGCONT)
	st.killed = a.gen.killed
	select {
	case at := <-b.took:
		st.takeover = at.Sub(killedAt)
	case <-ctx.Done():
		t.Fatalf("round %d: the second serve did not take over\n%s", r.n, r.stderr.String())
	}
	r.waitTreeDone(ctx)
	b.signal(syscall.SIGTERM)
	if err := r.wait(b); err != nil {
		t.Fatalf("round %d: serve ended with %v\n%s", r.n, err, r.stderr.String())
	}
	r.takeSnapshot(b.gen)
	return st
}

// waitTreeDone follows the tree with the read commands (the database is
// owned by another process meanwhile) until its nine runs have ended.
func (r *round) waitTreeDone(ctx context.Context) {
	t := r.t
	t.Helper()
	for {
		runs := r.listRuns()
		ended := 0
		for _, run := range runs {
			if run.Status == "succeeded" || run.Status == "failed" || run.Status == "cancelled" {
				ended++
			}
		}
		if ended == len(treePaths) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("round %d: the tree did not end; %d of its runs ended: %s\n%s%s", r.n, ended, r.treeSnapshot(), r.stderr.String(), r.running())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestNATSFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes and kills them")
	}
	rounds, rng := crashSetup(t, 3)
	srv, url := startNATS(t)
	failoverRounds(t, oneServer{srv, url}, rounds, rng, "NATS")
}

// failoverRounds runs a reference run and then rounds of failover on
// target.
func failoverRounds(t *testing.T, target natsTarget, rounds int, rng *rand.Rand, label string) {
	// the reference: one run without kills, on NATS
	ref := newTreeRound(t, 0, rng)
	t.Setenv("FLOWSCRIPT_STORE", target.storeURL("reference"))
	target.open(t, "reference").Close()
	ref.startRun(0)
	if len(ref.gens) != 1 || ref.gens[0].killed {
		t.Fatal("the reference run did not run once to the end")
	}
	refDur := ref.gens[0].dur
	ref.checkTree(treeOutput())
	if t.Failed() {
		t.Fatalf("the reference run failed; stderr:\n%s", ref.stderr.String())
	}
	want := ref.gens[0].tree.byPath["r"].Output
	ref.cleanup()
	t.Logf("reference run on %s: %s", label, refDur.Round(time.Millisecond))

	var takeovers []string
	var kills, reran, orphanEnds int
	var total treeStats
	for n := 1; n <= rounds; n++ {
		r := newTreeRound(t, n, rng)
		st := r.failover(target, refDur)
		cs := r.checkTree(want)
		if st.killed {
			kills++
			takeovers = append(takeovers, st.takeover.Round(time.Millisecond).String())
			t.Logf("round %d: the owner was killed; the waiting serve took over %s later (--takeover-after %s)", n, st.takeover.Round(time.Millisecond), failoverTakeover)
		}
		reran += r.reranAfterEnd
		orphanEnds += r.orphanEnds
		total.partial += cs.partial
		total.reattached += cs.reattached
		total.multi += cs.multi
		if t.Failed() {
			r.failRound()
		}
		r.cleanup()
	}
	sum, _ := json.Marshal(takeovers)
	t.Logf("%s, %d rounds: %d owners killed, takeover times %s; "+
		"%d kills left a partly spawned tree, %d sub_workflow steps re-attached by the new owner, "+
		"%d task/shell steps needed a second attempt (%d wrote \"end\" before the kill, %d from an orphaned shell); "+
		"0 runs lost, 0 duplicate children, 0 finished steps run again",
		label, rounds, kills, sum, total.partial, total.reattached, total.multi, reran, orphanEnds)
}

// failRound ends the test with the round's snapshots and stderr.
func (r *round) failRound() {
	var snaps strings.Builder
	for gi, g := range r.gens {
		fmt.Fprintf(&snaps, "after generation %d (%s, proc %d, killed %v): %s\n", gi, g.cmd, g.proc, g.killed, g.tree)
	}
	r.t.Fatalf("round %d failed; the snapshots:\n%sstderr of its processes:\n%s", r.n, snaps.String(), r.stderr.String())
}

func (r *round) ledgerText() string {
	data, _ := os.ReadFile(filepath.Join(r.dir, "ledger.txt"))
	return string(data)
}

// waitRunDone follows the round's one run with the read commands until
// it has ended.
func (r *round) waitRunDone(ctx context.Context) {
	for {
		if rec := r.record(); rec.Status == "succeeded" || rec.Status == "failed" || rec.Status == "cancelled" {
			return
		}
		select {
		case <-ctx.Done():
			r.t.Fatalf("the run did not end\n%s", r.stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
