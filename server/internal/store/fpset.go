package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/oklog/ulid/v2"

	"github.com/fleetscan/fleetscan/worker/catalog"
)

// A job's fingerprint set is stored in one of two forms:
//
//	0x00, fingerprints...                       full: sorted, 16 bytes each
//	0x01, base job id, depth, uvarint n,        delta: the base job's set
//	      n added fingerprints, removed ones    plus added, minus removed
//
// A cluster rescanned without change costs a delta of 19 bytes, whatever
// its size. Chains are cut at maxDeltaDepth so that reading a set costs a
// bounded number of merges.
const (
	setFull       = 0x00
	setDelta      = 0x01
	maxDeltaDepth = 16
	fpSize        = catalog.FingerprintSize
)

type fp = [fpSize]byte

// encodeSet encodes sorted fingerprints, as a delta from base when that is
// smaller.
func encodeSet(fps []fp, baseID ulid.ULID, base []fp, baseDepth int) []byte {
	full := make([]byte, 1, 1+len(fps)*fpSize)
	full[0] = setFull
	for _, f := range fps {
		full = append(full, f[:]...)
	}
	if base == nil || baseDepth >= maxDeltaDepth {
		return full
	}
	added, removed := diffSorted(base, fps)
	delta := make([]byte, 0, 1+16+1+binary.MaxVarintLen64+(len(added)+len(removed))*fpSize)
	delta = append(delta, setDelta)
	delta = append(delta, baseID[:]...)
	delta = append(delta, byte(baseDepth+1))
	delta = binary.AppendUvarint(delta, uint64(len(added)))
	for _, f := range added {
		delta = append(delta, f[:]...)
	}
	for _, f := range removed {
		delta = append(delta, f[:]...)
	}
	if len(delta) >= len(full) {
		return full
	}
	return delta
}

// diffSorted returns what b has and a lacks, and what a has and b lacks.
func diffSorted(a, b []fp) (added, removed []fp) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && bytes.Compare(a[i][:], b[j][:]) < 0):
			removed = append(removed, a[i])
			i++
		case i == len(a) || bytes.Compare(a[i][:], b[j][:]) > 0:
			added = append(added, b[j])
			j++
		default:
			i++
			j++
		}
	}
	return added, removed
}

// getSetTx reads a job's fingerprint set, sorted, and its delta depth.
func getSetTx(tx *txn, jobID ulid.ULID) ([]fp, int, error) {
	v := tx.bucket(bucketJobFingerprints).Get(jobID[:])
	if v == nil {
		return nil, 0, fmt.Errorf("fingerprints of job %s: %w", jobID, ErrNotFound)
	}
	return decodeSetTx(tx, v)
}

func decodeSetTx(tx *txn, v []byte) ([]fp, int, error) {
	if len(v) == 0 {
		return nil, 0, fmt.Errorf("empty fingerprint set")
	}
	switch v[0] {
	case setFull:
		return unpack(v[1:]), 0, nil
	case setDelta:
		baseID, added, removed, depth, err := splitDelta(v)
		if err != nil {
			return nil, 0, err
		}
		base, _, err := getSetTx(tx, baseID)
		if errors.Is(err, ErrNotFound) {
			d := &DamageError{Bucket: string(bucketJobFingerprints), Key: bytes.Clone(baseID[:]), Reason: "the base of a delta set, missing"}
			tx.fail(d)
			return nil, 0, d
		}
		if err != nil {
			return nil, 0, err
		}
		return applyDelta(base, added, removed), depth, nil
	}
	return nil, 0, fmt.Errorf("unknown fingerprint set form %d", v[0])
}

// splitDelta reads a delta set's parts.
func splitDelta(v []byte) (baseID ulid.ULID, added, removed []fp, depth int, err error) {
	if len(v) < 1+16+1+1 {
		return baseID, nil, nil, 0, fmt.Errorf("short delta set")
	}
	copy(baseID[:], v[1:17])
	depth = int(v[17])
	n, w := binary.Uvarint(v[18:])
	if w <= 0 {
		return baseID, nil, nil, 0, fmt.Errorf("bad delta set")
	}
	rest := v[18+w:]
	if uint64(len(rest)) < n*fpSize || len(rest)%fpSize != 0 {
		return baseID, nil, nil, 0, fmt.Errorf("bad delta set")
	}
	return baseID, unpack(rest[:n*fpSize]), unpack(rest[n*fpSize:]), depth, nil
}

func unpack(b []byte) []fp {
	out := make([]fp, len(b)/fpSize)
	for i := range out {
		copy(out[i][:], b[i*fpSize:])
	}
	return out
}

func applyDelta(base, added, removed []fp) []fp {
	out := make([]fp, 0, len(base)+len(added))
	r := 0
	for _, f := range base {
		for r < len(removed) && bytes.Compare(removed[r][:], f[:]) < 0 {
			r++
		}
		if r < len(removed) && removed[r] == f {
			continue
		}
		out = append(out, f)
	}
	out = append(out, added...)
	slices.SortFunc(out, func(a, b fp) int { return bytes.Compare(a[:], b[:]) })
	return out
}
