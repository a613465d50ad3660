package crashtest

// The failover tests on a replicated JetStream: three `flowscript nats`
// processes on loopback form a cluster (--cluster, --routes), every
// round's database is a stream with three replicas
// (--store nats://A,B,C/name?replicas=3), and two `flowscript serve`
// processes share it.
//
// TestNATSClusterFailover is TestNATSFailover on that cluster: the owner
// is killed with SIGKILL at a random moment of the three-level tree, the
// waiting serve takes over and finishes it.
//
// TestNATSClusterNodeLoss kills one of the three NATS nodes instead (a
// random one, at a random moment of the tree); the stream keeps a quorum
// of two. The standby serve is stopped (SIGSTOP) from just before the
// kill until the owner has either finished the tree or ended: so that
// every snapshot the checks compare is a committed state no process
// changes while it is read. Either the owner rides through the node's
// loss (its connection moves to another node, its commits wait for the
// stream's new leader) and finishes the tree, or it ends (it lost the
// lease: its heartbeat could not be renewed for --takeover-after while
// the stream elected a leader) and the standby, let go, takes over and
// finishes. Both are counted. The killed node is started again after the
// round (same directory, same ports) and catches up before the next
// round creates its stream (an R3 stream needs three nodes).
//
// The checks are TestCrashTree's (checkTree: T1–T4, the ledger's
// invariants 2–6): no run lost, one child per sub_workflow step attempt,
// no step whose success was committed starts again. 3 rounds each by
// default, FLOWSCRIPT_RELIABILITY_ROUNDS=N for N (make reliability: 30).

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowscript/flowscript/store/natsstore"
)

// natsNode is one `flowscript nats` process of the cluster.
type natsNode struct {
	name        string
	dir         string
	port, cport int
	cmd         *exec.Cmd
	done        chan error
	mu          sync.Mutex
	log         strings.Builder
}

type natsCluster struct {
	t     *testing.T
	nodes []*natsNode
}

// freePorts returns n ports that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// startCluster starts three nodes and waits until they have formed a
// cluster that takes a replicated stream.
func startCluster(t *testing.T) *natsCluster {
	t.Helper()
	ports := freePorts(t, 6)
	c := &natsCluster{t: t}
	for i := range 3 {
		c.nodes = append(c.nodes, &natsNode{name: fmt.Sprintf("n%d", i+1), dir: t.TempDir(), port: ports[2*i], cport: ports[2*i+1]})
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			if n.cmd != nil && n.cmd.ProcessState == nil {
				n.cmd.Process.Signal(syscall.SIGTERM)
				<-n.done
			}
		}
	})
	for i := range c.nodes {
		c.start(i)
	}
	c.open(t, "ready").Close()
	return c
}

// start starts node i (again).
func (c *natsCluster) start(i int) {
	t := c.t
	t.Helper()
	n := c.nodes[i]
	var routes []string
	for j, o := range c.nodes {
		if j != i {
			routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", o.cport))
		}
	}
	n.cmd = exec.Command(binary, "nats", "--dir", n.dir, "--name", n.name,
		"--listen", fmt.Sprintf("127.0.0.1:%d", n.port),
		"--cluster", fmt.Sprintf("127.0.0.1:%d", n.cport),
		"--routes", strings.Join(routes, ","))
	n.done = make(chan error, 1)
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	n.cmd.Stderr = &lockedWriter{mu: &n.mu, b: &n.log}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// the node prints its URL once it listens
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "nats://") {
		n.cmd.Process.Kill()
		n.cmd.Wait()
		t.Fatalf("node %s did not start: %q %v\n%s", n.name, line, err, n.logText())
	}
	go func() { n.done <- n.cmd.Wait() }()
}

