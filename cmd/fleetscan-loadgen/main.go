// Command fleetscan-loadgen simulates a fleet of clusters against a real
// fleetscan server: N workers over gRPC on loopback, each a real worker
// (protocol, batching, acks, resume) producing synthetic findings. It runs
// fleet scans, checks that every cluster's stored findings are exactly
// what its worker produced, and prints what the scans cost.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fleetscan/fleetscan/client"
	"github.com/fleetscan/fleetscan/cmd/fleetscan-loadgen/internal/harness"
	"github.com/fleetscan/fleetscan/cmd/internal/duration"
	"github.com/fleetscan/fleetscan/internal/pgtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "fleetscan-loadgen:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "query-loop" {
		return queryLoop(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("fleetscan-loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: fleetscan-loadgen [flags]

Simulates a fleet against a fleetscan server and verifies that every
finding is stored exactly once. By default the server runs in this process
on a temporary data directory; --server-bin starts a server binary instead,
whose peak RSS and goroutines are then the server's own.

Examples:
  fleetscan-loadgen --workers 1000 --findings 1000
  fleetscan-loadgen --workers 1000 --findings 1000 --server-bin .tmp/bin/fleetscan-server --metrics
  fleetscan-loadgen --workers 50 --findings 200 --faults
  fleetscan-loadgen --workers 1000 --findings 1000 --large 3 --server-bin .tmp/bin/fleetscan-server --metrics

Flags:
`)
		fs.PrintDefaults()
	}
	var cfg harness.Config
	fs.IntVar(&cfg.Clusters, "workers", 100, "simulated clusters, one worker each")
	fs.IntVar(&cfg.Findings, "findings", 1000, "findings per cluster per scan")
	fs.IntVar(&cfg.Large, "large", 0, "of the clusters, this many are large: --large-findings each instead of --findings (their jobs' completion latency is reported apart)")
	fs.IntVar(&cfg.LargeFindings, "large-findings", 10_000, "with --large: findings per large cluster per scan")
	fs.Float64Var(&cfg.ChurnPct, "churn", 3, "percent of each cluster's findings that resolve, and as many that appear, between scans")
	fs.IntVar(&cfg.Rounds, "rounds", 2, "fleet scans to run; rounds after the first check the churn")
	fs.IntVar(&cfg.BatchSize, "batch", 500, "findings per batch the workers send (the server caps it at 1000)")
	fs.BoolVar(&cfg.Realistic, "realistic", false, "findings of the sizes the real checks produce (SA-005 paths, last-applied sub-paths, some at the 4 KiB message cap) instead of one short line each")
	fs.BoolVar(&cfg.Faults, "faults", false, "cut connections at random points and restart the server once, half-way through the first scan")
	fs.Float64Var(&cfg.CutProb, "cut-prob", 0.3, "with --faults: share of connections that are cut")
	fs.Int64Var(&cfg.CutBytes, "cut-bytes", 64<<10, "with --faults: a cut connection breaks after at most this many bytes")
	seed := fs.Uint64("seed", 1, "seed of the random cuts")
	fs.StringVar(&cfg.ServerBin, "server-bin", "", "start this fleetscan-server binary instead of a server in process (restarts kill it with SIGKILL)")
	serverArgs := fs.String("server-args", "", "extra flags for --server-bin, space-separated")
	fs.StringVar(&cfg.Store, "store", "", "the servers' store: empty for bbolt files; a postgres:// URL of an empty database; or \"temp\": a throwaway PostgreSQL from Debian's package, started here on 127.0.0.1 and removed at the end (installed with apt-get when missing and run as root)")
	fs.IntVar(&cfg.Replicas, "replicas", 1, "servers sharing the PostgreSQL --store; with --faults, one is killed half-way through the first scan and started again after it")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "server data directory (default: a new temporary directory, removed at the end)")
	fs.BoolVar(&cfg.KeepData, "keep-data", false, "keep the temporary data directory")
	fs.BoolVar(&cfg.Metrics, "metrics", false, "serve the server's /metrics and /debug/pprof/ on a loopback port (printed); goroutines are then read from the server's go_goroutines")
	fs.StringVar(&cfg.MetricsAddr, "metrics-listen", "", "with --metrics: the address, e.g. 127.0.0.1:9464")
	fs.IntVar(&cfg.MaxMessageBytes, "max-message-size", 0, "the server's receive limit in bytes (0: its default, 8 MiB)")
	fs.IntVar(&cfg.MaxRunningJobs, "max-running-jobs", 0, "the server's fleet-wide cap on jobs dispatched at once (0: its default)")
	duration.FlagVar(fs, &cfg.QueryPause, "query-pause", 20*time.Millisecond, "pause between the ListFindings calls measured during each scan")
	duration.FlagVar(fs, &cfg.Timeout, "timeout", 10*time.Minute, "give up on a fleet scan after this long")
	queryInProcess := fs.Bool("query-in-process", false, "make the measured ListFindings calls from this process, which the simulated workers keep busy, rather than from a process of their own")
	fs.BoolVar(&cfg.Notify, "notify", false, "add a webhook notifier of new findings and failed jobs with a receiver in this process, and check after each round that every delivery arrived (docs/notifications.md)")
	quiet := fs.Bool("quiet", false, "print only the results")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	cfg.Seed = *seed
	cfg.ServerArgs = strings.Fields(*serverArgs)
	if !*quiet {
		cfg.Log = stderr
	}
	if !*queryInProcess {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		cfg.QueryCommand = []string{self, "query-loop"}
	}
	if cfg.Store == "temp" {
		pg, err := pgtest.Launch(func(format string, args ...any) {
			if !*quiet {
				fmt.Fprintf(stderr, "postgres: "+format+"\n", args...)
			}
		})
		if err != nil {
			return fmt.Errorf("--store temp: %w", err)
		}
		defer func() {
			if err := pg.Stop(); err != nil {
				fmt.Fprintf(stderr, "stop postgres: %v\n", err)
			}
		}()
		if cfg.Store, err = pg.NewDatabase(ctx, "fleetscan_load"); err != nil {
			return err
		}
	}
	rep, err := harness.Run(ctx, cfg)
	if rep != nil {
		rep.Print(stdout)
	}
	return err
}

// queryLoop is the process of the measured ListFindings calls: it calls
// until it is signalled, then prints each call's latency, or "err".
func queryLoop(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fleetscan-loadgen query-loop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "server address")
	token := fs.String("token", "", "API token")
	prefix := fs.String("prefix", "", "cluster id prefix")
	clusters := fs.Int("clusters", 1, "clusters")
	pause := duration.Flag(fs, "pause", 20*time.Millisecond, "pause between calls")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := client.New(*addr, client.WithPlaintext(), client.WithToken(*token))
	if err != nil {
		return err
	}
	defer c.Close()
	var lines []string
	harness.QueryLoop(ctx, c, *prefix, *clusters, *pause, func(d time.Duration, err error) {
		if err != nil {
			lines = append(lines, "err")
		} else {
			lines = append(lines, d.String())
		}
	})
	_, err = fmt.Fprintln(stdout, strings.Join(lines, "\n"))
	return err
}
