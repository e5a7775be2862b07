package store

import (
	"bytes"
	"testing"
)

// TestAscending: reading keys in ascending order through one cursor
// returns what Get returns, for keys present and absent, near the last one
// and far from it.
func TestAscending(t *testing.T) {
	db, _, _ := openTest(t)
	stored := map[uint64]bool{}
	err := db.update(func(tx *txn) error {
		if _, err := tx.tx.CreateBucket([]byte("test-ascending")); err != nil {
			return err
		}
		b := tx.bucket([]byte("test-ascending"))
		// Every third key of 0..2999, so that asked keys fall on, between
		// and past the stored ones, over many pages.
		for i := uint64(0); i < 3000; i += 3 {
			stored[i] = true
			if err := b.Put(u64(i), u64(i*7)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		keys []uint64
	}{
		{"every key", seqKeys(0, 3000, 1)},
		{"present only", seqKeys(0, 3000, 3)},
		{"far apart", seqKeys(1, 3000, 301)},
		{"near and far", []uint64{0, 1, 2, 3, 4, 60, 61, 2997, 2998, 5000}},
		{"before the first and past the last", []uint64{2999, 3000, 1 << 40}},
		{"none", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := db.view(func(tx *txn) error {
				b := tx.bucket([]byte("test-ascending"))
				read := ascending(b)
				for _, k := range tt.keys {
					got, want := read(u64(k)), b.Get(u64(k))
					if !bytes.Equal(got, want) || (got == nil) != !stored[k] {
						t.Errorf("key %d: got %x, Get %x", k, got, want)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func seqKeys(from, to, step uint64) []uint64 {
	var out []uint64
	for i := from; i < to; i += step {
		out = append(out, i)
	}
	return out
}
