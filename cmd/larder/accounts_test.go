package main

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

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
