// Package durable holds the two directory operations the WAL and the
// snapshot files both need to survive a crash: syncing a directory so a file
// created, renamed or removed in it stays so, and creating a directory tree
// whose every new entry is synced. It never reads a clock or touches the
// filesystem except through the vfs.FS it is given.
package durable

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// SyncDir fsyncs dir, making the entries created, renamed or removed in it
// durable.
func SyncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// MkdirAll creates dir and its missing parents and syncs the parent of every
// directory it created, deepest first, so each parent's entry is synced after
// it is complete.
func MkdirAll(fs vfs.FS, dir string) error {
	var created []string
	for p := dir; ; {
		if _, err := fs.Stat(p); err == nil {
			break
		}
		created = append(created, p)
		parent := fs.PathDir(p)
		if parent == p {
			break
		}
		p = parent
	}
	if len(created) == 0 {
		return nil
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create dir %s: %w", dir, err)
	}
	for _, p := range created {
		if err := SyncDir(fs, fs.PathDir(p)); err != nil {
			return err
		}
	}
	return nil
}
