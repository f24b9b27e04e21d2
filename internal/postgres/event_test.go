package postgres_test

import (
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/postgres"
	"github.com/larderfs/larder/internal/postgres/pgtest"
	"github.com/larderfs/larder/internal/storetest"
)

// TestEventConformance runs the event-store suite, on a new database for
// each test. PostgreSQL keeps times to the microsecond.
func TestEventConformance(t *testing.T) {
	storetest.RunEvents(t, time.Microsecond, func(t *testing.T) larder.EventStore {
		return postgres.NewEventStore(open(t, pgtest.URL(t)))
	})
}

func BenchmarkStoreEvents(b *testing.B) {
	storetest.BenchmarkStoreEvents(b, postgres.NewEventStore(open(b, pgtest.URL(b))))
}
