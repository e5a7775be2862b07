package harness

import (
	"fmt"
	"io"
	"time"
)

// Print writes the report for people.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "fleet: %d clusters × %d findings, churn %d per round", r.Clusters, r.FindingsPerCluster, r.Churn)
	if r.Large > 0 {
		fmt.Fprintf(w, "; %d of them large, × %d findings", r.Large, r.LargeFindings)
	}
	fmt.Fprintln(w)
	for _, rd := range r.Rounds {
		rate := float64(rd.Findings) / rd.Duration.Seconds()
		fmt.Fprintf(w, "round %d: fleet scan of %d findings in %.2f s: %.0f findings/s", rd.N, rd.Findings, rd.Duration.Seconds(), rate)
		switch {
		case rd.Restarted && r.Replicas > 1:
			fmt.Fprint(w, " (a replica killed half-way)")
		case rd.Restarted:
			fmt.Fprint(w, " (server restarted once)")
		}
		fmt.Fprintf(w, "; most attempts of a job: %d\n", rd.MaxAttempt)
		q := rd.Query
		fmt.Fprintf(w, "  ListFindings (one cluster, open, first page of 100) during the scan: %d calls, p50 %s, p99 %s, max %s", q.Calls, ms(q.P50), ms(q.P99), ms(q.Max))
		if q.Errors > 0 {
			fmt.Fprintf(w, ", %d failed (server restarting)", q.Errors)
		}
		fmt.Fprintln(w)
		if rd.ServerCalls > 0 {
			fmt.Fprintf(w, "  the server's own measure: %d of %d ListFindings calls took over 50 ms\n", rd.ServerSlow, rd.ServerCalls)
		}
		for _, c := range []struct {
			what string
			l    Latency
		}{{"small jobs", rd.Completion}, {"large jobs", rd.LargeCompletion}} {
			if c.l.Calls > 0 {
				fmt.Fprintf(w, "  job completion (JobDone sent → Ack(job_done) received), %s: %d jobs, p50 %s, p99 %s, max %s\n", c.what, c.l.Calls, ms(c.l.P50), ms(c.l.P99), ms(c.l.Max))
			}
		}
		if c := rd.ServerCompletion; c.Calls > 0 {
			fmt.Fprintf(w, "  the server's own measure (fleetscan_job_completion_seconds): %d jobs, p50 ≤ %s, p99 ≤ %s, max ≤ %s\n", c.Calls, ms(c.P50), ms(c.P99), ms(c.Max))
		}
		if n := rd.Notifications; n != nil {
			fmt.Fprintf(w, "  notifications: %d delivered (%d of new findings), every one received, %d duplicate(s) with their own id and body; all delivered %.2f s after the scan ended\n",
				n.Deliveries, n.NewFindings, n.Duplicates, n.Drained.Seconds())
		}
		fmt.Fprintf(w, "  verified: %s\n", rd.Verified)
	}
	if r.PeakRSSKiB > 0 {
		fmt.Fprintf(w, "peak RSS: %.0f MiB; peak goroutines: %d (%s)\n", float64(r.PeakRSSKiB)/1024, r.PeakGoroutines, r.MeasuredOf)
	}
	fmt.Fprintf(w, "database (%s): %.1f MiB", r.Store, float64(r.DBBytes)/(1<<20))
	if n := len(r.Rounds); n > 0 && r.Rounds[n-1].Findings > 0 {
		// The whole history (every round's lifecycles, sets, summaries)
		// over the findings open at the end.
		fmt.Fprintf(w, ", %.0f bytes per finding of the last scan", float64(r.DBBytes)/float64(r.Rounds[n-1].Findings))
	}
	fmt.Fprintln(w)
	if r.Replicas > 1 {
		fmt.Fprintf(w, "replicas: %d servers on one %s database\n", r.Replicas, r.Store)
	}
	if r.Cuts > 0 || r.Restarts > 0 {
		restarts := "server restarts"
		if r.Replicas > 1 {
			restarts = "replicas killed (SIGKILL with --server-bin) mid-scan and started again after it"
		}
		fmt.Fprintf(w, "faults: %d connections cut, %d %s\n", r.Cuts, r.Restarts, restarts)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
