package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fleetscan/fleetscan/client"
	"github.com/fleetscan/fleetscan/cmd/internal/duration"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/worker/policy"
)

func scanCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "scan", Short: "Start scans and follow them"}
	cmd.AddCommand(scanStartCommand(g), scanGetCommand(g), scanListCommand(g), scanWatchCommand(g), scanCancelCommand(g))
	return cmd
}

func scanStartCommand(g *globals) *cobra.Command {
	var clusters, include, exclude, namespaces, trusted, denied []string
	var all, wait bool
	var selector, tenant string
	var policies string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "start (--cluster ID ... | --all | --selector LABELS | --tenant TENANT)",
		Short: "Start a scan of some clusters or of the whole fleet",
		Long: `Start a scan: one job per cluster. Jobs of clusters whose worker is
connected start at once; the others wait until their worker connects.
With --wait, follow the scan until every job has ended and print its
summary; the command then fails if any job failed.`,
		Example: `  fleetscan scan start --all --wait
  fleetscan scan start --cluster prod-eu-1 --cluster prod-us-1 --check POD-001 --check RBAC-001
  fleetscan scan start --selector 'env=prod,region in (eu-west,eu-north)' --wait
  fleetscan scan start --tenant acme --namespace shop --wait --timeout 5m
  fleetscan scan start --all --policies deploy/examples/policies --wait`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			given := 0
			for _, set := range []bool{len(clusters) > 0, all, selector != "", tenant != ""} {
				if set {
					given++
				}
			}
			if given != 1 {
				return errors.New("give one target: --cluster ID (repeatable), --all, --selector LABELS or --tenant TENANT")
			}
			spec := &fleetscanv1.ScanSpec{IncludeChecks: include, ExcludeChecks: exclude, Namespaces: namespaces, TrustedRegistries: trusted, DeniedRegistries: denied}
			if policies != "" {
				var err error
				if spec.CustomChecks, err = policy.LoadPolicies(policies); err != nil {
					return err
				}
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.ScanService.StartScan(cmd.Context(), &fleetscanv1.StartScanRequest{
				Target: &fleetscanv1.ScanTarget{ClusterIds: clusters, AllClusters: all, LabelSelector: selector, Tenant: tenant},
				Spec:   spec,
			})
			if err != nil {
				return g.explain(err)
			}
			scan := resp.Scan
			if !wait {
				if g.structured() {
					return g.print(scan)
				}
				fmt.Fprintf(g.stdout, "Started scan %s of %d cluster(s).\nFollow it with: fleetscan scan get %s\n", scan.Id, len(scan.Jobs), scan.Id)
				return nil
			}
			wait := waitFor(scan, timeout)
			fmt.Fprintf(cmd.ErrOrStderr(), "Scan %s started on %d cluster(s); waiting up to %v...\n", scan.Id, len(scan.Jobs), duration.Format(wait))
			return followScan(cmd, g, c, scan.Id, wait)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&clusters, "cluster", nil, "cluster id to scan; repeatable")
	f.BoolVar(&all, "all", false, "scan every registered cluster")
	f.StringVar(&selector, "selector", "", "scan the clusters whose labels match this selector, e.g. env=prod")
	f.StringVar(&tenant, "tenant", "", "scan every cluster of this tenant")
	f.StringArrayVar(&include, "check", nil, "run only this check id; repeatable (default: all checks)")
	f.StringArrayVar(&exclude, "exclude-check", nil, "skip this check id; repeatable")
	f.StringArrayVar(&namespaces, "namespace", nil, "scan only this namespace; repeatable (cluster-scoped objects are always scanned)")
	f.StringArrayVar(&trusted, "trusted-registry", nil, "registry images may come from (IMG-003), e.g. registry.example.com or docker.io/library; repeatable")
	f.StringArrayVar(&denied, "denied-registry", nil, "registry images must not come from (IMG-005; k8s.gcr.io is always reported), e.g. docker.io; repeatable")
	f.StringVar(&policies, "policies", "", "custom checks in CEL to send with the scan: a CheckPolicy YAML file or directory")
	f.BoolVar(&wait, "wait", false, "wait for the scan to end and print its summary")
	f.Var(duration.Var(&timeout), "timeout", "with --wait, how long to wait (default: the server's --job-timeout and a minute, so that a running job is not given up before the server gives up on it)")
	return cmd
}

