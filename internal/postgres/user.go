package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/larderfs/larder"
)

// UserStore keeps accounts in the users table of a DB. It is safe for
// concurrent use, also by several processes on one database.
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

// Times come from the server's clock, now(), not from the clients': the
// servers that share a database may disagree about the time, and the one
// clock keeps UpdatedAt in order. GREATEST keeps it from going back if that
// clock does.
const (
	insertUserSQL = `INSERT INTO users (name, verifier, disabled, lnp_credential, created_at, updated_at)
		VALUES ($1, $2, $3, $4, now(), now()) RETURNING id, created_at`
	userByNameSQL = `SELECT ` + userColumns + ` FROM users WHERE name = $1`
	listUsersSQL  = `SELECT ` + userColumns + ` FROM users WHERE name > $1 ORDER BY name LIMIT $2`

	// The compare-and-swap, and what the account looked like in the
	// statement's snapshot, in one round trip. A data-modifying WITH runs
	// on the same snapshot as the main query, which so sees the row as it
	// was before the UPDATE. $4 is 1 for a password change, 0 for a
	// rehash; a password change also drops the LNP/1 credential of the
	// old one.
	replaceVerifierSQL = `WITH updated AS (
			UPDATE users SET verifier = $3, credential_gen = credential_gen + $4,
				lnp_credential = CASE WHEN $4 = 1 THEN '' ELSE lnp_credential END, updated_at = GREATEST(now(), updated_at)
			WHERE name = $1 AND verifier = $2
			RETURNING 1
		)
		SELECT EXISTS (SELECT 1 FROM updated), (SELECT verifier FROM users WHERE name = $1)`
	setLNPCredentialSQL = `WITH updated AS (
			UPDATE users SET lnp_credential = $3, updated_at = GREATEST(now(), updated_at)
			WHERE name = $1 AND lnp_credential = $2 AND credential_gen = $4 AND id = $5
			RETURNING 1
		)
		SELECT EXISTS (SELECT 1 FROM updated), (SELECT lnp_credential FROM users WHERE name = $1),
			(SELECT credential_gen FROM users WHERE name = $1), (SELECT id FROM users WHERE name = $1)`
	replaceCredentialsSQL = `WITH updated AS (
			UPDATE users SET verifier = $2, lnp_credential = $3, credential_gen = credential_gen + 1,
				updated_at = GREATEST(now(), updated_at)
			WHERE name = $1 AND credential_gen = $4 AND id = $5
			RETURNING 1
		)
		SELECT EXISTS (SELECT 1 FROM updated), (SELECT credential_gen FROM users WHERE name = $1),
			(SELECT id FROM users WHERE name = $1)`
	setDisabledSQL = `UPDATE users SET disabled = $2, updated_at = GREATEST(now(), updated_at) WHERE name = $1`
	deleteUserSQL  = `DELETE FROM users WHERE name = $1`
	// A bound not named keeps its stored value ($2 and $4 say which are).
	setQuotaSQL = `UPDATE users SET quota_bytes = CASE WHEN $2 THEN $3::bigint ELSE quota_bytes END,
		quota_files = CASE WHEN $4 THEN $5::bigint ELSE quota_files END, updated_at = GREATEST(now(), updated_at)
		WHERE name = $1 RETURNING quota_bytes, quota_files`
	// An older login, or none, is replaced; one newer than
	// LastLoginResolution ($3) stays, and nothing is written.
	recordLoginSQL = `UPDATE users SET last_login = now()
		WHERE name = $1 AND id = $2 AND (last_login IS NULL OR last_login < now() - make_interval(secs => $3))`
)

// uniqueViolation is PostgreSQL's SQLSTATE for a duplicate key.
const uniqueViolation = "23505"

// CreateUser stores a new account with u.Name, u.Verifier and u.Disabled,
// and sets u.ID, u.CreatedAt and u.UpdatedAt. If the name is taken, the
// error has code ECONFLICT; of several concurrent calls for one name, on
// one server or on several, exactly one succeeds.
func (s *UserStore) CreateUser(ctx context.Context, u *larder.User) error {
	if err := larder.ValidateUsername(u.Name); err != nil {
		return err
	}
	if err := larder.CheckCredentials(u.Name, u.Verifier, u.LNPCredential); err != nil {
		return fmt.Errorf("postgres: create user: %w", err)
	}
	var (
		id      int64
		created time.Time
	)
	err := s.db.pool.QueryRow(ctx, insertUserSQL, u.Name, u.Verifier, u.Disabled, u.LNPCredential).Scan(&id, &created)
	if pgCode(err) == uniqueViolation {
		// The UNIQUE index decides, not an earlier lookup: that is what
		// makes concurrent registrations of one name safe.
		return larder.Errorf(larder.ECONFLICT, "user %q already exists", u.Name)
	}
	if err != nil {
		return fmt.Errorf("postgres: create user %q: %w", u.Name, err)
	}
	u.ID, u.CreatedAt, u.UpdatedAt = id, created.UTC(), created.UTC()
	return nil
}

