package store

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
)

// TestSharedStringsRoundTrip: a record whose strings are shared decodes
// exactly as it was, and is smaller than the one before sharing.
func TestSharedStringsRoundTrip(t *testing.T) {
	c := currentCodec()
	var sizes []int
	for i := range 3 {
		for _, f := range benchFindings(0, 200) {
			rec := &storagev1.FindingRecord{CheckId: f.CheckId, Severity: f.Severity, Category: f.Category, ResponsibleParty: f.ResponsibleParty,
				Resource: f.Resource, Message: f.Message, SuppressionReason: f.SuppressionReason, FirstSeenMs: 1793534400000}
			if i == 2 {
				rec.Resource = nil // the resource's ids have no fields to fill
			}
			want := proto.CloneOf(rec)
			b, err := c.encodeFinding(rec)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(rec, want) {
				t.Fatal("encodeFinding changed its argument")
			}
			got := &storagev1.FindingRecord{}
			if err := c.decodeFinding(b, got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, want) {
				t.Fatalf("round %d:\n got %v\nwant %v", i, got, want)
			}
			sizes = append(sizes, len(b))
		}
	}
	first, second := 0, 0
	for i, f := range benchFindings(0, 200) {
		// A codec that meets each string for the first time keeps it in
		// place.
		b, err := currentCodec().encodeFinding(&storagev1.FindingRecord{CheckId: f.CheckId, Severity: f.Severity, Category: f.Category, ResponsibleParty: f.ResponsibleParty,
			Resource: f.Resource, Message: f.Message, SuppressionReason: f.SuppressionReason, FirstSeenMs: 1793534400000})
		if err != nil {
			t.Fatal(err)
		}
		first, second = first+len(b), second+sizes[200+i]
	}
	if second*2 > first {
		t.Errorf("records of %d bytes with shared strings, %d without: want half or less", second, first)
	}
	t.Logf("200 records: %d bytes, then %d with shared strings", first, second)
}

// TestSharedStringsBounds: strings too short or too long stay in place, and
// so does everything once the table is full.
func TestSharedStringsBounds(t *testing.T) {
	s := newSharedStrings()
	for _, v := range []string{"ab", strings.Repeat("x", maxSharedLen+1)} {
		s.idOf(v)
		var ids [sharedFields]uint32
		f := v
		s.share(&ids, [sharedFields]*string{0: &f})
		if ids[0] != 0 || f != v {
			t.Errorf("%d-byte string shared", len(v))
		}
	}
	for i := 0; len(s.strs) < maxShared; i++ {
		v := fmt.Sprintf("ns-%06d", i)
		s.idOf(v)
		if s.idOf(v) == 0 {
			t.Fatalf("string %d not shared with %d strings shared", i, len(s.strs))
		}
	}
	s.idOf("one more")
	if s.idOf("one more") != 0 || len(s.strs) != maxShared {
		t.Errorf("%d strings, want the table full at %d", len(s.strs), maxShared)
	}

	s = newSharedStrings()
	long := strings.Repeat("x", maxSharedLen-4)
	for i := 0; s.bytes+maxSharedLen <= maxSharedBytes; i++ {
		v := fmt.Sprintf("%04d%s", i, long)
		s.idOf(v)
		if s.idOf(v) == 0 {
			t.Fatalf("string %d not shared with %d bytes shared", i, s.bytes)
		}
	}
	v := "last" + long
	s.idOf(v)
	if s.idOf(v) != 0 {
		t.Errorf("shared beyond %d bytes", maxSharedBytes)
	}
}

// TestSharedStringsSurviveReopen: records written with shared strings read
// the same after a restart, and check finds the strings in place.
func TestSharedStringsSurviveReopen(t *testing.T) {
	path := fleetDB(t)
	want := dumpAt(t, path)
	n := 0
	rawView(t, path, func(tx *bolt.Tx) error { n = tx.Bucket(bucketStrings).Stats().KeyN; return nil })
	if n == 0 {
		t.Fatal("no shared strings stored")
	}
	if got := dumpAt(t, path); got != want {
		t.Fatalf("after reopening:\n%s\nwant\n%s", got, want)
	}
	if problems := checkProblems(t, path); len(problems) > 0 {
		t.Fatal(problems)
	}
	// A string missing from the table is damage that check names.
	rawUpdate(t, path, func(tx *bolt.Tx) error { return tx.Bucket(bucketStrings).Delete(sharedKey(uint32(n))) })
	if problems := checkProblems(t, path); len(problems) == 0 {
		t.Fatal("check found nothing wrong with a shared string missing")
	}
}

