package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "poolbench:", err)
		os.Exit(1)
	}
}

// runOptions are the flags of `poolbench run`.
type runOptions struct {
	suite   string
	only    string
	out     string
	rounds  int
	seconds int
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "poolbench",
		Short:         "Benchmark pgpool and kvproxy against their peers on this machine",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.CompletionOptions.DisableDefaultCmd = true

	var o runOptions
	run := &cobra.Command{
		Use:   "run",
		Short: "Start every server and proxy, run the scenarios, write results.json, report.md and charts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSuite(cmd.Context(), o, "poolbench "+strings.Join(os.Args[1:], " "), stdout, stderr)
		},
	}
	f := run.Flags()
	f.StringVar(&o.suite, "suite", "quick", "smoke (under a minute), quick (about ten minutes) or full (about an hour)")
	f.StringVar(&o.only, "only", "", "run one protocol only: pg, kv or memcache")
	f.StringVar(&o.out, "out", "", "directory for the results (default: bench-results-<date> in the current directory)")
	f.IntVar(&o.rounds, "rounds", 0, "alternating rounds per scenario (default: the suite's)")
	f.IntVar(&o.seconds, "seconds", 0, "seconds per pgbench run (default: the suite's)")

	report := &cobra.Command{
		Use:   "report DIR",
		Short: "Write DIR/report.md and DIR's charts again from DIR/results.json",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r, err := LoadResults(args[0])
			if err != nil {
				return err
			}
			if miss := CheckMetrics(r); len(miss) > 0 {
				fmt.Fprintf(stderr, "poolbench: %s: %d results lack figures, e.g. %s\n", args[0], len(miss), miss[0])
			}
			if err := WriteReport(args[0], r); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s\n", filepath.Join(args[0], "report.md"))
			return nil
		},
	}
	root.AddCommand(run, report)
	return root
}

// required lists the programs each protocol needs.
var required = map[string][]string{
	"pg":       {"initdb", "postgres", "pgbench", "pgbouncer"},
	"kv":       {"redis-server", "redis-benchmark", "nutcracker"},
	"memcache": {"memcached", "nutcracker"},
}

// otherPoolers are poolers poolbench detects on PATH but does not configure.
var otherPoolers = []string{"odyssey", "pgcat", "pgdog"}

// errMissing is returned when programs a run needs are not installed.
var errMissing = errors.New("poolbench: programs missing")

