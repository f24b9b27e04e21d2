package report

import (
	"bytes"
	"testing"
)

func TestTableMarkdown(t *testing.T) {
	tbl := &Table{Title: "T", Header: []string{"system", "req/s"}}
	tbl.Add("larder", "5123")
	tbl.Add("a|b") // short row, and a pipe to escape
	tbl.Note("n=%d", 3)
	var b bytes.Buffer
	if err := tbl.Markdown(&b); err != nil {
		t.Fatal(err)
	}
	want := "### T\n\n" +
		"| system | req/s |\n" +
		"|--------|-------|\n" +
		"| larder | 5123  |\n" +
		`| a\|b   |       |` + "\n" +
		"\n- n=3\n"
	if got := b.String(); got != want {
		t.Errorf("Markdown:\n%s\nwant:\n%s", got, want)
	}
}
