package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
)

// fleetDB writes a database of two clusters with a few scans each (new,
// unchanged and resolved findings, a partial scan) and returns its path,
// closed.
func fleetDB(t *testing.T) string {
	t.Helper()
	damageOnce.Do(func() { damageBytes, damageErr = os.ReadFile(writeFleetDB(t)) })
	if damageErr != nil {
		t.Fatal(damageErr)
	}
	path := filepath.Join(t.TempDir(), "fleetscan.db")
	if err := os.WriteFile(path, damageBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var (
	damageOnce  sync.Once
	damageBytes []byte
	damageErr   error
)

func writeFleetDB(t *testing.T) string {
	t.Helper()
	db, clk, path := openTest(t)
	register(t, db, "c1", "c2")
	var first, second []*workerv1.Finding
	for i := range 600 {
		f := finding(fmt.Sprintf("POD-%03d", 1+i%30), fmt.Sprintf("ns%d", i%7), fmt.Sprintf("deploy-%d", i), fleetscanv1.Severity(1+i%5))
		first = append(first, f)
		if i%10 != 0 {
			second = append(second, f)
		}
	}
	runJob(t, db, "c1", first...)
	runJob(t, db, "c2", first[:200]...)
	clk.t = clk.t.Add(3600e9)
	runJob(t, db, "c1", second...)
	runJob(t, db, "c2", first[100:300]...)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// everything is what the store answers about the fleet: every finding,
// open and resolved, and every scan.
func everything(ctx context.Context, db *DB) (string, error) {
	var b strings.Builder
	for _, status := range []fleetscanv1.FindingStatus{fleetscanv1.FindingStatus_FINDING_STATUS_OPEN, fleetscanv1.FindingStatus_FINDING_STATUS_RESOLVED} {
		var after []byte
		for {
			page, next, err := db.ListFindings(ctx, FindingFilter{Status: status}, after, 100)
			if err != nil {
				return "", err
			}
			for _, v := range page {
				fmt.Fprintf(&b, "%s %s %s %s\n", v.ClusterID, v.Record.CheckId, v.Record.Resource.Name, v.Record.Message)
			}
			if next == nil {
				break
			}
			after = next
		}
	}
	scans, _, err := db.ListScans(ctx, [16]byte{}, 100)
	if err != nil {
		return "", err
	}
	for _, s := range scans {
		fmt.Fprintf(&b, "scan %s %d jobs\n", s.ID, len(s.Jobs))
	}
	return b.String(), nil
}

// wholeAnswer opens the database at path and returns everything it
// answers, failing the test on any error.
func wholeAnswer(t *testing.T, path string) string {
	t.Helper()
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := everything(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// rawUpdate changes the file with bbolt itself, below the store's seals.
func rawUpdate(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func checkProblems(t *testing.T, path string) []Problem {
	t.Helper()
	var problems []Problem
	_, err := Check(context.Background(), path, func(p Problem) { problems = append(problems, p) })
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	return problems
}

// TestDamagedRecordIsDataLoss: a record whose bytes changed under it reads
// as DataLoss, named by bucket and key, never as an answer with less in
// it; the rest of the database still answers; check names the record.
func TestDamagedRecordIsDataLoss(t *testing.T) {
	tests := []struct {
		name   string
		bucket []byte
		damage func(k, v []byte) []byte
	}{
		{"a flipped bit in a finding", bucketFindings, func(_, v []byte) []byte { v[len(v)/2] ^= 0x04; return v }},
		{"a finding cut short", bucketFindings, func(_, v []byte) []byte { return v[:len(v)-7] }},
		{"a finding's value under another key", bucketFindings, nil},
		{"a flipped bit in a cluster record", bucketClusters, func(_, v []byte) []byte { v[0] ^= 0x80; return v }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := fleetDB(t)
			var victim []byte
			rawUpdate(t, path, func(tx *bolt.Tx) error {
				b := tx.Bucket(tt.bucket)
				c := b.Cursor()
				k1, v1 := c.First()
				k2, v2 := c.Next()
				victim = bytes.Clone(k1)
				if tt.damage == nil {
					// Two values swapped: each one is intact, but not the
					// record of its key.
					v1, v2 = bytes.Clone(v1), bytes.Clone(v2)
					if err := b.Put(bytes.Clone(k2), v1); err != nil {
						return err
					}
					return b.Put(victim, v2)
				}
				return b.Put(victim, tt.damage(k1, bytes.Clone(v1)))
			})
			var heard []*DamageError
			db, err := Open(path, Options{OnDamage: func(d *DamageError) { heard = append(heard, d) }})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			got, err := everything(context.Background(), db)
			if !errors.Is(err, ErrDataLoss) {
				t.Fatalf("reading everything: got %d lines and error %v, want DataLoss", strings.Count(got, "\n"), err)
			}
			if !strings.Contains(err.Error(), string(tt.bucket)) || !strings.Contains(err.Error(), fmt.Sprintf("%x", victim)) {
				t.Errorf("error %q does not name bucket %s and key %x", err, tt.bucket, victim)
			}
			if len(heard) == 0 || heard[0].Bucket != string(tt.bucket) {
				t.Errorf("OnDamage heard %v, want the damage in %s", heard, tt.bucket)
			}
			if bytes.Equal(tt.bucket, bucketFindings) {
				// The damage is in c1's findings (seq 1, first in key
				// order); c2's still answer.
				if _, _, err := db.ListFindings(context.Background(), FindingFilter{ClusterID: "c2"}, nil, 1000); err != nil {
					t.Errorf("c2's findings: %v", err)
				}
			}
			db.Close()
			problems := checkProblems(t, path)
			if !slices.ContainsFunc(problems, func(p Problem) bool { return p.Bucket == string(tt.bucket) && bytes.Equal(p.Key, victim) }) {
				t.Errorf("check found %v, want a problem at %s %x", problems, tt.bucket, victim)
			}
		})
	}
}

// TestCheckHealthy: a database that only the store wrote has no problems.
func TestCheckHealthy(t *testing.T) {
	path := fleetDB(t)
	var problems []Problem
	st, err := Check(context.Background(), path, func(p Problem) { problems = append(problems, p) })
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 || st.Problems != 0 {
		t.Fatalf("problems in a healthy database: %v", problems)
	}
	if st.Records < 1000 || st.Buckets != len(allBuckets) {
		t.Errorf("check read %d records in %d buckets; want more than 1000 in %d", st.Records, st.Buckets, len(allBuckets))
	}
}

// TestCheckFindsMissingRecords: records deleted with their checksums (what
// a lost page looks like) and index entries that point nowhere are
// found by the cross-checks.
func TestCheckFindsMissingRecords(t *testing.T) {
	path := fleetDB(t)
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	page, _, err := db.ListFindings(context.Background(), FindingFilter{ClusterID: "c1"}, nil, 1)
	db.Close()
	if err != nil || len(page) != 1 {
		t.Fatalf("listing c1: %v", err)
	}
	lost := page[0].key()
	var job ulid.ULID
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketFindings).Delete(lost); err != nil {
			return err
		}
		k, _ := tx.Bucket(bucketJobs).Cursor().First()
		copy(job[:], k)
		return tx.Bucket(bucketJobs).Delete(job[:])
	})
	problems := checkProblems(t, path)
	if !slices.ContainsFunc(problems, func(p Problem) bool {
		return p.Bucket == string(bucketFindings) && bytes.Equal(p.Key, lost) && strings.Contains(p.What, "have no open record")
	}) {
		t.Errorf("check did not find the lost finding %x: %v", lost, problems)
	}
	for _, bucket := range []string{string(bucketSummaries), string(bucketJobFingerprints)} {
		if !slices.ContainsFunc(problems, func(p Problem) bool {
			return p.Bucket == bucket && strings.Contains(p.What, "job "+job.String()+", which has no record")
		}) {
			t.Errorf("check did not find that %s names the lost job %s: %v", bucket, job, problems)
		}
	}
}

// TestOpenRefusesDamagedFiles: an empty or truncated file is refused with
// an error that names it, instead of starting afresh or dying of SIGBUS.
func TestOpenRefusesDamagedFiles(t *testing.T) {
	tests := []struct {
		name   string
		damage func(path string) error
		want   string
	}{
		{"empty", func(path string) error { return os.Truncate(path, 0) }, "empty"},
		{"truncated to half", func(path string) error {
			fi, err := os.Stat(path)
			if err != nil {
				return err
			}
			return os.Truncate(path, fi.Size()/2)
		}, "truncated"},
		{"not a database", func(path string) error { return os.WriteFile(path, bytes.Repeat([]byte("fleetscan"), 4096), 0o600) }, "not a readable fleetscan database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := fleetDB(t)
			if err := tt.damage(path); err != nil {
				t.Fatal(err)
			}
			_, err := Open(path, Options{})
			if !errors.Is(err, ErrDataLoss) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("open: %v; want DataLoss saying %q and naming the file", err, tt.want)
			}
			if !strings.Contains(err.Error(), "restore") {
				t.Errorf("open: %v; want it to say how to fix it", err)
			}
			if _, err := Check(context.Background(), path, func(Problem) {}); err == nil {
				t.Errorf("check of a damaged file said nothing")
			}
		})
	}
}