// runSuite is `poolbench run`.
func runSuite(ctx context.Context, o runOptions, command string, stdout, stderr io.Writer) error {
	su, ok := suites[o.suite]
	if !ok {
		return fmt.Errorf("poolbench: --suite %q: want smoke, quick or full", o.suite)
	}
	if o.rounds > 0 {
		su.rounds = o.rounds
	}
	if o.seconds > 0 {
		su.pgSeconds = o.seconds
		su.kvSeconds = float64(o.seconds)
	}
	protos, err := onlyProtocols(o.only)
	if err != nil {
		return err
	}
	res := &Results{Schema: SchemaVersion, Suite: su.name, Command: command, Started: time.Now().UTC(),
		Machine: machineInfo(), Tools: map[string]string{}}
	if la := res.Machine.LoadAvg[0]; la > float64(res.Machine.Cores) {
		w := fmt.Sprintf("load average %.2f at start exceeds the %d cores: other work competes with the benchmark, figures are noisy", la, res.Machine.Cores)
		res.Warnings = append(res.Warnings, w)
		fmt.Fprintln(stderr, "poolbench: warning:", w)
	}

	// What is installed.
	b := &bins{paths: map[string]string{}}
	var missing []string
	for _, p := range protos {
		for _, name := range required[p] {
			path, err := testenv.FindProgram(name)
			if err != nil {
				missing = append(missing, err.Error())
				continue
			}
			b.paths[name] = path
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w:\n  %s", errMissing, strings.Join(missing, "\n  "))
	}
	for _, name := range otherPoolers {
		if path, err := exec.LookPath(name); err == nil {
			res.Detected = append(res.Detected, DetectedTool{Name: name, Path: path,
				Status: "detected but not run: poolbench has no configuration for it yet"})
		}
	}
	for name, path := range b.paths {
		res.Tools[name] = toolVersion(path, "--version")
	}

	out := o.out
	if out == "" {
		out = "bench-results-" + time.Now().Format("20060102-150405")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "poolbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := os.Chmod(work, 0o755); err != nil { // programs that give root up read their files in it
		return err
	}
	raiseNoFile()

	fmt.Fprintln(stderr, "poolbench: building pgpool and kvproxy from this tree")
	binDir := filepath.Join(work, "bin")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		return err
	}
	if slices.Contains(protos, "pg") {
		if b.pgpool, err = testenv.Build("github.com/poolsuite/poolsuite/cmd/pgpool", binDir); err != nil {
			return err
		}
	}
	if slices.Contains(protos, "kv") || slices.Contains(protos, "memcache") {
		if b.kvpx, err = testenv.Build("github.com/poolsuite/poolsuite/cmd/kvproxy", binDir); err != nil {
			return err
		}
	}

	r := newRunner(su.rounds, stderr)
	// The plan, for the time left: three targets per protocol.
	if slices.Contains(protos, "pg") {
		r.plan(pgScenarios(su, &pgEnv{}, b, work), 3)
	}
	if slices.Contains(protos, "kv") {
		for _, n := range su.kvShards {
			r.plan(kvScenarios(su, &kvEnv{shards: n}, b), 3)
		}
	}
	if slices.Contains(protos, "memcache") {
		r.plan(mcScenarios(su, &kvEnv{shards: su.mcShards}), 3)
	}
	if slices.Contains(protos, "kv") && su.frozenClients > 0 {
		r.plan([]*scenario{frozenScenario(su, &kvEnv{shards: frozenShards})}, 2)
	}

	var cl cleanups
	defer cl.run()
	addTargets := func(ts []*target) {
		for _, t := range ts {
			res.Targets = append(res.Targets, TargetInfo{Name: t.name, Protocol: t.protocol, Desc: t.desc})
		}
	}
	runErr := func() error {
		if slices.Contains(protos, "pg") {
			fmt.Fprintln(stderr, "poolbench: starting PostgreSQL, PgBouncer and pgpool")
			maxClients := max(slices.Max(append(slices.Clone(su.pgClients), su.pgManyClients...)), su.idleClients, su.overloadClients)
			e, err := startPG(ctx, &cl, work, b, su.pgScale, su.poolSize, maxClients)
			if err != nil {
				return err
			}
			addTargets(e.targets)
			if err := runPG(ctx, r, pgScenarios(su, e, b, work), e, &cl, work, b); err != nil {
				return err
			}
			cl.run()
		}
		if slices.Contains(protos, "kv") {
			for _, n := range su.kvShards {
				fmt.Fprintf(stderr, "poolbench: starting %d redis-servers, nutcracker and kvproxy\n", n)
				e, err := startKV(&cl, work, b, n, true, defaultTimeoutMs)
				if err != nil {
					// The other shard counts can still run.
					cl.run()
					why := fmt.Sprintf("Redis scenarios over %d shards: starting the servers and proxies failed: %v", n, err)
					res.Skipped = append(res.Skipped, why)
					fmt.Fprintln(stderr, "poolbench: skipped:", why)
					continue
				}
				addTargets(e.targets)
				// Idle clients before the keys are set: on proxies that carried no load yet.
				scs := kvScenarios(su, e, b)
				idle := 0
				for idle < len(scs) && scs[idle].tmpl.Group == "kv-idle" {
					idle++
				}
				if err := r.runAll(ctx, scs[:idle], e.targets); err != nil {
					return err
				}
				if err := warmKV(ctx, b, e); err != nil {
					return err
				}
				if err := r.runAll(ctx, scs[idle:], e.targets); err != nil {
					return err
				}
				cl.run()
			}
			if su.frozenClients > 0 {
				fmt.Fprintf(stderr, "poolbench: starting %d redis-servers, nutcracker and kvproxy with a server timeout of %d ms\n", frozenShards, frozenTimeoutMs)
				e, err := startKV(&cl, work, b, frozenShards, true, frozenTimeoutMs)
				if err != nil {
					return err
				}
				if err := r.runAll(ctx, []*scenario{frozenScenario(su, e)}, e.targets); err != nil {
					return err
				}
				cl.run()
			}
		}
		if slices.Contains(protos, "memcache") {
			fmt.Fprintf(stderr, "poolbench: starting %d memcached, nutcracker and kvproxy\n", su.mcShards)
			e, err := startKV(&cl, work, b, su.mcShards, false, defaultTimeoutMs)
			if err != nil {
				return err
			}
			if e.note != "" {
				res.Skipped = append(res.Skipped, "memcache, kvproxy: "+e.note)
				fmt.Fprintln(stderr, "poolbench: note:", e.note)
			}
			addTargets(e.targets)
			for _, t := range e.targets {
				if err := warmMemcache(ctx, t); err != nil {
					return err
				}
			}
			if err := r.runAll(ctx, mcScenarios(su, e), e.targets); err != nil {
				return err
			}
			cl.run()
		}
		return nil
	}()
	res.Results = r.results
	ComputeRatios(res.Results)
	if miss := CheckMetrics(res); len(miss) > 0 {
		w := "figures missing: " + strings.Join(miss, "; ")
		res.Warnings = append(res.Warnings, w)
		fmt.Fprintln(stderr, "poolbench: warning:", w)
	}
	res.Finished = time.Now().UTC()
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.Machine.LoadAvgEnd, _ = parseLoadAvg(b)
	}
	if runErr != nil {
		// Keep what ran: the figures of the scenarios that finished, and which did not.
		if len(r.results) == 0 {
			return runErr
		}
		missing := r.missing()
		w := fmt.Sprintf("the run stopped early (%v): %d of %d scenarios did not run: %s",
			runErr, len(missing), len(r.names), strings.Join(missing, ", "))
		res.Warnings = append(res.Warnings, w)
		fmt.Fprintln(stderr, "poolbench: warning:", w)
	}
	if err := SaveResults(out, res); err != nil {
		return err
	}
	if err := WriteReport(out, res); err != nil {
		return err
	}
	if runErr != nil {
		fmt.Fprintf(stderr, "poolbench: the results so far are in %s\n", out)
		return runErr
	}
	fmt.Fprintf(stderr, "poolbench: %d runs in %v\n", r.runCount, time.Since(r.started).Round(time.Second))
	fmt.Fprintln(stdout, filepath.Join(out, "report.md"))
	return nil
}

