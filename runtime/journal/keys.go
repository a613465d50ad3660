package journal

import (
	"encoding/binary"
)

// The key layout of the store. Every key the engine writes is built here.
//
//	def/<name>\x00<version:8>       a definition: source snapshot, hash      (Definition)
//	defhash/<name>\x00<hash>        the version holding that content         (decimal version)
//	defmeta/<name>                  the highest version; read and written by every register of that name
//	run/<run-id>                    a run record without its steps            (RunRecord)
//	step/<run-id>/                  the ids and kinds of a run's declared steps, written at
//	                                its creation: a listed step with no record is pending (layout.go)
//	step/<run-id>/<index:4>         one step of a run, by declaration index   (StepRecord)
//	hist/<run-id>/<seq:8>           the run's history, seq from 1, contiguous: one event
//	                                (HistoryEvent), or the events one transaction wrote
//	                                for the run from seq on, as a JSON array (histpack.go)
//	log/<run-id>/<index:4>/<attempt:4>  a step attempt's log                  (bytes)
//	active/<run-id>                 present while the run is unfinished
//	wait/<run-id>/<waiter-run-id>/<index:4>/<attempt:4>
//	                                a step attempt waiting for the run to end
//	waited/<run-id>                 present while steps of runs other than the run's
//	                                parent wait for it (WaitFor): its end looks for them
//	notice/<waiter-run-id>/<run-id>/<index:4>/<attempt:4>
//	                                the outcome of a run a step attempt waited for,
//	                                written in the transaction that ends the run (Notice)
//	runsrc/<run-id>                 the source of a script= child (Definition)
//	child/<run-id>/<child-run-id>   the children a run spawned, for tree
//	idem/<workflow>\x00<key>        the run an idempotency key is bound to
//
// Run ids have a fixed length, so run/<id> prefixes never overlap.
// Workflow names and idempotency keys hold no control character (dag.
// CheckText refuses them at declaration, at start and at spawn), so the
// NUL after a name in def/, defhash/ and idem/ keys always ends the name:
// no name and key can forge another pair.
const (
	prefixDef     = "def/"
	prefixDefHash = "defhash/"
	prefixDefMeta = "defmeta/"
	prefixRun     = "run/"
	prefixStep    = "step/"
	prefixHist    = "hist/"
	prefixLog     = "log/"
	prefixActive  = "active/"
	prefixWait    = "wait/"
	prefixNotice  = "notice/"
	prefixWaited  = "waited/"
	prefixRunSrc  = "runsrc/"
	prefixChild   = "child/"
	prefixIdem    = "idem/"
)

func defKey(name string, version int) []byte {
	k := append([]byte(prefixDef+name), 0)
	return binary.BigEndian.AppendUint64(k, uint64(version))
}

func defHashKey(name, hash string) []byte {
	return []byte(prefixDefHash + name + "\x00" + hash)
}

func defMetaKey(name string) []byte { return []byte(prefixDefMeta + name) }

func runKey(id string) []byte { return []byte(prefixRun + id) }

func stepPrefix(runID string) []byte { return []byte(prefixStep + runID + "/") }

func stepKey(runID string, index int) []byte {
	return appendStepKey(make([]byte, 0, len(prefixStep)+len(runID)+1+4), runID, index)
}

func appendStepKey(k []byte, runID string, index int) []byte {
	k = append(append(append(k, prefixStep...), runID...), '/')
	return binary.BigEndian.AppendUint32(k, uint32(index))
}

func histPrefix(runID string) []byte { return []byte(prefixHist + runID + "/") }

func histKey(runID string, seq uint64) []byte {
	return appendHistKey(make([]byte, 0, len(prefixHist)+len(runID)+1+8), runID, seq)
}

func appendHistKey(k []byte, runID string, seq uint64) []byte {
	k = append(append(append(k, prefixHist...), runID...), '/')
	return binary.BigEndian.AppendUint64(k, seq)
}

// keyAndValue splits one buffer, made for both, into a key (appended by
// key, capped so that nothing appended after it can reach it) and the
// room for its value after it: a write takes one allocation instead of
// two, as long as its value fits.
func keyAndValue(size int, key func([]byte) []byte) (k, room []byte) {
	buf := make([]byte, 0, size)
	k = key(buf)
	return k[:len(k):len(k)], k[len(k):len(k)]
}

func logPrefix(runID string) []byte { return []byte(prefixLog + runID + "/") }

func logStepPrefix(runID string, index int) []byte {
	return binary.BigEndian.AppendUint32(logPrefix(runID), uint32(index))
}

func logKey(runID string, index, attempt int) []byte {
	return binary.BigEndian.AppendUint32(logStepPrefix(runID, index), uint32(attempt))
}

func activeKey(id string) []byte { return []byte(prefixActive + id) }

// decodeLogKey returns the step index and attempt of a log key.
func decodeLogKey(runID string, key []byte) (index, attempt int, ok bool) {
	rest := key[len(logPrefix(runID)):]
	if len(rest) != 8 {
		return 0, 0, false
	}
	return int(binary.BigEndian.Uint32(rest[:4])), int(binary.BigEndian.Uint32(rest[4:])), true
}

func waitPrefix(runID string) []byte { return []byte(prefixWait + runID + "/") }

func waitKey(runID, waiterRunID string, index, attempt int) []byte {
	k := append(waitPrefix(runID), waiterRunID+"/"...)
	k = binary.BigEndian.AppendUint32(k, uint32(index))
	return binary.BigEndian.AppendUint32(k, uint32(attempt))
}

// decodeWaitKey returns the waiting run, step index and attempt.
func decodeWaitKey(runID string, key []byte) (waiter string, index, attempt int, ok bool) {
	rest := key[len(waitPrefix(runID)):]
	if len(rest) < 9 || rest[len(rest)-9] != '/' {
		return "", 0, 0, false
	}
	n := len(rest)
	return string(rest[:n-9]), int(binary.BigEndian.Uint32(rest[n-8 : n-4])), int(binary.BigEndian.Uint32(rest[n-4:])), true
}

func waitedKey(runID string) []byte { return []byte(prefixWaited + runID) }

func noticeKey(waiterRunID, runID string, index, attempt int) []byte {
	k := []byte(prefixNotice + waiterRunID + "/" + runID + "/")
	k = binary.BigEndian.AppendUint32(k, uint32(index))
	return binary.BigEndian.AppendUint32(k, uint32(attempt))
}

func runSrcKey(runID string) []byte { return []byte(prefixRunSrc + runID) }

func childPrefix(runID string) []byte { return []byte(prefixChild + runID + "/") }

func childKey(runID, childID string) []byte { return append(childPrefix(runID), childID...) }

func idemKey(workflow, key string) []byte { return []byte(prefixIdem + workflow + "\x00" + key) }

// The layout, for tests and tools that look at a store directly; the
// engine itself reads and writes only through Journal and Tx.
const (
	PrefixStep   = prefixStep
	PrefixActive = prefixActive
	PrefixWait   = prefixWait
	PrefixNotice = prefixNotice
	PrefixWaited = prefixWaited
)

// StepKey is the key of step index of a run.
func StepKey(runID string, index int) []byte { return stepKey(runID, index) }

// HistKey is the key of a run's history event seq.
func HistKey(runID string, seq uint64) []byte { return histKey(runID, seq) }

// ChildKey is the key that lists child among parent's children.
func ChildKey(parent, child string) []byte { return childKey(parent, child) }
