package store

import "bytes"

// PrefixEnd returns the smallest key that is greater than every key
// beginning with prefix, or nil when there is none (prefix is empty or
// made only of 0xff bytes). Keys k with prefix satisfy
// prefix <= k < PrefixEnd(prefix).
func PrefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// IsReserved reports whether key may not be written through Tx.Set and
// Tx.Delete: it is empty or begins with ReservedPrefix.
func IsReserved(key []byte) bool {
	return len(key) == 0 || bytes.HasPrefix(key, []byte(ReservedPrefix))
}
