//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package store

import "os"

func lockFile(string) (*os.File, error) { return nil, errNoFlock }

func lockFileHeld(string) (bool, error) { return false, errNoFlock }
