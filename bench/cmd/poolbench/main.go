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
	"regexp"
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
	suite    string
	only     string
	out      string
	rounds   int
	seconds  int
	scenario string // regular expression of the scenario names to run ("": all)
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
	f.StringVar(&o.suite, "suite", "quick", "smoke (under a minute), quick (under ten minutes) or full (under an hour)")
	f.StringVar(&o.only, "only", "", "run one protocol only: pg, kv or memcache")
	f.StringVar(&o.out, "out", "", "directory for the results (default: bench-results-<date> in the current directory)")
	f.IntVar(&o.rounds, "rounds", 0, "alternating rounds per scenario (default: the suite's)")
	f.IntVar(&o.seconds, "seconds", 0, "seconds per pgbench run (default: the suite's)")
	f.StringVar(&o.scenario, "scenario", "", "run only the scenarios whose name matches this regular expression, e.g. 'pg-select-.*-c(1000|5000)$'")

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

// odysseyMissing is the skipped entry of a PostgreSQL run without odyssey on PATH.
const odysseyMissing = "odyssey: not found on PATH, not run (it is not packaged in Debian: build it from its sources and put the binary on PATH to add it as a target)"

// errMissing is returned when programs a run needs are not installed.
var errMissing = errors.New("poolbench: programs missing")

// errNoScenario is returned when --scenario and --only leave no scenario to run.
var errNoScenario = errors.New("poolbench: no scenario selected")

// Planned seconds of the setup steps, for the estimate of the time left.
const (
	buildEstimate        = 4   // go build of one program, mostly cached
	pgStartEstimate      = 12  // initdb, PostgreSQL, pgbench -i -s 10, both poolers
	poolersStartEstimate = 1.5 // PgBouncer and pgpool with a scenario's settings
	stopEstimate         = 2
	kvWarmEstimate       = 3 // 100,000 SETs through each target
	mcWarmEstimate       = 4 // 10,000 sets, one at a time, through each target
)

