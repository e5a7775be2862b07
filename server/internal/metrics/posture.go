package metrics

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/history"
)

// PostureSource hands the posture collector every registered cluster's
// posture by its latest succeeded job (history.Postures), read once per
// scrape. The server implements it over the store's LatestJobs, the read
// behind GetSummary and CompareClusters, so the gauges and the API agree.
type PostureSource interface {
	Postures(ctx context.Context) ([]history.Posture, error)
}

// PostureFunc adapts a function to a PostureSource.
type PostureFunc func(ctx context.Context) ([]history.Posture, error)

// Postures calls f.
func (f PostureFunc) Postures(ctx context.Context) ([]history.Posture, error) { return f(ctx) }

// postureReadTimeout bounds one scrape's read of the store.
const postureReadTimeout = 10 * time.Second

// severities are the severity label's values, the fields of
// fleetscanv1.SeverityCounts that count open findings.
var severities = []struct {
	name  string
	count func(*fleetscanv1.SeverityCounts) int64
}{
	{"critical", (*fleetscanv1.SeverityCounts).GetCritical},
	{"high", (*fleetscanv1.SeverityCounts).GetHigh},
	{"medium", (*fleetscanv1.SeverityCounts).GetMedium},
	{"low", (*fleetscanv1.SeverityCounts).GetLow},
	{"info", (*fleetscanv1.SeverityCounts).GetInfo},
}

// parties are the party label's values that every cluster whose parties
// are known has, zero or not; partyOther collects findings of any other
// value (unspecified, or a number the enum does not name), and is present
// only when it is not zero.
var parties = []fleetscanv1.ResponsibleParty{
	fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_PROVIDER,
	fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_PLATFORM,
	fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_WORKLOAD,
}

const partyOther = "unspecified"

// partyLabel is the party label's value for p: "provider", "platform",
// "workload", or partyOther.
func partyLabel(p fleetscanv1.ResponsibleParty) string {
	if slices.Contains(parties, p) {
		return strings.ToLower(strings.TrimPrefix(p.String(), "RESPONSIBLE_PARTY_"))
	}
	return partyOther
}

// postureCollector exports the posture gauges at scrape time: one read of
// the source, then a few series per cluster, so a scrape costs
// O(clusters) whatever the number of findings. Label values are bounded:
// cluster ids and tenants are the registered clusters', severities and
// parties fixed lists.
type postureCollector struct {
	source PostureSource
	// readErrors counts scrapes whose read of the source failed.
	readErrors atomic.Int64

	clusterInfo, openFindings, openByParty, clusterScore, lastScan *prometheus.Desc
	tenantScore, fleetScore, errorsDesc                            *prometheus.Desc
	// names are the metrics' names.
	names []string
}

func newPostureCollector(source PostureSource) *postureCollector {
	c := &postureCollector{source: source}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		c.names = append(c.names, name)
		return prometheus.NewDesc(name, help, labels, nil)
	}
	cluster := []string{"cluster_id", "tenant"}
	c.clusterInfo = desc("fleetscan_cluster_info",
		"1 for every registered cluster, scanned or not: join on cluster_id to find clusters with no successful scan.", cluster...)
	c.openFindings = desc("fleetscan_cluster_open_findings",
		"Open findings of the cluster's latest successful scan, by severity (suppressed ones not counted); as CompareClusters reports them. Absent for a cluster never scanned.",
		append(cluster, "severity")...)
	c.openByParty = desc("fleetscan_cluster_open_findings_by_party",
		"Open findings of the cluster's latest successful scan, by the party responsible for fixing them. Absent for a cluster never scanned or whose latest scan predates party counts.",
		append(cluster, "party")...)
	c.clusterScore = desc("fleetscan_cluster_posture_score",
		"Posture score (0 to 100, docs/posture-score.md) of the cluster's latest successful scan; as CompareClusters reports it. Absent for a cluster never scanned.",
		cluster...)
	c.lastScan = desc("fleetscan_cluster_last_successful_scan_timestamp_seconds",
		"When the cluster's latest successful scan ended, in seconds since the Unix epoch. Absent for a cluster never scanned.", cluster...)
	c.tenantScore = desc("fleetscan_tenant_posture_score",
		"Posture score of the tenant's scanned clusters taken together; as GetSummary reports it for the tenant. Absent for a tenant none of whose clusters was scanned.",
		"tenant")
	c.fleetScore = desc("fleetscan_fleet_posture_score",
		"Posture score of every scanned cluster taken together; as GetSummary reports it for the fleet. Absent while no cluster was scanned.")
	c.errorsDesc = desc("fleetscan_posture_read_errors_total",
		"Scrapes whose read of the clusters' posture failed; the posture series are missing from those scrapes and the error is logged.")
	return c
}

