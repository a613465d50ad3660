package badgerstore

import "github.com/flowscript/flowscript/store"

// limitsFraction is the share of Badger's own bounds on one commit that
// Limits reports. Badger counts a little more per entry than the key and
// value (a version, the metas, a node of its skiplist), and a caller sizes
// a commit before it knows every write's exact cost, so half leaves room.
const limitsFraction = 2

// Limits implements store.Store: half of the entries and bytes Badger
// accepts in one transaction (it refuses more with ErrTxnTooBig). A value
// stored in the value log counts only a pointer towards Badger's bound, so
// a transaction of a few large values may be far past MaxBytes and still
// fit.
func (s *Store) Limits() store.Limits {
	return store.Limits{
		MaxWrites: int(s.db.MaxBatchCount()) / limitsFraction,
		MaxBytes:  int(s.db.MaxBatchSize()) / limitsFraction,
	}
}
