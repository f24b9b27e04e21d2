// Package files is the one owner of larder's stored files: the shared
// area, the users' private spaces, the records of files (larder.FileStore),
// quotas, the parts of unfinished uploads, the free-space reserve and the
// hashes of contents. Both protocols' handlers in internal/server only
// translate frames into calls on a Service; nothing else touches a space
// or a record.
//
// # Who owns what
//
// A Backend holds the bytes (Local: the served folder and the spaces
// folder on this machine's disk; internal/s3: a bucket of an
// S3-compatible store that several servers share; backendtest is the
// suite both pass). The FileStore holds what
// larder knows of each file without reading it: size, time, SHA-256, and
// the Version of the content that SHA-256 was taken of. Usage and quotas
// are the records' sums plus the parts on the backend, each counted at its
// announced size.
//
// # One staleness policy
//
// A hash, remembered in memory or in a record, is trusted only for the
// version it was taken of: on the disk the device, inode, size and the
// modification and change times to the nanosecond (the change time
// cannot be set by a user, so a rewrite that puts the modification time
// back is still seen). Anything else is hashed again, and recorded again.
// A hash taken within RacyWindow of a change is only shown (STAT, LIST),
// never relied on to announce a transfer, and the next read hashes the
// file again (git's racy-clean rule: a coarse clock can give two writes
// one timestamp, so the version may not tell them apart). A record written when an upload commits takes the
// version of the file it placed, whose bytes it hashed as it wrote them;
// a rename carries a file's record over to the version the move gives it.
// Both protocols get a file's hash through Service.Hash, which applies the
// rule to the memory cache and the records alike, so they cannot disagree
// on a file's content.
//
// # Crash consistency
//
// Put, delete and rename change the backend and the records, which no
// single transaction spans. Each is announced first: an intent (op, space,
// paths) is committed to the FileStore's journal, then the backend is
// changed, then the records, then the intent is removed. Recover, run at
// start before anything is served, replays every intent of this backend
// that is still there, by looking at the backend: a path that is gone
// loses its records; a file whose record does not match its version is
// hashed and recorded again; a rename the backend made and the records did
// not is made in the records. Replaying is idempotent, so a crash during
// Recover is replayed again. Mkdir, parts and cancels touch only the
// backend, where usage reads them, so they need no intent. The mutations
// of one space are serialized in the process, so a live replay of a
// failed step never races another step on the same space, and a hash is
// recorded, under the same lock, only if its file is still there with the
// version that was hashed.
//
// A journal rather than records derived from the backend at each start:
// deriving them means listing every space (a bucket's LIST of every
// object, at every start) and hashing what has no record, where the
// journal touches only the paths that were changing. It costs two more
// database commits per change (the intent and its removal); an intent is
// kept per backend (Backend.ID), so servers that share a database but not
// a disk each replay only their own, and, on a backend several servers
// share (a bucket), per server (Config.Owner), so that a server starting
// never replays a change another is making: the replay would remove the
// other's intent, and a crash of the other after that would leave its
// change unjournaled.
package files

import (
	"context"
	"errors"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/disk"
)