// followScan shows a scan's progress until it ends, then its summary; it
// fails (exit code 1) unless the scan succeeded.
func followScan(cmd *cobra.Command, g *globals, c *client.Client, scanID string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	bar := newProgressPrinter(cmd.ErrOrStderr())
	var last *fleetscanv1.Scan
	named := ""
	scan, err := c.WaitScan(ctx, scanID, 500*time.Millisecond, func(s *fleetscanv1.Scan) {
		last = s
		bar.update(s)
		// In a log (not a terminal), once few clusters remain, say which
		// and why, each time that set changes: the wait is theirs.
		if bar.tty {
			return
		}
		var waiting []*fleetscanv1.Job
		for _, j := range s.GetJobs() {
			if !jobEnded(j.State) {
				waiting = append(waiting, j)
			}
		}
		if len(waiting) == 0 || len(waiting) > maxNamedWhileWaiting {
			return
		}
		var ids []string
		for _, j := range waiting {
			ids = append(ids, j.ClusterId+"/"+j.State.String())
		}
		if key := strings.Join(ids, ","); key != named {
			named = key
			for _, j := range waiting {
				fmt.Fprintf(cmd.ErrOrStderr(), "    waiting for %s: %s\n", j.ClusterId, whyNotDone(ctx, c, j))
			}
		}
	})
	bar.finish()
	// The wait ran out: ctx says so, or a call cut by its deadline said so
	// first (gRPC's timer may fire before ctx reports it).
	if cmd.Context().Err() == nil && (ctx.Err() != nil || status.Code(err) == codes.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded)) {
		if r, gerr := c.ScanService.GetScan(cmd.Context(), &fleetscanv1.GetScanRequest{ScanId: scanID}); gerr == nil {
			last = r.Scan // the state as the wait ended, not as last seen
		}
		p := scanProgress(last)
		why := notDone(cmd.Context(), c, last)
		return &exitError{code: 2, err: fmt.Errorf("scan %s not finished after %v: %d of %d clusters not done:\n%s\n(wait longer with --timeout, or follow it with 'fleetscan scan watch %s')",
			scanID, duration.Format(timeout), p.ClustersTotal-p.ClustersDone, p.ClustersTotal, strings.Join(why, "\n"), scanID)}
	}
	if err != nil {
		return g.explain(err)
	}
	if err := printScan(g, scan, true); err != nil {
		return err
	}
	if scan.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED {
		// An incomplete scan is an error, not a finding: status 2.
		return &exitError{code: 2, err: fmt.Errorf("scan %s %s", scan.Id, enumName(scan.State, "SCAN_STATE_"))}
	}
	if ids := incomplete(scan); len(ids) > 0 {
		return &exitError{code: 2, err: fmt.Errorf("scan %s incomplete: the workers of %s could not read all of their clusters (listed above)", scan.Id, strings.Join(ids, ", "))}
	}
	return nil
}

// maxNamedWhileWaiting: a wait names the clusters it waits for once this
// few remain.
const maxNamedWhileWaiting = 5

// waitFor is how long to follow a scan: what was asked, else the
// server's job timeout and a minute (a server from before it said: an
// hour and a minute, its default).
func waitFor(scan *fleetscanv1.Scan, asked time.Duration) time.Duration {
	if asked > 0 {
		return asked
	}
	jt := scan.GetJobTimeout().AsDuration()
	if jt <= 0 {
		jt = time.Hour
	}
	return jt + time.Minute
}

