package metrics_test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

const dashboardFile = "../../docs/grafana/larder.json"

// dashboard is what the test reads of a Grafana dashboard: its panels
// (rows hold more when collapsed) and its template variables.
type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID      int     `json:"id"`
	Title   string  `json:"title"`
	Type    string  `json:"type"`
	Panels  []panel `json:"panels"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

// TestGrafanaDashboard checks docs/grafana/larder.json: it parses, its
// panels have unique IDs, and every PromQL query in it, the template
// variables' included, names only metrics that larder exports and labels
// that they have.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile(dashboardFile)
	must(t, err)
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s does not parse: %v", dashboardFile, err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: title %q, uid %q, %d panels; want all three", dashboardFile, d.Title, d.UID, len(d.Panels))
	}
	fams := exported(t)
	labels := map[string]bool{"le": true, "instance": true, "job": true}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
	}
	ids := map[int]string{}
	queries := 0
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if other, dup := ids[p.ID]; dup {
				t.Errorf("panels %q and %q have the same id %d", other, p.Title, p.ID)
			}
			ids[p.ID] = p.Title
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				queries++
				checkQuery(t, fmt.Sprintf("panel %q, query %s", p.Title, tg.RefID), tg.Expr, fams, labels)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		queries++
		where := fmt.Sprintf("variable %q", v.Name)
		// label_values(QUERY, LABEL) is Grafana's, not PromQL.
		q, ok := strings.CutPrefix(v.Definition, "label_values(")
		comma := strings.LastIndexByte(q, ',')
		if !ok || comma < 0 || !strings.HasSuffix(q, ")") {
			t.Errorf("%s: %q is not label_values(QUERY, LABEL)", where, v.Definition)
			continue
		}
		checkQuery(t, where, q[:comma], fams, labels)
		if l := strings.TrimSpace(q[comma+1 : len(q)-1]); !labels[l] {
			t.Errorf("%s uses the label %s, which no metric has", where, l)
		}
	}
	if queries < 20 {
		t.Errorf("%d queries in the dashboard; it should show more than that", queries)
	}
}

// checkQuery checks that expr names at least one metric, only metrics in
// fams, and only labels in labels.
func checkQuery(t *testing.T, where, expr string, fams map[string]*dto.MetricFamily, labels map[string]bool) {
	t.Helper()
	metrics, labelNames, err := promqlNames(expr)
	if err != nil {
		t.Errorf("%s: %v in %s", where, err, expr)
		return
	}
	if len(metrics) == 0 {
		t.Errorf("%s names no metric: %s", where, expr)
	}
	for _, m := range metrics {
		if !familyExists(fams, m) {
			t.Errorf("%s names %s, which larder does not export: %s", where, m, expr)
		}
	}
	for _, l := range labelNames {
		if !labels[l] {
			t.Errorf("%s uses the label %s, which no metric has: %s", where, l, expr)
		}
	}
}

// promqlFunctions are the functions, aggregations and keywords a query may
// use: an identifier among them is not a metric's name.
var promqlFunctions = []string{
	"sum", "min", "max", "avg", "count", "topk", "bottomk", "quantile", "stddev",
	"rate", "irate", "increase", "delta", "deriv", "histogram_quantile", "clamp_min", "clamp_max",
	"abs", "ceil", "floor", "round", "time", "vector", "scalar",
	"avg_over_time", "max_over_time", "min_over_time", "sum_over_time", "absent", "changes", "resets",
}

var promqlKeywords = []string{"and", "or", "unless", "bool", "offset"}

// promqlGrouping are the keywords followed by a list of labels.
var promqlGrouping = []string{"by", "without", "on", "ignoring", "group_left", "group_right"}

// promqlNames returns the metric names and the label names of expr, a
// PromQL expression with Grafana's variables. It is a scanner, not a
// parser: it knows strings, range selectors, label matchers, grouping
// clauses, numbers and identifiers, enough to tell names apart.
func promqlNames(expr string) (metrics, labels []string, err error) {
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isIdent := func(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	ident := func(i int) (string, int) {
		j := i
		for j < len(expr) && isIdent(expr[j]) {
			j++
		}
		return expr[i:j], j
	}
	skipSpace := func(i int) int {
		for i < len(expr) && (expr[i] == ' ' || expr[i] == '\n' || expr[i] == '\t') {
			i++
		}
		return i
	}
	skipString := func(i int) (int, error) {
		q := expr[i]
		for j := i + 1; j < len(expr); j++ {
			switch expr[j] {
			case '\\':
				j++
			case q:
				return j + 1, nil
			}
		}
		return 0, fmt.Errorf("a string not closed at offset %d", i)
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			if i, err = skipString(i); err != nil {
				return nil, nil, err
			}
		case c == '[':
			j := strings.IndexByte(expr[i:], ']')
			if j < 0 {
				return nil, nil, fmt.Errorf("a range not closed at offset %d", i)
			}
			i += j + 1
		case c == '{':
			// Label matchers: name op "value", ...
			for i++; ; {
				i = skipSpace(i)
				if i >= len(expr) {
					return nil, nil, fmt.Errorf("a label matcher not closed")
				}
				if expr[i] == '}' {
					i++
					break
				}
				if expr[i] == ',' {
					i++
					continue
				}
				if !isIdentStart(expr[i]) {
					return nil, nil, fmt.Errorf("%q where a label name belongs, at offset %d", expr[i], i)
				}
				var name string
				name, i = ident(i)
				labels = append(labels, name)
				i = skipSpace(i)
				for i < len(expr) && strings.IndexByte("=!~", expr[i]) >= 0 {
					i++
				}
				i = skipSpace(i)
				if i >= len(expr) || expr[i] != '"' && expr[i] != '\'' && expr[i] != '`' {
					return nil, nil, fmt.Errorf("label %s is not matched with a string", name)
				}
				if i, err = skipString(i); err != nil {
					return nil, nil, err
				}
			}
		case isDigit(c) || c == '.' && i+1 < len(expr) && isDigit(expr[i+1]):
			for i < len(expr) && (isDigit(expr[i]) || expr[i] == '.' || expr[i] == 'e' || expr[i] == 'E' ||
				(expr[i] == '-' || expr[i] == '+') && (expr[i-1] == 'e' || expr[i-1] == 'E')) {
				i++
			}
			for i < len(expr) && expr[i] >= 'a' && expr[i] <= 'z' {
				i++ // the unit of a duration: offset 5m
			}
		case isIdentStart(c):
			var name string
			name, i = ident(i)
			next := skipSpace(i)
			switch {
			case slices.Contains(promqlGrouping, name):
				if next >= len(expr) || expr[next] != '(' {
					if name == "group_left" || name == "group_right" {
						continue // without a list of labels
					}
					return nil, nil, fmt.Errorf("%s without its list of labels", name)
				}
				end := strings.IndexByte(expr[next:], ')')
				if end < 0 {
					return nil, nil, fmt.Errorf("the labels of %s not closed", name)
				}
				for l := range strings.SplitSeq(expr[next+1:next+end], ",") {
					if l = strings.TrimSpace(l); l != "" {
						labels = append(labels, l)
					}
				}
				i = next + end + 1
			case slices.Contains(promqlFunctions, name):
				// A function, or an aggregation followed by its grouping.
			case next < len(expr) && expr[next] == '(':
				return nil, nil, fmt.Errorf("%s( is not a function this test knows", name)
			case slices.Contains(promqlKeywords, name):
			default:
				metrics = append(metrics, name)
			}
		default:
			i++
		}
	}
	return metrics, labels, nil
}

func TestPromQLNames(t *testing.T) {
	for _, tc := range []struct {
		expr            string
		metrics, labels string
	}{
		{`sum by (le, op) (rate(a_bucket{instance=~"$instance", status!="O}K"}[$__rate_interval]))`, "a_bucket", "le op instance status"},
		{`histogram_quantile(0.99, x) / clamp_min(y + z, 1e-9)`, "x y z", ""},
		{`a or on (job) group_left b offset 5m`, "a b", "job"},
	} {
		m, l, err := promqlNames(tc.expr)
		if err != nil || strings.Join(m, " ") != tc.metrics || strings.Join(l, " ") != tc.labels {
			t.Errorf("promqlNames(%s): got %q, %q, %v; want %s; %s", tc.expr, m, l, err, tc.metrics, tc.labels)
		}
	}
	for _, bad := range []string{`rate(x[5m)`, `x{a="b}`, `nosuch_function(x)`, `x{a=b}`} {
		if _, _, err := promqlNames(bad); err == nil {
			t.Errorf("promqlNames(%s): no error", bad)
		}
	}
}
