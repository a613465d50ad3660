package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/urfave/cli/v2"

	"github.com/flowscript/flowscript"
)

// exitLost ends a process that lost the ownership of a database on NATS
// to another one: its runs stay unfinished, the new owner continues them.
const exitLost = 3

// owned is this process's ownership of its database on NATS, once it took
// it. When the ownership is lost the lost handler closes the engine under
// the command and exits 3; the command may return first, with the error
// of a commit the fence refused or of the closed store: exitAfter then
// reads the lease, which is marked lost before any refused commit
// returns, and exits 3 too.
var owned atomic.Pointer[flowscript.Lease]

// lostOnce prints once that the process lost the ownership.
var lostOnce sync.Once

// reportLost tells the user that this process lost its database and stops.
func reportLost(err error, stderr io.Writer) {
	lostOnce.Do(func() {
		fmt.Fprintf(stderr, "flowscript: %v; stopping (exit %d): the steps it was running are stopped, its runs stay unfinished and the new owner continues them\n", err, exitLost)
	})
}

// exitAfter is the exit code of a command that ended with err: 3, saying
// so once, if the process lost the ownership of its database meanwhile.
func exitAfter(err error, stderr io.Writer) int {
	if l := owned.Load(); l != nil {
		if lost := l.Err(); lost != nil {
			reportLost(lost, stderr)
			return exitLost
		}
	}
	return exitCode(err, stderr)
}

// storeFlags are the global flags of a database on NATS JetStream.
func storeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "store", Usage: "keep the database on NATS JetStream: `nats://host:port[/name]` (instead of --db)", EnvVars: []string{"FLOWSCRIPT_STORE"}},
		&cli.DurationFlag{Name: "takeover-after", Usage: "with --store: take the database from an owner whose heartbeat has been still this long", Value: flowscript.DefaultTakeover},
	}
}

// storeURL is --store (or $FLOWSCRIPT_STORE); "" means the Badger
// directory of --db.
func storeURL(c *cli.Context) string { return c.String("store") }

// dbLabel names the database in messages.
func dbLabel(c *cli.Context) string {
	if u := storeURL(c); u != "" {
		return u
	}
	return dbDir(c)
}

// openNATS opens the engine on a database kept in a JetStream stream. A
// command that changes runs (cfg.hold) or definitions is sent to the
// owner of the database when one answers on NATS (nats_control.go), else
// it becomes the owner (store/lease): at once when nobody owns it, after
// the owner's heartbeat has been still for --takeover-after, and for
// serve, by waiting for that; it then answers the commands sent to it.
// The other commands read the stream directly, whoever owns it, and write
// nothing.
func openNATS(c *cli.Context, cfg engineConfig, opts flowscript.Options) (*flowscript.Engine, func(), error) {
	url := storeURL(c)
	if !strings.HasPrefix(url, "nats://") {
		return nil, nil, usageErrorf("flowscript: --store %q is not a NATS URL: write nats://host:port or nats://host:port/name", url)
	}
	if c.Duration("takeover-after") <= 0 {
		return nil, nil, usageErrorf("flowscript: --takeover-after %s: must be more than 0", c.Duration("takeover-after"))
	}
	// a command on what is stored opens only an existing stream: a
	// mistyped name must not leave a database behind
	st, err := flowscript.OpenNATS(url, flowscript.NATSOptions{Durability: opts.Durability, MustExist: cfg.existing})
	if errors.Is(err, flowscript.ErrNoDatabase) {
		return nil, nil, usageErrorf("flowscript: no database %s: %s%s", url, strings.TrimPrefix(err.Error(), flowscript.ErrNoDatabase.Error()+": "), otherDatabases(url))
	}
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "natsstore: ")
		if strings.Contains(msg, "connecting") {
			msg = fmt.Sprintf("cannot reach the NATS server of %s (%s)", url, strings.TrimPrefix(msg, "connecting: "))
		}
		return nil, nil, usageErrorf("flowscript: %s", msg)
	}
	name := ""
	if c.Command != nil {
		name = c.Command.Name
	}
	if name == "watch" || name == "logs" {
		// a live view, and the output of steps still running, are in
		// the engine that runs the tree: the owner's, when one answers;
		// else the stream as it is
		if fwd := forwardToOwner(url, st); fwd != nil {
			st.Close()
			return nil, nil, fwd
		}
	}
	if !cfg.hold && name != "register" {
		eng, err := st.ReadOnlyEngine(fmt.Errorf("flowscript %s reads the database %s and does not own it", name, url), opts)
		if err != nil {
			st.Close()
			return nil, nil, storeError(err)
		}
		return eng, func() { eng.Close() }, nil
	}
	nc, err := natsConnect(url)
	if err != nil {
		st.Close()
		return nil, nil, usageErrorf("flowscript: cannot reach the NATS server of %s (%v)", url, err)
	}
	if owner, ok, err := st.Owner(context.Background()); err == nil && ok && !cfg.serving && ownerAnswers(nc, st.Stream()) {
		nc.Close()
		st.Close()
		return nil, nil, &natsForwardError{url: url, stream: st.Stream(), owner: owner.String()}
	}
	l, err := acquire(c, st, cfg.serving)
	if err != nil {
		nc.Close()
		st.Close()
		return nil, nil, err
	}
	var engMu sync.Mutex
	var eng *flowscript.Engine
	owned.Store(l)
	l.SetLost(func(err error) {
		reportLost(err, c.App.ErrWriter)
		engMu.Lock()
		e := eng
		engMu.Unlock()
		if e != nil {
			done := make(chan struct{})
			go func() { e.Close(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
			}
		}
		os.Exit(exitLost)
	})
	engMu.Lock()
	eng, err = st.Engine(l, opts)
	engMu.Unlock()
	if err != nil {
		l.Release()
		st.Close()
		nc.Close()
		return nil, nil, storeError(err)
	}
	if !cfg.hold {
		nc.Close()
		return eng, func() { eng.Close() }, nil
	}
	srv, err := serveNATS(nc, st.Stream(), eng, opts.Logger, cfg.serving)
	if err != nil {
		eng.Close()
		nc.Close()
		return nil, nil, usageErrorf("flowscript: %v", err)
	}
	return eng, func() {
		srv.close(c.App.ErrWriter, cfg.serving)
		eng.Close()
		nc.Close()
	}, nil
}

