package store

import (
	"encoding/binary"
	"fmt"

	"github.com/oklog/ulid/v2"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// Summary is what a succeeded job found, as trends and comparisons read
// it: small and fixed, so that a year of a thousand clusters is a fast
// range scan.
type Summary struct {
	JobID    ulid.ULID
	FinishMs int64
	Counts   *fleetscanv1.SeverityCounts
	Objects  int64
}

func summaryKey(clusterSeq uint64, finishMs int64, jobID ulid.ULID) []byte {
	k := make([]byte, 0, 32)
	k = binary.BigEndian.AppendUint64(k, clusterSeq)
	k = binary.BigEndian.AppendUint64(k, uint64(finishMs))
	return append(k, jobID[:]...)
}

func encodeSummary(c *fleetscanv1.SeverityCounts, objects int64) []byte {
	b := make([]byte, 0, 7*binary.MaxVarintLen32)
	for _, n := range []int64{c.GetCritical(), c.GetHigh(), c.GetMedium(), c.GetLow(), c.GetInfo(), c.GetSuppressed(), objects} {
		b = binary.AppendUvarint(b, uint64(n))
	}
	return b
}

func decodeSummary(k, v []byte) (Summary, error) {
	if len(k) != 32 {
		return Summary{}, fmt.Errorf("bad summary key")
	}
	s := Summary{FinishMs: int64(binary.BigEndian.Uint64(k[8:16])), Counts: &fleetscanv1.SeverityCounts{}}
	copy(s.JobID[:], k[16:])
	var vals [7]int64
	for i := range vals {
		n, w := binary.Uvarint(v)
		if w <= 0 {
			return Summary{}, fmt.Errorf("bad summary value")
		}
		vals[i], v = int64(n), v[w:]
	}
	s.Counts.Critical, s.Counts.High, s.Counts.Medium, s.Counts.Low, s.Counts.Info, s.Counts.Suppressed = vals[0], vals[1], vals[2], vals[3], vals[4], vals[5]
	s.Objects = vals[6]
	return s, nil
}
