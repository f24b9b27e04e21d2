package metrics_test

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/larderfs/larder/internal/metrics"
	"github.com/larderfs/larder/internal/s3"
	"github.com/larderfs/larder/internal/version"
)

var update = flag.Bool("update", false, "rewrite the table of metrics in docs/OPERATIONS.md from the collectors")

const operationsDoc = "../../docs/OPERATIONS.md"

// The table of docs/OPERATIONS.md that lists every metric family lies
// between these lines; TestMetricsDocumented writes it with -update.
const (
	tableBegin = "<!-- The table of metrics is written by: go test ./internal/metrics -run TestMetricsDocumented -update -->"
	tableEnd   = "<!-- end of the table of metrics -->"
)

// foreignGroups are the families larder exports but does not define,
// from client_golang's collectors, each listed in the table as one row:
// their set changes with the Go and library versions.
var foreignGroups = []struct{ prefix, meaning string }{
	{"go_", "the Go runtime's collector: goroutines, threads, memory, garbage collection (`go_gc_duration_seconds`, `go_memstats_*`, …), and `go_build_info` (the main module's path and version)"},
	{"process_", "the process collector: CPU seconds, resident and virtual memory, open and maximum file descriptors, start time"},
	{"promhttp_", "`promhttp_metric_handler_errors_total{cause}`: scrapes of `/metrics` that failed to gather or encode"},
}

// renamed lists the metrics renamed so that each protocol's requests
// share a prefix: the old names may appear in the documentation only in
// the paragraphs that say so.
var renamed = map[string]string{
	"larder_requests_total":                  "larder_course_requests_total",
	"larder_request_duration_seconds":        "larder_course_request_duration_seconds",
	"larder_payload_bytes_sent_total":        "larder_course_payload_bytes_sent_total",
	"larder_native_requests_total":           "larder_lnp_requests_total",
	"larder_native_request_duration_seconds": "larder_lnp_request_duration_seconds",
	"larder_native_bytes_total":              "larder_lnp_bytes_total",
}

// exported returns every family a Handler with all its sources exports:
// a real server's, a real authenticator's, the audit pipeline's numbers,
// and the build's.
func exported(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	r := newRig(t)
	build := version.Read()
	h := metrics.NewHandler(metrics.Config{
		Build:  &build,
		Server: r.srv.Stats,
		Auth:   r.authn.Stats,
		Audit:  func() metrics.AuditStats { return metrics.AuditStats{QueueCapacity: 1, SpoolMax: 1 << 30} },
		Storage: func() s3.Stats {
			s := s3.Stats{Up: true}
			for _, op := range s3.Ops {
				s.Ops = append(s.Ops, s3.OpStats{Op: op})
			}
			return s
		},
	})
	fams, err := h.Registry().Gather()
	must(t, err)
	byName := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		byName[f.GetName()] = f
	}
	return byName
}

// row is one line of the table.
type row struct{ name, typ, labels, meaning string }

func (r row) String() string {
	return fmt.Sprintf("| `%s` | %s | %s | %s |", r.name, r.typ, r.labels, r.meaning)
}

// rowOf returns the row of a larder family: its type, its labels (those
// of its first sample, which every sample has), and its HELP text.
func rowOf(f *dto.MetricFamily) row {
	var labels []string
	if len(f.GetMetric()) > 0 {
		for _, l := range f.GetMetric()[0].GetLabel() {
			labels = append(labels, "`"+l.GetName()+"`")
		}
	}
	l := "–"
	if len(labels) > 0 {
		l = strings.Join(labels, ", ")
	}
	return row{f.GetName(), strings.ToLower(f.GetType().String()), l, strings.ReplaceAll(f.GetHelp(), "|", `\|`)}
}

// generatedTable returns the table as the collectors define it.
func generatedTable(fams map[string]*dto.MetricFamily) []row {
	var rows []row
	for name, f := range fams {
		if strings.HasPrefix(name, "larder_") {
			rows = append(rows, rowOf(f))
		}
	}
	slices.SortFunc(rows, func(a, b row) int { return strings.Compare(a.name, b.name) })
	for _, g := range foreignGroups {
		rows = append(rows, row{g.prefix + "*", "various", "various", g.meaning})
	}
	return rows
}

