package badgerstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/flowscript/flowscript/store"
)

// markerName is the file that marks a directory as a flowscript database.
// It also records whether the database was closed cleanly: "open" while a
// process holds it, "closing" while Close runs, "closed" once it ended. A database whose marker
// says "open" was left by a process that died, and Badger then still has
// a memtable log (.mem) to replay; if none is there, commits were lost.
const markerName = "flowscript.db"

const (
	markerHeader  = "flowscript database\n"
	markerOpen    = markerHeader + "open\n"
	markerClosing = markerHeader + "closing\n"
	// recovering: an empty memtable log a kill left was removed, and
	// Badger has not made a new one yet
	markerRecovering = markerHeader + "recovering\n"
	markerClosed     = markerHeader + "closed\n"
)

// ErrNotFlowscript is the cause of the *store.CorruptError of a directory
// that holds files but is not a flowscript database.
var ErrNotFlowscript = errors.New("not a flowscript database")

// badgerFile reports whether name is a file Badger or this package keeps
// in a database directory (or a holder's socket).
func badgerFile(name string) bool {
	switch name {
	case badger.ManifestFilename, badger.KeyRegistryFileName, badger.KeyRegistryRewriteFileName,
		"DISCARD", "LOCK", "MANIFEST-REWRITE", dirLockName, markerName, markerName + ".tmp",
		"flowscript.sock", "flowscript.sock.addr":
		return true
	}
	for _, ext := range []string{".sst", ".vlog", ".mem"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// claimDir decides, before anything is written, whether dir may be opened
// as a flowscript database: it is empty (a new database), it has the
// marker, or it holds only Badger's files (a database made before the
// marker existed). Anything else is refused with ErrNotFlowscript.
func claimDir(dir string) (marked bool, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	var foreign []string
	for _, e := range entries {
		if e.Name() == markerName {
			marked = true
		}
		if !badgerFile(e.Name()) {
			foreign = append(foreign, e.Name())
		}
	}
	if marked {
		return true, nil
	}
	if len(foreign) > 0 {
		sort.Strings(foreign)
		if len(foreign) > 3 {
			foreign = append(foreign[:3], "…")
		}
		return false, fmt.Errorf("%w: the directory holds other files (%s) and no %s marker", ErrNotFlowscript, strings.Join(foreign, ", "), markerName)
	}
	return false, nil
}

// readMarker returns the marker's state line ("open", "closed"), or "" when
// there is no marker.
func readMarker(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, markerName))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	s := string(data)
	if !strings.HasPrefix(s, markerHeader) {
		return "", fmt.Errorf("its %s marker is damaged", markerName)
	}
	return strings.TrimSpace(strings.TrimPrefix(s, markerHeader)), nil
}

// markRecovering records, in a marked database, that it has no memtable
// log for a moment.
func markRecovering(dir string) error {
	if state, err := readMarker(dir); err != nil || state == "" {
		return err
	}
	return writeMarker(dir, markerRecovering)
}

