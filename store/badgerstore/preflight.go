package badgerstore

import (
	"encoding/binary"
	"fmt"
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
func checkTables(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sst") {
			continue
		}
		if err := checkTable(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
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
