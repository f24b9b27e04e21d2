package metrics

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// A Check is the health of one component, for /healthz.
type Check struct {
	// Name names the component in /healthz's answer.
	Name string

	// Func returns nil if the component is healthy, or an error that says
	// why not, in one line, for an operator to read. It must return soon
	// after ctx ends: all the checks of a request share checkTimeout.
	Func func(ctx context.Context) error

	// Advisory marks a component whose failure is reported but leaves the
	// answer at 200: the server still does its job without it, and a load
	// balancer should keep sending it clients.
	Advisory bool
}

// checkTimeout bounds the checks of one /healthz request together.
const checkTimeout = 2 * time.Second

// serveHealth answers /healthz: 200 with a first line "ok" while the
// server can take clients and keep its audit trail; 503 with "unavailable"
// while it cannot take clients, or "degraded" while it serves but cannot
// keep its trail; and then one line per component, "name: state". The
// server is unavailable before it listens and from the start of its
// shutdown, so that a load balancer stops sending clients during the grace
// period, and while a Check that is not Advisory fails. The audit sink is
// reported but advisory: while it is down, events wait in the durable
// spool. A spool at its bound is not: new events are refused, so requests
// would go unrecorded.
func (h *Handler) serveHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
	defer cancel()
	healthy, degraded := true, false
	var b strings.Builder
	if h.cfg.Server != nil {
		switch s := h.cfg.Server(); {
		case s.ShuttingDown:
			healthy = false
			b.WriteString("server: shutting down\n")
		case s.Listening == 0:
			healthy = false
			b.WriteString("server: not listening\n")
		default:
			fmt.Fprintf(&b, "server: serving, %d connections open\n", s.Open)
		}
	}
	if h.cfg.Audit != nil {
		s := h.cfg.Audit()
		if s.SinkUp {
			b.WriteString("audit sink: up\n")
		} else {
			fmt.Fprintf(&b, "audit sink: down; events wait in the spool (%d bytes in %d segments)\n",
				s.SpoolBytes, s.SpoolSegments)
		}
		if s.SpoolFailing {
			degraded = true
			fmt.Fprintf(&b, "audit spool: cannot be written; events wait in the queue (%d of %d), then are refused\n", s.QueueDepth, s.QueueCapacity)
		}
		if s.SpoolMax > 0 && s.SpoolBytes >= s.SpoolMax {
			// The condition under which the audit log refuses events.
			degraded = true
			fmt.Fprintf(&b, "audit spool: full (%d of %d bytes): new events are refused\n", s.SpoolBytes, s.SpoolMax)
		}
	}
	for _, c := range h.cfg.Checks {
		err := c.Func(ctx)
		switch {
		case err == nil:
			fmt.Fprintf(&b, "%s: ok\n", c.Name)
			continue
		case !c.Advisory:
			healthy = false
		}
		fmt.Fprintf(&b, "%s: %s\n", c.Name, strings.ReplaceAll(err.Error(), "\n", " "))
	}

	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	verdict := "ok\n"
	switch {
	case !healthy:
		verdict = "unavailable\n"
		w.WriteHeader(http.StatusServiceUnavailable)
	case degraded:
		verdict = "degraded\n"
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	w.Write([]byte(verdict + b.String()))
}
