// Package audit is larder's audit pipeline: it takes events from the
// request path without slowing it, makes them durable in a spool on the
// local disk, and delivers them to a sink (SQLite, PostgreSQL, NATS
// JetStream, JSON lines). The SQL sinks store each event once, by its ID;
// JetStream drops repeats within its duplicate window; JSON lines may
// repeat a batch after a crash, for the shipper to drop by ID.
//
// # How an event travels
//
// Log.Record copies the event into a bounded queue in memory and returns:
// no encoding, no allocation, no system call. One writer goroutine owns
// the spool: it takes what is queued, encodes it, appends the batch to the
// current segment file with one write and one fdatasync (group commit),
// then releases the Records of sync kinds in that batch and tells the
// deliverer. One deliverer goroutine reads the spool in order, up to what
// is durable, and hands batches to the sink, retrying with backoff while
// the sink is down; a segment is deleted only once the sink confirmed all
// its events.
//
// # The spool
//
// Each Log writes into a subfolder of Config.Dir of its own, named after
// its start time and process id, holding a flock on the LOCK file in it
// while it lives. A Log with a sink adopts every other subfolder whose
// lock it can take (a crashed server's, a short-lived command's that
// could not deliver before it exited): it cuts torn tails, delivers, and
// removes the folder. It rescans for such folders every minute. Segment
// files are described in segment.go, the encoding of an event in
// codec.go.
//
// # What can be lost, and when
//
//   - An event Record did not take: the queue was full (policy Wait or
//     Drop), the spool had reached MaxSpool, or the Log was closed. Each
//     is counted in Stats.NotTaken and logged at most once a minute.
//   - An event taken but not yet fsync'd when the process dies: at most
//     what the queue holds plus one batch (CommitInterval, 2ms by
//     default). Events of Config.SyncKinds are never in that window when
//     their Record returns nil.
//   - Events in a segment damaged on disk after they were fsync'd (bit
//     rot): delivery stops at the first damaged record of a segment, and
//     the segment is moved to Dir/quarantine (Stats.CorruptBytes).
//
// Nothing is lost because the sink is down, however long, until the spool
// reaches MaxSpool; then new events are refused and the oldest kept. With
// Full set to Block and MaxSpool large enough, an event whose Record
// returned is lost only to a crash within its commit window; with its kind
// in SyncKinds, not even then.
//
// Delivery is at least once: after a crash, up to one segment may be
// delivered again. Sinks store by event ID, so each event is stored once.
package audit
