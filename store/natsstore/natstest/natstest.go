// Package natstest starts JetStream servers inside the calling process
// for tests and benchmarks of store/natsstore: one server, or a cluster
// of them routed to each other over loopback, each with a real file
// store in a directory of its own.
package natstest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options are the settings every server gets.
type Options struct {
	// SyncAlways syncs every write to disk (a durable single node).
	SyncAlways bool
	// MaxBatch is the servers' max_batch_size (0: JetStream's 1,000).
	MaxBatch int
}

func (o Options) server(dir, name string) *server.Options {
	return &server.Options{
		ServerName:      name,
		JetStream:       true,
		StoreDir:        dir,
		Host:            "127.0.0.1",
		Port:            server.RANDOM_PORT,
		NoLog:           true,
		NoSigs:          true,
		SyncAlways:      o.SyncAlways,
		MaxPayload:      8 << 20,
		JetStreamLimits: server.JSLimitOpts{MaxBatchSize: o.MaxBatch},
	}
}

// Start starts one server storing in dir.
func Start(dir string, o Options) (*server.Server, error) {
	srv, err := server.NewServer(o.server(dir, "single"))
	if err != nil {
		return nil, err
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("natstest: the JetStream server did not start")
	}
	return srv, nil
}

// StartCluster starts n servers (n >= 3 for an R3 stream) storing under
// dir, each listening for clients and for the others on loopback ports
// of its own, all routed to the first; it returns once they have elected
// a JetStream meta leader that sees all of them, and every one of them
// knows it.
func StartCluster(dir string, n int, o Options) ([]*server.Server, error) {
	var srvs []*server.Server
	fail := func(err error) ([]*server.Server, error) {
		Shutdown(srvs)
		return nil, err
	}
	// Every server routes to every other: JetStream refuses to start a
	// clustered server without routes, so the cluster ports are chosen
	// first (free loopback ports, closed again; a port taken meanwhile
	// makes the start fail, not hang).
	var ports []int
	var routes []*url.URL
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fail(err)
		}
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
		routes = append(routes, &url.URL{Scheme: "nats", Host: l.Addr().String()})
		l.Close()
	}
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		so := o.server(filepath.Join(dir, name), name)
		so.Cluster.Name = "natstest"
		so.Cluster.Host = "127.0.0.1"
		so.Cluster.Port = ports[i]
		so.Routes = append(append([]*url.URL{}, routes[:i]...), routes[i+1:]...)
		srv, err := server.NewServer(so)
		if err != nil {
			return fail(err)
		}
		srvs = append(srvs, srv)
		go srv.Start()
		if !srv.ReadyForConnections(30 * time.Second) {
			return fail(fmt.Errorf("natstest: server %s did not start", name))
		}
	}
	// Waiting, not asserting: a cluster elects its meta leader in
	// about a second; a minute covers a loaded machine.
	deadline := time.Now().Add(time.Minute)
	for {
		leaders, current := 0, 0
		for _, srv := range srvs {
			// the leader lists the peers it has current stats of: a
			// stream can be placed on those
			if srv.JetStreamIsLeader() && len(srv.JetStreamClusterPeers()) == n {
				leaders++
			}
			if srv.JetStreamIsCurrent() {
				current++
			}
		}
		if leaders == 1 && current == n {
			return srvs, nil
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("natstest: the cluster of %d servers has no JetStream leader after a minute", n))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Shutdown stops the servers and waits until they have.
func Shutdown(srvs []*server.Server) {
	for _, srv := range srvs {
		srv.Shutdown()
	}
	for _, srv := range srvs {
		srv.WaitForShutdown()
	}
}
