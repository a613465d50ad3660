package badgerstore

import (
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/hashicorp/go-hclog"
)

// Durability says when a commit is acknowledged.
type Durability int

const (
	// Durable acknowledges a commit only after it has been synced to
	// disk (Badger's SyncWrites). Concurrent commits share syncs. This is
	// the default.
	Durable Durability = iota
	// Fast acknowledges a commit once it is written to the operating
	// system, without syncing: a commit survives the process crashing
	// but may be lost if the machine loses power or the kernel crashes.
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

// Options configure Open and OpenInMemory. The zero value is the default.
type Options struct {
	// Durability says when a commit is acknowledged; the default is
	// Durable. It has no meaning for OpenInMemory.
	Durability Durability

	// Logger receives Badger's messages: its errors at Error, its
	// warnings at Warn, its informational messages at Debug and its
	// debug messages at Trace. The default discards everything.
	Logger hclog.Logger

	// MaxUpdateAttempts bounds how many times Update runs its function
	// when commits keep conflicting. The default is 500.
	MaxUpdateAttempts int

	// ValueLogGCInterval is how often the value log is garbage collected
	// in the background. The default is 5 minutes; a negative value turns
	// the collection off. It has no meaning for OpenInMemory.
	ValueLogGCInterval time.Duration

	// valueLogFileSize overrides the size of value log files, for tests
	// that need several files without writing hundreds of MiB.
	valueLogFileSize int64
}

const (
	defaultMaxUpdateAttempts  = 500
	defaultValueLogGCInterval = 5 * time.Minute

	// memTableSize bounds one memtable (and, at 15%, one commit: Badger
	// refuses a transaction larger than about 2.4 MiB of keys and inline
	// values with this setting). Values of valueThreshold bytes or more
	// are stored in the value log and count only a pointer towards that
	// limit, so large outputs do not make a transaction too big.
	memTableSize   = 16 << 20
	valueThreshold = 64 << 10
	// valueLogFileSize is the size at which a value log file is rotated.
	// Badger reserves (sparsely) twice this on disk for the active file.
	valueLogFileSize = 64 << 20
	// blockCacheSize caches decompressed table blocks.
	blockCacheSize = 16 << 20
)

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.MaxUpdateAttempts <= 0 {
		o.MaxUpdateAttempts = defaultMaxUpdateAttempts
	}
	if o.ValueLogGCInterval == 0 {
		o.ValueLogGCInterval = defaultValueLogGCInterval
	}
	if o.valueLogFileSize == 0 {
		o.valueLogFileSize = valueLogFileSize
	}
	return o
}

// badgerOptions tunes Badger for a small, write-heavy, latency-sensitive
// embedded workload on a machine with few cores: modest memtables and
// value log files so that an empty database stays small and memory stays
// flat, one version per key, two compactors (Badger's minimum when
// compaction is on; the first one favours level 0), no expvar metrics.
func badgerOptions(dir string, inMemory bool, o Options) badger.Options {
	bo := badger.DefaultOptions(dir).
		WithInMemory(inMemory).
		WithSyncWrites(o.Durability == Durable && !inMemory).
		WithLogger(newLogger(o.Logger)).
		WithMemTableSize(memTableSize).
		WithNumMemtables(3).
		WithValueThreshold(valueThreshold).
		WithValueLogFileSize(o.valueLogFileSize).
		WithBaseTableSize(2 << 20).
		WithBaseLevelSize(8 << 20).
		WithNumLevelZeroTables(4).
		WithNumLevelZeroTablesStall(12).
		WithNumCompactors(2).
		WithNumGoroutines(2).
		WithNumVersionsToKeep(1).
		WithCompression(options.Snappy).
		WithBlockCacheSize(blockCacheSize).
		WithIndexCacheSize(0).
		WithMetricsEnabled(false).
		WithDetectConflicts(true).
		WithChecksumVerificationMode(options.OnBlockRead).
		WithVerifyValueChecksum(true).
		WithCompactL0OnClose(false)
	if inMemory {
		bo.Dir, bo.ValueDir = "", ""
	}
	return bo
}