// UserByName returns the account named name, compared byte for byte. If
// there is none, the error has code ENOTFOUND.
func (s *UserStore) UserByName(ctx context.Context, name string) (*larder.User, error) {
	if !canExist(name) {
		return nil, larder.UserNotFound(name)
	}
	u, err := scanUser(s.db.pool.QueryRow(ctx, userByNameSQL, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, larder.UserNotFound(name)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: user %q: %w", name, err)
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

func (s *UserStore) replaceVerifier(ctx context.Context, name, old, new string, gen int64) error {
	if old == "" || new == "" {
		return fmt.Errorf("postgres: replace verifier of %q: empty verifier (ReplaceCredentials adds or removes one)", name)
	}
	if !canExist(name) {
		return larder.UserNotFound(name)
	}
	// Each try is one atomic statement. It can match nothing although its
	// snapshot saw old: the UPDATE waited for the row lock of a concurrent
	// transaction that then changed the verifier or deleted the row. The
	// next try's snapshot sees what that transaction did, so it answers
	// unless the row changes again under it; after a few such tries the
	// verifier has been changing all along, which is a conflict.
	const tries = 3
	for range tries {
		var (
			swapped bool
			current *string
		)
		if err := s.db.pool.QueryRow(ctx, replaceVerifierSQL, name, old, new, gen).Scan(&swapped, &current); err != nil {
			return fmt.Errorf("postgres: replace verifier of %q: %w", name, err)
		}
		switch {
		case swapped:
			return nil
		case current == nil:
			return larder.UserNotFound(name)
		case *current != old:
			return larder.VerifierChanged(name)
		}
	}
	return larder.VerifierChanged(name)
}

// SetLNPCredential sets the LNP/1 credential of account name to new if it
// is still the account id, its credential still old and its credential
// generation still gen, and updates UpdatedAt. If any has changed, the
// error has code ECONFLICT and nothing changes; if there is no such
// account, it has code ENOTFOUND. It retries as replaceVerifier does.
func (s *UserStore) SetLNPCredential(ctx context.Context, name string, id, gen int64, old, new string) error {
	if !canExist(name) {
		return larder.UserNotFound(name)
	}
	changed := larder.Errorf(larder.ECONFLICT, "the LNP/1 credential of user %q has changed", name)
	for range 3 {
		var (
			swapped    bool
			current    *string
			currentGen *int64
			currentID  *int64
		)
		if err := s.db.pool.QueryRow(ctx, setLNPCredentialSQL, name, old, new, gen, id).Scan(&swapped, &current, &currentGen, &currentID); err != nil {
			return fmt.Errorf("postgres: set LNP/1 credential of %q: %w", name, err)
		}
		switch {
		case swapped:
			return nil
		case current == nil:
			return larder.UserNotFound(name)
		case *current != old, currentGen != nil && *currentGen != gen, currentID != nil && *currentID != id:
			return changed
		}
	}
	return changed
}

// ReplaceCredentials sets the verifier and the LNP/1 credential of account
// name, for a new password, if it is still the account id and its
// credential generation still gen; it adds one to the generation and
// updates UpdatedAt. If either has changed, the error has code ECONFLICT
// and nothing changes; if there is no such account, it has code
// ENOTFOUND. It retries as replaceVerifier does.
func (s *UserStore) ReplaceCredentials(ctx context.Context, name string, id, gen int64, verifier, lnpCredential string) error {
	if err := larder.CheckCredentials(name, verifier, lnpCredential); err != nil {
		return fmt.Errorf("postgres: replace credentials: %w", err)
	}
	if !canExist(name) {
		return larder.UserNotFound(name)
	}
	for range 3 {
		var (
			swapped   bool
			current   *int64
			currentID *int64
		)
		if err := s.db.pool.QueryRow(ctx, replaceCredentialsSQL, name, verifier, lnpCredential, gen, id).Scan(&swapped, &current, &currentID); err != nil {
			return fmt.Errorf("postgres: replace credentials of %q: %w", name, err)
		}
		switch {
		case swapped:
			return nil
		case current == nil:
			return larder.UserNotFound(name)
		case *current != gen, currentID != nil && *currentID != id:
			return larder.CredentialsChanged(name)
		}
	}
	return larder.CredentialsChanged(name)
}

// SetDisabled disables or enables account name, and updates UpdatedAt. If
// there is no such account, the error has code ENOTFOUND.
func (s *UserStore) SetDisabled(ctx context.Context, name string, disabled bool) error {
	if !canExist(name) {
		return larder.UserNotFound(name)
	}
	tag, err := s.db.pool.Exec(ctx, setDisabledSQL, name, disabled)
	if err != nil {
		return fmt.Errorf("postgres: set disabled of %q: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return larder.UserNotFound(name)
	}
	return nil
}

// SetQuota sets the bounds of the account's own quota that which names,
// keeps the others, and updates UpdatedAt, in one statement. If there is
// no such account, the error has code ENOTFOUND. Every server on the
// database sees it at its next look at the account.
func (s *UserStore) SetQuota(ctx context.Context, name string, q larder.AccountQuota, which larder.QuotaBounds) (larder.AccountQuota, error) {
	if err := q.Validate(); err != nil {
		return larder.AccountQuota{}, err
	}
	if !canExist(name) {
		return larder.AccountQuota{}, larder.UserNotFound(name)
	}
	var bytes, files *int64
	err := s.db.pool.QueryRow(ctx, setQuotaSQL, name, which&larder.QuotaBytes != 0, nullBound(q.Bytes, q.SetBytes),
		which&larder.QuotaFiles != 0, nullBound(q.Files, q.SetFiles)).Scan(&bytes, &files)
	if errors.Is(err, pgx.ErrNoRows) {
		return larder.AccountQuota{}, larder.UserNotFound(name)
	}
	if err != nil {
		return larder.AccountQuota{}, fmt.Errorf("postgres: set quota of %q: %w", name, err)
	}
	var got larder.AccountQuota
	if bytes != nil {
		got.Bytes, got.SetBytes = *bytes, true
	}
	if files != nil {
		got.Files, got.SetFiles = *files, true
	}
	return got, nil
}

// nullBound is a bound of an AccountQuota as stored: NULL where not set.
func nullBound(n int64, set bool) *int64 {
	if !set {
		return nil
	}
	return &n
}

// RecordLogin sets the last login of account id, called name, to the
// database's time now, unless the one recorded is less than
// larder.LastLoginResolution older.
func (s *UserStore) RecordLogin(ctx context.Context, name string, id int64) error {
	if !canExist(name) {
		return nil
	}
	if _, err := s.db.pool.Exec(ctx, recordLoginSQL, name, id, larder.LastLoginResolution.Seconds()); err != nil {
		return fmt.Errorf("postgres: record login of %q: %w", name, err)
	}
	return nil
}

// DeleteUser removes account name. If there is no such account, the error
// has code ENOTFOUND. Its id is never given to another account.
func (s *UserStore) DeleteUser(ctx context.Context, name string) error {
	if !canExist(name) {
		return larder.UserNotFound(name)
	}
	tag, err := s.db.pool.Exec(ctx, deleteUserSQL, name)
	if err != nil {
		return fmt.Errorf("postgres: delete user %q: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return larder.UserNotFound(name)
	}
	return nil
}

// ListUsers returns up to limit accounts whose names sort after after, in
// byte order of their names (the column's "C" collation); after "" starts
// at the beginning. To page through every account, pass the last name of
// one page as after of the next, until a page holds fewer than limit
// accounts. A limit below 1, or an after that is not UTF-8 or holds a NUL
// byte (no name can), is an error with code EINVALID.
func (s *UserStore) ListUsers(ctx context.Context, after string, limit int) ([]*larder.User, error) {
	if err := larder.ValidateListUsers(after, limit); err != nil {
		return nil, err
	}
	rows, err := s.db.pool.Query(ctx, listUsersSQL, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: list users: %w", err)
	}
	users, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*larder.User, error) {
		return scanUser(row)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list users: %w", err)
	}
	return users, nil
}

// scanUser reads the userColumns of one row.
func scanUser(row pgx.Row) (*larder.User, error) {
	var (
		u                larder.User
		created, updated time.Time
		qBytes, qFiles   *int64
		lastLogin        *time.Time
	)
	if err := row.Scan(&u.ID, &u.Name, &u.Verifier, &u.Disabled, &u.CredentialGen, &u.LNPCredential,
		&qBytes, &qFiles, &lastLogin, &created, &updated); err != nil {
		return nil, err
	}
	if qBytes != nil {
		u.Quota.Bytes, u.Quota.SetBytes = *qBytes, true
	}
	if qFiles != nil {
		u.Quota.Files, u.Quota.SetFiles = *qFiles, true
	}
	if lastLogin != nil {
		u.LastLogin = lastLogin.UTC()
	}
	// pgx gives times in the local zone; UTC as internal/sqlite does.
	u.CreatedAt, u.UpdatedAt = created.UTC(), updated.UTC()
	return &u, nil
}

// canExist reports whether an account could be called name. CreateUser
// refuses every other name, so a lookup of one can answer ENOTFOUND without
// asking the server, which would refuse a name that is not UTF-8 or holds
// a NUL byte with an error of its own: such names come from clients.
func canExist(name string) bool {
	return larder.ValidateUsername(name) == nil
}

// pgCode returns the SQLSTATE of err if it is an error from the server.
func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
