package main

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/internal/sqlite"
)

// Servers starting at once on a fresh data folder
// create one pepper file between them, and all use its pepper.
func TestPepperFileCreatedOnceByConcurrentStarts(t *testing.T) {
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "larder.db"))
	must(t, err)
	defer db.Close()
	store := sqlite.NewUserStore(db)
	path := filepath.Join(dir, "pepper")

	const starts = 10
	ids := make([]string, starts)
	var wg sync.WaitGroup
	for i := range starts {
		wg.Go(func() {
			p, err := loadOrCreatePeppers(context.Background(), path, store, true)
			if err != nil {
				t.Errorf("start %d: %v", i, err)
				return
			}
			ids[i] = strings.Join(p.IDs(), ",")
		})
	}
	wg.Wait()
	for i, id := range ids {
		if id != "p1" {
			t.Errorf("start %d sees peppers %q, want p1", i, id)
		}
	}
	p, err := auth.LoadPeppers(path)
	must(t, err)
	if got := strings.Join(p.IDs(), ","); got != "p1" {
		t.Errorf("the pepper file holds peppers %q, want p1", got)
	}
}

// A lost pepper file is noticed from LNP/1 credentials too: an account
// that logs in over LNP/1 only has no verifier naming the pepper, and a
// new pepper would lock it out.
func TestMissingPepperFileNoticedFromLNPCredentials(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "larder.db"))
	must(t, err)
	defer db.Close()
	store := sqlite.NewUserStore(db)
	path := filepath.Join(dir, "pepper")
	p, err := loadOrCreatePeppers(ctx, path, store, true)
	must(t, err)
	h := auth.NewHasher(auth.Params{Memory: 64, Time: 1, Threads: 1}, p, 1)
	cred, err := h.NewLNPCredential("nora", "pw")
	must(t, err)
	must(t, store.CreateUser(ctx, &larder.User{Name: "nora", LNPCredential: cred}))
	must(t, os.Remove(path))

	_, err = loadOrCreatePeppers(ctx, path, store, true)
	if err == nil || !strings.Contains(err.Error(), "does not exist, but the accounts' hashes use peppers [p1]") {
		t.Fatalf("start with the pepper file gone: got %v, want a refusal naming p1", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a pepper file was created: %v", err)
	}
}
