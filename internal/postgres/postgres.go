// Package postgres stores larder's accounts in PostgreSQL, through
// github.com/jackc/pgx/v5, so that several larder servers can share them:
// every request reads the account row, so a change made through one server
// takes effect on the next request to any of them.
//
// It behaves as internal/sqlite does, down to error codes and messages;
// internal/storetest holds the suite both pass. Open brings the schema up to
// date by applying numbered migrations, as internal/sqlite does.
package postgres

import (
	"context"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/larderfs/larder"
)

// DB is a pool of connections to a larder database on a PostgreSQL server.
// It is safe for concurrent use.
//
// Statements are prepared on each connection at first use and cached (pgx's
// default), so the account lookup on every request is one round trip.
type DB struct {
	pool *pgxpool.Pool
	// target names the database for messages: it never holds the password.
	target string
}

// Open connects to the database that connString names, a postgres:// URL
// or a keyword/value string as libpq reads them, and applies any migrations
// the database has not seen yet. Besides PostgreSQL's own settings the
// string may hold pgxpool's, such as pool_max_conns (default: the larger of
// 4 and the number of CPUs).
//
// The string comes from the user and may hold a password: no error that
// Open returns contains it.
func Open(ctx context.Context, connString string) (*DB, error) {
	return open(ctx, connString, false)
}

// OpenExisting is Open for a database that must already hold larder's
// schema: a tool that reads or changes what servers made (an
// administrator's command) refuses an empty database, which is a wrong URL,
// rather than create the schema there. For a database without it, the
// error has code ENOTFOUND.
func OpenExisting(ctx context.Context, connString string) (*DB, error) {
	return open(ctx, connString, true)
}

func open(ctx context.Context, connString string, mustExist bool) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		// pgx masks the password in its message only as best it can, and
		// the message may quote the string whole.
		return nil, scrubbed("postgres: bad database URL: ", err, connString)
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "larder"
	}
	db := &DB{target: target(cfg)}
	if db.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, scrubbed("postgres: open "+db.target+": ", err, connString)
	}
	if mustExist {
		var exists bool
		err := db.pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists)
		if err == nil && !exists {
			db.pool.Close()
			return nil, larder.Errorf(larder.ENOTFOUND, "postgres: %s holds no larder database: no larder serve has run on it", db.target)
		}
		if err != nil {
			db.pool.Close()
			return nil, scrubbed("postgres: open "+db.target+": ", err, connString)
		}
	}
	// The pool connects lazily; the migrations connect now, so that a bad
	// address or credentials fail here rather than at the first request.
	if err := db.migrate(ctx); err != nil {
		db.pool.Close()
		return nil, scrubbed("postgres: open "+db.target+": ", err, connString)
	}
	return db, nil
}

// Close closes every connection of the pool, waiting for those in use to
// be returned first.
func (db *DB) Close() {
	db.pool.Close()
}

// String returns the database's URL without its password, for logs.
func (db *DB) String() string { return db.target }

// scrubbedError is an error whose text has the passwords of a connection
// string masked.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrubbed returns err, its text prefixed and masked by scrub.
func scrubbed(prefix string, err error, connString string) error {
	return &scrubbedError{msg: prefix + scrub(err.Error(), connString), err: err}
}

// target returns a URL for cfg's database with no password in it.
func target(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	u := url.URL{Scheme: "postgres", Path: "/" + c.Database}
	if c.User != "" {
		u.User = url.User(c.User)
	}
	u.Host = c.Host
	if c.Port != 0 && !strings.HasPrefix(c.Host, "/") {
		u.Host = c.Host + ":" + strconv.Itoa(int(c.Port))
		if strings.Contains(c.Host, ":") { // IPv6
			u.Host = "[" + c.Host + "]:" + strconv.Itoa(int(c.Port))
		}
	}
	if strings.HasPrefix(c.Host, "/") { // a unix socket directory
		u.Host = ""
		u.RawQuery = url.Values{"host": {c.Host}}.Encode()
	}
	return u.String()
}

// passwordParam matches the password settings of a keyword/value string or
// a URL's query, quoted or not.
var passwordParam = regexp.MustCompile(`(?i)(?:ssl)?password\s*=\s*('(?:[^'\\]|\\.)*'|[^&\s]*)`)

// scrub masks in msg every password that connString holds, in the forms it
// may take there: as written, and with its quoting or escaping undone. It
// works on the raw string, not on a parse of it, because it must also serve
// for strings that fail to parse.
func scrub(msg, connString string) string {
	var secrets []string
	add := func(s string) {
		s = strings.Trim(s, "'")
		if s == "" {
			return
		}
		secrets = append(secrets, s)
		for _, unescape := range []func(string) (string, error){url.PathUnescape, url.QueryUnescape} {
			if u, err := unescape(s); err == nil && u != s {
				secrets = append(secrets, u)
			}
		}
		if u := strings.ReplaceAll(strings.ReplaceAll(s, `\'`, `'`), `\\`, `\`); u != s {
			secrets = append(secrets, u)
		}
	}
	// The password in a URL's user info: after the first ':' and before
	// an '@'. Which '@' ends the user info depends on the parser, and on
	// whether the URL is well formed, so mask the text up to each.
	if _, rest, ok := strings.Cut(connString, "://"); ok {
		for at := range len(rest) {
			if rest[at] != '@' {
				continue
			}
			if _, pw, ok := strings.Cut(rest[:at], ":"); ok {
				add(pw)
			}
		}
	}
	for _, m := range passwordParam.FindAllStringSubmatch(connString, -1) {
		add(m[1])
	}
	// Longest first, so that a password that contains another is masked
	// whole.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, "xxxxx")
	}
	return msg
}
