package history

import (
	"time"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// Point is the posture of a scope at the end of one bucket.
type Point struct {
	Start    time.Time
	Counts   *fleetscanv1.SeverityCounts
	Objects  int64
	Score    int32
	Clusters int
	// Scans is how many scans finished in the bucket; Clusters == 0 is a
	// gap: nothing measured yet.
	Scans int
}

// Trend buckets the histories from since to now, bucket wide (a day or a
// week, aligned to UTC midnight, weeks on Mondays). At the end of each
// bucket every cluster counts as its latest scan up to then found it: a
// cluster scanned on Monday still counts on Tuesday. Clusters never
// scanned up to a bucket are left out of it.
func Trend(histories []store.ClusterHistory, since, now time.Time, bucket time.Duration) []Point {
	start := alignUTC(since, bucket)
	var points []Point
	type cursor struct {
		h    store.ClusterHistory
		i    int
		last *store.Summary
	}
	cursors := make([]cursor, len(histories))
	for i, h := range histories {
		cursors[i] = cursor{h: h, last: h.Before}
	}
	for t := start; !t.After(now); t = t.Add(bucket) {
		end := t.Add(bucket).UnixMilli()
		p := Point{Start: t, Counts: &fleetscanv1.SeverityCounts{}}
		for i := range cursors {
			c := &cursors[i]
			for c.i < len(c.h.Summaries) && c.h.Summaries[c.i].FinishMs < end {
				c.last = &c.h.Summaries[c.i]
				c.i++
				if c.last.FinishMs >= t.UnixMilli() {
					p.Scans++
				}
			}
			if c.last == nil {
				continue
			}
			Add(p.Counts, c.last.Counts)
			p.Objects += c.last.Objects
			p.Clusters++
		}
		p.Score = Score(p.Counts, p.Objects)
		points = append(points, p)
	}
	return points
}

// alignUTC rounds t down to its day, or to the Monday of its week.
func alignUTC(t time.Time, bucket time.Duration) time.Time {
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	if bucket >= 7*24*time.Hour {
		offset := (int(d.Weekday()) + 6) % 7 // days since Monday
		d = d.AddDate(0, 0, -offset)
	}
	return d
}
