package client

import (
	"math/rand/v2"
	"testing"
)

func TestBlockSet(t *testing.T) {
	for _, n := range []int{1, 2, 255, 256, 257, 10_000} {
		for seed := range uint64(5) {
			var s blockSet
			perm := rand.New(rand.NewPCG(seed, uint64(n))).Perm(n)
			for k, i := range perm {
				if !s.add(uint32(i)) {
					t.Fatalf("n=%d: add(%d) at step %d reported a duplicate", n, i, k)
				}
				if s.add(uint32(i)) {
					t.Fatalf("n=%d: second add(%d) reported new", n, i)
				}
			}
			if s.next != uint32(n) {
				t.Errorf("n=%d: next = %d, want %d", n, s.next, n)
			}
			if len(s.pages) > 1 {
				t.Errorf("n=%d: %d pages left after all blocks arrived, want at most the last", n, len(s.pages))
			}
		}
	}
}

func TestBlockSetEdges(t *testing.T) {
	var s blockSet
	const top = 1<<32 - 2 // the highest index a 32-bit count allows
	if !s.add(top) || s.add(top) {
		t.Error("the top index is not recorded once")
	}
	if !s.add(1<<32-1) || s.add(1<<32-1) {
		t.Error("index 2³²−1 is not recorded once")
	}
	if len(s.pages) != 1 {
		t.Errorf("got %d pages for two neighbouring indices, want 1", len(s.pages))
	}
	// Walking next up to the top must stop without wrapping.
	s = blockSet{next: top}
	s.add(1<<32 - 1)
	s.add(top)
	if s.next != 1<<32-1 {
		t.Errorf("next = %d, want %d", s.next, uint32(1<<32-1))
	}
}

// TestBlockSetSparseMemory checks the cost of the worst case, one block
// per page, stays proportional to the blocks received.
func TestBlockSetSparseMemory(t *testing.T) {
	const n = 10_000
	var before, after runtimeMem
	before.read()
	var s blockSet
	for i := range uint32(n) {
		s.add(1 + i*pageBits*1000)
	}
	after.read()
	if per := (after.total - before.total) / n; per > 200 {
		t.Errorf("%d bytes per sparse block, want at most 200", per)
	}
}
