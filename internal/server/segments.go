package server

// sendPath is how a reply's blocks go to the socket (segments_linux.go
// says why; elsewhere than Linux every TCP reply goes per block).
type sendPath int

const (
	// sendBatched: 64 blocks per write, nothing more (not a TCP socket).
	sendBatched sendPath = iota
	// sendAligned: 64 blocks per write on a corked socket whose segments
	// carry exactly one block each.
	sendAligned
	// sendPerBlock: one block per write, each ending a buffer of its own
	// (MSG_EOR), for a connection whose MSS is not one block: the
	// client did not negotiate timestamps (Windows by default), or its
	// path's MSS is smaller. This is what the course's reference server
	// does (one sendall per block), at 1,024 bytes per system call.
	sendPerBlock
	// sendFew: a reply of at most fewBlocks blocks, one block per write
	// with MSG_EOR, as sendPerBlock, whatever the MSS: it then takes
	// fewer system calls than asking the MSS, corking and uncorking.
	sendFew
)

// fewBlocks is the most blocks a reply sent on the sendFew path has: its
// writes, one per block, are then no more than the aligned path's system
// calls for it (TCP_INFO, cork, the write before the last block, the last
// block's, uncork).
const fewBlocks = 4

// blockPerWrite reports whether a reply on p goes one block per write,
// each ending with MSG_EOR.
func (p sendPath) blockPerWrite() bool { return p == sendPerBlock || p == sendFew }

func (p sendPath) String() string {
	switch p {
	case sendAligned:
		return "aligned"
	case sendPerBlock:
		return "per-block"
	case sendFew:
		return "few"
	}
	return "batched"
}
