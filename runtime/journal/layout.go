package journal

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/flowscript/flowscript/runtime/core"
)

// This file: a run's layout. A new run's steps are all pending; instead
// of one pending record a step (most of a run's creation, and a store
// write a step), its creation writes one key, step/<run-id>/ (the step
// prefix itself, which sorts before every step of the run), holding the
// declared steps' ids and kinds. A step with no record of its own is
// pending: readers (Steps, Check) make its record from the layout. Its
// first transition writes the record.
//
// A run created before layouts were written has a record for every
// step, and no layout: it reads as before.
//
//	byte 0     layoutMagic
//	bytes 1–4  the number of steps (big-endian)
//	then       JSON: [["<id>","<kind>"], …]
const layoutMagic = 0x02

// maxLayoutBytes bounds a layout's value: a larger one might not fit
// one store value (a NATS server's max_payload is 1 MiB by default), so a
// run with more steps than that (some 10,000) is created with a pending
// record a step instead (Create).
const maxLayoutBytes = 256 << 10

// layoutSize is the room a layout of steps takes (at least its size:
// escaped ids grow while appended).
func layoutSize(steps []StepRecord) int {
	size := 5 + 2
	for i := range steps {
		size += len(steps[i].ID) + len(steps[i].Kind) + 8
	}
	return size
}

// layoutOp writes the layout of a new run's steps; size is
// layoutSize(steps).
func layoutOp(runID string, steps []StepRecord, size int) Op {
	key, room := keyAndValue(len(prefixStep)+len(runID)+1+size, func(b []byte) []byte { return append(append(append(b, prefixStep...), runID...), '/') })
	val := append(room, layoutMagic, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(val[1:5], uint32(len(steps)))
	val = append(val, '[')
	for i := range steps {
		if i > 0 {
			val = append(val, ',')
		}
		val = append(appendString(append(val, '['), steps[i].ID), ',')
		val = append(appendString(val, steps[i].Kind), ']')
	}
	return setOp(key, append(val, ']'))
}

// layoutLen is the number of steps a layout value lists.
func layoutLen(val []byte) (int, error) {
	if len(val) < 5 || val[0] != layoutMagic {
		return 0, fmt.Errorf("damaged step layout")
	}
	return int(binary.BigEndian.Uint32(val[1:5])), nil
}

// decodeLayout returns the pending records of the steps a layout lists.
func decodeLayout(val []byte) ([]StepRecord, error) {
	n, err := layoutLen(val)
	if err != nil {
		return nil, err
	}
	var pairs [][2]string
	if err := json.Unmarshal(val[5:], &pairs); err != nil {
		return nil, fmt.Errorf("damaged step layout: %v", err)
	}
	if len(pairs) != n {
		return nil, fmt.Errorf("damaged step layout: it lists %d steps, its header says %d", len(pairs), n)
	}
	steps := make([]StepRecord, n)
	for i, p := range pairs {
		steps[i] = StepRecord{ID: p[0], Kind: p[1], Status: core.StepPending}
	}
	return steps, nil
}

// isLayoutKey reports whether k, a key under step/, is a run's layout
// (step/<run-id>/, with no index). A step key's 4-byte index may itself
// end in '/' (index 47 does), so a layout is told by its first '/' after
// the prefix being its last byte (run ids hold no '/').
func isLayoutKey(k []byte) bool {
	if !bytes.HasPrefix(k, []byte(prefixStep)) {
		return false
	}
	rest := k[len(prefixStep):]
	return len(rest) > 1 && bytes.IndexByte(rest, '/') == len(rest)-1
}

// stepIndex is the index in a step key under prefix (step/<run-id>/).
func stepIndex(prefix, k []byte) (int, bool) {
	if len(k) != len(prefix)+4 {
		return 0, false
	}
	return int(binary.BigEndian.Uint32(k[len(prefix):])), true
}

// mergeLayout makes the steps of a run from its stored records (by
// index, in order) and its layout: a listed step without a record is
// pending; records past the layout (planned steps) follow in order.
func mergeLayout(layout []byte, recs []StepRecord, indices []int) ([]StepRecord, error) {
	n, err := layoutLen(layout)
	if err != nil {
		return nil, err
	}
	if len(recs) >= n && (n == 0 || indices[n-1] == n-1) {
		return recs, nil // every listed step has its record
	}
	out, err := decodeLayout(layout)
	if err != nil {
		return nil, err
	}
	for i, rec := range recs {
		if indices[i] < n {
			out[indices[i]] = rec
			continue
		}
		out = append(out, rec)
	}
	return out, nil
}
