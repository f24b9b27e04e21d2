package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/larderfs/larder"
)

// exportPage is how many events export reads from the store at once: few
// enough that memory stays small whatever the trail's size, many enough
// that the queries cost little beside the writing.
const exportPage = 5000

func runAuditExport(ctx context.Context, env *Env, args []string) error {
	f := auditReadFlags{accounts: defaultAccountConfig(env.Getenv)}
	var ff eventFilterFlags
	fs := newAuditFlagSet(env, "export", "export [--format jsonl|csv] "+eventFilterSynopsis+" [flags]",
		"Writes every event of the audit trail that matches to standard output, in the\n"+
			"order they arrived, a page at a time, whatever their number: the events there\n"+
			"when it starts; those that arrive meanwhile are left for the next export\n"+
			"(--after the last seq written).\n"+
			"jsonl is one JSON object per line, the form of --json and of the jsonl: sink.\n"+
			"csv has a header line and the same fields; a text field that begins with\n"+
			"=, +, -, @, a tab or a carriage return is written after a ' so that a\n"+
			"spreadsheet shows it as text rather than run it as a formula (jsonl is exact).\n"+
			eventFilterHelp(), &f)
	ff.define(fs)
	format := fs.String("format", "jsonl", "`jsonl` or csv")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	var w eventWriter
	bw := bufio.NewWriterSize(env.Stdout, 64<<10)
	switch *format {
	case "jsonl":
		w = &jsonlWriter{enc: json.NewEncoder(bw)}
	case "csv":
		w = &csvWriter{w: csv.NewWriter(bw)}
	default:
		return usageError("bad --format %q: want jsonl or csv", *format)
	}
	if f.asJSON {
		return usageError("--json is for query and tail; export writes --format jsonl or csv")
	}
	filter, store, closeStore, err := openFiltered(ctx, &f, &ff)
	if err != nil {
		return err
	}
	defer closeStore()

	// The newest event now marks the end: a busy server adds events as
	// fast as an export could read them, and the export would never end.
	end, err := newestSeq(ctx, store)
	if err != nil {
		return err
	}
	if err := w.begin(); err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	if end > 0 {
		filter.Limit = exportPage
	pages:
		for filter.AfterSeq < end {
			page, err := store.Events(ctx, filter)
			if err != nil {
				return err
			}
			for i := range page {
				if page[i].Seq > end {
					break pages
				}
				if err := w.write(&page[i]); err != nil {
					return fmt.Errorf("audit export: %w", err)
				}
			}
			if len(page) < exportPage {
				break
			}
			filter.AfterSeq = page[len(page)-1].Seq
			if err := w.flush(); err != nil {
				return fmt.Errorf("audit export: %w", err)
			}
			if err := bw.Flush(); err != nil {
				return fmt.Errorf("audit export: %w", err)
			}
		}
	}
	if err := w.flush(); err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	return nil
}

// eventWriter writes events in one format of export.
type eventWriter interface {
	begin() error // before the first event
	write(e *larder.Event) error
	flush() error
}

type jsonlWriter struct{ enc *json.Encoder }

func (w *jsonlWriter) begin() error                { return nil }
func (w *jsonlWriter) write(e *larder.Event) error { return w.enc.Encode(e) }
func (w *jsonlWriter) flush() error                { return nil }

// csvHeader names the columns of the CSV form: the fields of the JSON form.
var csvHeader = []string{"id", "seq", "time", "kind", "server", "user", "remote", "path",
	"bytes", "sha256", "status", "duration_ns", "reason"}

type csvWriter struct {
	w   *csv.Writer
	row []string
}

func (w *csvWriter) begin() error { return w.w.Write(csvHeader) }

func (w *csvWriter) write(e *larder.Event) error {
	var sum string
	if e.HasSHA256() {
		sum = hex.EncodeToString(e.SHA256[:])
	}
	w.row = append(w.row[:0], e.ID.String(), strconv.FormatInt(e.Seq, 10),
		e.Time.UTC().Format(time.RFC3339Nano), asText(string(e.Kind)), asText(e.Server),
		asText(e.User), asText(e.Remote), asText(e.Path), strconv.FormatInt(e.Bytes, 10), sum,
		strconv.Itoa(e.Status), strconv.FormatInt(int64(e.Duration), 10), asText(e.Reason))
	return w.w.Write(w.row)
}

func (w *csvWriter) flush() error {
	w.w.Flush()
	return w.w.Error()
}

// asText returns s as a CSV cell that a spreadsheet shows as text: after a
// ' if it begins with a character that makes a formula of it (=, +, -, @)
// or that some read as one (a tab, a carriage return). User names and
// reasons come from clients, those that fail to log in too: "=HYPERLINK(…)"
// as a name must not become a live formula on an auditor's screen.
func asText(s string) string {
	if s != "" && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' || s[0] == '\r') {
		return "'" + s
	}
	return s
}
