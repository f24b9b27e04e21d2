package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/larderfs/larder"
)

// RunEvents runs the conformance suite of larder.EventStore against the
// stores that open returns. It calls open once in each subtest, which must
// return an empty store of its own, closed in t.Cleanup. The subtests run
// in parallel.
//
// precision is the resolution at which the store keeps Event.Time: an
// event reads back with its Time truncated to it (time.Nanosecond for a
// store that keeps times exactly), and Since and Until compare at it.
func RunEvents(t *testing.T, precision time.Duration, open func(t *testing.T) larder.EventStore) {
	tests := []struct {
		name string
		f    func(t *testing.T, s larder.EventStore, precision time.Duration)
	}{
		{"RoundTrip", testEventsRoundTrip},
		{"OddStrings", testEventsOddStrings},
		{"Empty", testEventsEmpty},
		{"StoredTwice", testEventsStoredTwice},
		{"Overlapping", testEventsOverlapping},
		{"Concurrent", testEventsConcurrent},
		{"Filters", testEventsFilters},
		{"FilterPathRemoteStatus", testEventsFilterPathRemoteStatus},
		{"Pages", testEventsPages},
		{"Follow", testEventsFollow},
		{"FollowWhileWriting", testEventsFollowWhileWriting},
		{"Newest", testEventsNewest},
		{"Limits", testEventsLimits},
		{"TimeBounds", testEventsTimeBounds},
		{"LargeBatch", testEventsLargeBatch},
		{"ZeroID", testEventsZeroID},
		{"ContextCanceled", testEventsContextCanceled},
		{"Prune", testEventsPrune},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.f(t, open(t), precision)
		})
	}
}

// BenchmarkStoreEvents measures s.StoreEvents with batches of 1000 new
// events, and of 400, 100 and 50: what a server's deliverer hands over at
// about 4,000 events a second, gathering them for 100 ms (its linger) or
// 25 ms, or at 2,000 a second for 25 ms. It reports
// events/s and the process's CPU time per event (where known): the cost of
// the trail on a server's cores, whatever else the machine runs. Events
// are made outside the timer.
func BenchmarkStoreEvents(b *testing.B, s larder.EventStore) {
	for _, batch := range []int{1000, 400, 100, 50} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ctx := context.Background()
			start := time.Now()
			n := 0
			var cpu time.Duration
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				events := newEvents(batch, start.Add(time.Duration(n)*time.Millisecond))
				b.StartTimer()
				c0 := processCPU()
				if err := s.StoreEvents(ctx, events); err != nil {
					b.Fatal(err)
				}
				cpu += processCPU() - c0
				n += batch
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
			if cpu > 0 {
				b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/event")
			}
		})
	}
}

// eventBase is a time with nanoseconds, in a zone other than UTC: stores
// must keep the instant, and give it back in UTC.
var eventBase = time.Date(2026, 11, 22, 18, 30, 5, 123456789, time.FixedZone("UTC+5", 5*3600))

// newEvents returns n events of every kind in turn, with every field set
// and different from one event to the next, one millisecond apart from
// base on.
func newEvents(n int, base time.Time) []larder.Event {
	events := make([]larder.Event, n)
	for i := range events {
		t := base.Add(time.Duration(i)*time.Millisecond + time.Duration(i%1000)*time.Nanosecond)
		e := larder.Event{
			ID:       larder.NewEventID(t),
			Time:     t,
			Kind:     larder.EventKinds[i%len(larder.EventKinds)],
			Server:   fmt.Sprintf("127.0.0.1:%d", 23456+i%3),
			User:     fmt.Sprintf("user%d", i%7),
			Remote:   fmt.Sprintf("192.0.2.%d:%d", i%250+1, 40000+i),
			Path:     fmt.Sprintf("dir%d/file %d.txt", i%5, i),
			Bytes:    int64(i)*1_000_003 + 1<<40,
			Status:   100 + i%400,
			Duration: time.Duration(i)*time.Microsecond + 7,
			Reason:   fmt.Sprintf("reason %d", i),
		}
		for j := range e.SHA256 {
			e.SHA256[j] = byte(i + j + 1)
		}
		events[i] = e
	}
	return events
}

