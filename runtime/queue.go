package runtime

import (
	"container/heap"
	"sync"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/lang"
)

// job is one step attempt waiting for a worker, or (await) a step
// waiting for a worker to start it. It holds what the decision that
// started it handed over (decide.go handOver): the worker that runs it
// acts on that alone, never on the run's machine.
type job struct {
	run      *activeRun
	prog     *lang.Program // the program as the decision saw it
	def      *dag.Step
	index    int
	attempt  int
	priority int
	seq      uint64
	await    bool // a step waiting for a worker, not an attempt
	// the attempt's resolved inputs, secrets included, and why they did
	// not resolve; a shell step's resolved env=
	inputs   map[string]any
	inputErr error
	env      any
	// at is the attempt's registration (activeRun.attempts), made with
	// the job
	at attemptState
}

// workQueue hands jobs to workers, higher priority first, then first come.
//
// It also keeps the count of workers: a decision is offered the free
// workers it may need (reserve) and a task or shell step starts only with
// one of them; otherwise the step waits, pending, among the ready steps,
// and the worker that frees itself next dispatches the first of them
// (release). So a step is running only while a worker is really there for
// it.
type workQueue struct {
	mu      sync.Mutex
	cond    *sync.Cond
	jobs    jobHeap
	ready   jobHeap // steps waiting for a worker (attempt unused)
	seq     uint64
	closed  bool
	workers int
	busy    int // workers taken: by queued and executing jobs
}

func newWorkQueue(workers int) *workQueue {
	q := &workQueue{workers: workers}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// reserve takes up to n free workers for a decision, which takes those
// it starts steps with and gives back the rest (settle).
func (q *workQueue) reserve(n int) int {
	if n <= 0 {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	n = max(min(n, q.workers-q.busy), 0)
	q.busy += n
	return n
}

// settle ends a reservation of reserved workers by a decision that took
// took of them (more on Resume, which restarts what was running at once).
// It reports whether workers went back while steps wait for one: then
// the caller wakes them (wakeReady), once it holds no run's lock.
func (q *workQueue) settle(reserved, took int) bool {
	if reserved == took {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.busy += took - reserved
	return took < reserved && len(q.ready) > 0
}

// takeIfFree takes a free worker for the first waiting step, if there
// are both.
func (q *workQueue) takeIfFree() *job {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.ready) == 0 || q.busy >= q.workers {
		return nil
	}
	q.busy++
	return heap.Pop(&q.ready).(*job)
}

// await queues a step that found no worker, once the decision that left it
// waiting is committed. If a worker was freed meanwhile, await takes it
// and returns true: the caller dispatches the step at once. So a step
// waits only while every worker is taken (the heap of waiting steps is
// empty whenever busy < workers), and the first worker freed gives itself
// to the first of them.
func (q *workQueue) await(j *job) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.busy < q.workers {
		q.busy++
		return true
	}
	q.seq++
	j.seq = q.seq
	heap.Push(&q.ready, j)
	return false
}

// takeReadyOf takes the first waiting step if it is one of ar's, for the
// worker of a job of ar that is about to end: that worker goes to it.
func (q *workQueue) takeReadyOf(ar *activeRun) *job {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.ready) > 0 && q.ready[0].run == ar {
		return heap.Pop(&q.ready).(*job)
	}
	return nil
}

// takeReady takes the first waiting step, for the worker of a job that
// is about to end: that worker goes to it.
func (q *workQueue) takeReady() *job {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.ready) > 0 {
		return heap.Pop(&q.ready).(*job)
	}
	return nil
}

// release frees the worker of a job that ended, unless a step waits for
// one: then the worker stays taken, for that step, which is returned.
func (q *workQueue) release() *job {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.ready) > 0 {
		return heap.Pop(&q.ready).(*job)
	}
	q.busy--
	return nil
}

func (q *workQueue) push(j *job) {
	q.mu.Lock()
	q.seq++
	j.seq = q.seq
	heap.Push(&q.jobs, j)
	q.mu.Unlock()
	q.cond.Signal()
}

// pushAndTake queues jobs and, if any was given, takes the job that comes
// first for a worker that is free now, waking other workers only for the
// rest.
func (q *workQueue) pushAndTake(jobs []*job) *job {
	if len(jobs) == 0 {
		return nil
	}
	q.mu.Lock()
	for _, j := range jobs {
		q.seq++
		j.seq = q.seq
		heap.Push(&q.jobs, j)
	}
	first := heap.Pop(&q.jobs).(*job)
	q.mu.Unlock()
	for range len(jobs) - 1 {
		q.cond.Signal()
	}
	return first
}

// pop waits for a job; it returns nil once the queue is closed.
func (q *workQueue) pop() *job {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.jobs) == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return nil
	}
	return heap.Pop(&q.jobs).(*job)
}

func (q *workQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

type jobHeap []*job

func (h jobHeap) Len() int { return len(h) }
func (h jobHeap) Less(i, j int) bool {
	if h[i].priority != h[j].priority {
		return h[i].priority > h[j].priority
	}
	return h[i].seq < h[j].seq
}
func (h jobHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *jobHeap) Push(x any)   { *h = append(*h, x.(*job)) }
func (h *jobHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return j
}