// notDone names the clusters of a scan whose jobs have not ended, each
// with why, at most maxNamed of them.
func notDone(ctx context.Context, c *client.Client, scan *fleetscanv1.Scan) []string {
	const maxNamed = 20
	var out []string
	rest := 0
	for _, j := range scan.GetJobs() {
		if jobEnded(j.State) {
			continue
		}
		if len(out) == maxNamed {
			rest++
			continue
		}
		out = append(out, "  "+j.ClusterId+": "+whyNotDone(ctx, c, j))
	}
	if rest > 0 {
		out = append(out, fmt.Sprintf("  and %d more (fleetscan scan get %s lists every job)", rest, scan.GetId()))
	}
	return out
}

func whyNotDone(ctx context.Context, c *client.Client, j *fleetscanv1.Job) string {
	switch j.State {
	case fleetscanv1.JobState_JOB_STATE_RUNNING:
		return fmt.Sprintf("running: %d objects read, %d findings received so far", j.ObjectsScanned, j.FindingsReceived)
	case fleetscanv1.JobState_JOB_STATE_DISPATCHED:
		return "sent to its worker, which has not started it yet"
	}
	resp, err := c.ClusterService.GetCluster(ctx, &fleetscanv1.GetClusterRequest{ClusterId: j.ClusterId})
	if err != nil {
		return "pending (its worker's state is unknown: " + status.Convert(err).Message() + ")"
	}
	w := resp.Cluster.GetWorker()
	switch {
	case w.GetConnected():
		return "pending: its worker is connected and waits for a slot (the server runs at most --max-running-jobs jobs at once)"
	case w.GetLastSeenTime() == nil:
		return "pending: its worker never connected (install it: see 'fleetscan cluster get " + j.ClusterId + "')"
	}
	seen := w.GetLastSeenTime().AsTime()
	return fmt.Sprintf("pending: its worker is offline, last seen %s (%v ago)", seen.Local().Format(time.DateTime), time.Since(seen).Round(time.Second))
}

func jobEnded(st fleetscanv1.JobState) bool {
	switch st {
	case fleetscanv1.JobState_JOB_STATE_PENDING, fleetscanv1.JobState_JOB_STATE_DISPATCHED, fleetscanv1.JobState_JOB_STATE_RUNNING, fleetscanv1.JobState_JOB_STATE_UNSPECIFIED:
		return false
	}
	return true
}

