package history

import (
	"cmp"
	"context"
	"slices"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// Posture is one cluster's posture by its latest scan.
type Posture struct {
	ClusterID, Tenant string
	Counts            *fleetscanv1.SeverityCounts
	Objects           int64
	Score             int32
	ScanMs            int64
	Scanned           bool
	// Parties are the open findings by responsible party, empty when the
	// latest job ended before parties were recorded.
	Parties []Party
}

// Party is the open findings one party is responsible for.
type Party struct {
	Party  fleetscanv1.ResponsibleParty
	Counts *fleetscanv1.SeverityCounts
}

// parties orders a job's counts by party, the provider first.
func parties(m map[int32]*fleetscanv1.SeverityCounts) []Party {
	out := make([]Party, 0, len(m))
	for p, c := range m {
		out = append(out, Party{Party: fleetscanv1.ResponsibleParty(p), Counts: c})
	}
	slices.SortFunc(out, func(a, b Party) int { return cmp.Compare(a.Party, b.Party) })
	return out
}

// CheckRow is one check's open findings per cluster, aligned with the
// ranking.
type CheckRow struct {
	CheckID string
	Counts  []int64
	Total   int64
}

// Postures is each cluster's posture by its latest succeeded job, in the
// order given. A cluster never scanned has Scanned false and no score.
func Postures(latest []store.Latest) []Posture {
	out := make([]Posture, 0, len(latest))
	for _, l := range latest {
		p := Posture{ClusterID: l.Cluster.Id, Tenant: l.Cluster.Tenant, Counts: &fleetscanv1.SeverityCounts{}}
		if l.Job != nil {
			p.Scanned = true
			Add(p.Counts, l.Job.Findings)
			p.Objects, p.ScanMs = l.Job.ObjectsScanned, l.Job.FinishMs
			p.Score = Score(p.Counts, p.Objects)
			p.Parties = parties(l.Job.PartyCounts)
		}
		out = append(out, p)
	}
	return out
}

// LatestReader is the store's read of every cluster with its latest
// succeeded job.
type LatestReader interface {
	LatestJobs(ctx context.Context, keep func(*storagev1.ClusterRecord) bool) ([]store.Latest, error)
}

// Current reads the posture of every registered cluster, as GetSummary
// and CompareClusters read it: one store read of O(clusters) records.
func Current(ctx context.Context, r LatestReader) ([]Posture, error) {
	latest, err := r.LatestJobs(ctx, func(*storagev1.ClusterRecord) bool { return true })
	if err != nil {
		return nil, err
	}
	return Postures(latest), nil
}

// PartiesKnown reports whether the posture says who must fix its open
// findings: its job recorded parties, or it has no open findings to
// assign. Jobs that ended before parties were recorded do not.
func (p Posture) PartiesKnown() bool {
	return p.Scanned && (len(p.Parties) > 0 || Open(p.Counts) == 0)
}

// Open is the open findings of every severity, suppressed ones aside.
func Open(c *fleetscanv1.SeverityCounts) int64 {
	return c.GetCritical() + c.GetHigh() + c.GetMedium() + c.GetLow() + c.GetInfo()
}

// Compare ranks clusters worst first (never-scanned ones last) and builds
// the check by cluster matrix, the check failing most first.
func Compare(latest []store.Latest) ([]Posture, []CheckRow) {
	return rank(latest, Postures(latest))
}

// rank orders postures, which are Postures(latest), and builds the
// matrix.
func rank(latest []store.Latest, postures []Posture) ([]Posture, []CheckRow) {
	order := make([]int, len(latest))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		pa, pb := postures[a], postures[b]
		if pa.Scanned != pb.Scanned {
			if pa.Scanned {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(pa.Score, pb.Score), cmp.Compare(pa.ClusterID, pb.ClusterID))
	})
	ranked := make([]Posture, len(order))
	rows := map[string]*CheckRow{}
	for pos, i := range order {
		ranked[pos] = postures[i]
		if latest[i].Job == nil {
			continue
		}
		for check, n := range latest[i].Job.CheckCounts {
			row := rows[check]
			if row == nil {
				row = &CheckRow{CheckID: check, Counts: make([]int64, len(order))}
				rows[check] = row
			}
			row.Counts[pos] += n
			row.Total += n
		}
	}
	matrix := make([]CheckRow, 0, len(rows))
	for _, r := range rows {
		matrix = append(matrix, *r)
	}
	slices.SortFunc(matrix, func(a, b CheckRow) int {
		return cmp.Or(cmp.Compare(b.Total, a.Total), cmp.Compare(a.CheckID, b.CheckID))
	})
	return ranked, matrix
}

// Totals add up a set of clusters: the counts and objects of those
// scanned, and the score of the sum, so that large clusters weigh more.
// GetSummary and the metrics' tenant and fleet scores are both Total.
type Totals struct {
	Counts          *fleetscanv1.SeverityCounts
	Objects         int64
	Score           int32
	Clusters        int
	ClustersScanned int
	// Parties add up the clusters whose parties are known
	// (Posture.PartiesKnown), PartiesClusters of them.
	Parties         []Party
	PartiesClusters int
}

// Total adds up the postures.
func Total(postures []Posture) Totals {
	t := Totals{Counts: &fleetscanv1.SeverityCounts{}, Clusters: len(postures)}
	var byParty map[int32]*fleetscanv1.SeverityCounts
	for _, p := range postures {
		if !p.Scanned {
			continue
		}
		t.ClustersScanned++
		Add(t.Counts, p.Counts)
		t.Objects += p.Objects
		if p.PartiesKnown() {
			t.PartiesClusters++
		}
		for _, pc := range p.Parties {
			if byParty == nil {
				byParty = map[int32]*fleetscanv1.SeverityCounts{}
			}
			if byParty[int32(pc.Party)] == nil {
				byParty[int32(pc.Party)] = &fleetscanv1.SeverityCounts{}
			}
			Add(byParty[int32(pc.Party)], pc.Counts)
		}
	}
	t.Parties = parties(byParty)
	t.Score = Score(t.Counts, t.Objects)
	return t
}

// Summary is the current posture of a set of clusters.
type Summary struct {
	Totals
	TopChecks []CheckRow
}

// Summarize adds up the latest scans of the clusters.
func Summarize(latest []store.Latest, top int) Summary {
	postures := Postures(latest)
	_, matrix := rank(latest, postures)
	if len(matrix) > top {
		matrix = matrix[:top]
	}
	return Summary{Totals: Total(postures), TopChecks: matrix}
}
