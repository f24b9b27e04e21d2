package files

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/larderfs/larder"
)

// DefaultTreeBudget is how long one DeleteTree call works at most, about:
// well within a client's patience and a request's timeout, and short
// enough that the other changes of the space, which wait meanwhile, are
// not held long.
const DefaultTreeBudget = 2 * time.Second

// removals are the trees whose removal (DeleteTree) is under way, by
// space and path, with their intents: one that needs more than one call
// stays here between them, so that the next call goes on with the same
// intent, and so that nothing is written into the tree meanwhile (its
// records are removed at the end, at once, with DeleteFiles). One that
// failed in the middle (an I/O error) stays too, until a DeleteTree of it
// ends: its intent is journaled, and the replay at a start removes the
// whole tree, so anything let in meanwhile would go with it; for the same
// reason Recover puts back one whose replay fails.
type removals struct {
	mu    sync.Mutex
	trees map[removal]*larder.FileIntent
}

type removal struct{ space, path string }

// get returns the intent of the removal of p in space, if one is under way.
func (rs *removals) get(space, p string) (*larder.FileIntent, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	in, ok := rs.trees[removal{space, p}]
	return in, ok
}

func (rs *removals) add(space, p string, in *larder.FileIntent) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.trees == nil {
		rs.trees = map[removal]*larder.FileIntent{}
	}
	rs.trees[removal{space, p}] = in
}

// end forgets the removal of p and of any tree below it, which went with
// it, and returns their intents, to be done.
func (rs *removals) end(space, p string) []*larder.FileIntent {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var ins []*larder.FileIntent
	for r, in := range rs.trees {
		if r.space == space && within(r.path, p) {
			delete(rs.trees, r)
			if in != nil {
				ins = append(ins, in)
			}
		}
	}
	return ins
}

// check refuses p if it is in a tree being removed, or is one.
func (rs *removals) check(space, p string) error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for r := range rs.trees {
		if r.space == space && within(p, r.path) {
			return busyTree(r.path)
		}
	}
	return nil
}

// checkMove refuses a move from or to a tree being removed, and a move of
// a folder that holds one.
func (rs *removals) checkMove(space, from, to string) error {
	if err := rs.check(space, to); err != nil {
		return err
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for r := range rs.trees {
		if r.space == space && (within(from, r.path) || within(r.path, from)) {
			return busyTree(r.path)
		}
	}
	return nil
}

func busyTree(p string) error {
	return &larder.Error{Code: larder.ECONFLICT, Err: larder.ErrTreeBeingRemoved,
		Message: fmt.Sprintf("%q is being removed with everything in it, which is not finished: remove it again (rm -r) to finish", "/"+p)}
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}