func scanWatchCommand(g *globals) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "watch SCAN_ID",
		Short: "Follow a scan's progress until it ends, then print its summary",
		Long: `Follow a scan as its jobs run: on a terminal, one progress line redrawn
in place (clusters done, objects read, findings received); otherwise a
line each time a cluster finishes. At the end, print the scan like
'scan get' does. Exits 2 unless the scan succeeded, so scripts can wait
on a scan someone else started. When the wait runs out, the clusters not
done are named, each with why (its worker never connected, is offline
since when, waits for a slot under the server's --max-running-jobs, or is
still running).`,
		Example: `  fleetscan scan watch 01JD5S0Q4C3Y8X2M7V6K1N9B0T
  fleetscan scan watch 01JD5S0Q4C3Y8X2M7V6K1N9B0T --timeout 1h -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.ScanService.GetScan(cmd.Context(), &fleetscanv1.GetScanRequest{ScanId: args[0]})
			if err != nil {
				return g.explain(err)
			}
			return followScan(cmd, g, c, args[0], waitFor(resp.Scan, timeout))
		},
	}
	cmd.Flags().Var(duration.Var(&timeout), "timeout", "how long to wait (default: the server's --job-timeout and a minute)")
	return cmd
}

func jobsDone(s *fleetscanv1.Scan) int {
	n := 0
	for _, j := range s.GetJobs() {
		switch j.State {
		case fleetscanv1.JobState_JOB_STATE_PENDING, fleetscanv1.JobState_JOB_STATE_DISPATCHED, fleetscanv1.JobState_JOB_STATE_RUNNING:
		default:
			n++
		}
	}
	return n
}

func scanGetCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "get SCAN_ID",
		Example: `  fleetscan scan get 01J9Z3R6T4W8X2Y5A7B9C1D3E5
  fleetscan scan get 01J9Z3R6T4W8X2Y5A7B9C1D3E5 -o wide   # with the checks not assessable, and why
  fleetscan scan get 01J9Z3R6T4W8X2Y5A7B9C1D3E5 -o json`,
		Short: "Show a scan and the state and findings of each of its jobs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.ScanService.GetScan(cmd.Context(), &fleetscanv1.GetScanRequest{ScanId: args[0]})
			if err != nil {
				return g.explain(err)
			}
			return printScan(g, resp.Scan, g.output == "wide")
		},
	}
}

// printScan prints a scan and its jobs. The table of checks not assessed
// is long and the same scan after scan: it is printed in full when asked
// (full: the end of a scan the command followed, or -o wide), and as one
// line otherwise.
func printScan(g *globals, s *fleetscanv1.Scan, full bool) error {
	if g.structured() {
		return g.print(s)
	}
	fmt.Fprintf(g.stdout, "Scan %s: %s, started %s, finished %s\n\n", s.Id, enumName(s.State, "SCAN_STATE_"), when(s.CreateTime), when(s.FinishTime))
	t := newTable(g.stdout, "CLUSTER", "JOB", "OBJECTS", "CRITICAL", "HIGH", "MEDIUM", "LOW", "SUPPRESSED", "ERROR")
	for _, j := range s.Jobs {
		t.row(append(append([]string{j.ClusterId, enumName(j.State, "JOB_STATE_"), fmt.Sprint(j.ObjectsScanned)}, countsString(j.Findings)...), fmt.Sprint(j.Findings.GetSuppressed()), orDash(j.Error))...)
	}
	t.row(append(append([]string{"TOTAL", "", ""}, countsString(s.Findings)...), fmt.Sprint(s.Findings.GetSuppressed()), "")...)
	if err := t.flush(); err != nil {
		return err
	}
	printProblems(g.stdout, s.Jobs)
	printUnchecked(g.stdout, s.Jobs)
	if !full {
		if n := countNotAssessable(s.Jobs); n > 0 {
			fmt.Fprintf(g.stdout, "\n%d checks were not assessable (neither passed nor failed); 'fleetscan scan get %s -o wide' lists them with why.\n", n, s.Id)
		}
		return nil
	}
	return printNotAssessable(g.stdout, s.Jobs)
}

// countNotAssessable is the number of checks some job could not assess.
func countNotAssessable(jobs []*fleetscanv1.Job) int {
	ids := map[string]bool{}
	for _, j := range jobs {
		for _, na := range j.NotAssessable {
			ids[na.CheckId] = true
		}
	}
	return len(ids)
}

// printProblems lists, per cluster, what its worker could not read: a
// job with problems succeeded on the rest only.
func printProblems(w io.Writer, jobs []*fleetscanv1.Job) {
	for _, j := range jobs {
		if len(j.Problems) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nNot scanned on %s (%d, the job is incomplete):\n", j.ClusterId, len(j.Problems))
		for _, p := range j.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
}

// printUnchecked lists, per cluster, the documents its worker read that
// no check reads: not problems, but not judged either.
func printUnchecked(w io.Writer, jobs []*fleetscanv1.Job) {
	for _, j := range jobs {
		if len(j.Unchecked) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nNot checked on %s (documents that no check reads):\n", j.ClusterId)
		for _, u := range j.Unchecked {
			fmt.Fprintf(w, "  %s\n", u)
		}
	}
}

// incomplete returns the clusters whose job could not read everything.
func incomplete(s *fleetscanv1.Scan) []string {
	var out []string
	for _, j := range s.Jobs {
		if len(j.Problems) > 0 {
			out = append(out, j.ClusterId)
		}
	}
	return out
}

// printNotAssessable lists the checks some cluster could not evaluate, so
// that a clean result is never mistaken for a pass.
func printNotAssessable(w io.Writer, jobs []*fleetscanv1.Job) error {
	type entry struct {
		reason   string
		clusters []string
	}
	var order []string
	byCheck := map[string]*entry{}
	for _, j := range jobs {
		for _, na := range j.NotAssessable {
			e := byCheck[na.CheckId]
			if e == nil {
				e = &entry{reason: na.Reason}
				byCheck[na.CheckId] = e
				order = append(order, na.CheckId)
			}
			e.clusters = append(e.clusters, j.ClusterId)
		}
	}
	if len(order) == 0 {
		return nil
	}
	slices.Sort(order)
	// One line per reason and set of clusters: "CP-001…CP-014, ETCD-001",
	// not a line per check that says the same.
	type group struct {
		ids              []string
		clusters, reason string
	}
	var groups []*group
	index := map[string]*group{}
	for _, id := range order {
		e := byCheck[id]
		clusters := strings.Join(e.clusters, ",")
		if len(e.clusters) == len(jobs) && len(jobs) > 1 {
			clusters = "all"
		}
		key := clusters + "\x00" + e.reason
		if index[key] == nil {
			index[key] = &group{clusters: clusters, reason: e.reason}
			groups = append(groups, index[key])
		}
		index[key].ids = append(index[key].ids, id)
	}
	fmt.Fprintf(w, "\nNot assessable (%d checks, neither passed nor failed):\n", len(order))
	t := newTable(w, "CHECKS", "CLUSTERS", "WHY")
	for _, g := range groups {
		t.row(idRanges(g.ids), g.clusters, g.reason)
	}
	return t.flush()
}

// idRanges writes sorted check ids with runs of consecutive numbers of one
// prefix as a range: "CP-001…CP-014, ETCD-001, HOST-001, HOST-002".
func idRanges(ids []string) string {
	var out []string
	split := func(id string) (string, int, bool) {
		i := strings.LastIndexByte(id, '-')
		n, err := strconv.Atoi(id[i+1:])
		return id[:max(i, 0)], n, i > 0 && err == nil
	}
	for i := 0; i < len(ids); {
		prefix, n, ok := split(ids[i])
		j := i + 1
		for ok && j < len(ids) {
			p, m, ok2 := split(ids[j])
			if !ok2 || p != prefix || m != n+(j-i) {
				break
			}
			j++
		}
		if j-i >= 3 {
			out = append(out, ids[i]+"…"+ids[j-1])
		} else {
			out = append(out, ids[i:j]...)
		}
		i = j
	}
	return strings.Join(out, ", ")
}

func scanListCommand(g *globals) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use: "list",
		Example: `  fleetscan scan list
  fleetscan scan list -o json`,
		Short: "List scans, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			all := &fleetscanv1.ListScansResponse{}
			for s, err := range c.ListScans(cmd.Context()) {
				if err != nil {
					return g.explain(err)
				}
				all.Scans = append(all.Scans, s)
				if len(all.Scans) == limit {
					break
				}
			}
			if g.structured() {
				return g.print(all)
			}
			return printScanList(g.stdout, all.Scans)
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "show at most this many scans (0: all)")
	return cmd
}

func printScanList(w io.Writer, scans []*fleetscanv1.Scan) error {
	t := newTable(w, "SCAN", "STATE", "STARTED", "CLUSTERS", "DONE", "CRITICAL", "HIGH", "MEDIUM", "LOW")
	for _, s := range scans {
		t.row(append([]string{s.Id, enumName(s.State, "SCAN_STATE_"), when(s.CreateTime), fmt.Sprint(len(s.Jobs)), fmt.Sprint(jobsDone(s))}, countsString(s.Findings)...)...)
	}
	return t.flush()
}

func scanCancelCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "cancel SCAN_ID",
		Example: `  fleetscan scan cancel 01J9Z3R6T4W8X2Y5A7B9C1D3E5`,
		Short:   "Stop the jobs of a scan that have not ended",
		Long:    "Cancel a scan: jobs not yet ended are cancelled and their workers told to stop. Findings of jobs that already succeeded stay.",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.ScanService.CancelScan(cmd.Context(), &fleetscanv1.CancelScanRequest{ScanId: args[0]})
			if err != nil {
				return g.explain(err)
			}
			return printScan(g, resp.Scan, false)
		},
	}
}