// TestScatteredDamage: bytes overwritten at random places in the file
// (not the meta pages, which bbolt checksums itself) never give an answer
// that differs from the undamaged one without an error: either the store
// refuses with DataLoss, or it answers in full, or the damage fell where
// no record is (free pages), and then check finds nothing either. When
// damage leaves the online answer whole but short, check must name it.
func TestScatteredDamage(t *testing.T) {
	clean := fleetDB(t)
	want := wholeAnswer(t, clean)
	orig, err := os.ReadFile(clean)
	if err != nil {
		t.Fatal(err)
	}
	pageSize := os.Getpagesize()
	refused, whole := 0, 0
	for seed := range uint64(24) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			damaged := slices.Clone(orig)
			for range 6 {
				at := 2*pageSize + rng.IntN(len(damaged)-2*pageSize-32)
				for i := range 24 {
					damaged[at+i] = byte(rng.Uint32())
				}
			}
			path := filepath.Join(t.TempDir(), "fleetscan.db")
			if err := os.WriteFile(path, damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := Open(path, Options{})
			if err != nil {
				if !errors.Is(err, ErrDataLoss) {
					t.Fatalf("open: %v, want DataLoss", err)
				}
				refused++
				return
			}
			got, err := everything(context.Background(), db)
			db.Close()
			switch {
			case errors.Is(err, ErrDataLoss):
				refused++
			case err != nil:
				t.Fatalf("reading: %v, want DataLoss or the whole answer", err)
			case got == want:
				whole++
			default:
				// Whole-looking but different: only a check may catch it,
				// and it must.
				if len(checkProblems(t, path)) == 0 {
					t.Fatalf("the damaged file answered %d lines for %d, and check found nothing", strings.Count(got, "\n"), strings.Count(want, "\n"))
				}
			}
		})
	}
	t.Logf("%d damaged files refused, %d answered in full", refused, whole)
	if refused == 0 {
		t.Errorf("no damaged file was refused: the damage missed every record")
	}
}