func testEventsRoundTrip(t *testing.T, s larder.EventStore, precision time.Duration) {
	// Every kind twice: once with every field set, once with only what
	// every event has, so that absent fields read back absent.
	full := newEvents(len(larder.EventKinds), eventBase)
	var batch []larder.Event
	for i, e := range full {
		sparse := larder.Event{ID: larder.NewEventID(e.Time), Time: e.Time.Add(time.Hour), Kind: e.Kind}
		if i%2 == 1 {
			sparse.Time = sparse.Time.UTC()
		}
		batch = append(batch, e, sparse)
	}
	mustStore(t, s, batch)
	got := allEvents(t, s)
	checkEvents(t, "Events after storing every kind", got, batch, precision)
	for i := range got {
		if got[i].Time.Location() != time.UTC {
			t.Errorf("event %d: Time in %v, want UTC", i, got[i].Time.Location())
			break
		}
	}
	if got[0].Seq <= 0 {
		t.Errorf("Seq of the first event: got %d, want > 0", got[0].Seq)
	}
}

// sanitized is what a store that can hold only UTF-8 text without NUL
// bytes (PostgreSQL) may store for s: each byte that is not UTF-8, and
// each NUL, replaced by U+FFFD.
func sanitized(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

func testEventsOddStrings(t *testing.T, s larder.EventStore, precision time.Duration) {
	odd := []string{
		"日本語 😀 bøb e\u0301",
		`'; DROP TABLE events; --`,
		`"quoted" \backslash\ 100% _under_`,
		strings.Repeat("long/", 13000), // 65 000 bytes
		"\xff\xfe not UTF-8",
		"a\x00b",
		"caf\xc3",
	}
	var batch []larder.Event
	for i, str := range odd {
		e := newEvents(1, eventBase.Add(time.Duration(i)*time.Second))[0]
		e.Server, e.User, e.Remote, e.Path, e.Reason = str, str, str, str, str
		e.Kind = larder.EventKind(str)
		batch = append(batch, e)
	}
	mustStore(t, s, batch)
	got := allEvents(t, s)
	if len(got) != len(batch) {
		t.Fatalf("Events: got %d events, want %d", len(got), len(batch))
	}
	for i := range got {
		want := batch[i]
		str := odd[i]
		for _, f := range []struct {
			name string
			got  string
		}{
			{"Server", got[i].Server}, {"User", got[i].User}, {"Remote", got[i].Remote},
			{"Path", got[i].Path}, {"Reason", got[i].Reason}, {"Kind", string(got[i].Kind)},
		} {
			// Text that is UTF-8 without NUL comes back exactly; other
			// text exactly or sanitized.
			if f.got != str && (f.got != sanitized(str) || utf8.ValidString(str) && !strings.Contains(str, "\x00")) {
				t.Errorf("event %d, %s: got %q, want %q", i, f.name, trim(f.got), trim(str))
			}
		}
		got[i].Server, got[i].User, got[i].Remote, got[i].Path, got[i].Reason, got[i].Kind =
			want.Server, want.User, want.Remote, want.Path, want.Reason, want.Kind
	}
	checkEvents(t, "Events with odd strings, other fields", got, batch, precision)
	// The filters match odd text too.
	for _, str := range odd[:4] {
		checkIDs(t, fmt.Sprintf("Events(User %q)", trim(str)), mustEvents(t, s, larder.EventFilter{User: str}),
			filterEvents(got, larder.EventFilter{User: str}))
	}
}

func trim(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func testEventsEmpty(t *testing.T, s larder.EventStore, precision time.Duration) {
	ctx := context.Background()
	for _, batch := range [][]larder.Event{nil, {}} {
		if err := s.StoreEvents(ctx, batch); err != nil {
			t.Errorf("StoreEvents(%#v): got %v, want nil", batch, err)
		}
	}
	for _, f := range []larder.EventFilter{{}, {Newest: true}, {User: "x", Kinds: []larder.EventKind{larder.EventLogin}, AfterSeq: 5}} {
		if got := mustEvents(t, s, f); len(got) != 0 {
			t.Errorf("Events(%+v) on an empty store: got %d events, want 0", f, len(got))
		}
	}
}

// testEventsStoredTwice: a batch delivered again, as after a crash between
// the store and the acknowledgement, is stored once, and the events keep
// the Seq of their first arrival.
func testEventsStoredTwice(t *testing.T, s larder.EventStore, precision time.Duration) {
	batch := newEvents(100, eventBase)
	mustStore(t, s, batch)
	first := allEvents(t, s)
	mustStore(t, s, batch)
	again := allEvents(t, s)
	checkEvents(t, "Events after storing a batch twice", again, batch, precision)
	for i := range again {
		if again[i].Seq != first[i].Seq {
			t.Fatalf("event %d: Seq %d after the second store, want %d as after the first", i, again[i].Seq, first[i].Seq)
		}
	}
	// Events given back by the store, Seq set, are stored once too.
	mustStore(t, s, again)
	checkEvents(t, "Events after storing what Events returned", allEvents(t, s), batch, precision)
}

// testEventsOverlapping stores batches that share events with earlier ones
// and repeat events within themselves: each event is stored once, in the
// order of its first arrival.
func testEventsOverlapping(t *testing.T, s larder.EventStore, precision time.Duration) {
	all := newEvents(110, eventBase)
	mustStore(t, s, all[0:60])
	mustStore(t, s, all[40:100])
	within := slices.Concat(all[95:105], all[100:105], all[104:110], all[0:3])
	mustStore(t, s, within)
	checkEvents(t, "Events after overlapping batches", allEvents(t, s), all, precision)
}

// testEventsConcurrent stores the same events from several goroutines at
// once, each in its own batches and order, as several deliverers of one
// trail might: each event is stored once, and no call fails.
func testEventsConcurrent(t *testing.T, s larder.EventStore, precision time.Duration) {
	all := newEvents(600, eventBase)
	const goroutines, size = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*len(all)/size)
	start := make(chan struct{})
	for g := range goroutines {
		wg.Go(func() {
			<-start
			// Each goroutine walks the batches from another starting
			// point, some backwards, so that they meet in every order.
			n := len(all) / size
			for k := range n {
				b := (k + g*n/goroutines) % n
				if g%2 == 1 {
					b = n - 1 - b
				}
				errs <- s.StoreEvents(context.Background(), all[b*size:(b+1)*size])
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent StoreEvents: got %v, want nil", err)
		}
	}
	got := allEvents(t, s)
	if len(got) != len(all) {
		t.Fatalf("Events after concurrent stores: got %d events, want %d", len(got), len(all))
	}
	// The order of arrival is the winners', unknown; every event is there
	// once, with its fields.
	byID := map[larder.EventID]larder.Event{}
	for _, e := range got {
		if _, dup := byID[e.ID]; dup {
			t.Fatalf("event %s stored twice", e.ID)
		}
		byID[e.ID] = e
	}
	for i, want := range all {
		g, ok := byID[want.ID]
		if !ok {
			t.Fatalf("event %d (%s) missing", i, want.ID)
		}
		g.Seq = 0
		if diffs := diffEvent(g, want, precision); diffs != "" {
			t.Fatalf("event %d: %s", i, diffs)
		}
	}
	checkSeqsIncrease(t, "Events after concurrent stores", got)
}

func testEventsFilters(t *testing.T, s larder.EventStore, precision time.Duration) {
	// 300 events in 6 batches; a second apart, but the fourth batch
	// arrives late, with times before the third's: the order of arrival
	// (Seq) is not the order of Time. Users alice, bob, carol and none.
	base := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	all := newEvents(300, base)
	users := []string{"alice", "bob", "carol", "", "Alice"}
	for i := range all {
		at := i
		if i/50 == 3 {
			at = i - 100
		}
		all[i].Time = base.Add(time.Duration(at)*time.Second + time.Duration(i%3)*time.Millisecond)
		all[i].User = users[i%len(users)]
	}
	for b := range 6 {
		mustStore(t, s, all[b*50:(b+1)*50])
	}
	stored := allEvents(t, s)
	checkEvents(t, "Events", stored, all, precision)
	mid := stored[137].Seq
	last := stored[len(stored)-1].Seq
	// Since and Until on whole seconds, so that every precision agrees
	// on which events they take; one in another zone, as an instant.
	at := func(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }
	east := time.FixedZone("UTC+3", 3*3600)
	login, dl, ul := larder.EventLogin, larder.EventDownload, larder.EventUpload
	for _, f := range []larder.EventFilter{
		{},
		{User: "alice"},
		{User: "Alice"},
		{User: "nobody"},
		{Kinds: []larder.EventKind{login}},
		{Kinds: []larder.EventKind{login, dl, ul}},
		{Kinds: []larder.EventKind{"no.such.kind"}},
		{Kinds: []larder.EventKind{login, "no.such.kind"}},
		{Since: at(100)},
		{Until: at(100)},
		{Since: at(100), Until: at(160)},
		{Since: at(100).In(east), Until: at(160).In(east)},
		{Since: at(120), Until: at(120)},
		{Since: at(160), Until: at(100)},
		{Since: at(100).Add(time.Millisecond), Until: at(101).Add(time.Millisecond)},
		{AfterSeq: mid},
		{AfterSeq: last},
		{AfterSeq: -5},
		{Limit: 7},
		{Limit: 7, Newest: true},
		{Newest: true},
		{User: "bob", Kinds: []larder.EventKind{login, dl}},
		{User: "bob", Kinds: []larder.EventKind{login, dl}, Since: at(50), Until: at(250), Limit: 4},
		{User: "bob", Kinds: []larder.EventKind{login, dl}, Since: at(50), Until: at(250), Limit: 4, Newest: true},
		{User: "carol", AfterSeq: mid, Limit: 5},
		{User: "carol", AfterSeq: mid, Limit: 5, Newest: true},
		{Kinds: []larder.EventKind{ul}, Since: at(100), Newest: true, Limit: 3},
		{User: "", Kinds: nil, Since: time.Time{}, Until: at(30), AfterSeq: stored[5].Seq},
	} {
		checkIDs(t, fmt.Sprintf("Events(%s)", describe(f, base)), mustEvents(t, s, f), filterEvents(stored, f))
	}
}

// testEventsFilterPathRemoteStatus selects by path (a path and what is
// below it), by remote address (the whole address, or its host with any
// port) and by status, alone and with the other filters. The paths and
// addresses are chosen so that a match on a text prefix, a LIKE pattern,
// or a comparison in a collation other than byte order (one that ignores
// punctuation or case) gives other answers.
func testEventsFilterPathRemoteStatus(t *testing.T, s larder.EventStore, precision time.Duration) {
	paths := []string{
		"/d1", "/d1/x.txt", "/d1/sub/y.txt", "/d10", "/d10/x.txt", "/d1.txt", "/d1-x", "/d1 x",
		"/D1/x.txt", "/d1x", "/d", "/shared/f.txt", "/shared", "/%", "/_1/x", "/d1/", "",
		"../secret", "/d1/\u00e9", "/d1\u00ff/z", "/\u65e5\u672c/\u8a9e.txt",
	}
	remotes := []string{
		"192.0.2.7:40000", "192.0.2.7:40001", "192.0.2.70:40000", "192.0.2.7", "192.0.2.77:1",
		"[2001:db8::1]:5000", "[2001:db8::10]:5000", "2001:db8::/64", "", "pipe",
	}
	statuses := []int{0, 1, 4, 5, 9, 12, 1, 1}
	base := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	all := newEvents(len(paths)*len(remotes), base)
	for i := range all {
		all[i].Path = paths[i%len(paths)]
		all[i].Remote = remotes[(i/len(paths)+i)%len(remotes)]
		all[i].Status = statuses[i%len(statuses)]
		all[i].User = []string{"alice", "bob"}[i%2]
	}
	mustStore(t, s, all[:len(all)/2])
	mustStore(t, s, all[len(all)/2:])
	stored := allEvents(t, s)
	checkEvents(t, "Events", stored, all, precision)
	mid := stored[len(stored)/3].Seq
	at := func(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }
	for _, f := range []larder.EventFilter{
		{Path: "/d1"},
		{Path: "/d1/"},
		{Path: "/d10"},
		{Path: "/d1/x.txt"},
		{Path: "/d"},
		{Path: "/D1"},
		{Path: "/"},
		{Path: "/%"},
		{Path: "/_1"},
		{Path: "../secret"},
		{Path: "/shared"},
		{Path: "/nothing"},
		{Path: "/\u65e5\u672c"},
		{Remote: "192.0.2.7"},
		{Remote: "192.0.2.7:40000"},
		{Remote: "192.0.2.70"},
		{Remote: "::ffff:192.0.2.7"},
		{Remote: "2001:db8::1"},
		{Remote: "[2001:db8::1]"},
		{Remote: "2001:0db8:0::1"},
		{Remote: "[2001:db8::1]:5000"},
		{Remote: "2001:db8::/64"},
		{Remote: "pipe"},
		{Remote: "192.0.2"},
		{Statuses: []int{1}},
		{Statuses: []int{4, 9, 12}},
		{Statuses: []int{0}},
		{Statuses: []int{404}},
		{Path: "/d1", Remote: "192.0.2.7", Statuses: []int{1, 4}},
		{Path: "/d1", User: "bob", Kinds: []larder.EventKind{larder.EventLogin, larder.EventDownload, larder.EventUpload}},
		{Path: "/d1", Since: at(0), Until: at(1), Statuses: []int{1}},
		{Path: "/d1", AfterSeq: mid, Limit: 5},
		{Path: "/d1", AfterSeq: mid, Limit: 5, Newest: true},
		{Remote: "2001:db8::1", Statuses: []int{1}, Limit: 3, Newest: true},
	} {
		got := mustEvents(t, s, f)
		want := filterEvents(stored, f)
		checkIDs(t, fmt.Sprintf("Events(%s)", describe(f, base)), got, want)
		if len(want) == 0 && f.Path != "/nothing" && f.Path != "/D1" && f.Remote != "192.0.2" &&
			!slices.Equal(f.Statuses, []int{404}) && f.Since.IsZero() {
			t.Errorf("Events(%s): the reference selects nothing; the test's data should give it something", describe(f, base))
		}
	}
}

// testEventsPages reads a filtered trail a page at a time, each page
// after the last Seq of the one before, as "larder audit query --after"
// and "larder audit export" do: every matching event once, in order.
func testEventsPages(t *testing.T, s larder.EventStore, precision time.Duration) {
	all := newEvents(230, eventBase)
	for i := range all {
		all[i].Path = fmt.Sprintf("/d%d/f%d", i%3, i)
	}
	mustStore(t, s, all)
	stored := allEvents(t, s)
	for _, f := range []larder.EventFilter{{Limit: 7}, {Path: "/d1", Limit: 10}, {Path: "/d2", Kinds: []larder.EventKind{larder.EventLogin}, Limit: 1}} {
		want := filterEvents(stored, larder.EventFilter{Path: f.Path, Kinds: f.Kinds, Limit: larder.MaxEventLimit})
		var got []larder.Event
		for {
			page := mustEvents(t, s, f)
			got = append(got, page...)
			if len(page) < f.Limit {
				break
			}
			f.AfterSeq = page[len(page)-1].Seq
		}
		checkIDs(t, fmt.Sprintf("pages of Events(%s)", describe(f, eventBase)), got, want)
	}
}

// filterEvents is the reference semantics of EventFilter over events
// ordered by Seq, with the stores' default limit.
func filterEvents(events []larder.Event, f larder.EventFilter) []larder.Event {
	var out []larder.Event
	for _, e := range events {
		switch {
		case f.User != "" && e.User != f.User,
			len(f.Kinds) > 0 && !slices.Contains(f.Kinds, e.Kind),
			!f.MatchPath(e.Path),
			!f.MatchRemote(e.Remote),
			len(f.Statuses) > 0 && !slices.Contains(f.Statuses, e.Status),
			!f.Since.IsZero() && e.Time.Before(f.Since),
			!f.Until.IsZero() && !e.Time.Before(f.Until),
			e.Seq <= f.AfterSeq:
			continue
		}
		out = append(out, e)
	}
	limit := f.Limit
	if limit == 0 {
		limit = larder.DefaultEventLimit
	}
	if len(out) > limit {
		if f.Newest {
			return out[len(out)-limit:]
		}
		return out[:limit]
	}
	return out
}

// describe shows a filter with its times relative to base, for messages.
func describe(f larder.EventFilter, base time.Time) string {
	var parts []string
	if f.User != "" {
		parts = append(parts, fmt.Sprintf("User %q", f.User))
	}
	if f.Kinds != nil {
		parts = append(parts, fmt.Sprintf("Kinds %q", f.Kinds))
	}
	if f.Path != "" {
		parts = append(parts, fmt.Sprintf("Path %q", f.Path))
	}
	if f.Remote != "" {
		parts = append(parts, fmt.Sprintf("Remote %q", f.Remote))
	}
	if f.Statuses != nil {
		parts = append(parts, fmt.Sprintf("Statuses %v", f.Statuses))
	}
	if !f.Since.IsZero() {
		parts = append(parts, fmt.Sprintf("Since base+%v", f.Since.Sub(base)))
	}
	if !f.Until.IsZero() {
		parts = append(parts, fmt.Sprintf("Until base+%v", f.Until.Sub(base)))
	}
	if f.AfterSeq != 0 {
		parts = append(parts, fmt.Sprintf("AfterSeq %d", f.AfterSeq))
	}
	if f.Limit != 0 {
		parts = append(parts, fmt.Sprintf("Limit %d", f.Limit))
	}
	if f.Newest {
		parts = append(parts, "Newest")
	}
	return strings.Join(parts, ", ")
}

// testEventsFollow is "larder audit tail -f": a reader that pages by
// AfterSeq sees every event once, in the order of arrival, late ones
// (delivered after an outage, with old times) included.
func testEventsFollow(t *testing.T, s larder.EventStore, precision time.Duration) {
	var seen []larder.Event
	var after int64
	follow := func() {
		t.Helper()
		for {
			page := mustEvents(t, s, larder.EventFilter{AfterSeq: after, Limit: 3})
			seen = append(seen, page...)
			if len(page) > 0 {
				after = page[len(page)-1].Seq
			}
			if len(page) < 3 {
				return
			}
		}
	}
	follow()
	if len(seen) != 0 {
		t.Fatalf("following an empty store: got %d events, want 0", len(seen))
	}
	first := newEvents(10, eventBase)
	mustStore(t, s, first)
	follow()
	checkEvents(t, "events followed after the first batch", seen, first, precision)

	late := newEvents(4, eventBase.Add(-time.Hour)) // delivered late
	next := newEvents(5, eventBase.Add(time.Hour))
	mustStore(t, s, next[:2])
	mustStore(t, s, slices.Concat(late, first[8:])) // with a redelivery
	mustStore(t, s, next[2:])
	follow()
	checkEvents(t, "events followed after late arrivals", seen, slices.Concat(first, next[:2], late, next[2:]), precision)
	follow()
	if got := len(seen); got != 19 {
		t.Errorf("following with nothing new: got %d events in all, want 19", got)
	}
}

// testEventsFollowWhileWriting follows the trail by AfterSeq while several
// writers store at once: the follower must see every event once. A store
// whose Seqs are handed out in another order than its transactions commit
// fails it: the follower would read past a Seq whose transaction commits
// later.
func testEventsFollowWhileWriting(t *testing.T, s larder.EventStore, precision time.Duration) {
	const writers, batches, size = 4, 25, 20
	all := newEvents(writers*batches*size, eventBase)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				i := (w*batches + b) * size
				if err := s.StoreEvents(context.Background(), all[i:i+size]); err != nil {
					t.Errorf("StoreEvents: %v", err)
					return
				}
			}
		})
	}
	written := make(chan struct{})
	go func() { wg.Wait(); close(written) }()

	seen := map[larder.EventID]int{}
	var after int64
	for done := false; !done; {
		select {
		case <-written:
			done = true // one more pass reads what is left
		default:
		}
		for {
			page := mustEvents(t, s, larder.EventFilter{AfterSeq: after, Limit: 7})
			for _, e := range page {
				seen[e.ID]++
			}
			if len(page) > 0 {
				after = page[len(page)-1].Seq
			}
			if len(page) < 7 {
				break
			}
		}
	}
	missed := 0
	for _, e := range all {
		switch seen[e.ID] {
		case 0:
			missed++
		case 1:
		default:
			t.Errorf("the follower saw event %s %d times, want once", e.ID, seen[e.ID])
		}
	}
	if missed > 0 {
		t.Errorf("the follower missed %d of %d events stored while it followed", missed, len(all))
	}
}