// forwardToOwner returns the error that sends the command to the owner of
// the database when one answers on NATS, else nil.
func forwardToOwner(url string, st *flowscript.NATSStore) error {
	owner, ok, err := st.Owner(context.Background())
	if err != nil || !ok {
		return nil
	}
	nc, err := natsConnect(url)
	if err != nil {
		return nil
	}
	defer nc.Close()
	if !ownerAnswers(nc, st.Stream()) {
		return nil
	}
	return &natsForwardError{url: url, stream: st.Stream(), owner: owner.String()}
}

// acquire makes this process the owner of the database, telling the user
// what it waits for and whom it took the database from.
func acquire(c *cli.Context, st *flowscript.NATSStore, wait bool) (*flowscript.Lease, error) {
	url := storeURL(c)
	after := c.Duration("takeover-after")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, err := st.Acquire(ctx, flowscript.AcquireOptions{
		Takeover: after,
		Wait:     wait,
		Waiting: func(owner flowscript.Owner) {
			if wait {
				fmt.Fprintf(c.App.ErrWriter, "flowscript: the database %s is owned by %s; waiting to take it over once its heartbeat has been still for %s\n", url, owner, after)
			} else {
				fmt.Fprintf(c.App.ErrWriter, "flowscript: the database %s is owned by %s; watching its heartbeat (up to %s) to see whether it is alive\n", url, owner, after)
			}
		},
	})
	var owned *flowscript.OwnedError
	switch {
	case errors.As(err, &owned):
		return nil, usageErrorf("flowscript: the database %s is owned by %s: it did not answer on NATS: run this command on that machine, or stop that process (another one takes the database over %s after it stops)", url, owned.Owner, after)
	case ctx.Err() != nil:
		return nil, &exitError{code: exitInterrupt, msg: "interrupted while waiting for the database " + url}
	case err != nil:
		return nil, usageErrorf("flowscript: cannot take the database %s: %v", url, err)
	}
	if l.Previous.ID != "" {
		fmt.Fprintf(c.App.ErrWriter, "flowscript: took over the database %s from %s after its heartbeat was still for %s\n", url, l.Previous, l.Waited.Round(time.Millisecond))
	}
	return l, nil
}

// otherDatabases lists the databases on the server of url, for a message
// about a name that is not one of them.
func otherDatabases(url string) string {
	nc, err := natsConnect(url)
	if err != nil {
		return ""
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var names []string
	for info := range js.ListStreams(ctx).Info() {
		if slices.Equal(info.Config.Subjects, []string{"fs." + info.Config.Name + ".>"}) {
			names = append(names, info.Config.Name)
		}
	}
	if len(names) == 0 {
		return " (the server holds no flowscript database)"
	}
	slices.Sort(names)
	return " (the server's databases: " + strings.Join(names, ", ") + ")"
}
