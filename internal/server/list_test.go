package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder/lnp"
)

// fillFolder makes dir/name with n empty files named by name(i).
func fillFolder(t *testing.T, dir string, n int, name func(int) string) []string {
	t.Helper()
	must(t, os.MkdirAll(dir, 0o755))
	names := make([]string, n)
	for i := range n {
		names[i] = name(i)
		f, err := os.Create(filepath.Join(dir, names[i]))
		must(t, err)
		f.Close()
	}
	slices.Sort(names)
	return names
}

// TestLNPListAnySize: a folder lists whatever the
// size of its listing, each page within a REPLY frame.
func TestLNPListAnySize(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	s := h.login(t, "alice", h.register(t, "alice", "pw"))
	folders := map[string][]string{
		// 1,300 short names or 231 long ones made a REPLY over 64 KiB.
		"short": fillFolder(t, filepath.Join(h.files, "short"), 1300, func(i int) string { return fmt.Sprintf("f%05d", i) }),
		"long":  fillFolder(t, filepath.Join(h.files, "long"), 231, func(i int) string { return fmt.Sprintf("%03d%s", i, strings.Repeat("x", 252)) }),
	}
	for folder, want := range folders {
		// One page as large as a client may ask for: it stops at the
		// frame's limit and says there is more.
		page, more, err := s.List(ctx, "/shared/"+folder, "", lnp.MaxListLimit)
		if err != nil || !more || len(page) == 0 {
			t.Errorf("%s: a page of %d: %d entries, more %v, %v; want a full frame and more", folder, lnp.MaxListLimit, len(page), more, err)
		}
		entries, err := s.ListAll(ctx, "/shared/"+folder)
		if err != nil {
			t.Fatalf("%s: %v", folder, err)
		}
		var got []string
		for _, e := range entries {
			got = append(got, e.Name)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: listed %d names, want the %d in the folder, in order", folder, len(got), len(want))
		}
	}
}

// TestLNPListPages checks paging: each name once, pages of the size
// asked, and a listing that goes on only from its last page.
func TestLNPListPages(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	s := h.login(t, "alice", h.register(t, "alice", "pw"))
	want := fillFolder(t, filepath.Join(h.files, "d"), 25, func(i int) string { return fmt.Sprintf("n%02d", i) })
	var got []string
	after := ""
	for {
		page, more, err := s.List(ctx, "/shared/d", after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 7 || more && len(page) != 7 {
			t.Errorf("a page of %d entries (more %v), want 7", len(page), more)
		}
		for _, e := range page {
			got = append(got, e.Name)
		}
		if !more {
			break
		}
		after = page[len(page)-1].Name
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("listed %q, want %q", got, want)
	}
	// A page after a name that no listing in progress ended with.
	_, _, err := s.List(ctx, "/shared/d", "n03", 7)
	wantLNPStatus(t, "a page after a name that ended no page", err, lnp.StatusConflict)
	// The top of the space lists the shared area first.
	page, _, err := s.List(ctx, "/", "", 1)
	if err != nil || len(page) != 1 || page[0].Name != "shared" || !page[0].Dir {
		t.Errorf("the top's first page: %v, %v; want the folder shared", page, err)
	}
}

// TestLNPListPageCost is what a listing of any size costs: a page of a large folder costs
// about what a page of a small one does. Listing read and sorted the whole
// folder for each page: 100,000 entries took 0.5 s a page.
func TestLNPListPageCost(t *testing.T) {
	if testing.Short() {
		t.Skip("makes 20,000 files")
	}
	h := newLNPHarness(t)
	ctx := context.Background()
	s := h.login(t, "alice", h.register(t, "alice", "pw"))
	fillFolder(t, filepath.Join(h.files, "big"), 20_000, func(i int) string { return fmt.Sprintf("file-%06d.txt", i) })
	page, _, err := s.List(ctx, "/shared/big", "", 1)
	if err != nil {
		t.Fatal(err)
	}
	const pages = 20
	start := time.Now()
	for range pages {
		var more bool
		page, more, err = s.List(ctx, "/shared/big", page[0].Name, 1)
		if err != nil || !more || len(page) != 1 {
			t.Fatalf("a page of 1: %v, %v, %v", page, more, err)
		}
	}
	per := time.Since(start) / pages
	t.Logf("a page of one entry of 20,000: %v", per)
	if per > 10*time.Millisecond {
		t.Errorf("a page of one entry of 20,000 took %v, want well under 10ms", per)
	}
}