func testEventsNewest(t *testing.T, s larder.EventStore, precision time.Duration) {
	all := newEvents(30, eventBase)
	mustStore(t, s, all)
	checkEvents(t, "Events(Newest, Limit 10)", mustEvents(t, s, larder.EventFilter{Newest: true, Limit: 10}), all[20:], precision)
	checkEvents(t, "Events(Newest, Limit 100)", mustEvents(t, s, larder.EventFilter{Newest: true, Limit: 100}), all, precision)
	checkEvents(t, "Events(Newest, Limit 1)", mustEvents(t, s, larder.EventFilter{Newest: true, Limit: 1}), all[29:], precision)
}

func testEventsLimits(t *testing.T, s larder.EventStore, precision time.Duration) {
	all := newEvents(larder.DefaultEventLimit+5, eventBase)
	mustStore(t, s, all)
	checkEvents(t, "Events with Limit 0", mustEvents(t, s, larder.EventFilter{}), all[:larder.DefaultEventLimit], precision)
	checkEvents(t, "Events with Newest and Limit 0", mustEvents(t, s, larder.EventFilter{Newest: true}), all[5:], precision)
	checkEvents(t, fmt.Sprintf("Events with Limit %d", larder.MaxEventLimit), mustEvents(t, s, larder.EventFilter{Limit: larder.MaxEventLimit}), all, precision)
	for _, tc := range []struct {
		limit int
		msg   string
	}{
		{-1, "events: limit -1 is negative"},
		{larder.MaxEventLimit + 1, fmt.Sprintf("events: limit %d is above the most, %d", larder.MaxEventLimit+1, larder.MaxEventLimit)},
	} {
		_, err := s.Events(context.Background(), larder.EventFilter{Limit: tc.limit})
		checkError(t, fmt.Sprintf("Events(Limit %d)", tc.limit), err, larder.EINVALID, tc.msg)
	}
}

