package store

import (
	"testing"

	"google.golang.org/protobuf/proto"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// TestFindingRecordRoundTrip: the compact encoding restores every record
// exactly, and is smaller where the catalog or the record's own fields
// make it so.
func TestFindingRecordRoundTrip(t *testing.T) {
	base := func() *storagev1.FindingRecord {
		return &storagev1.FindingRecord{
			CheckId: "POD-001", Severity: fleetscanv1.Severity_SEVERITY_CRITICAL, Category: "pod-security",
			ResponsibleParty: fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_WORKLOAD,
			Resource:         &fleetscanv1.ResourceRef{ApiVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "checkout", SubPath: "containers[app]"},
			Message:          `container "app" of Deployment checkout runs privileged`, FirstSeenMs: 1234,
		}
	}
	tests := []struct {
		name    string
		change  func(*storagev1.FindingRecord)
		smaller bool
	}{
		{"catalog defaults and own fields", func(*storagev1.FindingRecord) {}, true},
		{"severity raised by the check", func(r *storagev1.FindingRecord) { r.Severity = fleetscanv1.Severity_SEVERITY_HIGH }, true},
		{"custom check", func(r *storagev1.FindingRecord) { r.CheckId, r.Category = "ORG-1", "custom" }, true},
		{"older API version", func(r *storagev1.FindingRecord) { r.Resource.ApiVersion = "apps/v1beta2" }, true},
		{"control bytes in the message", func(r *storagev1.FindingRecord) { r.Message = "a\x01b checkout" }, true},
		{"message without own fields", func(r *storagev1.FindingRecord) { r.Message = "x" }, true},
		{"no resource", func(r *storagev1.FindingRecord) { r.Resource = nil; r.Message = "cluster-wide" }, false},
		{"real zero values stay zero", func(r *storagev1.FindingRecord) {
			r.Category, r.ResponsibleParty, r.Severity, r.Resource.ApiVersion = "", 0, 0, ""
		}, true},
		{"overlapping values", func(r *storagev1.FindingRecord) {
			r.Resource.Name, r.Resource.Namespace, r.Message = "shop-api", "shop", "shop-api in shop (shop-api)"
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := base()
			tt.change(rec)
			want := proto.CloneOf(rec)
			b, err := currentCodec().encodeFinding(rec)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(rec, want) {
				t.Fatal("encodeFinding changed its argument")
			}
			got := &storagev1.FindingRecord{}
			if err := currentCodec().decodeFinding(b, got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, want) {
				t.Errorf("round trip:\n got %v\nwant %v", got, want)
			}
			plain, _ := proto.Marshal(want)
			if tt.smaller && len(b) >= len(plain) {
				t.Errorf("compact %d bytes, plain %d", len(b), len(plain))
			}
		})
	}
}

func FuzzFindingRecordRoundTrip(f *testing.F) {
	f.Add("POD-001", "Deployment", "shop", "checkout", "containers[app]", `container "app" of checkout runs privileged`, "")
	f.Add("ORG-1", "Pod", "", "x", "", "\x01\x02", "exempt: approved")
	f.Fuzz(func(t *testing.T, check, kind, ns, name, sub, msg, suppression string) {
		want := &storagev1.FindingRecord{CheckId: check, Message: msg, SuppressionReason: suppression,
			Resource: &fleetscanv1.ResourceRef{ApiVersion: "v1", Kind: kind, Namespace: ns, Name: name, SubPath: sub}}
		// One codec, three times: its strings are in place the first
		// time and shared from the second.
		c := currentCodec()
		for range 3 {
			b, err := c.encodeFinding(want)
			if err != nil {
				t.Skip() // not valid UTF-8: proto refuses it
			}
			got := &storagev1.FindingRecord{}
			if err := c.decodeFinding(b, got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, want) {
				t.Fatalf("round trip:\n got %v\nwant %v", got, want)
			}
		}
	})
}

// TestCatalogSnapshot: a database keeps the catalog entries it was first
// written with, so a release that changes a check's defaults or title
// does not change how stored records read.
func TestCatalogSnapshot(t *testing.T) {
	db, _, path := openTest(t)
	old := &storagev1.CatalogEntry{Title: "An older title", Category: "pod-security",
		ResponsibleParty: fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_WORKLOAD, Severity: fleetscanv1.Severity_SEVERITY_LOW}
	err := db.update(func(tx *txn) error {
		v, err := marshal(old)
		if err != nil {
			return err
		}
		return tx.bucket(bucketCatalog).Put([]byte("check/POD-001"), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if e := db.codec.checks["POD-001"]; e.title != old.Title || e.severity != old.Severity {
		t.Fatalf("reopening overwrote the stored entry: %+v", e)
	}
	want := &storagev1.FindingRecord{CheckId: "POD-001", Severity: fleetscanv1.Severity_SEVERITY_LOW, Category: "pod-security",
		ResponsibleParty: fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_WORKLOAD,
		Resource:         &fleetscanv1.ResourceRef{Kind: "Pod", Name: "web"}, Message: "web: an older title"}
	b, err := db.codec.encodeFinding(want)
	if err != nil {
		t.Fatal(err)
	}
	got := &storagev1.FindingRecord{}
	if err := db.codec.decodeFinding(b, got); err != nil || !proto.Equal(got, want) {
		t.Errorf("round trip with the snapshot: %v %v", got, err)
	}
}
