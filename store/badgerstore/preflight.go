package badgerstore

import (
	"strconv"

	"encoding/binary"
	"fmt"
	"github.com/dgraph-io/badger/v4"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// checkTables looks at the footer of every table file (*.sst) in dir
// before Badger opens them. Badger trusts the lengths stored in a table's
// footer and, when they point outside the file, panics on one of its own
// goroutines or calls log.Fatal, taking the whole process down. A table
// whose footer is in range but whose content is damaged is caught by
// Badger's checksums and reported as an error.
//
// A table's file ends with: index, index length (4 bytes), checksum of the
// index, checksum length (4 bytes); lengths are big-endian.
//
// Only tables the MANIFEST references are checked: a table a killed
// process was still writing is not in it, and Badger deletes it unread.
// The same goes for a value log file that a kill left empty (Badger would
// refuse to open it, though it holds nothing): it is removed.
func checkTables(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	referenced, known := manifestTables(dir)
	if err := removeUnbornValueLog(dir, entries, known && len(referenced) == 0); err != nil {
		return err
	}
	// an empty memtable log was left by a kill between its creation and
	// its sizing: Badger writes nothing into it before, so it holds nothing
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".mem") {
			if info, err := e.Info(); err == nil && info.Size() == 0 {
				// until Badger makes a new log, none is expected (see
				// verifyFiles)
				if err := markRecovering(dir); err != nil {
					return err
				}
				if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
					return err
				}
			}
		}
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasSuffix(name, ".vlog") {
			continue
		}
		if !strings.HasSuffix(name, ".sst") {
			continue
		}
		if known {
			id, err := strconv.ParseUint(strings.TrimSuffix(name, ".sst"), 10, 64)
			if err == nil && !referenced[id] {
				continue
			}
		}
		if err := checkTable(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// manifestTables reads the ids of the tables in dir's MANIFEST; known is
// false when there is no readable MANIFEST (Badger reports a damaged one
// itself).
func manifestTables(dir string) (ids map[uint64]bool, known bool) {
	f, err := os.Open(filepath.Join(dir, "MANIFEST"))
	if err != nil {
		return nil, false
	}
	defer f.Close()
	m, _, err := badger.ReplayManifestFile(f, 0, badger.DefaultOptions(dir))
	if err != nil {
		return nil, false
	}
	ids = make(map[uint64]bool, len(m.Tables))
	for id := range m.Tables {
		ids[id] = true
	}
	return ids, true
}

func checkTable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	bad := func(what string) error {
		return fmt.Errorf("table %s (%d bytes) is damaged: %s", filepath.Base(path), size, what)
	}
	u32 := func(off int64) (int64, error) {
		var b [4]byte
		if _, err := f.ReadAt(b[:], off); err != nil && err != io.EOF {
			return 0, err
		}
		return int64(binary.BigEndian.Uint32(b[:])), nil
	}
	if size < 8 {
		return bad("too short")
	}
	checksumLen, err := u32(size - 4)
	if err != nil {
		return err
	}
	if checksumLen > size-8 {
		return bad("checksum length out of range")
	}
	indexLen, err := u32(size - 8 - checksumLen)
	if err != nil {
		return err
	}
	if indexLen == 0 || indexLen > size-8-checksumLen {
		return bad("index length out of range")
	}
	return nil
}

// removeUnbornValueLog removes the value log files that are empty and
// cannot hold anything: a process killed while creating one left it
// before writing its header. That is the newest file at a rotation (older
// files exist) or at the database's first open (no table was ever
// written); and it may be an older one, once a later process has moved on
// to a newer file (Badger opens a new value log at every open, and
// deletes the older ones it finds holding nothing but a header, but not
// one without a header: that open then fails, and so did every command
// on the database after such a kill). A lone empty value log of a
// database with tables is damage, and is left for Badger to report.
func removeUnbornValueLog(dir string, entries []os.DirEntry, neverWritten bool) error {
	var newest string
	var newestID uint64
	count := 0
	var empty []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".vlog") {
			continue
		}
		id, err := strconv.ParseUint(strings.TrimSuffix(name, ".vlog"), 10, 64)
		if err != nil {
			continue
		}
		count++
		if newest == "" || id > newestID {
			newest, newestID = name, id
		}
		if info, err := e.Info(); err == nil && info.Size() == 0 {
			empty = append(empty, name)
		}
	}
	for _, name := range empty {
		if name != newest {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return err
			}
		}
	}
	if newest == "" || (count == 1 && !neverWritten) {
		return nil
	}
	info, err := os.Stat(filepath.Join(dir, newest))
	if err != nil || info.Size() != 0 {
		return nil
	}
	return os.Remove(filepath.Join(dir, newest))
}
