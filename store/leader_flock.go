//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package store

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// lockFile takes an exclusive flock on path, creating the file, without
// waiting: nil and no error when another open file holds it (in this process
// or another). flock locks belong to the open file, so two Stores of one
// process on the same database exclude each other too.
func lockFile(path string) (*os.File, error) {
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			_ = f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, nil
			}
			return nil, &fs.PathError{Op: "flock", Path: path, Err: err}
		}
		// The file may have been removed and created again between open and
		// flock: then the lock is on an orphan, and the attempt starts over.
		held, err := f.Stat()
		if err != nil {
			_ = f.Close()
			return nil, err
		}
		cur, err := os.Stat(path)
		if err == nil && os.SameFile(held, cur) {
			return f, nil
		}
		_ = f.Close()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
}

// lockFileHeld reports whether some open file holds the flock on path. It
// takes a shared lock for a moment, so a concurrent lockFile may fail once
// and retry.
func lockFileHeld(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	switch {
	case errors.Is(err, syscall.EWOULDBLOCK):
		return true, nil
	case err != nil:
		return false, &fs.PathError{Op: "flock", Path: path, Err: err}
	}
	return false, nil // closing f drops the shared lock
}