// testEventsTimeBounds: Since and Until name times from
// larder.EarliestEventBound to larder.LatestEventBound, and are exact up to
// them; a time beyond them, which one store could hold and another not, is
// refused the same way by every store, never taken for no bound.
func testEventsTimeBounds(t *testing.T, s larder.EventStore, precision time.Duration) {
	all := newEvents(3, eventBase)
	mustStore(t, s, all)
	earliest, latest := larder.EarliestEventBound, larder.LatestEventBound
	checkEvents(t, "Events since the earliest bound", mustEvents(t, s, larder.EventFilter{Since: earliest, Until: latest}), all, precision)
	checkEvents(t, "Events until the earliest bound", mustEvents(t, s, larder.EventFilter{Until: earliest}), nil, precision)
	checkEvents(t, "Events since the latest bound", mustEvents(t, s, larder.EventFilter{Since: latest}), nil, precision)
	year1 := time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC) // a nanosecond after the zero time, which is no bound
	for _, tc := range []struct {
		f   larder.EventFilter
		msg string
	}{
		{larder.EventFilter{Until: year1}, "events: until 0001-01-01T00:00:00.000000001Z is outside the times the audit trail holds: give a time from 1678-01-01 to 2262-01-01 (UTC)"},
		{larder.EventFilter{Since: year1}, "events: since 0001-01-01T00:00:00.000000001Z is outside the times the audit trail holds: give a time from 1678-01-01 to 2262-01-01 (UTC)"},
		{larder.EventFilter{Until: earliest.Add(-time.Nanosecond)}, "events: until 1677-12-31T23:59:59.999999999Z is outside the times the audit trail holds: give a time from 1678-01-01 to 2262-01-01 (UTC)"},
		{larder.EventFilter{Since: latest.Add(time.Nanosecond), Limit: 5}, "events: since 2262-01-01T00:00:00.000000001Z is outside the times the audit trail holds: give a time from 1678-01-01 to 2262-01-01 (UTC)"},
		{larder.EventFilter{Since: eventBase, Until: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), Newest: true}, "events: until 9999-12-31T00:00:00Z is outside the times the audit trail holds: give a time from 1678-01-01 to 2262-01-01 (UTC)"},
	} {
		_, err := s.Events(context.Background(), tc.f)
		checkError(t, fmt.Sprintf("Events(Since %v, Until %v)", tc.f.Since, tc.f.Until), err, larder.EINVALID, tc.msg)
	}
}

