package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"

	"github.com/urfave/cli/v2"

	"github.com/flowscript/flowscript"
)

// The owner of a database on NATS answers the commands of other processes
// on the subject flowscript.ctl.<stream>, as the holder of a Badger
// database does on its socket, with the same framing (server.go,
// client.go): each side's end of a net.Pipe is bridged to NATS. The
// client publishes its request line with a reply inbox; the owner
// publishes each frame line to that inbox, in order (one publisher, one
// subscriber). A client that goes away publishes to <inbox>.gone, which
// ends the forwarded command's wait in the owner, as a closed socket does.
// A request "ping" is answered "pong": how a command learns that the
// owner is alive before forwarding to it.

func controlSubject(stream string) string { return "flowscript.ctl." + stream }

// natsConnect connects to the server of a nats://host:port[/name] URL.
func natsConnect(raw string) (*nats.Conn, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	u.Path = ""
	u.RawQuery = ""
	return nats.Connect(u.String(), nats.Name("flowscript control"), nats.MaxReconnects(-1))
}

// natsListener is a net.Listener of the commands sent to the owner.
type natsListener struct {
	nc    *nats.Conn
	sub   *nats.Subscription
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func listenNATS(nc *nats.Conn, stream string) (*natsListener, error) {
	l := &natsListener{nc: nc, conns: make(chan net.Conn), done: make(chan struct{})}
	sub, err := nc.Subscribe(controlSubject(stream), l.request)
	if err != nil {
		return nil, err
	}
	l.sub = sub
	return l, nc.Flush()
}

// request bridges one forwarded command to a pipe that Accept hands out.
func (l *natsListener) request(m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	if string(m.Data) == "ping" {
		m.Respond([]byte("pong"))
		return
	}
	mine, theirs := net.Pipe()
	select {
	case l.conns <- theirs:
	case <-l.done:
		return
	}
	gone, _ := l.nc.Subscribe(m.Reply+".gone", func(*nats.Msg) { mine.Close() })
	go func() {
		defer mine.Close()
		if gone != nil {
			defer gone.Unsubscribe()
		}
		if _, err := mine.Write(append(m.Data, '\n')); err != nil {
			return
		}
		r := bufio.NewReader(mine)
		for {
			line, err := r.ReadBytes('\n')
			if len(line) > 0 {
				l.nc.Publish(m.Reply, line)
			}
			if err != nil {
				l.nc.Flush()
				return
			}
		}
	}()
}

func (l *natsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *natsListener) Close() error {
	l.once.Do(func() {
		l.sub.Unsubscribe()
		close(l.done)
	})
	return nil
}

func (l *natsListener) Addr() net.Addr { return natsAddr(controlSubject("")) }

type natsAddr string

func (a natsAddr) Network() string { return "nats" }
func (a natsAddr) String() string  { return string(a) }

// serveNATS answers the commands sent to this owner until close.
func serveNATS(nc *nats.Conn, stream string, eng *flowscript.Engine, log hclog.Logger, serving bool) (*server, error) {
	ln, err := listenNATS(nc, stream)
	if err != nil {
		return nil, fmt.Errorf("cannot answer other commands on NATS: %v", err)
	}
	return serveOn(ln, eng, log, serving)
}

// ownerAnswers reports whether an owner answers on the control subject.
// "No responders" is asked again for a while: a server of a cluster that
// just started may not know yet of the owner's subscription on another.
func ownerAnswers(nc *nats.Conn, stream string) bool {
	deadline := time.Now().Add(2 * time.Second)
	for {
		m, err := nc.Request(controlSubject(stream), []byte("ping"), time.Until(deadline))
		if err == nil {
			return string(m.Data) == "pong"
		}
		if !errors.Is(err, nats.ErrNoResponders) || time.Until(deadline) < 100*time.Millisecond {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// natsForwardError: the database's owner answers; the command is sent to it.
type natsForwardError struct {
	url, stream string
	owner       string
}

func (e *natsForwardError) Error() string { return "the database " + e.url + " is owned by " + e.owner }

// forward sends the command to the owner and relays its output.
func (e *natsForwardError) forward(args []string, stdout, stderr io.Writer) int {
	nc, err := natsConnect(e.url)
	if err != nil {
		fmt.Fprintf(stderr, "flowscript: cannot reach the NATS server of %s: %v\n", e.url, err)
		return exitUsage
	}
	defer nc.Close()
	mine, theirs := net.Pipe()
	inbox := nc.NewRespInbox()
	lines := make(chan []byte, 1024)
	sub, err := nc.Subscribe(inbox, func(m *nats.Msg) { lines <- m.Data })
	if err != nil {
		fmt.Fprintf(stderr, "flowscript: %v\n", err)
		return exitUsage
	}
	defer sub.Unsubscribe()
	go func() {
		defer mine.Close()
		r := bufio.NewReader(mine)
		req, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		if err := nc.PublishRequest(controlSubject(e.stream), inbox, req[:len(req)-1]); err != nil {
			return
		}
		closed := make(chan struct{})
		go func() {
			// converse closed its end: tell the owner, as a socket would
			io.Copy(io.Discard, r)
			close(closed)
		}()
		for {
			select {
			case line := <-lines:
				if _, err := mine.Write(line); err != nil {
					nc.Publish(inbox+".gone", nil)
					nc.Flush()
					return
				}
			case <-closed:
				nc.Publish(inbox+".gone", nil)
				nc.Flush()
				return
			}
		}
	}()
	code, err := converse(theirs, args, stdout, stderr)
	if errors.Is(err, errNoAnswer) {
		fmt.Fprintf(stderr, "flowscript: the database %s is owned by %s, which did not answer within %s\n", e.url, e.owner, forwardTimeout)
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "flowscript: %v\n", strings.ReplaceAll(err.Error(), "the process holding the database", "the owner of "+e.url))
	}
	return code
}

// natsNeedServe sends start to the owner of a database on NATS when one
// answers (the owner then refuses it unless it is serve); without one,
// start exits 2.
func natsNeedServe(c *cli.Context) error {
	raw := storeURL(c)
	noServe := usageErrorf("flowscript start: no flowscript serve owns the database %s; start one first (flowscript --store %s serve, on any machine that reaches the NATS server), or use flowscript run", raw, raw)
	st, err := flowscript.OpenNATS(raw, flowscript.NATSOptions{Durability: flowscript.Fast, MustExist: true})
	if errors.Is(err, flowscript.ErrNoDatabase) {
		return noServe
	}
	if err != nil {
		return usageErrorf("flowscript: %s", strings.TrimPrefix(err.Error(), "natsstore: "))
	}
	defer st.Close()
	nc, err := natsConnect(raw)
	if err != nil {
		return usageErrorf("flowscript: cannot reach the NATS server of %s (%v)", raw, err)
	}
	defer nc.Close()
	if owner, ok, err := st.Owner(context.Background()); err == nil && ok && ownerAnswers(nc, st.Stream()) {
		return &natsForwardError{url: raw, stream: st.Stream(), owner: owner.String()}
	}
	return noServe
}
