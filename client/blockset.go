package client

// pageBits is how many block indices one page of a blockSet covers.
const pageBits = 256

// blockSet records which block indices have arrived. The block count comes
// from the server and may be anything up to 2³²−1, so nothing is sized from
// it: indices below next have all arrived and cost nothing; an index that
// arrives ahead of next sets a bit in a 256-bit page allocated on demand,
// and a page is freed once next passes it. Memory therefore grows only with
// what the server actually sends out of order: about 60 bytes for a block
// of about 1 KiB on the wire in the worst case (one block per page), and
// 32 bytes per 256 blocks for a shuffled file.
type blockSet struct {
	next  uint32
	pages map[uint32]*[pageBits / 64]uint64
}

// add records index i and reports whether it was new.
func (s *blockSet) add(i uint32) bool {
	if i < s.next {
		return false
	}
	if i > s.next {
		if s.pages == nil {
			s.pages = make(map[uint32]*[pageBits / 64]uint64)
		}
		pg := s.pages[i/pageBits]
		if pg == nil {
			pg = new([pageBits / 64]uint64)
			s.pages[i/pageBits] = pg
		}
		w, m := &pg[i%pageBits/64], uint64(1)<<(i%64)
		if *w&m != 0 {
			return false
		}
		*w |= m
		return true
	}
	// i == next: advance over it and over every block that came early,
	// stopping short of wrapping around (only an index of 2³²−1, which no
	// 32-bit count admits, could get there).
	for {
		s.next++
		if s.next%pageBits == 0 {
			delete(s.pages, s.next/pageBits-1)
		}
		if s.next == 1<<32-1 || !s.early(s.next) {
			return true
		}
	}
}

// early reports whether i, at or above next, has arrived.
func (s *blockSet) early(i uint32) bool {
	pg := s.pages[i/pageBits]
	return pg != nil && pg[i%pageBits/64]&(uint64(1)<<(i%64)) != 0
}
