//go:build linux

// Command bench measures larder against a bare baseline server, side by side
// in one invocation, and prints markdown tables for docs/BENCHMARKS.md.
//
// It is a module of its own (bench/go.mod, which replaces larder's module
// with this checkout), so that the plotting libraries of its charts stay out
// of the server's go.mod. Run it in bench/; it builds the larder of the
// checkout around it:
//
//	go run . rps            requests per second and latency, 1 to 256 clients
//	go run . throughput     MB/s of one 100 MiB retrieval
//	go run . idle-latency   latency of one request with 1,000 idle connections open
//	go run . idle-memory    resident memory per idle connection, 10,000 open
//	go run . hashcost       time and memory of one password verification
//	go run . flood          a logged-in user and larder's memory during a login flood
//	go run . logins         server CPU per login: LNP/1's login against the course's
//	go run . enumeration    login time, unknown user against wrong password
//	go run . audit          requests per second with the audit sink off, up and down
//	go run . native         MB/s of a 1 GiB upload and download over LNP/1, against scp
//	go run . mixed          small requests' latency alone and beside large downloads
//	go run . all            all of the above with quick defaults
//
//	go run . compare        larder against nginx, scp and the machine's
//	                        ceilings: the scenarios above that compare,
//	                        written into docs/BENCHMARKS.md with charts
//
// Every figure is a ratio against a baseline measured in the same run (in
// the audit scenario, larder itself with its audit trail off; in the
// native scenario, scp to a private sshd).
// Rounds alternate the systems (A B A B ...) so that the noise of a shared
// machine falls on both alike, and the tables report medians across rounds.
// Each system under test runs as a child process whose PID the bench knows,
// so that it can read the system's CPU time and memory from /proc.
//
// The baseline is this same program re-executed in a hidden mode
// ("bench baseline-server"): a bare Go TCP server, one goroutine per
// connection, no authentication, that answers with the bytes larder would
// send. It is the ceiling of the connection-per-request pattern.
//
// Run "go run . SCENARIO -h" for the flags of a scenario. Every table
// is followed by the command that reproduces it, all flags spelled out.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/larderfs/larder/bench/report"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == baselineMode {
		if err := runBaselineServer(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "bench %s: %v\n", baselineMode, err)
			os.Exit(1)
		}
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	// SIGPIPE too: "bench rps | head" must not kill the bench before it has
	// stopped its servers and removed its files. It stays caught, so that
	// the writes that follow fail instead of killing the bench.
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGPIPE)
	go func() {
		for s := range sigs {
			cancel()
			if s != syscall.SIGPIPE {
				// The scenario winds down and the servers are stopped;
				// a second Ctrl-C kills the bench at once (its servers
				// then die with it: see startProcess).
				signal.Reset(os.Interrupt, syscall.SIGTERM)
			}
		}
	}()
	code := run(ctx, os.Stdout, os.Stderr, os.Args[1:])
	cancel()
	os.Exit(code)
}

// scenarioConfig is the configuration of one scenario: its flags, its quick
// variant for "all", and the function that runs it.
type scenarioConfig interface {
	// register defines the scenario's flags on fs, with the config's
	// current values as defaults.
	register(fs *flag.FlagSet)
	// quick shrinks the defaults for "bench all".
	quick()
	// run runs the rounds and returns what they measured: figures, not
	// text. When it fails part way, it returns what it had measured too,
	// or nil if nothing.
	run(env *Env) (results, error)
}

// results is what a scenario measured. Presenting it is apart from
// measuring it: tables turns the figures into the report's tables and
// charts, and measures nothing (what a server logged is read into the
// results while it runs).
type results interface {
	tables() []*report.Table
}

// scenario is one named benchmark.
type scenario struct {
	name    string
	summary string
	config  func() scenarioConfig // a config with the default values
}

func scenarios() []scenario {
	return []scenario{
		{"rps", "authenticated small-file requests per second and latency at 1 to 256 clients", newRPSConfig},
		{"throughput", "MB/s of one large retrieval, every block hash checked", newThroughputConfig},
		{"idle-latency", "latency of one request with idle connections held open, against none", newIdleLatencyConfig},
		{"idle-memory", "resident memory per idle connection", newIdleMemoryConfig},
		{"hashcost", "time and memory of one password verification, against the course server's SHA-256", newHashCostConfig},
		{"flood", "a logged-in user's latency and larder's memory during a flood of wrong-password logins", newFloodConfig},
		{"logins", "server CPU per successful login and logins per second: LNP/1's channel-bound login against the course signature", newLoginsConfig},
		{"enumeration", "login time for an unknown user against a known user with a wrong password", newEnumerationConfig},
		{"audit", "authenticated small-file requests per second with the audit trail off, its sink up, and its sink down", newAuditConfig},
		{"native", "MB/s of one large file up and down over LNP/1, with TLS and in plaintext, against nginx and scp to a local sshd", newLNPConfig},
		{"s3", "files on an S3-compatible store (a private versitygw): one large file up and down over LNP/1 and small requests per second, against the local disk and a plain S3 client", newS3Config},
		{"mixed", "small requests' latency alone and beside a few large downloads: large transfers must not starve small requests", newMixedConfig},
	}
}

