package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/flowscript/flowscript"
)

// forwardTimeout is how long a command waits for the holder of the
// database to answer.
const forwardTimeout = 5 * time.Second

var errNoAnswer = errors.New("no answer")

// dialHolder connects to the socket of the process holding dir.
func dialHolder(dir string) (net.Conn, error) {
	return net.DialTimeout("unix", flowscript.SocketPath(dir), forwardTimeout)
}

// converse sends the invocation to the holder and relays its output. It
// returns the remote exit code.
func converse(conn net.Conn, args []string, stdout, stderr io.Writer) (int, error) {
	defer conn.Close()
	wd, _ := os.Getwd()
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	tty, size := terminalOf(stdout)
	data, err := json.Marshal(flowscript.Invocation{Args: args, Cwd: wd, Env: env, TTY: tty, Size: size})
	if err != nil {
		return 0, err
	}
	conn.SetDeadline(time.Now().Add(forwardTimeout))
	if _, err := conn.Write(append(data, '\n')); err != nil {
		return 0, errNoAnswer
	}
	r := bufio.NewReader(conn)
	var first flowscript.Frame
	line, err := r.ReadBytes('\n')
	if err != nil || json.Unmarshal(line, &first) != nil || !first.Ack {
		return 0, errNoAnswer
	}
	conn.SetDeadline(time.Time{})
	// Ctrl-C ends this command, not what it asked for: closing the
	// connection tells the holder, whose runs go on
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)
	interrupted := make(chan struct{})
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-signals:
			close(interrupted)
			conn.Close()
		case <-done:
		}
	}()
	holder := "the process holding the database"
	if first.PID > 0 {
		holder = fmt.Sprintf("the process holding the database (pid %d)", first.PID)
	}
	followed := ""
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			select {
			case <-interrupted:
				if followed != "" {
					fmt.Fprintf(stderr, "interrupted: run %s goes on in %s; watch it with: flowscript watch %s; cancel it with: flowscript cancel %s\n", followed, holder, followed, followed)
				} else {
					fmt.Fprintln(stderr, "interrupted")
				}
				return exitInterrupt, nil
			default:
			}
			return exitUsage, fmt.Errorf("%s stopped answering", holder)
		}
		var fr flowscript.Frame
		if err := json.Unmarshal(line, &fr); err != nil {
			return exitUsage, fmt.Errorf("unreadable answer from the process holding the database")
		}
		switch {
		case fr.Run != "":
			followed = fr.Run
		case fr.Exit != nil:
			return *fr.Exit, nil
		case fr.Out != "":
			io.WriteString(stdout, fr.Out)
		case fr.Err != "":
			io.WriteString(stderr, fr.Err)
		}
	}
}
