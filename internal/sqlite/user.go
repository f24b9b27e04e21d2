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

var _ larder.UserStore = (*UserStore)(nil)

// NewUserStore returns a UserStore over db.
func NewUserStore(db *DB) *UserStore {
	return &UserStore{db: db}
}

// userColumns is what every query that returns accounts selects, in the
// order scanUser reads.
const userColumns = `id, name, verifier, disabled, credential_gen, lnp_credential, quota_bytes, quota_files, last_login, created_at, updated_at`

const (
	insertUserSQL = `INSERT INTO users (name, verifier, disabled, lnp_credential, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`
	userByNameSQL = `SELECT ` + userColumns + ` FROM users WHERE name = ?`
	listUsersSQL  = `SELECT ` + userColumns + ` FROM users WHERE name > ? ORDER BY name LIMIT ?`
	userExistsSQL = `SELECT EXISTS (SELECT 1 FROM users WHERE name = ?)`

	// max() keeps updated_at from going back if the clock does; the
	// fixed-width text of formatTime compares in time order.
	// The second parameter is 1 for a password change, 0 for a rehash; a
	// password change also drops the LNP/1 credential of the old one.
	replaceVerifierSQL = `UPDATE users SET verifier = ?, credential_gen = credential_gen + ?,
		lnp_credential = CASE WHEN ? = 1 THEN '' ELSE lnp_credential END, updated_at = max(?, updated_at) WHERE name = ? AND verifier = ?`
	setLNPCredentialSQL   = `UPDATE users SET lnp_credential = ?, updated_at = max(?, updated_at) WHERE name = ? AND id = ? AND credential_gen = ? AND lnp_credential = ?`
	replaceCredentialsSQL = `UPDATE users SET verifier = ?, lnp_credential = ?, credential_gen = credential_gen + 1,
		updated_at = max(?, updated_at) WHERE name = ? AND id = ? AND credential_gen = ?`
	setDisabledSQL = `UPDATE users SET disabled = ?, updated_at = max(?, updated_at) WHERE name = ?`
	// A bound not named keeps its stored value (?1 and ?3 say which are).
	setQuotaSQL = `UPDATE users SET quota_bytes = CASE WHEN ?1 THEN ?2 ELSE quota_bytes END,
		quota_files = CASE WHEN ?3 THEN ?4 ELSE quota_files END, updated_at = max(?5, updated_at)
		WHERE name = ?6 RETURNING quota_bytes, quota_files`
	// The second time is now less LastLoginResolution: an older login,
	// or none, is replaced; a newer one stays, and nothing is written.
	recordLoginSQL = `UPDATE users SET last_login = ? WHERE name = ? AND id = ? AND (last_login IS NULL OR last_login < ?)`
	deleteUserSQL  = `DELETE FROM users WHERE name = ?`
)