// run runs the scenario named by args[0] and returns the exit code.
func run(ctx context.Context, stdout, stderr io.Writer, args []string) int {
	if len(args) == 0 || slices.Contains([]string{"help", "-h", "-help", "--help"}, args[0]) {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	name, args := args[0], args[1:]
	if name == "compare" {
		return runCompare(ctx, stdout, stderr, args)
	}

	var selected []scenario
	if name == "all" {
		selected = scenarios()
	} else {
		for _, s := range scenarios() {
			if s.name == name {
				selected = []scenario{s}
			}
		}
	}
	if selected == nil {
		fmt.Fprintf(stderr, "bench: unknown scenario %q\n\n", name)
		usage(stderr)
		return 2
	}

	// Parse the command line: "all" takes the common flags only.
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var common commonOptions
	common.register(fs)
	configs := make([]scenarioConfig, len(selected))
	for i, s := range selected {
		configs[i] = s.config()
		if name == "all" {
			configs[i].quick()
		} else {
			configs[i].register(fs)
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected arguments %q\n", fs.Args())
		return 2
	}

	env, err := newEnv(ctx, stdout, stderr, common)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	// Close stops every server and removes the temporary folder, also when
	// a scenario panics (the panic goes on after the deferred call).
	defer env.Close()

	env.printSystemInfo()
	failed := false
	for i, s := range selected {
		if ctx.Err() != nil {
			break
		}
		cmdline, err := runScenario(env, stdout, stderr, s, common, configs[i])
		if err != nil {
			failed = true
		}
		fmt.Fprintf(stdout, "\nReproduce: `%s`  \nLoad average after the scenario: %s\n", cmdline, loadAverage())
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "bench: interrupted")
		return 130
	}
	if failed {
		return 1
	}
	return 0
}

// runScenario runs one scenario in env and prints its heading, command,
// tables and charts (see --charts) to out, and its failure to stderr too.
// It stops the scenario's servers, and returns the command that
// reproduces it and the scenario's error.
func runScenario(env *Env, out, stderr io.Writer, s scenario, common commonOptions, cfg scenarioConfig) (string, error) {
	defer env.stopAll()
	cmdline := commandLine(s.name, common, cfg)
	fmt.Fprintf(out, "\n## %s: %s\n\nCommand: `%s`\n", s.name, s.summary, cmdline)
	env.scenario = s.name
	res, err := cfg.run(env)
	var tables []*report.Table
	if res != nil {
		tables = res.tables()
	}
	for _, t := range tables {
		fmt.Fprintln(out)
		t.Markdown(out)
		if cerr := report.WriteCharts(out, common.charts, s.name, t); cerr != nil && err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(out, "\n**%s failed: %v**\n", s.name, err)
		fmt.Fprintf(stderr, "bench %s: %v\n", s.name, err)
	}
	return cmdline, err
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage (in bench/): go run . <scenario> [flags]\n\nScenarios:\n")
	for _, s := range scenarios() {
		fmt.Fprintf(w, "  %-13s %s\n", s.name, s.summary)
	}
	fmt.Fprintf(w, "  %-13s %s\n", "all", "all of the above with quick defaults")
	fmt.Fprintf(w, "  %-13s %s\n", "compare", "larder against nginx, scp and the machine's ceilings, written into docs/BENCHMARKS.md with charts (--quick: 2 minutes)")
	fmt.Fprintf(w, "\nRun 'go run . <scenario> -h' for the flags of a scenario.\n")
}

// runCommand runs the bench from the root of the checkout: it is a module of
// its own, and relative paths in its flags are relative to bench/.
const runCommand = "cd bench && go run ."

// commandLine returns the command that reproduces a scenario's run, every
// flag spelled out so that a change of defaults does not change its meaning.
func commandLine(name string, common commonOptions, cfg scenarioConfig) string {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	common.register(fs)
	cfg.register(fs)
	parts := []string{runCommand, name}
	fs.VisitAll(func(f *flag.Flag) {
		v := f.Value.String()
		if v == "" {
			return // an unset path: the default behaviour
		}
		parts = append(parts, "--"+f.Name, shellQuote(v))
	})
	return strings.Join(parts, " ")
}

// shellQuote quotes s for a POSIX shell if it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:,=+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// commonOptions are the flags every scenario takes.
type commonOptions struct {
	larder         string // a prebuilt larder binary; "" builds one
	serverLogLevel string // --log-level of larder serve
	cpuProfile     string // prefix of the baseline server's CPU profiles
	charts         string // folder of the tables' PNG charts; "" draws none
	profiles       string // folder of larder's CPU profiles; "" writes none
	ports          portRange
}

func (o *commonOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.larder, "larder", o.larder, "larder `binary` to measure (default: go build ./cmd/larder into the temporary folder)")
	if o.serverLogLevel == "" {
		o.serverLogLevel = "warn"
	}
	fs.StringVar(&o.serverLogLevel, "server-log-level", o.serverLogLevel, "--log-level of larder serve (info logs one line per request)")
	fs.StringVar(&o.cpuProfile, "baseline-cpuprofile", o.cpuProfile, "write the baseline server's CPU profile to `prefix`-N.pprof")
	fs.StringVar(&o.profiles, "profiles", o.profiles, "write a CPU profile of each larder server the scenario starts, from its start to its stop, into `folder` as SCENARIO-N.pprof (larder serve --cpuprofile)")
	fs.Var(&o.ports, "ports", "take the ports of the servers the bench starts from `LO-HI` on 127.0.0.1 (default: ports the kernel picks)")
	fs.StringVar(&o.charts, "charts", o.charts, "draw the tables' charts as PNG files in `folder`, referenced from the markdown as FOLDER-NAME/FILE.png (docs/bench beside docs/BENCHMARKS.md)")
}
