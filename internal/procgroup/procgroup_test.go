package procgroup_test

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowscript/flowscript/internal/procgroup"
)

// start runs script in a group of its own; the script prints the pids it
// wants watched, one per line, then "ready".
func start(t *testing.T, script string) (*exec.Cmd, []int, <-chan struct{}) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = procgroup.Attr()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pids []int
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "ready" {
		pid, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
		if err != nil {
			t.Fatalf("line %q", sc.Text())
		}
		pids = append(pids, pid)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	return cmd, pids, exited
}

func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	state, _, ok := procgroup.ParseStat(data)
	return ok && state != 'Z' && state != 'X'
}

// A leader that exited left background processes in its group: Stop ends
// them with SIGTERM.
func TestStopEndsWhatTheLeaderLeft(t *testing.T) {
	cmd, pids, exited := start(t, "sleep 60 & echo $!; sleep 60 & echo $!; echo ready")
	<-exited
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("background process %d is not running before Stop", pid)
		}
	}
	procgroup.Stop(cmd.Process.Pid, 10*time.Second, nil)
	if !procgroup.Gone(cmd.Process.Pid) {
		t.Fatal("the group is not gone after Stop")
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d outlived Stop", pid)
		}
	}
}

// A group that ignores SIGTERM gets SIGKILL once the grace period is over;
// Stop returns only when the leader, too, is gone.
func TestStopKillsAGroupThatIgnoresTerm(t *testing.T) {
	cmd, pids, exited := start(t, "trap '' TERM; sh -c 'trap \"\" TERM; while :; do sleep 0.05; done' & echo $!; echo $$; echo ready; while :; do sleep 0.05; done")
	procgroup.Stop(cmd.Process.Pid, 200*time.Millisecond, exited)
	select {
	case <-exited:
	default:
		t.Fatal("Stop returned before the leader ended")
	}
	if !procgroup.Gone(cmd.Process.Pid) {
		t.Fatal("the group is not gone after Stop")
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d outlived Stop", pid)
		}
	}
}

func TestParseStat(t *testing.T) {
	state, pg, ok := procgroup.ParseStat([]byte("123 (a (b) c) S 1 456 456 0 -1"))
	if !ok || state != 'S' || pg != 456 {
		t.Fatalf("got %c %d %v", state, pg, ok)
	}
	if _, _, ok := procgroup.ParseStat([]byte("garbage")); ok {
		t.Fatal("garbage parsed")
	}
}
