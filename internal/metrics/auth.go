package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/larderfs/larder/internal/auth"
)

// authCollector exports auth.Stats:
//
//	larder_password_checks_total{result}          counter
//	larder_logins_throttled_total{action,limit}   counter
//	larder_password_rehashes_total                counter
//	larder_password_rehash_failures_total         counter
//	larder_auth_cache_hits_total                  counter
//	larder_auth_cache_misses_total                counter
//	larder_auth_cache_entries                     gauge
//	larder_password_hash_slots                    gauge
//	larder_password_hash_slots_busy               gauge
//
// result is ok, mismatch, dummy (an unknown user, checked against a dummy
// hash so that timing does not tell), busy (the hashing pool stayed full
// until the request's deadline) or error (a stored hash that cannot be
// checked). A throttled login is action="refused" with limit
// "account_address" or "address", or action="delayed" with limit
// "account".
type authCollector struct {
	stats func() auth.Stats

	checks, throttled, rehashes, rehashFailures *prometheus.Desc
	cacheHits, cacheMisses, cacheEntries        *prometheus.Desc
	slots, slotsBusy                            *prometheus.Desc
}

func newAuthCollector(stats func() auth.Stats) *authCollector {
	return &authCollector{
		stats: stats,
		checks: newDesc("larder_password_checks_total",
			"Password checks run by logins, by result: ok, mismatch, dummy (unknown user), busy (hashing pool full until the deadline) or error (stored hash unusable). Logins answered from the cache run none.",
			"result"),
		throttled: newDesc("larder_logins_throttled_total",
			"Logins refused (before any hashing) or delayed by the guessing throttle, by the limit that applied.",
			"action", "limit"),
		rehashes: newDesc("larder_password_rehashes_total",
			"Stored password hashes replaced on login by one made with the current policy."),
		rehashFailures: newDesc("larder_password_rehash_failures_total",
			"Replacements of stored password hashes that failed; the logins succeeded anyway."),
		cacheHits: newDesc("larder_auth_cache_hits_total",
			"Logins of existing accounts answered from the cache of recent password checks."),
		cacheMisses: newDesc("larder_auth_cache_misses_total",
			"Logins of existing accounts that the cache of recent password checks could not answer."),
		cacheEntries: newDesc("larder_auth_cache_entries",
			"Entries in the cache of recent password checks."),
		slots: newDesc("larder_password_hash_slots",
			"Password hashes computed at most at once."),
		slotsBusy: newDesc("larder_password_hash_slots_busy",
			"Password hashes being computed."),
	}
}

func (c *authCollector) Describe(ch chan<- *prometheus.Desc) {
	describe(ch, c.checks, c.throttled, c.rehashes, c.rehashFailures,
		c.cacheHits, c.cacheMisses, c.cacheEntries, c.slots, c.slotsBusy)
}

func (c *authCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	for _, r := range []struct {
		result string
		n      int64
	}{
		{"ok", s.ChecksOK},
		{"mismatch", s.ChecksMismatch},
		{"dummy", s.ChecksDummy},
		{"busy", s.ChecksBusy},
		{"error", s.ChecksFailed},
	} {
		emit(ch, c.checks, prometheus.CounterValue, float64(r.n), r.result)
	}
	emit(ch, c.throttled, prometheus.CounterValue, float64(s.RefusedAccountAddress), "refused", "account_address")
	emit(ch, c.throttled, prometheus.CounterValue, float64(s.RefusedAddress), "refused", "address")
	emit(ch, c.throttled, prometheus.CounterValue, float64(s.Delayed), "delayed", "account")
	emit(ch, c.rehashes, prometheus.CounterValue, float64(s.Rehashes))
	emit(ch, c.rehashFailures, prometheus.CounterValue, float64(s.RehashFailures))
	emit(ch, c.cacheHits, prometheus.CounterValue, float64(s.CacheHits))
	emit(ch, c.cacheMisses, prometheus.CounterValue, float64(s.CacheMisses))
	emit(ch, c.cacheEntries, prometheus.GaugeValue, float64(s.CacheEntries))
	emit(ch, c.slots, prometheus.GaugeValue, float64(s.HashSlots))
	emit(ch, c.slotsBusy, prometheus.GaugeValue, float64(s.HashSlotsBusy))
}
