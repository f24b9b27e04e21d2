package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/larderfs/larder"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// UserStore keeps accounts in the users table of a DB. It is safe for
// concurrent use.
type UserStore struct {
	db *DB
}

// NewUserStore returns a UserStore over db.
func NewUserStore(db *DB) *UserStore {
	return &UserStore{db: db}
}

const (
	insertUserSQL = `INSERT INTO users (name, verifier, created_at, updated_at) VALUES (?, ?, ?, ?)`
	userByNameSQL = `SELECT id, name, verifier, created_at, updated_at FROM users WHERE name = ?`
)

// CreateUser stores a new account with u.Name and u.Verifier, and sets u.ID,
// u.CreatedAt and u.UpdatedAt. If the name is taken, the error has code
// ECONFLICT; of several concurrent calls for one name exactly one succeeds.
func (s *UserStore) CreateUser(ctx context.Context, u *larder.User) error {
	if err := larder.ValidateUsername(u.Name); err != nil {
		return err
	}
	if u.Verifier == "" {
		return fmt.Errorf("sqlite: create user %q: empty verifier", u.Name)
	}
	stmt, err := s.db.stmt(ctx, false, insertUserSQL)
	if err != nil {
		return fmt.Errorf("sqlite: create user %q: %w", u.Name, err)
	}
	// UTC() also drops the monotonic clock reading, so u compares equal to
	// what a later lookup returns (times are stored to the nanosecond).
	now := time.Now().UTC()
	res, err := stmt.ExecContext(ctx, u.Name, u.Verifier, formatTime(now), formatTime(now))
	if isUniqueViolation(err) {
		// The UNIQUE index decides, not an earlier lookup: that is what
		// makes concurrent registrations of one name safe.
		return larder.Errorf(larder.ECONFLICT, "user %q already exists", u.Name)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create user %q: %w", u.Name, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("sqlite: create user %q: %w", u.Name, err)
	}
	u.ID, u.CreatedAt, u.UpdatedAt = id, now, now
	return nil
}

// UserByName returns the account named name, compared byte for byte. If
// there is none, the error has code ENOTFOUND.
func (s *UserStore) UserByName(ctx context.Context, name string) (*larder.User, error) {
	stmt, err := s.db.stmt(ctx, true, userByNameSQL)
	if err != nil {
		return nil, fmt.Errorf("sqlite: user %q: %w", name, err)
	}
	var (
		u                larder.User
		created, updated string
	)
	err = stmt.QueryRowContext(ctx, name).Scan(&u.ID, &u.Name, &u.Verifier, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, larder.Errorf(larder.ENOTFOUND, "no such user %q", name)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: user %q: %w", name, err)
	}
	if u.CreatedAt, err = parseTime(created); err != nil {
		return nil, err
	}
	if u.UpdatedAt, err = parseTime(updated); err != nil {
		return nil, err
	}
	return &u, nil
}

// isUniqueViolation reports whether err is SQLite's UNIQUE constraint
// failure. It checks the extended result code, which the driver enables,
// rather than the message text.
func isUniqueViolation(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}