func testEventsLargeBatch(t *testing.T, s larder.EventStore, precision time.Duration) {
	all := newEvents(5000, eventBase)
	mustStore(t, s, all)
	checkEvents(t, "Events after a batch of 5000", mustEvents(t, s, larder.EventFilter{Limit: 5000}), all, precision)
}

// testEventsZeroID: an event without an ID cannot be stored exactly once;
// the batch that holds one is refused whole.
func testEventsZeroID(t *testing.T, s larder.EventStore, precision time.Duration) {
	batch := newEvents(3, eventBase)
	batch[1].ID = larder.EventID{}
	err := s.StoreEvents(context.Background(), batch)
	checkCode(t, "StoreEvents with an event without ID", err, larder.EINVALID)
	if got := allEvents(t, s); len(got) != 0 {
		t.Errorf("Events after the refused batch: got %d events, want 0", len(got))
	}
}

func testEventsContextCanceled(t *testing.T, s larder.EventStore, precision time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.StoreEvents(ctx, newEvents(3, eventBase)); err == nil {
		t.Errorf("StoreEvents with a canceled context: got nil, want an error")
	}
	if _, err := s.Events(ctx, larder.EventFilter{}); err == nil {
		t.Errorf("Events with a canceled context: got nil, want an error")
	}
	if got := allEvents(t, s); len(got) != 0 {
		t.Errorf("Events after StoreEvents with a canceled context: got %d events, want 0", len(got))
	}
}