// Config configures a Service. The zero value of each optional field is
// documented on it.
type Config struct {
	// Backend holds the shared area and the spaces; required.
	Backend Backend
	// Records keeps the records of files and the journal; nil keeps
	// none (a server of the course protocol only): hashes are then
	// remembered in memory only, and nothing can be written.
	Records larder.FileStore
	// Quota bounds each private space; zero is none. An account's own
	// quota (larder.User.Quota) overrides it, bound by bound, for the
	// spaces opened with AccountSpace.
	Quota larder.Quota
	// Accounts is asked for an account's own quota at every check of it,
	// so that a change made on any server sharing the store holds at
	// once; nil keeps Quota for every space.
	Accounts Accounts
	// Reserve keeps free disk space that uploads may not take; nil keeps
	// none.
	Reserve *disk.Reserve
	// DigestEntries bounds the hashes remembered in memory; 0 means
	// DefaultDigestEntries.
	DigestEntries int
	// RacyWindow is how long content must have been unchanged for a hash
	// of it to be trusted later; 0 means DefaultRacyWindow.
	RacyWindow time.Duration
	// Logger takes the failures of best-effort steps; nil is
	// slog.Default().
	Logger *slog.Logger
	// TreeBudget is about how long one DeleteTree call works, holding
	// the space's mutations, before it answers that there is more to
	// remove; 0 means DefaultTreeBudget.
	TreeBudget time.Duration
	// Owner names this server, for good, among those that share the
	// Backend (a bucket): its intents are journaled under the backend's
	// ID and this name, and Recover replays only those, never another
	// server's change in flight. "" is one server alone on its backend
	// (a disk): intents under the backend's ID.
	Owner string
}

// Accounts finds accounts by name: a larder.UserStore.
type Accounts interface {
	UserByName(ctx context.Context, name string) (*larder.User, error)
}

// Service is the files service. It is safe for concurrent use.
type Service struct {
	backend  Backend
	records  larder.FileStore
	quota    atomic.Pointer[larder.Quota] // SetQuota changes it while serving
	accounts Accounts
	reserve  *disk.Reserve
	racy     time.Duration
	log      *slog.Logger
	digests  *digestCache
	shared   Area   // nil: no shared area
	id       string // the backend's; "" without records
	journal  string // the intents' Backend: id, or id/Owner
	// keepsTimes: the backend keeps the modification time an upload
	// gives its file, so the records need not be asked for it.
	keepsTimes bool

	seed  maphash.Seed
	locks [64]sync.Mutex // the mutations of a space, by its hash

	removals   removals      // the trees whose removal is under way
	treeBudget time.Duration // how long one DeleteTree call works
	treeBatch  int           // entries removed between looks at the clock

	// failpoint, if set, is called after each step of a put, delete and
	// rename, with the step's name; an error stops the operation there,
	// as a crash would (see errCrash). For tests.
	failpoint func(step string) error
}

