package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/urfave/cli/v2"
)

// natsCommand runs an embedded NATS JetStream node, so that a database on
// NATS needs no other program; with --cluster and --routes, three of them
// (on three machines, or three ports of one) form a JetStream cluster in
// which a stream may be replicated (--store nats://...?replicas=3).
func natsCommand() *cli.Command {
	return &cli.Command{
		Name:  "nats",
		Usage: "run a NATS JetStream node (alone or in a cluster) for databases on --store nats://",
		Description: "Starts a NATS server with JetStream, storing its streams in --dir, listening on\n" +
			"--listen (127.0.0.1:4222 by default), until Ctrl-C or SIGTERM. It syncs every\n" +
			"write to disk (sync_always) unless --durability fast. Then, on any machine that\n" +
			"reaches it: flowscript --store nats://HOST:PORT/NAME serve, run, show, ...\n" +
			"\n" +
			"A cluster: start a node on each of three machines (or three ports of one), each\n" +
			"with --cluster (where it listens for the other nodes), --routes (the other nodes'\n" +
			"--cluster addresses) and a --name of its own; the nodes elect a JetStream leader\n" +
			"once two of them see each other. A database in a replicated stream:\n" +
			"--store nats://HOST1:PORT,HOST2:PORT,HOST3:PORT/NAME?replicas=3 (a commit is then\n" +
			"acknowledged once two of the three nodes have it).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "store JetStream data in `DIR`", Value: ".flowscript-nats"},
			&cli.StringFlag{Name: "listen", Usage: "listen for clients on `HOST:PORT` (port 0: any free port)", Value: "127.0.0.1:4222"},
			&cli.StringFlag{Name: "durability", Usage: "durable (sync every write) or fast (a machine crash may lose the last writes)", Value: "durable"},
			&cli.StringFlag{Name: "name", Usage: "the node's `NAME`, unique in its cluster (default: host name and client port)"},
			&cli.StringFlag{Name: "cluster", Usage: "join a cluster: listen for the other nodes on `HOST:PORT`"},
			&cli.StringFlag{Name: "routes", Usage: "the other nodes' --cluster addresses, `nats://HOST:PORT,...` (with --cluster)"},
			&cli.StringFlag{Name: "cluster-name", Usage: "the cluster's `NAME`, the same on every node", Value: "flowscript"},
		},
		Action: func(c *cli.Context) error {
			env := envOf(c)
			if env.shared != nil {
				return usageErrorf("flowscript nats: run it in a terminal of its own")
			}
			host, port, err := hostPort(c.String("listen"))
			if err != nil {
				return usageErrorf("flowscript nats: --listen %q is not HOST:PORT", c.String("listen"))
			}
			if port == 0 {
				port = natsserver.RANDOM_PORT
			}
			sync := true
			switch d := c.String("durability"); d {
			case "durable":
			case "fast":
				sync = false
			default:
				return usageErrorf("flowscript nats: --durability %q is not durable or fast", d)
			}
			opts := &natsserver.Options{
				JetStream:  true,
				StoreDir:   env.path(c.String("dir")),
				Host:       host,
				Port:       port,
				NoLog:      true,
				NoSigs:     true,
				SyncAlways: sync,
				MaxPayload: 8 << 20,
				ServerName: c.String("name"),
			}
			if cl := c.String("cluster"); cl != "" {
				chost, cport, err := hostPort(cl)
				if err != nil || cport == 0 {
					return usageErrorf("flowscript nats: --cluster %q is not HOST:PORT with a port", cl)
				}
				if c.String("cluster-name") == "" || strings.ContainsAny(c.String("cluster-name"), " \t.*>") {
					return usageErrorf("flowscript nats: --cluster-name %q: use letters, digits, '-' and '_'", c.String("cluster-name"))
				}
				opts.Cluster.Name = c.String("cluster-name")
				opts.Cluster.Host = chost
				opts.Cluster.Port = cport
				for _, r := range strings.Split(c.String("routes"), ",") {
					if r = strings.TrimSpace(r); r == "" {
						continue
					}
					u, err := url.Parse(r)
					if err != nil || u.Scheme != "nats" || u.Host == "" {
						return usageErrorf("flowscript nats: --routes: %q is not nats://HOST:PORT", r)
					}
					opts.Routes = append(opts.Routes, u)
				}
				if len(opts.Routes) == 0 {
					return usageErrorf("flowscript nats: --cluster needs --routes, the other nodes' --cluster addresses")
				}
				if opts.ServerName == "" {
					h, _ := os.Hostname()
					opts.ServerName = fmt.Sprintf("%s-%d", h, port)
				}
			} else if c.String("routes") != "" {
				return usageErrorf("flowscript nats: --routes needs --cluster (where this node listens for the others)")
			}
			srv, err := natsserver.NewServer(opts)
			if err != nil {
				return usageErrorf("flowscript nats: %v", err)
			}
			go srv.Start()
			if !srv.ReadyForConnections(30 * time.Second) {
				srv.Shutdown()
				return usageErrorf("flowscript nats: the server did not start listening on %s (is the port taken?)", c.String("listen"))
			}
			addr := srv.Addr().String()
			if opts.Cluster.Port != 0 {
				fmt.Fprintf(c.App.ErrWriter, "NATS JetStream node %s of cluster %s listening on nats://%s (nodes on %s:%d), data in %s; use --store nats://%s/NAME?replicas=3; Ctrl-C to stop\n",
					opts.ServerName, opts.Cluster.Name, addr, opts.Cluster.Host, opts.Cluster.Port, c.String("dir"), addr)
			} else {
				fmt.Fprintf(c.App.ErrWriter, "NATS JetStream node listening on nats://%s, data in %s; use --store nats://%s/NAME; Ctrl-C to stop\n", addr, c.String("dir"), addr)
			}
			fmt.Fprintf(c.App.Writer, "nats://%s\n", addr)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			<-ctx.Done()
			srv.Shutdown()
			srv.WaitForShutdown()
			return nil
		},
	}
}

// hostPort splits HOST:PORT.
func hostPort(s string) (string, int, error) {
	host, portText, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", portText)
	}
	return host, port, nil
}