// Helpers.

func mustStore(t *testing.T, s larder.EventStore, events []larder.Event) {
	t.Helper()
	if err := s.StoreEvents(context.Background(), events); err != nil {
		t.Fatalf("StoreEvents(%d events): got %v, want nil", len(events), err)
	}
}

func mustEvents(t *testing.T, s larder.EventStore, f larder.EventFilter) []larder.Event {
	t.Helper()
	events, err := s.Events(context.Background(), f)
	if err != nil {
		t.Fatalf("Events(%+v): got %v, want nil", f, err)
	}
	return events
}

// allEvents returns every event of s, in the tests' small stores.
func allEvents(t *testing.T, s larder.EventStore) []larder.Event {
	t.Helper()
	return mustEvents(t, s, larder.EventFilter{Limit: 10_000})
}

// checkEvents checks that got are want, in order, field by field, with
// Seq set and increasing.
func checkEvents(t *testing.T, what string, got, want []larder.Event, precision time.Duration) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d events, want %d", what, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		g := got[i]
		g.Seq = 0
		if diffs := diffEvent(g, want[i], precision); diffs != "" {
			t.Errorf("%s: event %d of %d:\n\t%s", what, i, len(want), diffs)
			return
		}
	}
	checkSeqsIncrease(t, what, got)
}