// writeMarker replaces the marker atomically and syncs it.
func writeMarker(dir, content string) error {
	tmp := filepath.Join(dir, markerName+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, markerName)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// maxOrphanTables is how many table files the MANIFEST of a database
// without a marker may not know before it counts as damaged. A database
// closed cleanly has none; one a process was killed in may have several
// (flushes and compactions under way, a compacted table not yet removed),
// which Badger deletes at open. Otherwise they mean that the MANIFEST lost
// entries (a truncated MANIFEST), and deleting them would lose data.
const maxOrphanTables = 2

// verifyFiles checks, before Badger opens dir (which can "repair" a
// damaged directory by deleting table files, even read-only), that its
// files agree with each other: a MANIFEST that reads to its end, every
// table it names present, few tables it does not name, and after an
// unclean stop a memtable log to replay. It changes nothing.
func verifyFiles(dir string, state string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	tables := map[uint64]bool{}
	var mems, vlogs, written int // written: logs that are not empty
	for _, e := range entries {
		name := e.Name()
		if info, err := e.Info(); err == nil && info.Size() > 0 && (strings.HasSuffix(name, ".mem") || strings.HasSuffix(name, ".vlog")) {
			written++
		}
		switch {
		case strings.HasSuffix(name, ".sst"):
			if id, err := strconv.ParseUint(strings.TrimSuffix(name, ".sst"), 10, 64); err == nil {
				tables[id] = true
			}
		case strings.HasSuffix(name, ".mem"):
			mems++
		case strings.HasSuffix(name, ".vlog"):
			vlogs++
		}
	}
	path := filepath.Join(dir, "MANIFEST")
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		// Badger writes the MANIFEST when it first opens, after creating
		// its (still empty) logs: a process killed in between left no data
		if len(tables) > 0 || written > 0 || state != "" {
			return fmt.Errorf("its MANIFEST file is missing (%d table files, %d value log files are there)", len(tables), vlogs)
		}
		return nil // a new database
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	m, end, err := badger.ReplayManifestFile(f, 0, badger.DefaultOptions(dir))
	if err != nil {
		return fmt.Errorf("its MANIFEST cannot be read: %v", err)
	}
	if end != fi.Size() {
		return fmt.Errorf("its MANIFEST is cut short or damaged after byte %d of %d", end, fi.Size())
	}
	var missing []string
	for id := range m.Tables {
		if !tables[id] {
			missing = append(missing, fmt.Sprintf("%06d.sst", id))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("table files the MANIFEST names are missing: %s", strings.Join(missing, ", "))
	}
	orphans := 0
	for id := range tables {
		if _, ok := m.Tables[id]; !ok {
			orphans++
		}
	}
	// after a clean close Badger left no table its MANIFEST does not
	// name; after a kill it may have left several (flushes and
	// compactions under way), which it deletes at open
	if (state == "closed" && orphans > 0) || (state == "" && orphans > maxOrphanTables) {
		return fmt.Errorf("%d table files are not in its MANIFEST (the MANIFEST lost entries?)", orphans)
	}
	if state == "open" && mems == 0 && len(m.Tables) == 0 && vlogs == 0 {
		return nil // stopped before Badger wrote anything
	}
	if state == "open" && mems == 0 {
		return errors.New("it was not closed cleanly and its memtable log (.mem file) is missing: recent commits are lost")
	}
	return nil
}

// verifyTables checks every table's checksums. Badger's iterators end
// silently at a block whose checksum fails, so a damaged table would
// otherwise read as a database with fewer keys.
func verifyTables(db *badger.DB) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	if err := db.VerifyChecksum(); err != nil {
		return fmt.Errorf("a table's checksum does not match: %v", err)
	}
	return nil
}

// verifyValuesOnOpen bounds the value log that Open reads through to
// verify every value: a larger database is verified by `flowscript check`
// (Verify), and a value lost from its value log is an error when read.
const verifyValuesOnOpen = 256 << 20

// VerifyReport is what Verify read.
type VerifyReport struct {
	Tables     int   // table files whose checksums were verified
	Keys       int   // keys read
	ValueBytes int64 // bytes of values read and checked
}

// Verify checks every table's checksums and reads every value (each value
// log entry's checksum is verified as it is read). It changes nothing.
func (s *Store) Verify(ctx context.Context) (VerifyReport, error) {
	var r VerifyReport
	r.Tables = len(s.db.Tables())
	if err := verifyTables(s.db); err != nil {
		return r, &store.CorruptError{Dir: s.dir, Err: err}
	}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{AllVersions: false})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if r.Keys%1024 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			item := it.Item()
			v, err := item.ValueCopy(nil)
			if err != nil {
				return fmt.Errorf("the value of key %q cannot be read: %v", abbrev(item.Key()), err)
			}
			if len(v) == 0 && item.ValueSize() > 0 {
				return fmt.Errorf("the value of key %q cannot be read from the value log", abbrev(item.Key()))
			}
			r.Keys++
			r.ValueBytes += int64(len(v))
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		return r, &store.CorruptError{Dir: s.dir, Err: err}
	}
	return r, err
}

// verifyOnOpen is Open's check of a read-only store: every table's
// checksums, and every value while the value log is small.
func (s *Store) verifyOnOpen() error {
	if s.dir == "" || s.db.Opts().InMemory {
		return nil
	}
	if err := verifyTables(s.db); err != nil {
		return err
	}
	if _, vlog := s.db.Size(); vlog > verifyValuesOnOpen {
		return nil
	}
	_, err := s.Verify(context.Background())
	var ce *store.CorruptError
	if errors.As(err, &ce) {
		return ce.Err
	}
	return err
}
