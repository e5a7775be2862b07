package history

import (
	"cmp"
	"slices"

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

// Compare ranks clusters worst first (never-scanned ones last) and builds
// the check by cluster matrix, the check failing most first.
func Compare(latest []store.Latest) ([]Posture, []CheckRow) {
	postures := make([]Posture, 0, len(latest))
	for _, l := range latest {
		p := Posture{ClusterID: l.Cluster.Id, Tenant: l.Cluster.Tenant, Counts: &fleetscanv1.SeverityCounts{}}
		if l.Job != nil {
			p.Scanned = true
			Add(p.Counts, l.Job.Findings)
			p.Objects, p.ScanMs = l.Job.ObjectsScanned, l.Job.FinishMs
			p.Score = Score(p.Counts, p.Objects)
			p.Parties = parties(l.Job.PartyCounts)
		}
		postures = append(postures, p)
	}
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

// Summary is the current posture of a set of clusters.
type Summary struct {
	Counts          *fleetscanv1.SeverityCounts
	Objects         int64
	Score           int32
	Clusters        int
	ClustersScanned int
	TopChecks       []CheckRow
	// Parties add up the clusters whose latest job recorded parties,
	// PartiesClusters of them.
	Parties         []Party
	PartiesClusters int
}

// Summarize adds up the latest scans of the clusters.
func Summarize(latest []store.Latest, top int) Summary {
	s := Summary{Counts: &fleetscanv1.SeverityCounts{}, Clusters: len(latest)}
	var byParty map[int32]*fleetscanv1.SeverityCounts
	_, matrix := Compare(latest)
	for _, l := range latest {
		if l.Job == nil {
			continue
		}
		s.ClustersScanned++
		Add(s.Counts, l.Job.Findings)
		s.Objects += l.Job.ObjectsScanned
		// A job without open findings has no party to count, whenever
		// it ended.
		if f := l.Job.Findings; len(l.Job.PartyCounts) > 0 || f.GetCritical()+f.GetHigh()+f.GetMedium()+f.GetLow()+f.GetInfo() == 0 {
			s.PartiesClusters++
		}
		for p, c := range l.Job.PartyCounts {
			if byParty == nil {
				byParty = map[int32]*fleetscanv1.SeverityCounts{}
			}
			if byParty[p] == nil {
				byParty[p] = &fleetscanv1.SeverityCounts{}
			}
			Add(byParty[p], c)
		}
	}
	s.Parties = parties(byParty)
	s.Score = Score(s.Counts, s.Objects)
	if len(matrix) > top {
		matrix = matrix[:top]
	}
	s.TopChecks = matrix
	return s
}