// runPG runs the PostgreSQL scenarios in their order: those without settings of their
// own on e's poolers (PgBouncer's defaults), each run of scenarios with the same
// settings on poolers started with them for it and stopped afterwards.
func runPG(ctx context.Context, r *runner, scs []*scenario, e *pgEnv, cl *cleanups, work string, b *bins) error {
	for _, batch := range settingsBatches(scs) {
		key := settingsKey(batch[0].settings)
		if key == "" {
			if err := r.runAll(ctx, batch, e.targets); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(r.stderr, "poolbench: starting PgBouncer and pgpool with %s\n", key)
		var own cleanups
		cl.add(own.run) // stops them on an early return too; run twice is a no-op
		poolers, err := e.startPoolers(&own, work, b, batch[0].settings)
		if err != nil {
			own.run()
			return err
		}
		err = r.runAll(ctx, batch, append([]*target{e.targets[0]}, poolers...))
		own.run()
		if err != nil {
			return err
		}
	}
	return nil
}

// settingsBatches splits scs, in their order, into runs of scenarios with the same
// pooler settings.
func settingsBatches(scs []*scenario) [][]*scenario {
	var out [][]*scenario
	for i, sc := range scs {
		if i == 0 || settingsKey(sc.settings) != settingsKey(scs[i-1].settings) {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], sc)
	}
	return out
}
