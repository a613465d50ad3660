package journal

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// This file: packed history. The history events one transaction writes
// for one run, in seq order, share one key: hist/<run-id>/<first seq>
// holds either one event (a JSON object, as every key held before packs
// were written) or a JSON array of events whose seqs follow on from the
// key's. Readers take both (decodeHistoryValue).
//
// A transaction collects a run's events, from the first AppendHistory
// made, into the pack of that run while they take the next seq and fit
// in maxPackBytes, and writes each pack once: when another pack of the
// run takes its place, or when the transaction's last op has run
// (writePacks). One entry lands a pack, and it is counted once against
// the store's limits, with its final size. (Until then, the ops of the
// transaction do not see the events in the store: none reads history.)

// maxPackBytes bounds the value of one packed history key: a pack is one
// store entry, written once, and four kilobytes (about thirty events)
// keep it far inside a store's bounds on one value (Badger keeps it in
// its tree, under the value threshold) while a step of a large fan-out
// costs a tenth of an entry for its history.
const maxPackBytes = 4096

// histPack is the history key a transaction is filling for one run.
type histPack struct {
	run  []byte // the run id, inside key
	key  []byte
	next uint64 // the seq the pack takes next
	// first is the key's first event, as its op made it; buf the packed
	// value once a second event came (a buffer of the pack's own: the
	// ops' values never change, a transaction may be run again)
	first, buf []byte
}

// appendHistory adds one history event (its op's key and value) to the
// pack of its run, or starts a pack with it. It is counted as the write
// it will be: a new entry, or the bytes the pack grows by.
func (t *countingTx) appendHistory(key, val []byte) error {
	run, seq, ok := splitHistKey(key)
	if !ok {
		return t.SetOwned(key, val)
	}
	p := t.packOf(run)
	if p == nil || p.next != seq || p.size()+1+len(val) > maxPackBytes {
		if p != nil {
			if err := t.writePack(p); err != nil {
				return err
			}
		}
		t.writes++
		t.bytes += len(key) + len(val)
		t.startPack(histPack{run: run, key: key, next: seq + 1, first: val})
		return nil
	}
	t.bytes += 1 + len(val)
	if p.buf == nil {
		p.buf = make([]byte, 0, max(2*(len(p.first)+len(val))+3, 256))
		p.buf = append(append(p.buf, '['), p.first...)
	} else {
		p.buf = p.buf[:len(p.buf)-1] // its closing ']'
	}
	p.buf = append(append(append(p.buf, ','), val...), ']')
	p.next++
	return nil
}

func (p *histPack) size() int {
	if p.buf != nil {
		return len(p.buf)
	}
	return len(p.first) + 2
}

// writePack stores a pack (already counted, by appendHistory).
func (t *countingTx) writePack(p *histPack) error {
	v := p.first
	if p.buf != nil {
		v = p.buf
	}
	if ot, ok := t.Tx.(ownedTx); ok {
		// neither the op's value nor buf changes once written
		return ot.SetOwned(p.key, v)
	}
	return t.Tx.Set(p.key, v)
}

// writePacks stores the packs the transaction is filling: after its last
// op.
func (t *countingTx) writePacks() error {
	for i := range t.packs {
		if err := t.writePack(&t.packs[i]); err != nil {
			return err
		}
	}
	return nil
}

// packOf is the pack being filled for run, or nil.
func (t *countingTx) packOf(run []byte) *histPack {
	if t.packIndex != nil {
		if i, ok := t.packIndex[string(run)]; ok {
			return &t.packs[i]
		}
		return nil
	}
	for i := len(t.packs) - 1; i >= 0; i-- {
		if bytes.Equal(t.packs[i].run, run) {
			return &t.packs[i]
		}
	}
	return nil
}

// packsScanned is how many runs' packs are looked through one by one;
// a transaction of more runs (a large spawn) indexes them.
const packsScanned = 8

// startPack makes p the pack of its run, in place of the one before.
func (t *countingTx) startPack(p histPack) {
	if old := t.packOf(p.run); old != nil {
		*old = p
		return
	}
	if t.packs == nil {
		t.packs = t.packBuf[:0]
	}
	t.packs = append(t.packs, p)
	if t.packIndex == nil && len(t.packs) > packsScanned {
		t.packIndex = make(map[string]int, 2*len(t.packs))
		for i := range t.packs {
			t.packIndex[string(t.packs[i].run)] = i
		}
	} else if t.packIndex != nil {
		t.packIndex[string(p.run)] = len(t.packs) - 1
	}
}

// splitHistKey returns the run id and seq of a history key.
func splitHistKey(key []byte) (run []byte, seq uint64, ok bool) {
	if !bytes.HasPrefix(key, []byte(prefixHist)) || len(key) < len(prefixHist)+10 || key[len(key)-9] != '/' {
		return nil, 0, false
	}
	return key[len(prefixHist) : len(key)-9], binary.BigEndian.Uint64(key[len(key)-8:]), true
}

// decodeHistoryValue decodes the value of a history key stored under
// seq: one event, or a pack of events from seq on. The events of a pack
// must follow on from seq.
func decodeHistoryValue(seq uint64, v []byte) ([]HistoryEvent, error) {
	v = bytes.TrimLeft(v, " \t\r\n")
	if len(v) == 0 || v[0] != '[' {
		h, err := decodeHistoryEvent(v)
		if err != nil {
			return nil, err
		}
		return []HistoryEvent{*h}, nil
	}
	var evs []HistoryEvent
	if err := json.Unmarshal(v, &evs); err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, fmt.Errorf("an empty pack of history events")
	}
	for i := range evs {
		if evs[i].Seq != seq+uint64(i) {
			return nil, fmt.Errorf("history event %d of the pack stored under seq %d says seq %d", i+1, seq, evs[i].Seq)
		}
	}
	return evs, nil
}