// TestUpgradeFromSchema3: a database written before values were sealed is
// sealed at open, in one transaction, and answers as before.
func TestUpgradeFromSchema3(t *testing.T) {
	path := fleetDB(t)
	want := wholeAnswer(t, path)
	// Make it a schema 3 file: every value as it was before its seal.
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			b := tx.Bucket(name)
			var keys, values [][]byte
			err := b.ForEach(func(k, v []byte) error {
				body, d := unseal(name, k, v)
				if d != nil {
					return d
				}
				keys, values = append(keys, bytes.Clone(k)), append(values, bytes.Clone(body))
				return nil
			})
			if err != nil {
				return err
			}
			for i := range keys {
				if err := b.Put(keys[i], values[i]); err != nil {
					return err
				}
			}
		}
		return tx.Bucket(bucketMeta).Put(schemaKey, u64(3))
	})
	if problems := checkProblems(t, path); len(problems) == 0 {
		t.Fatal("check found nothing wrong with unsealed values")
	}
	if got := wholeAnswer(t, path); got != want {
		t.Fatalf("after the upgrade: %d lines for %d", strings.Count(got, "\n"), strings.Count(want, "\n"))
	}
	if problems := checkProblems(t, path); len(problems) > 0 {
		t.Fatalf("after the upgrade: %v", problems)
	}
}
