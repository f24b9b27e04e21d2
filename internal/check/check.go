// Package check judges other implementations of the course protocol byte
// by byte: it runs a suite of checks against a server (Server) and reports,
// for each, what was sent, what was expected, what came back and why it
// matters. It reads replies with the course package's block reader and
// checks every hash itself, trusting nothing the peer says about its own
// reply. docs/CHECK.md describes every check.
package check

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Outcome is what became of one check.
type Outcome string

// The outcomes of a check.
const (
	Pass          Outcome = "pass"
	Fail          Outcome = "fail"
	NotApplicable Outcome = "n/a"   // the check could not run: a file or an earlier step was missing
	KnownFailure  Outcome = "known" // failed as the course's reference server fails it (--profile reference)
)

// Profiles say what a failure of a check known to fail on the course's
// reference server means.
const (
	ProfileStrict    = "strict"    // every failure counts
	ProfileReference = "reference" // the reference server's known deviations are expected
)

// Result is the outcome of one check, with everything a student needs to
// see what went wrong.
type Result struct {
	ID        string  `json:"id"`
	Title     string  `json:"title"`
	Required  bool    `json:"required"`
	Outcome   Outcome `json:"outcome"`
	Sent      string  `json:"sent,omitempty"`
	Expected  string  `json:"expected,omitempty"`
	Got       string  `json:"got,omitempty"`
	Why       string  `json:"why"`
	Reference string  `json:"reference,omitempty"` // how the course's reference server fares, when it fails
}

// Summary counts the results of a run.
type Summary struct {
	Checks         int `json:"checks"`
	Passed         int `json:"passed"`
	Failed         int `json:"failed"`
	Known          int `json:"known_failures"`
	NotApplicable  int `json:"not_applicable"`
	Required       int `json:"required"`        // required checks that ran
	RequiredPassed int `json:"required_passed"` // of those, passed
}

// Report is the result of a run of the suite.
type Report struct {
	Kind    string   `json:"kind"`   // "server" or "client"
	Target  string   `json:"target"` // the address or command checked
	Mode    string   `json:"mode"`   // what the checker could rely on (local files, the handout's files)
	Profile string   `json:"profile"`
	Notes   []string `json:"notes,omitempty"`
	Results []Result `json:"results"`
	Summary Summary  `json:"summary"`
}

// ErrFailed is returned by OK when a required check failed.
var ErrFailed = errors.New("check: a required check failed")

// referenceLabel names the course's own implementation of each kind.
var referenceLabel = map[string]string{"server": "reference server:", "client": "handout client:"}

// summarize fills r.Summary from r.Results.
func (r *Report) summarize() {
	s := Summary{Checks: len(r.Results)}
	for _, res := range r.Results {
		switch res.Outcome {
		case Pass:
			s.Passed++
		case Fail:
			s.Failed++
		case KnownFailure:
			s.Known++
		case NotApplicable:
			s.NotApplicable++
		}
		if res.Required && res.Outcome != NotApplicable {
			s.Required++
			if res.Outcome == Pass {
				s.RequiredPassed++
			}
		}
	}
	r.Summary = s
}

// OK returns nil if every required check that ran passed (or, under
// --profile reference, failed as the reference server fails it), and
// ErrFailed otherwise.
func (r *Report) OK() error {
	for _, res := range r.Results {
		if res.Required && res.Outcome == Fail {
			return ErrFailed
		}
	}
	return nil
}

// WriteJSON writes the report as one JSON document, for grading scripts.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for a person: failures in full, passes in a
// line each, then the summary.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "larder check %s %s\n", r.Kind, r.Target)
	fmt.Fprintf(&b, "mode: %s; profile: %s\n", r.Mode, r.Profile)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	b.WriteByte('\n')
	for _, res := range r.Results {
		req := "required"
		if !res.Required {
			req = "advisory"
		}
		fmt.Fprintf(&b, "%-5s %-28s %s (%s)\n", strings.ToUpper(string(res.Outcome)), res.ID, res.Title, req)
		if res.Outcome == Pass {
			continue
		}
		if res.Sent != "" {
			fmt.Fprintf(&b, "      sent:     %s\n", res.Sent)
		}
		if res.Expected != "" {
			fmt.Fprintf(&b, "      expected: %s\n", res.Expected)
		}
		if res.Got != "" {
			fmt.Fprintf(&b, "      got:      %s\n", res.Got)
		}
		fmt.Fprintf(&b, "      why:      %s\n", res.Why)
		if res.Reference != "" {
			fmt.Fprintf(&b, "      %s %s\n", referenceLabel[r.Kind], res.Reference)
		}
	}
	s := r.Summary
	fmt.Fprintf(&b, "\n%d checks: %d passed, %d failed, %d known reference failures, %d not applicable\n",
		s.Checks, s.Passed, s.Failed, s.Known, s.NotApplicable)
	fmt.Fprintf(&b, "score: %d of %d required checks passed", s.RequiredPassed, s.Required)
	if s.Known > 0 {
		fmt.Fprintf(&b, "; %d checks failed as the course's own implementation does (--profile reference)", s.Known)
	}
	b.WriteByte('\n')
	if r.OK() == nil {
		b.WriteString("result: every required check passed\n")
	} else {
		b.WriteString("result: FAILED (see the checks marked FAIL above)\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
