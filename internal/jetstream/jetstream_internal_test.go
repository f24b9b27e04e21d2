package jetstream

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/jetstream/natstest"
)

func TestSubjectFor(t *testing.T) {
	for _, tc := range []struct{ kind, want string }{
		{"login", "p.login"},
		{"login.failed", "p.login.failed"},
		{"", "p._"},
		{"a..b", "p.a._b"},
		{".lead", "p._lead"},
		{"trail.", "p.trail_"},
		{"*", "p._"},
		{">", "p._"},
		{"x.>", "p.x._"},
		{"has space", "p.has_space"},
		{"日", "p.___"},
		{"Kind-2_x", "p.Kind-2_x"},
	} {
		if got := subjectFor("p", tc.kind); got != tc.want {
			t.Errorf("subjectFor(p, %q): got %q, want %q", tc.kind, got, tc.want)
		}
	}
}

// TestSinkBoundsInFlight stores from several goroutines at once through a
// Sink that allows 3 publishes in flight, and samples how many are.
func TestSinkBoundsInFlight(t *testing.T) {
	url := natstest.URL(t)
	name, subject := natstest.Stream(t, url)
	nc, err := Connect(url, "larder-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	s, err := NewSink(context.Background(), nc, SinkConfig{Stream: name, Subject: subject, MaxInFlight: 3})
	if err != nil {
		t.Fatal(err)
	}
	var most atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n := int64(s.js.PublishAsyncPending()); n > most.Load() {
				most.Store(n)
			}
			time.Sleep(10 * time.Microsecond)
		}
	}()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			events := make([]larder.Event, 300)
			for i := range events {
				now := time.Now()
				events[i] = larder.Event{ID: larder.NewEventID(now), Time: now, Kind: larder.EventLogin, Status: g}
			}
			if err := s.StoreEvents(context.Background(), events); err != nil {
				t.Errorf("StoreEvents: %v", err)
			}
		})
	}
	wg.Wait()
	close(stop)
	<-sampled
	if got := most.Load(); got > 3 || got == 0 {
		t.Errorf("most publishes in flight: got %d, want 1 to 3", got)
	}
	if n := len(s.slots); n != 0 {
		t.Errorf("slots held after the calls: got %d, want 0", n)
	}
}

func TestRedactURLs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://u:s3cret@h:4222", "nats://u:xxxxx@h:4222"},
		{"nats://a:pw1@h1,nats://b:pw2@h2", "nats://a:xxxxx@h1,nats://b:xxxxx@h2"},
		{"nats://u:s3cret@h:port", "nats://u:xxxxx@h:port"},
		{"nats://token@h", "nats://token@h"},
	} {
		if got := RedactURLs(tc.in); got != tc.want {
			t.Errorf("RedactURLs(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
	if _, err := Connect("nats://u:s3cret@127.0.0.1:notaport", "t"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Connect with a bad URL: got %v, want an error without the password", err)
	}
}