// TestUpgradeFromSchema4: a database written by the release before shared
// strings (testdata/schema4.db.gz, written at 007b894 with the findings of
// benchFindings: resolved, reopened, suppressed, a custom check, an older
// API version, control bytes in a message) is upgraded at open and
// answers every record exactly as that release did
// (testdata/schema4.golden, dumped by it); a rescan writes over it with
// shared strings and changes nothing it answers.
func TestUpgradeFromSchema4(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fleetscan.db")
	gz, err := os.Open("testdata/schema4.db.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer gz.Close()
	zr, err := gzip.NewReader(gz)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile("testdata/schema4.golden")
	if err != nil {
		t.Fatal(err)
	}
	if problems := checkProblems(t, path); len(problems) > 0 {
		t.Fatalf("check of the schema 4 file: %v", problems)
	}
	if got := dumpAt(t, path); got != string(golden) {
		t.Fatalf("schema 4 records read differently:\n%s", firstDiff(got, string(golden)))
	}
	rawView(t, path, func(tx *bolt.Tx) error {
		if v, _ := unseal(bucketMeta, schemaKey, tx.Bucket(bucketMeta).Get(schemaKey)); !bytes.Equal(v, u64(schemaVersion)) {
			t.Errorf("schema %x after the upgrade, want %d", v, schemaVersion)
		}
		return nil
	})

	// Rescan c2 with what it saw last, but one finding's message changed:
	// that record is rewritten, with shared strings, the others are not.
	clk := &clock{t: time.Date(2026, 11, 1, 15, 0, 0, 0, time.UTC)}
	db, err := Open(path, Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	fs := benchFindings(30, 60)
	fs[0].Message += " (changed)"
	runJob(t, db, "c2", fs...)
	runJob(t, db, "c2", fs...) // the second time, its strings are shared
	after, err := dumpFindings(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	changed := 0
	gl, al := strings.Split(string(golden), "\n"), strings.Split(after, "\n")
	for i := range min(len(gl), len(al)) {
		if gl[i] != al[i] {
			changed++
		}
	}
	// Open c2 findings now say the newer scan; c1's and the resolved are
	// as they were.
	if changed == 0 || len(gl) != len(al) || !strings.Contains(after, "(changed)") {
		t.Fatalf("after the rescan: %d lines changed of %d, %d lines", changed, len(gl), len(al))
	}
	for i := range gl {
		if strings.Contains(gl[i], " c1 ") && gl[i] != al[i] {
			t.Fatalf("c1 changed by a rescan of c2:\n%s\n%s", al[i], gl[i])
		}
	}
	if problems := checkProblems(t, path); len(problems) > 0 {
		t.Fatal(problems)
	}
}

func dumpAt(t *testing.T, path string) string {
	t.Helper()
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := dumpFindings(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func rawView(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(fn); err != nil {
		t.Fatal(err)
	}
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		if i >= len(g) || i >= len(w) || g[i] != w[i] {
			return "got  " + strings.Join(g[i:min(i+1, len(g))], "") + "\nwant " + strings.Join(w[i:min(i+1, len(w))], "")
		}
	}
	return ""
}

// TestSharedStringsCommitWithTheirTransaction: strings taken count as
// stored only once a transaction that stored them commits; one rolled
// back leaves them to the next.
func TestSharedStringsCommitWithTheirTransaction(t *testing.T) {
	db, _, path := openTest(t)
	s := db.codec.shared
	before := len(s.strs)
	s.idOf("containers[sidecar]")
	id := s.idOf("containers[sidecar]")
	if id == 0 {
		t.Fatal("not shared the second time")
	}
	errRollback := errors.New("roll back")
	if err := db.update(func(tx *txn) error {
		if err := s.storeTx(tx); err != nil {
			return err
		}
		return errRollback
	}); !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
	if s.stored != before {
		t.Fatalf("%d strings count as stored after a rollback, want %d", s.stored, before)
	}
	if err := db.update(func(tx *txn) error { return s.storeTx(tx) }); err != nil {
		t.Fatal(err)
	}
	if s.stored != int(id) {
		t.Fatalf("%d strings stored, want %d", s.stored, id)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.codec.shared.strs[id-1]; got != "containers[sidecar]" {
		t.Fatalf("string %d reads %q after reopening", id, got)
	}
}