// New returns the Service of cfg.
func New(cfg Config) (*Service, error) {
	if cfg.Backend == nil {
		return nil, errors.New("files: no backend")
	}
	s := &Service{
		backend:  cfg.Backend,
		records:  cfg.Records,
		accounts: cfg.Accounts,
		reserve:  cfg.Reserve,
		racy:     cfg.RacyWindow,
		log:      cfg.Logger,
		digests:  newDigestCache(cfg.DigestEntries),
		seed:     maphash.MakeSeed(),
	}
	s.SetQuota(cfg.Quota)
	s.treeBudget, s.treeBatch = cfg.TreeBudget, treeBatch
	if s.treeBudget <= 0 {
		s.treeBudget = DefaultTreeBudget
	}
	if s.racy <= 0 {
		s.racy = DefaultRacyWindow
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	_, s.keepsTimes = cfg.Backend.(interface{ KeepsModTimes() })
	if a, err := cfg.Backend.Area(""); err == nil {
		s.shared = a
	}
	if s.records != nil {
		// Without an ID (no private spaces), nothing can be written, so
		// nothing is journaled.
		s.id, _ = cfg.Backend.ID()
		s.journal = s.id
		if cfg.Owner != "" && s.id != "" {
			s.journal = s.id + "/" + cfg.Owner
		}
	}
	return s, nil
}

// Close lets go of the shared area.
func (s *Service) Close() error {
	if s.shared != nil {
		return s.shared.Close()
	}
	return nil
}

// Quota returns the default quota of each private space.
func (s *Service) Quota() larder.Quota { return *s.quota.Load() }

// SetQuota changes the quota of each private space, as a configuration
// reload does: uploads checked from then on meet q. What is stored stays,
// even above a lowered quota.
func (s *Service) SetQuota(q larder.Quota) { s.quota.Store(&q) }

// HasRecords reports whether the service keeps records (and block sums).
func (s *Service) HasRecords() bool { return s.records != nil }

// lock serializes the mutations of space in this process; call the
// function it returns to let go.
func (s *Service) lock(space string) func() {
	m := &s.locks[maphash.String(s.seed, space)%uint64(len(s.locks))]
	m.Lock()
	return m.Unlock
}

// racyMark marks the version in a record of a hash taken within the racy
// window of a change: a second change in the same tick of the file
// system's clock would leave the version as it is.
const racyMark = "racy "

// recordedVersion returns the Version a record of a hash of the content
// in takes: its version, marked if the hash was not settled.
func recordedVersion(in Info, settled bool) string {
	if in.Version == "" || settled {
		return in.Version
	}
	return racyMark + in.Version
}

// matches reports whether rec holds the hash of the content that in
// describes: the one staleness rule, for records as for memory. A hash
// relied on to announce and check a transfer must also have been settled
// when it was taken (strict); one only shown (STAT, LIST) may have been
// taken within the racy window, as git shows a racy entry until it reads
// it: the next read hashes it again.
func matches(rec *larder.File, in Info, strict bool) bool {
	if rec.Version == "" || rec.Size != in.Size {
		return false
	}
	if rec.Version == in.Version {
		return true
	}
	return !strict && rec.Version == racyMark+in.Version
}

// settled reports whether a hash of the content in, begun at start, may
// be relied on later for in's version: the content had not changed for
// the racy window before the hash began.
func (s *Service) settled(in Info, start time.Time) bool {
	return in.Version != "" && start.Sub(in.Changed) > s.racy
}

// Loc is a place in a user's view: their space, or the shared area.
type Loc struct {
	Shared bool
	Path   string // cleaned, relative to its area; "" for its top
}

// Space is a user's handle on the service: their private space and the
// shared area. A session holds one; Close it after use.
type Space struct {
	s     *Service
	key   string // larder.SpaceOf the account's id
	area  Area
	id    int64
	owner string // the account's name, for its own quota; "" for none
}

// Space opens the space of the account with the given id, making it on
// first use.
func (s *Service) Space(id int64) (*Space, error) {
	key := larder.SpaceOf(id)
	a, err := s.backend.Area(key)
	if err != nil {
		return nil, err
	}
	return &Space{s: s, key: key, area: a, id: id}, nil
}

// AccountSpace opens the space of account u, making it on first use. Its
// quota is the account's own (Quota).
func (s *Service) AccountSpace(u *larder.User) (*Space, error) {
	sp, err := s.Space(u.ID)
	if err == nil {
		sp.owner = u.Name
	}
	return sp, err
}

// Quota returns the quota of the space: the service's default, under the
// account's own quota as the store has it now, for a space opened with
// AccountSpace. An account deleted meanwhile, or whose name is now
// another's, fails with code ENOTFOUND: it has nothing more to store.
func (sp *Space) Quota(ctx context.Context) (larder.Quota, error) {
	q := sp.s.Quota()
	if sp.owner == "" || sp.s.accounts == nil {
		return q, nil
	}
	u, err := sp.s.accounts.UserByName(ctx, sp.owner)
	switch {
	case err != nil:
		return q, err
	case u.ID != sp.id:
		return q, larder.UserNotFound(sp.owner)
	}
	return u.Quota.Over(q), nil
}

// Close lets go of the space.
func (sp *Space) Close() error { return sp.area.Close() }

// Key returns the space's key in the records (larder.SpaceOf).
func (sp *Space) Key() string { return sp.key }

// at returns the area of l and its key in the records.
func (sp *Space) at(l Loc) (Area, string, error) {
	if !l.Shared {
		return sp.area, sp.key, nil
	}
	if sp.s.shared == nil {
		return nil, "", larder.Errorf(larder.ENOTFOUND, "this server has no shared area")
	}
	return sp.s.shared, "", nil
}
