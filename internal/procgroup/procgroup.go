// Package procgroup supervises the process group a shell step runs in:
// the command is started as the leader of a group of its own (Attr), and
// Stop ends the whole group (whatever the command started in the
// background too), SIGTERM first and SIGKILL after a grace period, and
// returns only once no process of the group is alive. Zombies nobody
// reaps (under a container's init) count as gone.
package procgroup

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Attr makes a command the leader of a new process group, whose id is its
// pid.
func Attr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// Stop sends SIGTERM to the process group, waits until the group is
// empty (and, when leader is not nil, until it is closed), and sends
// SIGKILL if that takes longer than grace.
func Stop(pgid int, grace time.Duration, leader <-chan struct{}) {
	if err := syscall.Kill(-pgid, syscall.SIGTERM); errors.Is(err, syscall.ESRCH) && leader == nil {
		return
	}
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		leaderDone := leader == nil
		if !leaderDone {
			select {
			case <-leader:
				leaderDone = true
			default:
			}
		}
		if leaderDone && Gone(pgid) {
			return
		}
		select {
		case <-deadline.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			// SIGKILL is not instant: wait (briefly) until the group is
			// gone, so that no process outlives Stop.
			for end := time.Now().Add(2 * time.Second); time.Now().Before(end) && !Gone(pgid); {
				time.Sleep(5 * time.Millisecond)
			}
			return
		case <-tick.C:
		case <-leader:
		}
	}
}

// Gone reports whether no process of the group is left. Zombies that
// nobody reaps (orphans of a container's init) do not count: they are dead.
func Gone(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	return !procScans.living(time.Now())[pgid]
}

// procScans coalesces /proc scans: every caller gets a scan that began
// after it asked, but concurrent callers share one.
var procScans scanner

type scanner struct {
	mu      sync.Mutex
	running *scanResult
	last    *scanResult
}

type scanResult struct {
	began  time.Time
	done   chan struct{}
	groups map[int]bool
}

func (s *scanner) living(asked time.Time) map[int]bool {
	for {
		s.mu.Lock()
		if s.last != nil && !s.last.began.Before(asked) {
			r := s.last
			s.mu.Unlock()
			return r.groups
		}
		if r := s.running; r != nil {
			s.mu.Unlock()
			<-r.done
			if !r.began.Before(asked) {
				return r.groups
			}
			continue
		}
		r := &scanResult{began: time.Now(), done: make(chan struct{})}
		s.running = r
		s.mu.Unlock()
		r.groups = scanGroups()
		s.mu.Lock()
		s.running, s.last = nil, r
		s.mu.Unlock()
		close(r.done)
		return r.groups
	}
}

// scanGroups lists the process groups with a living (not zombie) member.
func scanGroups() map[int]bool {
	groups := map[int]bool{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return groups
	}
	for _, e := range entries {
		name := e.Name()
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		data, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue
		}
		state, pg, ok := ParseStat(data)
		if ok && state != 'Z' && state != 'X' {
			groups[pg] = true
		}
	}
	return groups
}

// ParseStat reads the state and process group of /proc/PID/stat.
func ParseStat(data []byte) (state byte, pgrp int, ok bool) {
	// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, false
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 3 || len(fields[0]) != 1 {
		return 0, 0, false
	}
	var pg int
	if _, err := fmt.Sscanf(fields[2], "%d", &pg); err != nil {
		return 0, 0, false
	}
	return fields[0][0], pg, true
}
