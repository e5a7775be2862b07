package history

import (
	"math"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// Severity weights of the posture score: a critical finding weighs as
// much as ten low ones.
const (
	weightCritical = 10
	weightHigh     = 5
	weightMedium   = 2
	weightLow      = 1
	// halfScoreDensity is the weighted findings per scanned object at which
	// the score is 50.
	halfScoreDensity = 2.0
)

// Score is the posture score, 0 to 100: 100 when nothing is open, falling
// as the severity-weighted count of open findings per scanned object
// grows. Dividing by objects makes a 50-object cluster comparable with a
// 5,000-object one; suppressed and informational findings do not count.
//
//	weighted = 10·critical + 5·high + 2·medium + 1·low
//	density  = weighted / max(objects, 1)
//	score    = round(100 / (1 + density / 2))
//
// docs/posture-score.md explains the choice; tests pin the values.
func Score(c *fleetscanv1.SeverityCounts, objects int64) int32 {
	weighted := weightCritical*c.GetCritical() + weightHigh*c.GetHigh() + weightMedium*c.GetMedium() + weightLow*c.GetLow()
	density := float64(weighted) / float64(max(objects, 1))
	return int32(math.Round(100 / (1 + density/halfScoreDensity)))
}

// Add adds b's counts to a.
func Add(a, b *fleetscanv1.SeverityCounts) {
	if b == nil {
		return
	}
	a.Critical += b.Critical
	a.High += b.High
	a.Medium += b.Medium
	a.Low += b.Low
	a.Info += b.Info
	a.Suppressed += b.Suppressed
}