// docTable returns the rows of the table in doc, and where it lies.
func docTable(t *testing.T, doc string) (rows []row, begin, end int) {
	t.Helper()
	begin, end = strings.Index(doc, tableBegin), strings.Index(doc, tableEnd)
	if begin < 0 || end < begin {
		t.Fatalf("%s has no table of metrics between %q and %q", operationsDoc, tableBegin, tableEnd)
	}
	begin += len(tableBegin)
	cell := regexp.MustCompile(`^\| ` + "`" + `([a-z_*]+)` + "`" + ` \| ([a-z]+) \| (.*?) \| (.*) \|$`)
	for line := range strings.SplitSeq(strings.TrimSpace(doc[begin:end]), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue // the header and its rule
		}
		m := cell.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("%s: a row of the table of metrics is not | `name` | type | labels | meaning |: %q", operationsDoc, line)
			continue
		}
		rows = append(rows, row{m[1], m[2], m[3], m[4]})
	}
	return rows, begin, end
}

// TestMetricsDocumented checks the table of docs/OPERATIONS.md against
// the metrics a Handler with every source exports: each larder family is
// listed with its type, labels and HELP text, and nothing else; every
// family of another prefix falls in a group the table lists.
func TestMetricsDocumented(t *testing.T) {
	fams := exported(t)
	b, err := os.ReadFile(operationsDoc)
	must(t, err)
	doc := string(b)
	have, begin, end := docTable(t, doc)
	want := generatedTable(fams)
	if *update {
		var sb strings.Builder
		sb.WriteString("\n\n| name | type | labels | meaning |\n|---|---|---|---|\n")
		for _, r := range want {
			sb.WriteString(r.String() + "\n")
		}
		sb.WriteString("\n")
		must(t, os.WriteFile(operationsDoc, []byte(doc[:begin]+sb.String()+doc[end:]), 0o644))
		return
	}
	byName := map[string]row{}
	for _, r := range have {
		if _, dup := byName[r.name]; dup {
			t.Errorf("the table lists %s twice", r.name)
		}
		byName[r.name] = r
	}
	for _, w := range want {
		h, ok := byName[w.name]
		switch {
		case !ok:
			t.Errorf("%s is exported but not in the table of metrics; run go test ./internal/metrics -run TestMetricsDocumented -update", w.name)
		case h != w:
			t.Errorf("the table's row of %s is\n\t%s\nthe collectors say\n\t%s\n(run with -update to rewrite it)", w.name, h, w)
		}
		delete(byName, w.name)
	}
	for name := range byName {
		t.Errorf("the table lists %s, which no collector exports", name)
	}
	for name := range fams {
		if strings.HasPrefix(name, "larder_") {
			continue
		}
		if !slices.ContainsFunc(foreignGroups, func(g struct{ prefix, meaning string }) bool { return strings.HasPrefix(name, g.prefix) }) {
			t.Errorf("%s is exported, and no row of the table covers its prefix", name)
		}
	}
	for _, g := range foreignGroups {
		if !slices.ContainsFunc(slices.Collect(maps.Keys(fams)), func(n string) bool { return strings.HasPrefix(n, g.prefix) }) {
			t.Errorf("the table lists %s*, and nothing exported has that prefix", g.prefix)
		}
	}
}

// TestDocsNameExistingMetrics checks every larder_ name in the
// documentation: each is an exported family, or a histogram's series of
// one, or a renamed metric in a paragraph that says it was renamed.
func TestDocsNameExistingMetrics(t *testing.T) {
	fams := exported(t)
	name := regexp.MustCompile(`\blarder_[a-z0-9_]*[a-z0-9]\b`)
	for _, file := range []string{operationsDoc, "../../README.md", "../../docs/SECURITY.md", "../../docs/ARCHITECTURE.md"} {
		b, err := os.ReadFile(file)
		must(t, err)
		lines := strings.Split(string(b), "\n")
		paragraphRenames := false // the paragraph of lines[i] says metrics were renamed
		for i, line := range lines {
			if i == 0 || lines[i-1] == "" {
				paragraphRenames = false
				for _, l := range lines[i:] {
					if l == "" {
						break
					}
					paragraphRenames = paragraphRenames || strings.Contains(strings.ToLower(l), "renamed")
				}
			}
			for _, n := range name.FindAllString(line, -1) {
				if _, old := renamed[n]; old && paragraphRenames {
					continue
				}
				if !familyExists(fams, n) && !strings.HasSuffix(n, "_") {
					t.Errorf("%s:%d names %s, which is not exported", file, i+1, n)
				}
			}
		}
	}
}

// familyExists reports whether n is an exported family, or the _bucket,
// _sum or _count series of an exported histogram.
func familyExists(fams map[string]*dto.MetricFamily, n string) bool {
	if _, ok := fams[n]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if f, ok := fams[strings.TrimSuffix(n, suffix)]; ok && strings.HasSuffix(n, suffix) && f.GetType() == dto.MetricType_HISTOGRAM {
			return true
		}
	}
	return false
}
