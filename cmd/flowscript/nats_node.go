package main

import (
	"context"
	"fmt"
	"net"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"os"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/urfave/cli/v2"
)

// natsCommand runs an embedded NATS JetStream node, so that a database on
// NATS needs no other program.
func natsCommand() *cli.Command {
	return &cli.Command{
		Name:  "nats",
		Usage: "run a NATS JetStream node for databases on --store nats://",
		Description: "Starts a NATS server with JetStream, storing its streams in --dir, listening on\n" +
			"--listen (127.0.0.1:4222 by default), until Ctrl-C or SIGTERM. It syncs every\n" +
			"write to disk (sync_always) unless --durability fast. Then, on any machine that\n" +
			"reaches it: flowscript --store nats://HOST:PORT/NAME serve, run, show, ...\n" +
			"One node; a replicated cluster of such nodes is not done yet.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "store JetStream data in `DIR`", Value: ".flowscript-nats"},
			&cli.StringFlag{Name: "listen", Usage: "listen on `HOST:PORT` (port 0: any free port)", Value: "127.0.0.1:4222"},
			&cli.StringFlag{Name: "durability", Usage: "durable (sync every write) or fast (a machine crash may lose the last writes)", Value: "durable"},
		},
		Action: func(c *cli.Context) error {
			env := envOf(c)
			if env.shared != nil {
				return usageErrorf("flowscript nats: run it in a terminal of its own")
			}
			host, portText, err := net.SplitHostPort(c.String("listen"))
			port, perr := strconv.Atoi(portText)
			if err != nil || perr != nil || port < 0 || port > 65535 {
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
			srv, err := natsserver.NewServer(&natsserver.Options{
				JetStream:  true,
				StoreDir:   env.path(c.String("dir")),
				Host:       host,
				Port:       port,
				NoLog:      true,
				NoSigs:     true,
				SyncAlways: sync,
				MaxPayload: 8 << 20,
			})
			if err != nil {
				return usageErrorf("flowscript nats: %v", err)
			}
			go srv.Start()
			if !srv.ReadyForConnections(30 * time.Second) {
				srv.Shutdown()
				return usageErrorf("flowscript nats: the server did not start listening on %s (is the port taken?)", c.String("listen"))
			}
			addr := srv.Addr().String()
			fmt.Fprintf(c.App.ErrWriter, "NATS JetStream node listening on nats://%s, data in %s; use --store nats://%s/NAME; Ctrl-C to stop\n", addr, c.String("dir"), addr)
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
