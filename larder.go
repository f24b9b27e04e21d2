// Package larder holds the domain of the larder file server: its users and
// the kinds of error that every layer speaks. Adapters live in sub-packages
// named after what they adapt (wire, internal/sqlite, internal/disk, ...);
// this package imports none of them.
package larder

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxUsernameLen is the longest username in bytes. The course protocol
// carries the name in a fixed 16-byte field, so no longer name could ever
// log in over it.
const MaxUsernameLen = 16

// User is an account. The password never reaches the server: clients send a
// signature derived from it, and the server keeps only a slow, salted hash of
// that signature in Verifier.
type User struct {
	ID   int64
	Name string

	// Verifier is the stored hash of the user's signature, as a PHC string
	// that names its algorithm and parameters ("$argon2id$v=19$m=..."), or
	// a legacy format that internal/auth can read. "" means the account
	// has no password for the course protocol: it logs in over LNP/1 only,
	// and then LNPCredential is set.
	Verifier string

	// Disabled accounts cannot log in; they keep their name and files.
	Disabled bool

	// LNPCredential is the account's credential for LNP/1's channel-bound
	// login, as internal/auth stores it ("$lnp-scram$..."): a salt, an
	// argon2id cost and two keys derived from the password, sealed with
	// the pepper. "" means none yet: the account is enrolled at its next
	// LNP/1 login with the course signature, if the server allows it.
	LNPCredential string

	// CredentialGen counts the changes of the account's password:
	// ReplaceVerifier adds one, RehashVerifier (the same password hashed
	// anew) does not. A session compares it with the account's to tell a
	// password change, which ends the session, from a rehash, which does
	// not.
	CredentialGen int64

	// Quota is the account's own quota, set by an administrator over the
	// server's default; the zero value keeps the default for both bounds.
	Quota AccountQuota

	// LastLogin is when the account last logged in, to within
	// LastLoginResolution; zero if it never has since it was recorded.
	LastLogin time.Time

	CreatedAt time.Time
	UpdatedAt time.Time
}

// AccountQuota is the quota an administrator set for one account, bound by
// bound: where SetBytes (SetFiles) is false the server's default bound
// applies, else Bytes (Files), of which 0 is no limit.
type AccountQuota struct {
	Bytes, Files       int64
	SetBytes, SetFiles bool
}

// Over returns the quota of an account whose server's default is def.
func (q AccountQuota) Over(def Quota) Quota {
	if q.SetBytes {
		def.Bytes = q.Bytes
	}
	if q.SetFiles {
		def.Files = q.Files
	}
	return def
}

// QuotaBounds names bounds of an AccountQuota.
type QuotaBounds uint8

const (
	QuotaBytes QuotaBounds = 1 << iota
	QuotaFiles
	QuotaBoth = QuotaBytes | QuotaFiles
)

// Validate checks that no bound is negative; the error has code EINVALID.
func (q AccountQuota) Validate() error {
	if q.Bytes < 0 || q.Files < 0 || !q.SetBytes && q.Bytes != 0 || !q.SetFiles && q.Files != 0 {
		return Errorf(EINVALID, "a quota's bounds are 0 (none) or positive, and only where set")
	}
	return nil
}

// LastLoginResolution is how exactly User.LastLogin is kept: a login within
// it of the one recorded writes nothing, so that logins in a burst (the
// course protocol logs in for every request) cost no write each.
const LastLoginResolution = time.Minute