// kvStartEstimate is the planned seconds to start n servers, nutcracker and kvproxy.
func kvStartEstimate(n int) float64 { return 1 + 0.08*float64(n) }

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
	var re *regexp.Regexp
	if o.scenario != "" {
		if re, err = regexp.Compile(o.scenario); err != nil {
			return fmt.Errorf("poolbench: --scenario: %w", err)
		}
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
	for _, pt := range pgTargets {
		switch {
		case pt.onPath && slices.Contains(protos, "pg"):
			if path, err := exec.LookPath(pt.name); err == nil {
				b.paths[pt.name] = path
			} else {
				res.Skipped = append(res.Skipped, pt.missing)
				fmt.Fprintln(stderr, "poolbench: note:", pt.missing)
			}
		case pt.detected != "":
			if path, err := exec.LookPath(pt.name); err == nil {
				res.Detected = append(res.Detected, DetectedTool{Name: pt.name, Path: path, Status: pt.detected})
			}
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

	// The scenarios to run, for the plan: built again on the servers once started.
	r := newRunner(su.rounds, stderr)
	var pgScs, mcScs []*scenario
	kvScs := map[int][]*scenario{}
	var frozen []*scenario
	if slices.Contains(protos, "pg") {
		pgScs = selectScenarios(pgScenarios(su, &pgEnv{}, b, work), re)
	}
	if slices.Contains(protos, "kv") {
		for _, n := range su.kvShards {
			if scs := selectScenarios(kvScenarios(su, &kvEnv{shards: n}, b), re); len(scs) > 0 {
				kvScs[n] = scs
			}
		}
		if su.frozenClients > 0 {
			frozen = selectScenarios([]*scenario{frozenScenario(su, &kvEnv{shards: frozenShards})}, re)
		}
	}
	if slices.Contains(protos, "memcache") {
		mcScs = selectScenarios(mcScenarios(su, &kvEnv{shards: su.mcShards}), re)
	}
	if len(pgScs)+len(kvScs)+len(frozen)+len(mcScs) == 0 {
		return fmt.Errorf("%w: --scenario %q, --only %q", errNoScenario, o.scenario, o.only)
	}
	needKV := len(kvScs)+len(frozen)+len(mcScs) > 0
	if len(pgScs) > 0 {
		r.planSetup(buildEstimate + pgStartEstimate + stopEstimate)
		for _, batch := range settingsBatches(pgScs) {
			if settingsKey(batch[0].settings) != "" {
				r.planSetup(poolersStartEstimate)
			}
		}
		r.plan(pgScs, b.pgTargetNames())
	}
	if needKV {
		r.planSetup(buildEstimate)
	}
	for _, n := range su.kvShards {
		if scs := kvScs[n]; len(scs) > 0 {
			r.planSetup(kvStartEstimate(n) + kvWarmEstimate + stopEstimate)
			r.plan(scs, []string{DirectTarget, "nutcracker", "kvproxy"})
		}
	}
	if len(frozen) > 0 {
		r.planSetup(kvStartEstimate(frozenShards) + stopEstimate)
		r.plan(frozen, []string{DirectTarget, "nutcracker", "kvproxy"})
	}
	if len(mcScs) > 0 {
		r.planSetup(kvStartEstimate(su.mcShards) + mcWarmEstimate + stopEstimate)
		r.plan(mcScs, []string{DirectTarget, "nutcracker", "kvproxy"})
	}
	fmt.Fprintf(stderr, "poolbench: %d scenarios planned, about %v\n", len(r.names), r.left())

	binDir := filepath.Join(work, "bin")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		return err
	}
	if len(pgScs) > 0 {
		if err := r.phase("building pgpool from this tree", buildEstimate, func() (err error) {
			b.pgpool, err = testenv.Build("github.com/poolsuite/poolsuite/cmd/pgpool", binDir)
			return err
		}); err != nil {
			return err
		}
	}
	if needKV {
		if err := r.phase("building kvproxy from this tree", buildEstimate, func() (err error) {
			b.kvpx, err = testenv.Build("github.com/poolsuite/poolsuite/cmd/kvproxy", binDir)
			return err
		}); err != nil {
			return err
		}
	}

	var cl cleanups
	defer cl.run()
	addTargets := func(ts []*target) {
		for _, t := range ts {
			res.Targets = append(res.Targets, TargetInfo{Name: t.name, Protocol: t.protocol, Desc: t.desc})
		}
	}
	// skip records and tells what the run leaves out, and why.
	skip := func(why string) {
		res.Skipped = append(res.Skipped, why)
		fmt.Fprintln(stderr, "poolbench: skipped:", why)
	}
	stop := func(what string) {
		_ = r.phase("stopping "+what, stopEstimate, func() error { cl.run(); return nil })
	}
	runErr := func() error {
		if len(pgScs) > 0 {
			maxClients := max(slices.Max(append(slices.Clone(su.pgClients), su.pgManyClients...)), su.idleClients, su.overloadClients)
			res.PoolerSettings = poolerSettings(su.poolSize, maxClients, nil)
			var e *pgEnv
			if err := r.phase("starting PostgreSQL (pgbench tables filled), "+b.poolerNames(), pgStartEstimate, func() (err error) {
				e, err = startPG(ctx, &cl, work, b, su.pgScale, su.poolSize, maxClients, skip)
				return err
			}); err != nil {
				return err
			}
			addTargets(e.targets)
			if err := runPG(ctx, r, selectScenarios(pgScenarios(su, e, b, work), re), e, &cl, work, b); err != nil {
				return err
			}
			stop("PostgreSQL, " + b.poolerNames())
		}
		for _, n := range su.kvShards {
			if len(kvScs[n]) == 0 {
				continue
			}
			var e *kvEnv
			err := r.phase(fmt.Sprintf("starting %d redis-servers, nutcracker and kvproxy", n), kvStartEstimate(n), func() (err error) {
				e, err = startKV(&cl, work, b, n, true, defaultTimeoutMs)
				return err
			})
			if err != nil {
				// The other shard counts can still run.
				cl.run()
				why := fmt.Sprintf("Redis scenarios over %d shards: starting the servers and proxies failed: %v", n, err)
				skip(why)
				continue
			}
			addTargets(e.targets)
			// Idle clients before the keys are set: on proxies that carried no load yet.
			scs := selectScenarios(kvScenarios(su, e, b), re)
			idle := 0
			for idle < len(scs) && scs[idle].tmpl.Group == "kv-idle" {
				idle++
			}
			if err := r.runAll(ctx, scs[:idle], e.targets); err != nil {
				return err
			}
			if idle < len(scs) {
				if err := r.phase(fmt.Sprintf("setting %d keys through each target", kvKeyspace), kvWarmEstimate, func() error {
					return warmKV(ctx, b, e)
				}); err != nil {
					return err
				}
			}
			if err := r.runAll(ctx, scs[idle:], e.targets); err != nil {
				return err
			}
			stop(fmt.Sprintf("%d redis-servers, nutcracker and kvproxy", n))
		}
		if len(frozen) > 0 {
			var e *kvEnv
			if err := r.phase(fmt.Sprintf("starting %d redis-servers, nutcracker and kvproxy with a server timeout of %d ms", frozenShards, frozenTimeoutMs),
				kvStartEstimate(frozenShards), func() (err error) {
					e, err = startKV(&cl, work, b, frozenShards, true, frozenTimeoutMs)
					return err
				}); err != nil {
				return err
			}
			if err := r.runAll(ctx, []*scenario{frozenScenario(su, e)}, e.targets); err != nil {
				return err
			}
			stop("the frozen shard's servers and proxies")
		}
		if len(mcScs) > 0 {
			var e *kvEnv
			if err := r.phase(fmt.Sprintf("starting %d memcached, nutcracker and kvproxy", su.mcShards), kvStartEstimate(su.mcShards), func() (err error) {
				e, err = startKV(&cl, work, b, su.mcShards, false, defaultTimeoutMs)
				return err
			}); err != nil {
				return err
			}
			if e.note != "" {
				res.Skipped = append(res.Skipped, "memcache, kvproxy: "+e.note)
				fmt.Fprintln(stderr, "poolbench: note:", e.note)
			}
			addTargets(e.targets)
			if err := r.phase(fmt.Sprintf("setting %d memcached keys through each target", mcKeyspace), mcWarmEstimate, func() error {
				for _, t := range e.targets {
					if err := warmMemcache(ctx, t); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				return err
			}
			if err := r.runAll(ctx, selectScenarios(mcScenarios(su, e), re), e.targets); err != nil {
				return err
			}
			stop("memcached, nutcracker and kvproxy")
		}
		return nil
	}()
	res.Setup = r.setup
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
		var own cleanups
		cl.add(own.run) // stops them on an early return too; run twice is a no-op
		var poolers []*target
		if err := r.phase("starting "+b.poolerNames()+" with "+key, poolersStartEstimate, func() (err error) {
			poolers, err = e.startPoolers(&own, work, b, batch[0].settings)
			return err
		}); err != nil {
			own.run()
			return err
		}
		err := r.runAll(ctx, batch, append([]*target{e.targets[0]}, poolers...))
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