// CreateUser stores a new account with u.Name, u.Verifier and u.Disabled,
// and sets u.ID, u.CreatedAt and u.UpdatedAt. If the name is taken, the
// error has code ECONFLICT; of several concurrent calls for one name exactly
// one succeeds.
func (s *UserStore) CreateUser(ctx context.Context, u *larder.User) error {
	// No stamp: only accounts found are cached, and this one was not.
	if err := larder.ValidateUsername(u.Name); err != nil {
		return err
	}
	if err := larder.CheckCredentials(u.Name, u.Verifier, u.LNPCredential); err != nil {
		return fmt.Errorf("sqlite: create user: %w", err)
	}
	stmt, err := s.db.stmt(ctx, false, insertUserSQL)
	if err != nil {
		return fmt.Errorf("sqlite: create user %q: %w", u.Name, err)
	}
	// UTC() also drops the monotonic clock reading, so u compares equal to
	// what a later lookup returns (times are stored to the nanosecond).
	now := time.Now().UTC()
	res, err := stmt.ExecContext(ctx, u.Name, u.Verifier, u.Disabled, u.LNPCredential, formatTime(now), formatTime(now))
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
// there is none, the error has code ENOTFOUND. A change made to the
// account by any process, through a UserStore, is seen at once (see
// accountCache).
func (s *UserStore) UserByName(ctx context.Context, name string) (*larder.User, error) {
	stamp, cacheable := s.db.accounts.stamp()
	if cacheable {
		if u, ok := s.db.accounts.get(name, stamp); ok {
			return u, nil
		}
	}
	u, err := s.userByName(ctx, name)
	if err == nil && cacheable {
		s.db.accounts.put(u, stamp)
	}
	return u, err
}

// userByName reads the account called name from the database.
func (s *UserStore) userByName(ctx context.Context, name string) (*larder.User, error) {
	stmt, err := s.db.stmt(ctx, true, userByNameSQL)
	if err != nil {
		return nil, fmt.Errorf("sqlite: user %q: %w", name, err)
	}
	u, err := scanUser(stmt.QueryRowContext(ctx, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, larder.UserNotFound(name)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: user %q: %w", name, err)
	}
	return u, nil
}

// ReplaceVerifier sets the verifier of account name to new, for a new
// password, if it is still old, adds one to its CredentialGen and updates
// UpdatedAt. If the verifier is no longer old, the error has code ECONFLICT
// and nothing changes; if there is no such account, it has code ENOTFOUND.
func (s *UserStore) ReplaceVerifier(ctx context.Context, name, old, new string) error {
	return s.replaceVerifier(ctx, name, old, new, 1)
}

// RehashVerifier is ReplaceVerifier for a new hash of the same password:
// CredentialGen stays.
func (s *UserStore) RehashVerifier(ctx context.Context, name, old, new string) error {
	return s.replaceVerifier(ctx, name, old, new, 0)
}

func (s *UserStore) replaceVerifier(ctx context.Context, name, old, new string, gen int) error {
	defer s.db.accounts.changed()
	if old == "" || new == "" {
		return fmt.Errorf("sqlite: replace verifier of %q: empty verifier (ReplaceCredentials adds or removes one)", name)
	}
	return s.swap(ctx, "replace verifier", name, replaceVerifierSQL,
		[]any{new, gen, gen, formatTime(time.Now()), name, old}, larder.VerifierChanged(name))
}

// swap runs update, a compare-and-swap on account name that matches no
// row when it fails, and tells the two reasons apart: no such account
// (ENOTFOUND), or conflict. what names the change in errors.
func (s *UserStore) swap(ctx context.Context, what, name, update string, args []any, conflict error) error {
	// Prepared before the transaction takes the write pool's only
	// connection: preparing inside it would wait for that connection.
	stmt, err := s.db.stmt(ctx, false, update)
	if err != nil {
		return fmt.Errorf("sqlite: %s of %q: %w", what, name, err)
	}
	exists, err := s.db.stmt(ctx, false, userExistsSQL)
	if err != nil {
		return fmt.Errorf("sqlite: %s of %q: %w", what, name, err)
	}
	// The WHERE clause is the compare-and-swap. When it matches nothing,
	// the existence check in the same IMMEDIATE transaction tells the two
	// reasons apart without a writer slipping in between.
	err = s.db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		var found bool
		if err := tx.StmtContext(ctx, exists).QueryRowContext(ctx, name).Scan(&found); err != nil {
			return err
		}
		if !found {
			return larder.UserNotFound(name)
		}
		return conflict
	})
	if larder.ErrorCode(err) == larder.EINTERNAL {
		return fmt.Errorf("sqlite: %s of %q: %w", what, name, err)
	}
	return err
}

// SetLNPCredential sets the LNP/1 credential of account name to new if it
// is still the account id, its credential still old and its credential
// generation still gen, and updates UpdatedAt. If any has changed, the
// error has code ECONFLICT and nothing changes; if there is no such
// account, it has code ENOTFOUND.
func (s *UserStore) SetLNPCredential(ctx context.Context, name string, id, gen int64, old, new string) error {
	defer s.db.accounts.changed()
	return s.swap(ctx, "set LNP/1 credential", name, setLNPCredentialSQL,
		[]any{new, formatTime(time.Now()), name, id, gen, old},
		larder.Errorf(larder.ECONFLICT, "the LNP/1 credential of user %q has changed", name))
}

// ReplaceCredentials sets the verifier and the LNP/1 credential of account
// name, for a new password, if it is still the account id and its
// credential generation still gen; it adds one to the generation and
// updates UpdatedAt. If either has changed, the error has code ECONFLICT
// and nothing changes; if there is no such account, it has code
// ENOTFOUND.
func (s *UserStore) ReplaceCredentials(ctx context.Context, name string, id, gen int64, verifier, lnpCredential string) error {
	if err := larder.CheckCredentials(name, verifier, lnpCredential); err != nil {
		return fmt.Errorf("sqlite: replace credentials: %w", err)
	}
	defer s.db.accounts.changed()
	return s.swap(ctx, "replace credentials", name, replaceCredentialsSQL,
		[]any{verifier, lnpCredential, formatTime(time.Now()), name, id, gen}, larder.CredentialsChanged(name))
}

// SetDisabled disables or enables account name, and updates UpdatedAt. If
// there is no such account, the error has code ENOTFOUND.
func (s *UserStore) SetDisabled(ctx context.Context, name string, disabled bool) error {
	defer s.db.accounts.changed()
	n, err := s.exec(ctx, setDisabledSQL, disabled, formatTime(time.Now()), name)
	if err != nil {
		return fmt.Errorf("sqlite: set disabled of %q: %w", name, err)
	}
	if n == 0 {
		return larder.UserNotFound(name)
	}
	return nil
}

