package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/flowscript/flowscript"
)

// The process that holds a database answers the commands of other
// processes with flowscript.Server (the root package's socket server,
// the one Engine.Serve starts in an embedding program), running each
// forwarded command line through this CLI against its own engine.

// holderRequestTimeout bounds the wait for a connection's request line: a
// client that connects and sends nothing, or half a line, is dropped
// (tests shorten it).
var holderRequestTimeout = forwardTimeout

// server is a holder's flowscript.Server.
type server struct {
	srv *flowscript.Server
	// stderr is where close says which forwarded commands it waits for.
	stderr io.Writer
}

// listen answers on the socket of the database directory the engine was
// opened on.
func listen(eng *flowscript.Engine, log hclog.Logger, serving bool) (*server, error) {
	return serveOn(nil, eng, log, serving)
}

// serveOn answers the commands arriving on ln (nil: the socket of the
// engine's database directory) with this CLI's commands: serving says the
// holder is flowscript serve.
func serveOn(ln net.Listener, eng *flowscript.Engine, log hclog.Logger, serving bool) (*server, error) {
	s := &server{}
	srv, err := eng.Listen(flowscript.ServeOptions{
		Listener: ln,
		Commands: func(ctx context.Context, call *flowscript.Call) int {
			log.Debug("serving a forwarded command", "args", strings.Join(call.Args[1:], " "))
			env := &appEnv{shared: eng, ctx: ctx, cwd: call.Cwd, environ: call.Env,
				serving: serving, tty: call.TTY, size: call.Size, onRun: call.Follow, holderStopping: call.Stopping}
			return runWithEnv(call.Args, strings.NewReader(""), call.Stdout, call.Stderr, env)
		},
		RequestTimeout: holderRequestTimeout,
		Waiting: func(waiting []string) {
			if s.stderr == nil {
				return
			}
			fmt.Fprintf(s.stderr, "flowscript: still serving %s from other terminals (%s); this process exits when %s\n",
				plural(len(waiting), "command"), strings.Join(waiting, "; "), map[bool]string{true: "it ends", false: "they end"}[len(waiting) == 1])
		},
	})
	if err != nil {
		return nil, err
	}
	s.srv = srv
	return s, nil
}

// close stops accepting commands and waits for the forwarded commands
// still running: a run sent here by another terminal is finished, not
// dropped, and stderr says what this process still waits for. With
// stopCommands (serve stopping), those commands are ended first: the runs
// they follow stay unfinished. Commands that arrive later open the
// database themselves.
func (s *server) close(stderr io.Writer, stopCommands bool) {
	if stopCommands {
		s.srv.Shutdown()
		return
	}
	s.stderr = stderr
	s.srv.Close()
}
