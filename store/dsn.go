package store

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

const (
	dialectSQLite   = "sqlite"
	dialectPostgres = "postgres"

	// defaultSQLiteFile is the database file below Options.DataDir when the URL is "".
	defaultSQLiteFile = "caesium.db"
	memoryPath        = ":memory:"
	redacted          = "xxxxx"
)

// target is a parsed database URL.
type target struct {
	dialect string
	display string   // the URL with its password redacted, for errors and logs
	path    string   // SQLite: file path or ":memory:"
	url     string   // PostgreSQL: the URL as given, for pgx
	secrets []string // PostgreSQL: passwords scrubbed from every error
}

// parseURL reads a database URL:
//
//	""                        DataDir/caesium.db
//	sqlite://PATH             PATH below DataDir when relative
//	sqlite:///abs/path.db     an absolute path
//	sqlite://:memory:         an in-memory database (tests)
//	postgres://… postgresql://…
func parseURL(raw, dataDir string) (target, error) {
	switch {
	case raw == "":
		return sqliteTarget(filepath.Join(dataDir, defaultSQLiteFile)), nil
	case strings.HasPrefix(raw, "sqlite://"):
		p := strings.TrimPrefix(raw, "sqlite://")
		if strings.ContainsRune(p, '?') {
			return target{}, fmt.Errorf("database url %q: sqlite urls take no parameters", raw)
		}
		switch {
		case p == "":
			return target{}, fmt.Errorf("database url %q: no file path", raw)
		case p == memoryPath:
		case !filepath.IsAbs(p):
			p = filepath.Join(dataDir, p)
		}
		return sqliteTarget(p), nil
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		display, secrets := redactURL(raw)
		return target{dialect: dialectPostgres, display: display, url: raw, secrets: secrets}, nil
	}
	display, _ := redactURL(raw)
	return target{}, fmt.Errorf("database url %q: want sqlite://PATH, postgres://… or postgresql://…", display)
}

func sqliteTarget(path string) target {
	return target{dialect: dialectSQLite, display: "sqlite://" + path, path: path}
}

// redactURL returns the URL with its passwords (userinfo and a password
// parameter) replaced, and the passwords themselves. A URL that does not parse
// is shown by its scheme only, since any part of it might be the secret.
func redactURL(raw string) (display string, secrets []string) {
	u, err := url.Parse(raw)
	if err != nil {
		scheme, _, _ := strings.Cut(raw, "://")
		return scheme + "://" + redacted, nil
	}
	if p, ok := u.User.Password(); ok && p != "" {
		secrets = append(secrets, p)
		u.User = url.UserPassword(u.User.Username(), redacted)
	}
	if q := u.Query(); q.Get("password") != "" {
		secrets = append(secrets, q.Get("password"))
		q.Set("password", redacted)
		u.RawQuery = q.Encode()
	}
	return u.String(), secrets
}
