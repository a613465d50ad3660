package badgerstore

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// In durable mode Badger runs with SyncWrites off and the store syncs the
// files that hold a commit itself, once the commit is written and before
// Update returns. With SyncWrites on, Badger syncs two files per batch of
// commits: the memtable's write-ahead log (where every small value goes)
// and the value log, even when the batch wrote nothing to the value log.
// On this project's disks a sync of an unchanged file still costs a cache
// flush of the device (about 50 µs of about 180 µs per commit), so the
// store syncs the value log only after a commit that wrote a value of
// valueThreshold bytes or more.
//
// Badger writes every commit, in commit order, to the newest memtable
// file (NNNNN.mem), and values of valueThreshold bytes or more to the
// newest value log file (NNNNNN.vlog). Syncing a file through a second
// descriptor syncs the pages written through Badger's memory map too.
// When a memtable is full, Badger starts a new file and flushes the old
// one to a table that it syncs itself before deleting the old file; when
// a value log file is full, Badger starts the next one without syncing
// the old one. So the syncer syncs the file it synced last and, when a
// newer file exists, the newer ones. Because the log is written in
// commit order, syncing it acknowledges every earlier commit as well.
type syncer struct {
	dir string

	mu   sync.Mutex
	cond *sync.Cond
	// written counts the commits written and registered for a sync,
	// synced how many of them a finished sync covered.
	written, synced uint64
	// inflight counts the commits between the start of their write and
	// the end of their sync.
	inflight int
	// started and finished count syncs; one runs at a time (syncing).
	started, finished uint64
	syncing           bool
	// pending is what was written since the last sync started: its size
	// in bytes and whether any value went to the value log.
	pendingBytes int64
	pendingVlog  bool
	// err is the first failed sync. After it every sync fails: whether
	// the kernel still holds the writes it could not sync is unknown.
	err error

	mem, vlog logFiles
	// syncs counts the syncs done, and beforeSync runs before each, for
	// tests.
	syncs      atomic.Uint64
	beforeSync func()
}

// logFiles tracks the newest file of one kind that was synced.
type logFiles struct {
	ext string
	fid int
	f   *os.File
}

// fullScanBytes: when at least this much was written since the last sync,
// the syncer lists the directory instead of checking only for the next
// file. Badger deletes a memtable file only once it was full and flushed,
// so below this size (half a memtable) no newer file can have come and
// gone unseen between two syncs.
const fullScanBytes = memTableSize / 2

func newSyncer(dir string) (*syncer, error) {
	s := &syncer{dir: dir, mem: logFiles{ext: ".mem", fid: -1}, vlog: logFiles{ext: ".vlog", fid: -1}}
	s.cond = sync.NewCond(&s.mu)
	if err := s.mem.follow(dir, true); err != nil {
		return nil, err
	}
	if err := s.vlog.follow(dir, true); err != nil {
		s.mem.close()
		return nil, err
	}
	return s, nil
}

// begin is called before a commit is written; abort if it then fails,
// else wait.
func (s *syncer) begin() {
	s.mu.Lock()
	s.inflight++
	s.mu.Unlock()
}

func (s *syncer) abort() {
	s.mu.Lock()
	s.inflight--
	s.cond.Broadcast()
	s.mu.Unlock()
}

// wait registers a commit that Badger has written (size bytes, and
// whether it put a value in the value log) and returns once a sync that
// began after it was written has finished. Concurrent callers share
// syncs: whoever finds no sync running does one for everybody waiting.
func (s *syncer) wait(size int64, vlog bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.cond.Broadcast()
	defer func() { s.inflight-- }()
	s.written++
	ticket := s.written
	s.pendingBytes += size
	s.pendingVlog = s.pendingVlog || vlog
	for s.synced < ticket && s.err == nil {
		if s.syncing {
			s.cond.Wait()
			continue
		}
		s.run(s.pendingBytes >= fullScanBytes, s.pendingVlog)
	}
	return s.err
}

// settle returns once every commit whose write had begun is synced, so
// that a reader whose snapshot was taken before sees only synced
// commits. It does a sync itself (of the value log too: a commit that is
// written but not yet registered may have put a value there) unless one
// that starts after the call finishes first.
func (s *syncer) settle() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	need := s.started + 1
	for s.inflight > 0 && s.finished < need && s.err == nil {
		if s.syncing {
			s.cond.Wait()
			continue
		}
		s.run(true, true)
	}
	return s.err
}

// syncAll syncs every memtable and value log file newer than the last
// synced ones, for writes Badger made on its own (value log garbage
// collection moves values into the newest files).
func (s *syncer) syncAll() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.syncing {
		s.cond.Wait()
	}
	if s.err == nil {
		s.run(true, true)
	}
	return s.err
}

// run does one sync covering everything written so far. c.mu is held on
// entry and on return, and no sync is running.
func (s *syncer) run(full, withVlog bool) {
	s.syncing = true
	s.started++
	upTo := s.written
	s.pendingBytes, s.pendingVlog = 0, false
	s.mu.Unlock()
	err := s.syncFiles(full, withVlog)
	s.mu.Lock()
	s.syncing = false
	s.finished++
	if err != nil && s.err == nil {
		s.err = err
	}
	if s.err == nil {
		s.synced = upTo
	}
	s.cond.Broadcast()
}

func (s *syncer) syncFiles(full, withVlog bool) error {
	s.syncs.Add(1)
	if s.beforeSync != nil {
		s.beforeSync()
	}
	if err := s.mem.sync(s.dir, full); err != nil {
		return err
	}
	if withVlog {
		return s.vlog.sync(s.dir, full)
	}
	return nil
}

func (s *syncer) close() {
	s.mem.close()
	s.vlog.close()
}

// sync syncs the newest file synced so far and every newer one.
func (l *logFiles) sync(dir string, full bool) error {
	if l.f != nil {
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("badgerstore: sync %s: %w", l.f.Name(), err)
		}
	}
	return l.follow(dir, full)
}

// follow moves to newer files, syncing each. Unless full, it first checks
// only whether the next file exists.
func (l *logFiles) follow(dir string, full bool) error {
	if !full && l.f != nil {
		if _, err := os.Stat(l.name(dir, l.fid+1)); err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return fmt.Errorf("badgerstore: sync: %w", err)
		}
	}
	newer, err := l.newer(dir)
	if err != nil {
		return err
	}
	for _, fid := range newer {
		f, err := os.Open(l.name(dir, fid))
		if os.IsNotExist(err) {
			// flushed and deleted since the listing: already durable
			continue
		}
		if err != nil {
			return fmt.Errorf("badgerstore: sync: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("badgerstore: sync %s: %w", f.Name(), err)
		}
		l.close()
		l.fid, l.f = fid, f
	}
	return nil
}

// newer lists the ids of this kind's files newer than the current one,
// in ascending order.
func (l *logFiles) newer(dir string) ([]int, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("badgerstore: sync: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("badgerstore: sync: %w", err)
	}
	var fids []int
	for _, n := range names {
		base, ok := strings.CutSuffix(n, l.ext)
		if !ok {
			continue
		}
		if fid, err := strconv.Atoi(base); err == nil && fid > l.fid {
			fids = append(fids, fid)
		}
	}
	slices.Sort(fids)
	return fids, nil
}

func (l *logFiles) name(dir string, fid int) string {
	if l.ext == ".mem" {
		return filepath.Join(dir, fmt.Sprintf("%05d%s", fid, l.ext))
	}
	return filepath.Join(dir, fmt.Sprintf("%06d%s", fid, l.ext))
}

func (l *logFiles) close() {
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}