func checkSeqsIncrease(t *testing.T, what string, events []larder.Event) {
	t.Helper()
	for i := range events {
		if events[i].Seq <= 0 || i > 0 && events[i].Seq <= events[i-1].Seq {
			t.Errorf("%s: Seq of event %d is %d after %d, want positive and increasing", what, i, events[i].Seq, events[max(i-1, 0)].Seq)
			return
		}
	}
}

// diffEvent lists the fields in which got differs from want; times compare
// at precision, and want's Seq is ignored.
func diffEvent(got, want larder.Event, precision time.Duration) string {
	var diffs []string
	add := func(field string, g, w any) {
		diffs = append(diffs, fmt.Sprintf("%s: got %v, want %v", field, g, w))
	}
	if got.ID != want.ID {
		add("ID", got.ID, want.ID)
	}
	if w := want.Time.Truncate(precision); !got.Time.Equal(w) {
		add("Time", got.Time.Format(time.RFC3339Nano), w.UTC().Format(time.RFC3339Nano))
	}
	if got.Kind != want.Kind {
		add("Kind", got.Kind, want.Kind)
	}
	if got.Server != want.Server {
		add("Server", got.Server, want.Server)
	}
	if got.User != want.User {
		add("User", got.User, want.User)
	}
	if got.Remote != want.Remote {
		add("Remote", got.Remote, want.Remote)
	}
	if got.Path != want.Path {
		add("Path", got.Path, want.Path)
	}
	if got.Bytes != want.Bytes {
		add("Bytes", got.Bytes, want.Bytes)
	}
	if got.SHA256 != want.SHA256 {
		add("SHA256", fmt.Sprintf("%x", got.SHA256), fmt.Sprintf("%x", want.SHA256))
	}
	if got.Status != want.Status {
		add("Status", got.Status, want.Status)
	}
	if got.Duration != want.Duration {
		add("Duration", got.Duration, want.Duration)
	}
	if got.Reason != want.Reason {
		add("Reason", got.Reason, want.Reason)
	}
	return strings.Join(diffs, "\n\t")
}

