package natsstore

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// Durability says when a commit is acknowledged.
type Durability int

const (
	// Durable acknowledges a commit only once it is synced: on a server
	// this package starts (Options.Dir) the server runs with sync_always;
	// on a server given by URL or Options.Server the stream must either
	// be replicated (Options.Replicas >= 3, where a commit is on a quorum
	// of nodes) or the server must run with sync_always: natsstore checks
	// that of an in-process Options.Server and cannot check it over the
	// network. This is the default.
	Durable Durability = iota
	// Fast acknowledges a commit once the server has written it to the
	// operating system. JetStream's file store then syncs every two
	// minutes (its default sync_interval): a commit survives the process
	// being killed, but up to two minutes of acknowledged commits may be
	// lost if the machine loses power or the kernel crashes.
	Fast
)

func (d Durability) String() string {
	switch d {
	case Durable:
		return "durable"
	case Fast:
		return "fast"
	}
	return "Durability(?)"
}

// Options configure Open. Exactly one of URL, Server and Dir says where
// the JetStream server is.
type Options struct {
	// URL is a NATS server, "nats://host:port" or "nats://host:port/name",
	// where name is the stream (it overrides Stream). Several servers of
	// one cluster are separated by commas ("nats://h1:4222,h2:4222/name"):
	// the connection moves to another when one goes away. A query
	// "?replicas=N" sets Replicas.
	URL string
	// Server is a running in-process nats-server with JetStream enabled;
	// the Store connects to it without the network and leaves it running
	// on Close.
	Server *server.Server
	// Dir makes Open start an in-process nats-server of its own, storing
	// JetStream data in Dir, and shut it down on Close.
	Dir string

	// Stream names the JetStream stream that holds the database; the
	// default is "flowscript". Its subjects are "fs.<Stream>.>".
	Stream string
	// Durability says when a commit is acknowledged; the default is
	// Durable.
	Durability Durability
	// Replicas is the stream's replication factor. 0 keeps that of an
	// existing stream and creates a new one with 1.
	Replicas int
	// MustExist makes Open fail with ErrNoDatabase, creating nothing,
	// when the stream does not exist; Open then changes nothing of an
	// existing stream either (the mode of commands that only read).
	MustExist bool

	// MaxBatch is the largest atomic batch the server takes (its
	// jetstream max_batch_size, 1,000 unless configured). A server
	// started for Dir is configured with it.
	MaxBatch int
	// History is how many revisions of each key the stream keeps; the
	// default is 64. A View or Update reads a snapshot; a key that
	// changed History times since the snapshot was taken can no longer be
	// read at it, and the read fails with ErrSnapshotTooOld.
	History int
	// MaxUpdateAttempts bounds how many times Update runs its function
	// when commits keep conflicting. The default is 500.
	MaxUpdateAttempts int
}

const (
	defaultStream            = "flowscript"
	defaultMaxBatch          = 1000
	defaultHistory           = 64
	defaultMaxUpdateAttempts = 500
	// checkSlots is how many messages of a batch Limits keeps back for
	// the checks of keys a transaction reads and does not write.
	checkSlots = 16
	// maxTxBytes bounds the keys and values of one transaction. The server
	// stages a batch before it applies it; this keeps a batch a small
	// fraction of its 128 MiB ingest queue.
	maxTxBytes = 8 << 20
	// ownMaxPayload is the largest message a server started for Dir
	// accepts (the NATS default is 1 MiB).
	ownMaxPayload = 8 << 20
	// maxSubjectLen bounds the subject of a key; longer keys are refused
	// with ErrTooLarge.
	maxSubjectLen = 1024
)

func (o Options) withDefaults() (Options, error) {
	where := 0
	for _, set := range []bool{o.URL != "", o.Server != nil, o.Dir != ""} {
		if set {
			where++
		}
	}
	if where != 1 {
		return o, errors.New("natsstore: set exactly one of Options.URL, Options.Server and Options.Dir")
	}
	if o.URL != "" {
		u, err := url.Parse(o.URL)
		if err != nil || u.Scheme != "nats" || u.Host == "" {
			return o, fmt.Errorf("natsstore: %q is not a NATS URL; write nats://host:port or nats://host:port/name", o.URL)
		}
		if name := strings.Trim(u.Path, "/"); name != "" {
			o.Stream = name
		}
		q := u.Query()
		for k := range q {
			if k != "replicas" {
				return o, fmt.Errorf("natsstore: %q: unknown option %q (the URL takes ?replicas=N)", o.URL, k)
			}
		}
		if r := q.Get("replicas"); r != "" {
			n, err := strconv.Atoi(r)
			if err != nil || n < 1 || n > 5 {
				return o, fmt.Errorf("natsstore: %q: replicas=%s: write a number from 1 to 5", o.URL, r)
			}
			o.Replicas = n
		}
		u.Path = ""
		u.RawQuery = ""
		o.URL = u.String()
	}
	if o.Stream == "" {
		o.Stream = defaultStream
	}
	if strings.ContainsAny(o.Stream, ".*> \t\r\n/\\") {
		return o, fmt.Errorf("natsstore: %q cannot name a stream: use letters, digits, '-' and '_'", o.Stream)
	}
	if o.Replicas < 0 || o.Replicas > 5 {
		return o, fmt.Errorf("natsstore: Replicas %d: JetStream replicates a stream 1 to 5 times", o.Replicas)
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = defaultMaxBatch
	}
	if o.MaxBatch <= checkSlots {
		return o, fmt.Errorf("natsstore: MaxBatch %d is too small", o.MaxBatch)
	}
	if o.History == 0 {
		o.History = defaultHistory
	}
	if o.History < 2 {
		return o, fmt.Errorf("natsstore: History %d is too small; snapshots need at least 2 revisions per key", o.History)
	}
	if o.MaxUpdateAttempts == 0 {
		o.MaxUpdateAttempts = defaultMaxUpdateAttempts
	}
	return o, nil
}