// Describe implements prometheus.Collector.
func (c *postureCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.clusterInfo, c.openFindings, c.openByParty, c.clusterScore, c.lastScan, c.tenantScore, c.fleetScore, c.errorsDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *postureCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), postureReadTimeout)
	defer cancel()
	postures, err := c.source.Postures(ctx)
	if err != nil {
		n := c.readErrors.Add(1)
		ch <- prometheus.MustNewConstMetric(c.errorsDesc, prometheus.CounterValue, float64(n))
		// The scrape reports the error (promhttp logs it) and serves the
		// other metrics.
		ch <- prometheus.NewInvalidMetric(c.clusterInfo, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.errorsDesc, prometheus.CounterValue, float64(c.readErrors.Load()))
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	byTenant := map[string][]history.Posture{}
	for _, p := range postures {
		gauge(c.clusterInfo, 1, p.ClusterID, p.Tenant)
		if p.Tenant != "" {
			byTenant[p.Tenant] = append(byTenant[p.Tenant], p)
		}
		if !p.Scanned {
			continue
		}
		gauge(c.clusterScore, float64(p.Score), p.ClusterID, p.Tenant)
		gauge(c.lastScan, float64(p.ScanMs)/1000, p.ClusterID, p.Tenant)
		for _, s := range severities {
			gauge(c.openFindings, float64(s.count(p.Counts)), p.ClusterID, p.Tenant, s.name)
		}
		if !p.PartiesKnown() {
			continue
		}
		byParty := map[string]int64{}
		for _, party := range parties {
			byParty[partyLabel(party)] = 0
		}
		for _, pc := range p.Parties {
			byParty[partyLabel(pc.Party)] += history.Open(pc.Counts)
		}
		for party, n := range byParty {
			if n > 0 || party != partyOther {
				gauge(c.openByParty, float64(n), p.ClusterID, p.Tenant, party)
			}
		}
	}
	for tenant, ps := range byTenant {
		if total := history.Total(ps); total.ClustersScanned > 0 {
			gauge(c.tenantScore, float64(total.Score), tenant)
		}
	}
	if total := history.Total(postures); total.ClustersScanned > 0 {
		gauge(c.fleetScore, float64(total.Score))
	}
}

// Cached reads postures through read only when version has changed since
// its last read, and hands out that read again otherwise: scrapes of an
// unchanged fleet then cost the series, not the store. version must change
// whenever what read returns would (the store's ClustersVersion); it is
// read before read, so a change during the read is seen next time. A
// failed read is not kept. The postures handed out are shared: callers
// must not modify them.
func Cached(read PostureSource, version func() uint64) PostureSource {
	return &cachedPostures{read: read, version: version}
}

type cachedPostures struct {
	read    PostureSource
	version func() uint64

	// mu is held across a read, so that concurrent scrapes read once.
	mu       sync.Mutex
	valid    bool
	at       uint64
	postures []history.Posture
}

func (c *cachedPostures) Postures(ctx context.Context) ([]history.Posture, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.version()
	if c.valid && v == c.at {
		return c.postures, nil
	}
	ps, err := c.read.Postures(ctx)
	if err != nil {
		c.valid = false
		return nil, err
	}
	c.postures, c.at, c.valid = ps, v, true
	return ps, nil
}