// kill kills node i with SIGKILL and waits until it is gone.
func (c *natsCluster) kill(i int) {
	n := c.nodes[i]
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

func (n *natsNode) logText() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.log.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (c *natsCluster) servers() string {
	var hosts []string
	for _, n := range c.nodes {
		hosts = append(hosts, fmt.Sprintf("127.0.0.1:%d", n.port))
	}
	return "nats://" + strings.Join(hosts, ",")
}

func (c *natsCluster) storeURL(stream string) string {
	return c.servers() + "/" + stream + "?replicas=3"
}

// open opens (creating) the database in stream, replicated on the three
// nodes; it retries while the cluster is not ready for it (no JetStream
// leader yet, a node still catching up).
func (c *natsCluster) open(t *testing.T, stream string) *natsstore.Store {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		db, err := natsstore.Open(natsstore.Options{URL: c.storeURL(stream)})
		if err == nil {
			return db
		}
		if time.Now().After(deadline) {
			var logs strings.Builder
			for _, n := range c.nodes {
				fmt.Fprintf(&logs, "node %s:\n%s", n.name, n.logText())
			}
			t.Fatalf("the cluster did not take the replicated stream %s within 90 s: %v\n%s", stream, err, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestNATSClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes and kills them")
	}
	rounds, rng := crashSetup(t, 3)
	c := startCluster(t)
	failoverRounds(t, c, rounds, rng, "a 3-node NATS cluster (R3)")
}

type nodeLossStats struct {
	node     string
	rode     bool          // the owner finished the tree
	ownerEnd string        // else how the owner ended
	takeover time.Duration // and from the kill to the standby's takeover
}

// nodeLoss runs one round: the owner runs the tree, one NATS node is
// killed.
func (r *round) nodeLoss(c *natsCluster, refDur time.Duration) nodeLossStats {
	t := r.t
	t.Helper()
	var st nodeLossStats
	stream := fmt.Sprintf("nodeloss%d", r.n)
	t.Setenv("FLOWSCRIPT_STORE", c.storeURL(stream))
	db := c.open(t, stream)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	killAfter := time.Duration(10+r.rng.IntN(int(refDur.Milliseconds())*9/10)) * time.Millisecond
	victim := r.rng.IntN(len(c.nodes))
	st.node = c.nodes[victim].name
	takeover := "--takeover-after=" + failoverTakeover.String()
	a := r.spawn(ctx, "serve", "serve", "--durability", "durable", takeover)
	if !waitOwner(t, db, a.cmd.Process.Pid, a.done) {
		r.wait(a)
		t.Fatalf("round %d: the first serve ended before owning the database\n%s", r.n, r.stderr.String())
	}
	b := r.spawn(ctx, "serve", "serve", "--durability", "durable", takeover)
	r.cli("start", "main.star")
	time.Sleep(killAfter)
	b.signal(syscall.SIGSTOP)
	killedAt := time.Now()
	c.kill(victim)
	fmt.Fprintf(&r.stderr, "--- round %d: NATS node %s killed %s after start\n", r.n, st.node, killAfter)

	// the owner finishes the tree, or ends
	ended := false
	for !ended && !r.treeDone() {
		select {
		case err := <-a.done:
			a.done <- err
			ended = true
		case <-ctx.Done():
			a.mu.Lock()
			owner := a.errb.String()
			a.mu.Unlock()
			t.Fatalf("round %d: the owner neither finished the tree nor ended after node %s was killed; the tree: %s\nthe owner's stderr:\n%s\n%s", r.n, st.node, r.treeSnapshot(), owner, r.stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if !ended {
		st.rode = true
		a.signal(syscall.SIGTERM)
	}
	err := r.wait(a)
	r.takeSnapshot(a.gen)
	b.signal(syscall.SIGCONT)
	if ended {
		st.ownerEnd = fmt.Sprint(err)
		select {
		case at := <-b.took:
			st.takeover = at.Sub(killedAt)
		case <-ctx.Done():
			t.Fatalf("round %d: the standby did not take over\n%s", r.n, r.stderr.String())
		}
		r.waitTreeDone(ctx)
	} else if err != nil {
		t.Fatalf("round %d: the owner ended with %v after finishing the tree\n%s", r.n, err, r.stderr.String())
	}
	b.signal(syscall.SIGTERM)
	// a standby still waiting for the database ends as interrupted (130)
	if err := r.wait(b); err != nil && (ended || b.cmd.ProcessState.ExitCode() != 130) {
		t.Fatalf("round %d: the standby ended with %v\n%s", r.n, err, r.stderr.String())
	}
	r.takeSnapshot(b.gen)
	c.start(victim)
	return st
}

// treeDone reports whether the tree's nine runs have ended.
func (r *round) treeDone() bool {
	ended := 0
	for _, run := range r.listRuns() {
		if run.Status == "succeeded" || run.Status == "failed" || run.Status == "cancelled" {
			ended++
		}
	}
	return ended == len(treePaths)
}

func TestNATSClusterNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes and kills them")
	}
	rounds, rng := crashSetup(t, 3)
	c := startCluster(t)

	ref := newTreeRound(t, 0, rng)
	t.Setenv("FLOWSCRIPT_STORE", c.storeURL("reference"))
	c.open(t, "reference").Close()
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
	t.Logf("reference run on a 3-node NATS cluster (R3): %s", refDur.Round(time.Millisecond))

	var rode int
	var takeovers []string
	for n := 1; n <= rounds; n++ {
		r := newTreeRound(t, n, rng)
		st := r.nodeLoss(c, refDur)
		r.checkTree(want)
		if st.rode {
			rode++
			t.Logf("round %d: node %s killed; the owner rode through and finished the tree", n, st.node)
		} else {
			takeovers = append(takeovers, st.takeover.Round(time.Millisecond).String())
			t.Logf("round %d: node %s killed; the owner ended (%s); the standby took over %s after the kill and finished the tree", n, st.node, st.ownerEnd, st.takeover.Round(time.Millisecond))
		}
		if t.Failed() {
			r.failRound()
		}
		r.cleanup()
	}
	took := fmt.Sprintf("the standby took over %d times", rounds-rode)
	if len(takeovers) > 0 {
		took += " (" + strings.Join(takeovers, ", ") + " after the kill)"
	}
	t.Logf("a 3-node NATS cluster (R3), %d rounds, one node killed in each: the owner rode through %d times, %s; "+
		"0 runs lost, 0 duplicate children, 0 finished steps run again", rounds, rode, took)
}
