package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/larderfs/larder/internal/version"
)

// newBuildInfo returns the gauge that says which build of larder runs:
//
//	larder_build_info{version,revision,revision_time,modified,goversion,goos,goarch}  gauge, always 1
//
// The labels are those of Prometheus's own build_info metrics (version,
// revision, goversion, goos, goarch), with the commit's time and whether
// the checkout had uncommitted changes; revision and revision_time are
// empty for a build made outside a checkout. Join it to another series to
// see which build produced it: "* on (instance) group_left(version)
// larder_build_info".
func newBuildInfo(in version.Info) prometheus.Collector {
	when := ""
	if !in.Time.IsZero() {
		when = in.Time.UTC().Format(time.RFC3339)
	}
	modified := "false"
	if in.Modified {
		modified = "true"
	}
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "larder_build_info",
		Help: "Always 1, labelled with the build of larder that runs: its version, the commit it was built from (revision, revision_time), whether the checkout had uncommitted changes (modified), and the Go release and platform that built it.",
		ConstLabels: prometheus.Labels{
			"version":       in.Version,
			"revision":      in.Revision,
			"revision_time": when,
			"modified":      modified,
			"goversion":     in.GoVersion,
			"goos":          in.OS,
			"goarch":        in.Arch,
		},
	}, func() float64 { return 1 })
}