// checkIDs compares the events that a filter returned by ID, in order.
func checkIDs(t *testing.T, what string, got, want []larder.Event) {
	t.Helper()
	ids := func(events []larder.Event) []string {
		var s []string
		for _, e := range events {
			s = append(s, fmt.Sprint(e.Seq))
		}
		return s
	}
	g, w := ids(got), ids(want)
	if !slices.Equal(g, w) {
		t.Errorf("%s: got %d events, Seqs %v; want %d, Seqs %v", what, len(g), abbrev(g), len(w), abbrev(w))
		return
	}
	for i := range got {
		if got[i].ID != want[i].ID {
			t.Errorf("%s: event %d has ID %s, want %s", what, i, got[i].ID, want[i].ID)
			return
		}
	}
}

func abbrev(s []string) []string {
	if len(s) > 12 {
		return append(slices.Clip(s[:6]), append([]string{"…"}, s[len(s)-6:]...)...)
	}
	return s
}

// testEventsPrune: PruneEvents deletes the oldest events before a time,
// at most limit at once, and nothing else.
func testEventsPrune(t *testing.T, s larder.EventStore, precision time.Duration) {
	p, ok := s.(larder.EventPruner)
	if !ok {
		t.Skip("the store does not prune")
	}
	ctx := context.Background()
	events := newEvents(50, eventBase)
	// Stored out of time order: pruning goes by Time, not by arrival.
	mustStore(t, s, events[25:])
	mustStore(t, s, events[:25])
	cut := events[30].Time.Truncate(precision) // 30 events before it
	if _, err := p.PruneEvents(ctx, cut, 0); larder.ErrorCode(err) != larder.EINVALID {
		t.Errorf("PruneEvents with limit 0: got %v, want EINVALID", err)
	}
	var pruned []int
	for {
		n, err := p.PruneEvents(ctx, cut, 8)
		if err != nil {
			t.Fatalf("PruneEvents: got %v, want nil", err)
		}
		if n > 8 {
			t.Fatalf("PruneEvents(limit 8) deleted %d", n)
		}
		pruned = append(pruned, n)
		if n < 8 {
			break
		}
	}
	if want := []int{8, 8, 8, 6}; !slices.Equal(pruned, want) {
		t.Errorf("batches pruned: got %v, want %v", pruned, want)
	}
	got := allEvents(t, s)
	slices.SortFunc(got, func(a, b larder.Event) int { return a.Time.Compare(b.Time) })
	if len(got) != 20 {
		t.Fatalf("%d events left after pruning, want 20", len(got))
	}
	for i, e := range got {
		if e.ID != events[30+i].ID {
			t.Fatalf("event %d left after pruning has ID %s, want %s", i, e.ID, events[30+i].ID)
		}
	}
	if n, err := p.PruneEvents(ctx, cut, 8); n != 0 || err != nil {
		t.Errorf("PruneEvents again: got %d, %v; want 0, nil", n, err)
	}
}