// UserStore keeps accounts. internal/sqlite (the embedded default) and
// internal/postgres (for several servers sharing accounts) implement it,
// and internal/storetest holds the conformance suite both pass.
//
// Names are compared byte for byte. Every method that names a missing
// account fails with code ENOTFOUND.
type UserStore interface {
	// CreateUser stores a new account with u.Name, u.Verifier,
	// u.LNPCredential (at least one of the two set) and u.Disabled, and
	// sets u.ID, u.CreatedAt and u.UpdatedAt. A taken name fails with code
	// ECONFLICT; of concurrent calls for one name exactly one succeeds.
	CreateUser(ctx context.Context, u *User) error

	// UserByName returns the account called name. It sees at once every
	// change committed by any process sharing the store.
	UserByName(ctx context.Context, name string) (*User, error)

	// ReplaceVerifier sets the verifier of account name to new, for a new
	// password, if it is still old, atomically; it adds one to
	// CredentialGen, empties LNPCredential (made from the old password)
	// and updates UpdatedAt. If the verifier has changed meanwhile it
	// fails with code ECONFLICT and changes nothing. An account with no
	// verifier (old "") gets one only through ReplaceCredentials.
	ReplaceVerifier(ctx context.Context, name, old, new string) error

	// RehashVerifier is ReplaceVerifier for a new hash of the same
	// password (a rehash on login, a wrap): CredentialGen stays, so that
	// the account's sessions go on. Its compare-and-swap makes sure that a
	// rehash never overwrites a password reset.
	RehashVerifier(ctx context.Context, name, old, new string) error

	// SetLNPCredential sets the LNPCredential of account name to new if it
	// is still the account id, its LNPCredential still old ("" for an
	// account not enrolled yet) and its CredentialGen still gen,
	// atomically, and updates UpdatedAt; CredentialGen stays, as the
	// password is the same. The generation keeps an enrollment begun
	// before a password change (when the credential was "" and is "" again)
	// from storing the old password's credential, and the id one begun
	// before the account was deleted and its name registered again (the
	// new account starts at generation 0 with no credential too). If any
	// has changed meanwhile it fails with code ECONFLICT and changes
	// nothing.
	SetLNPCredential(ctx context.Context, name string, id, gen int64, old, new string) error

	// ReplaceCredentials sets both credentials of account name at once,
	// for a new password, if it is still the account id and its
	// CredentialGen still gen, and adds one to CredentialGen: verifier (""
	// for none: the account logs in over LNP/1 only) and lnpCredential, of
	// which at least one is set. If the generation or the account has
	// changed meanwhile (deleted, and its name registered again) it fails
	// with code ECONFLICT and changes nothing.
	ReplaceCredentials(ctx context.Context, name string, id, gen int64, verifier, lnpCredential string) error

	// SetDisabled disables or enables account name.
	SetDisabled(ctx context.Context, name string, disabled bool) error

	// DeleteUser removes account name.
	DeleteUser(ctx context.Context, name string) error

	// SetQuota sets the bounds of the account's own quota (User.Quota)
	// that which names to q's, keeps the others as stored, updates
	// UpdatedAt, and returns the quota now stored, in one step: two
	// administrators changing one bound each both have their way. A
	// quota that Validate refuses fails with code EINVALID.
	SetQuota(ctx context.Context, name string, q AccountQuota, which QuotaBounds) (AccountQuota, error)

	// RecordLogin sets LastLogin of the account id, called name, to the
	// store's time now, unless the one recorded is less than
	// LastLoginResolution older; UpdatedAt stays (a login changes nothing
	// of the account). An account that is gone, or no longer id, is left
	// alone, with no error: a login that raced a deletion has nothing to
	// record.
	RecordLogin(ctx context.Context, name string, id int64) error

	// ListUsers returns up to limit accounts whose names sort after after,
	// in byte order of their names; after "" starts at the beginning.
	ListUsers(ctx context.Context, after string, limit int) ([]*User, error)
}

// ValidateUsername reports whether name can be a username: 1 to 16 bytes of
// valid UTF-8 with no control characters. The returned error has code
// EINVALID and says what is wrong.
func ValidateUsername(name string) error {
	switch {
	case name == "":
		return Errorf(EINVALID, "username is empty")
	case len(name) > MaxUsernameLen:
		return Errorf(EINVALID, "username is %d bytes long; the limit is %d", len(name), MaxUsernameLen)
	case !utf8.ValidString(name):
		return Errorf(EINVALID, "username %q is not valid UTF-8", name)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return Errorf(EINVALID, "username %q contains the control character %U", name, r)
		}
	}
	return nil
}

// ValidateNewUsername reports whether name can be given to a new account:
// a username (ValidateUsername) that ValidateNewName accepts. Accounts
// made before it existed keep their names, and log in with them.
func ValidateNewUsername(name string) error {
	if err := ValidateUsername(name); err != nil {
		return err
	}
	return ValidateNewName("username", name)
}

