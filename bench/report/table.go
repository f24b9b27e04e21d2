// Package report turns the bench's results into what a reader sees: markdown
// tables, PNG charts, and the generated part of docs/BENCHMARKS.md. It
// measures nothing, and it is the only package of the bench that draws: the
// plotting libraries are its dependencies alone.
package report

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Table is a scenario's result: a titled markdown table with notes below.
type Table struct {
	Title  string
	Header []string
	Rows   [][]string
	Notes  []string
	Charts []*Chart // drawn from the same figures, written with --charts
}

// Add appends a row.
func (t *Table) Add(cells ...string) { t.Rows = append(t.Rows, cells) }

// Note appends a note, printed as a list item under the table.
func (t *Table) Note(format string, args ...any) {
	t.Notes = append(t.Notes, fmt.Sprintf(format, args...))
}

// Markdown writes t as a GitHub-flavoured markdown table, its columns
// padded to equal width so that it also reads as plain text. A cell's "|"
// is escaped; a row shorter than the header is padded with empty cells.
func (t *Table) Markdown(w io.Writer) error {
	var b strings.Builder
	if t.Title != "" {
		fmt.Fprintf(&b, "### %s\n\n", t.Title)
	}
	widths := make([]int, len(t.Header))
	cell := func(row []string, i int) string {
		if i < len(row) {
			return strings.ReplaceAll(row[i], "|", `\|`)
		}
		return ""
	}
	for i := range t.Header {
		widths[i] = max(3, utf8.RuneCountInString(cell(t.Header, i)))
		for _, r := range t.Rows {
			widths[i] = max(widths[i], utf8.RuneCountInString(cell(r, i)))
		}
	}
	line := func(row []string) {
		b.WriteString("|")
		for i, wd := range widths {
			c := cell(row, i)
			b.WriteString(" " + c + strings.Repeat(" ", wd-utf8.RuneCountInString(c)) + " |")
		}
		b.WriteString("\n")
	}
	line(t.Header)
	b.WriteString("|")
	for _, wd := range widths {
		b.WriteString(strings.Repeat("-", wd+2) + "|")
	}
	b.WriteString("\n")
	for _, r := range t.Rows {
		line(r)
	}
	if len(t.Notes) > 0 {
		b.WriteString("\n")
		for _, n := range t.Notes {
			b.WriteString("- " + n + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