// SetQuota sets the bounds of the account's own quota that which names,
// keeps the others, and updates UpdatedAt, in one statement. If there is
// no such account, the error has code ENOTFOUND.
func (s *UserStore) SetQuota(ctx context.Context, name string, q larder.AccountQuota, which larder.QuotaBounds) (larder.AccountQuota, error) {
	if err := q.Validate(); err != nil {
		return larder.AccountQuota{}, err
	}
	defer s.db.accounts.changed()
	stmt, err := s.db.stmt(ctx, false, setQuotaSQL)
	if err != nil {
		return larder.AccountQuota{}, fmt.Errorf("sqlite: set quota of %q: %w", name, err)
	}
	var bytes, files sql.NullInt64
	err = stmt.QueryRowContext(ctx, which&larder.QuotaBytes != 0, nullBound(q.Bytes, q.SetBytes),
		which&larder.QuotaFiles != 0, nullBound(q.Files, q.SetFiles), formatTime(time.Now()), name).Scan(&bytes, &files)
	if errors.Is(err, sql.ErrNoRows) {
		return larder.AccountQuota{}, larder.UserNotFound(name)
	}
	if err != nil {
		return larder.AccountQuota{}, fmt.Errorf("sqlite: set quota of %q: %w", name, err)
	}
	return larder.AccountQuota{Bytes: bytes.Int64, SetBytes: bytes.Valid, Files: files.Int64, SetFiles: files.Valid}, nil
}

// nullBound is a bound of an AccountQuota as stored: NULL where not set.
func nullBound(n int64, set bool) sql.NullInt64 { return sql.NullInt64{Int64: n, Valid: set} }

// RecordLogin sets the last login of account id, called name, to now,
// unless the one recorded is less than larder.LastLoginResolution older.
// The write changes no stamp of the account cache, which would make every
// process read every account again: this process's entry is brought up
// to date instead, and another process's shows the older login until it
// expires (its next RecordLogin of the account then writes nothing).
func (s *UserStore) RecordLogin(ctx context.Context, name string, id int64) error {
	now := time.Now()
	n, err := s.exec(ctx, recordLoginSQL, formatTime(now), name, id, formatTime(now.Add(-larder.LastLoginResolution)))
	if err != nil {
		return fmt.Errorf("sqlite: record login of %q: %w", name, err)
	}
	if n > 0 {
		s.db.accounts.loggedIn(name, id, now.UTC())
	}
	return nil
}

// DeleteUser removes account name. If there is no such account, the error
// has code ENOTFOUND. Its id is never given to another account.
func (s *UserStore) DeleteUser(ctx context.Context, name string) error {
	defer s.db.accounts.changed()
	n, err := s.exec(ctx, deleteUserSQL, name)
	if err != nil {
		return fmt.Errorf("sqlite: delete user %q: %w", name, err)
	}
	if n == 0 {
		return larder.UserNotFound(name)
	}
	return nil
}

// ListUsers returns up to limit accounts whose names sort after after, in
// byte order of their names (SQLite's BINARY collation); after "" starts at
// the beginning. To page through every account, pass the last name of one
// page as after of the next, until a page holds fewer than limit accounts.
// A limit below 1, or an after that is not UTF-8 or holds a NUL byte (no
// name can), is an error with code EINVALID.
func (s *UserStore) ListUsers(ctx context.Context, after string, limit int) ([]*larder.User, error) {
	if err := larder.ValidateListUsers(after, limit); err != nil {
		return nil, err
	}
	stmt, err := s.db.stmt(ctx, true, listUsersSQL)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list users: %w", err)
	}
	rows, err := stmt.QueryContext(ctx, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list users: %w", err)
	}
	users, err := collect(rows, scanUser)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list users: %w", err)
	}
	return users, nil
}

// exec runs a one-statement write and returns the number of rows it
// changed.
func (s *UserStore) exec(ctx context.Context, query string, args ...any) (int64, error) {
	stmt, err := s.db.stmt(ctx, false, query)
	if err != nil {
		return 0, err
	}
	res, err := stmt.ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// scanUser reads the userColumns of one row.
func scanUser(row scanner) (*larder.User, error) {
	var (
		u                larder.User
		created, updated string
		qBytes, qFiles   sql.NullInt64
		lastLogin        sql.NullString
	)
	if err := row.Scan(&u.ID, &u.Name, &u.Verifier, &u.Disabled, &u.CredentialGen, &u.LNPCredential,
		&qBytes, &qFiles, &lastLogin, &created, &updated); err != nil {
		return nil, err
	}
	u.Quota = larder.AccountQuota{Bytes: qBytes.Int64, SetBytes: qBytes.Valid, Files: qFiles.Int64, SetFiles: qFiles.Valid}
	var err error
	if lastLogin.Valid {
		if u.LastLogin, err = parseTime(lastLogin.String); err != nil {
			return nil, err
		}
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