// ValidateNewName reports whether name, a name a user chooses for
// something new (an account, a file, a folder), holds only characters that
// show as what they are, in the spirit of the PRECIS framework (RFC 8264,
// 8265): letters, marks, numbers, punctuation, symbols and the space
// U+0020, in Unicode normalization form C. It refuses control characters
// (a newline, ESC), format characters (bidirectional controls such as
// U+202E, which reverse how the rest of a name reads; zero-width ones,
// which hide in it), the other characters Unicode says show as nothing
// (Other_Default_Ignorable_Code_Point: Hangul fillers, the combining
// grapheme joiner, ...), private-use, surrogate and unassigned code
// points, and separators other than U+0020: each makes a name read as something
// else, on a screen or in a log. what names it in the message ("username",
// "file name"). The error has code EINVALID; its message quotes name with
// such characters escaped. A name that is not valid UTF-8 is refused, and
// so is U+FFFD, which stands for bytes that are not.
func ValidateNewName(what, name string) error {
	if !utf8.ValidString(name) {
		return Errorf(EINVALID, "%s %+q is not valid UTF-8: new names must be text", what, name)
	}
	for _, r := range name {
		ignorable := unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r)
		// U+FFFD is a symbol, but stands for bytes that were not text
		// (a store lists a key that is not UTF-8 with it).
		if !ignorable && r != utf8.RuneError && (r == ' ' || unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S)) {
			continue
		}
		var kind string
		switch {
		case ignorable:
			kind = "a character that shows as nothing (such as a Hangul filler)"
		case unicode.Is(unicode.Cc, r):
			kind = "a control character"
		case unicode.Is(unicode.Cf, r):
			kind = "an invisible format character (a bidirectional control, a zero-width character)"
		case unicode.Is(unicode.Co, r):
			kind = "a private-use character"
		case unicode.Is(unicode.Cs, r), r == utf8.RuneError:
			kind = "not a character (U+FFFD stands for bytes that are not text)"
		case unicode.Is(unicode.Zs, r):
			kind = "a space other than U+0020"
		case unicode.In(r, unicode.Zl, unicode.Zp):
			kind = "a line or paragraph separator"
		default:
			kind = "a code point Unicode does not assign"
		}
		return Errorf(EINVALID, "%s %q contains %U, %s: new names may hold only letters, marks, numbers, punctuation, symbols and spaces (U+0020)", what, name, r, kind)
	}
	if !norm.NFC.IsNormalString(name) {
		return Errorf(EINVALID, "%s %+q is not in Unicode normalization form C (NFC); write it %+q", what, name, norm.NFC.String(name))
	}
	return nil
}

// UserNotFound is the error of a UserStore method that names a missing
// account.
func UserNotFound(name string) error {
	return Errorf(ENOTFOUND, "no such user %q", name)
}

// VerifierChanged is ReplaceVerifier's error when the account's verifier is
// no longer the one the caller read.
func VerifierChanged(name string) error {
	return Errorf(ECONFLICT, "the verifier of user %q has changed", name)
}

// CredentialsChanged is ReplaceCredentials' error when the account's
// password has changed since the caller read it.
func CredentialsChanged(name string) error {
	return Errorf(ECONFLICT, "the password of user %q has changed meanwhile", name)
}

// CheckCredentials is the stores' check that an account keeps a way to
// log in: a verifier, an LNP/1 credential, or both.
func CheckCredentials(name, verifier, lnpCredential string) error {
	if verifier == "" && lnpCredential == "" {
		return fmt.Errorf("account %q would have no credential: neither a verifier nor an LNP/1 credential", name)
	}
	return nil
}

// ValidateListUsers checks the arguments of UserStore.ListUsers, so that
// every store refuses the same ones: a limit below one, and an after that
// no name could be (a PostgreSQL text value cannot even hold one with a
// NUL byte).
func ValidateListUsers(after string, limit int) error {
	switch {
	case limit < 1:
		return Errorf(EINVALID, "list users: limit %d is not positive", limit)
	case !utf8.ValidString(after), strings.IndexByte(after, 0) >= 0:
		return Errorf(EINVALID, "list users: %q cannot be a username", after)
	}
	return nil
}

// Error codes. Callers decide by code, never by message text; each protocol
// maps codes to its own status values at its boundary.
const (
	ECONFLICT     = "conflict"     // the thing already exists
	EINTERNAL     = "internal"     // a failure the client cannot fix
	EINVALID      = "invalid"      // the request is coherent but not acceptable
	ENOTFOUND     = "not_found"    // no such user or file
	EUNAUTHORIZED = "unauthorized" // wrong credentials
	EDISABLED     = "disabled"     // the account is disabled: no login, and its sessions end
	EUNAVAILABLE  = "unavailable"  // busy or shutting down: retry later
	ETHROTTLED    = "throttled"    // too many failed attempts: retry later
	EQUOTA        = "quota"        // the space's byte or file quota would be exceeded
	EFORBIDDEN    = "forbidden"    // not the caller's to change (the shared area)
	EINTEGRITY    = "integrity"    // data does not match its SHA-256
	ENOSPACE      = "no_space"     // the server keeps its last free disk space: retry later
)

// ErrTreeBeingRemoved is the cause (Error.Err) of the ECONFLICT that
// refuses a change in a tree whose removal is not finished: a client told
// of it can advise finishing the removal, which alone helps, where other
// conflicts call for overwriting or waiting.
var ErrTreeBeingRemoved = errors.New("tree removal unfinished")

// Error is larder's error type. Message is safe to show to a client; Err,
// when set, carries the internal cause for logs and is never sent.
type Error struct {
	Code    string
	Message string
	Err     error
}

// Error returns the message, followed by the internal cause if there is one.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("larder: %s: %v", e.Message, e.Err)
	}
	return "larder: " + e.Message
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns the client-safe message of the first *Error in err's
// chain, and a generic text for any other error, so that internal details
// never reach a client.
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	default:
		return "internal error"
	}
}
