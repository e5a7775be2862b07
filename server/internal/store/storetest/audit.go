package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// auditRecord is one as audit's interceptor writes it, with no time (the
// store sets it).
func auditRecord(principal, method string) *storagev1.AuditRecord {
	return &storagev1.AuditRecord{
		Principal: principal, Role: "operator", Tenant: "acme", Method: "/fleetscan.v1.ClusterService/" + method,
		Peer: "10.0.0.7:51234", Request: `{"id":"prod"}`, Code: "OK",
	}
}

// appendAudit appends records in order and returns them as stored, with
// the times the store set.
func appendAudit(t *testing.T, ctx context.Context, db Backend, recs ...*storagev1.AuditRecord) []*storagev1.AuditRecord {
	t.Helper()
	for _, r := range recs {
		must(t, "AppendAudit", db.AppendAudit(ctx, r))
	}
	return recs
}

func auditIDs(es []store.AuditEvent) []ulid.ULID {
	out := make([]ulid.ULID, 0, len(es))
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

var auditCases = []contractCase{
	{"audit/append sets a missing time; list newest first, with keep and pages", func(t *testing.T, ctx context.Context, db Backend) {
		start := time.Now().UnixMilli()
		set := auditRecord("bob", "GetCluster")
		set.TimeMs, set.Code, set.Error = t0, "NotFound", `cluster "x": not found`
		recs := appendAudit(t, ctx, db,
			auditRecord("alice", "CreateCluster"), set, auditRecord("alice", "UpdateCluster"),
			auditRecord("carol", "ListClusters"), auditRecord("alice", "DeleteCluster"))
		end := time.Now().UnixMilli()
		for i, r := range recs {
			if i == 1 {
				if r.TimeMs != t0 {
					t.Fatalf("AppendAudit changed a time it was given: %d", r.TimeMs)
				}
				continue
			}
			if r.TimeMs < start || r.TimeMs > end {
				t.Fatalf("AppendAudit set the time %d, not in [%d, %d]", r.TimeMs, start, end)
			}
		}
		all, more, err := db.ListAudit(ctx, ulid.ULID{}, 0, 10, nil)
		must(t, "ListAudit", err)
		if len(all) != 5 || more {
			t.Fatalf("ListAudit: %d events, more %v; want 5, false", len(all), more)
		}
		for i, e := range all {
			wantProto(t, "ListAudit", e.Record, recs[4-i])
			if i > 0 && e.ID.Compare(all[i-1].ID) >= 0 {
				t.Fatalf("ListAudit: %s after %s, want newest first", e.ID, all[i-1].ID)
			}
		}
		ids := auditIDs(all) // newest first

		_, more, err = db.ListAudit(ctx, ulid.ULID{}, 0, 5, nil)
		must(t, "ListAudit", err)
		if more {
			t.Fatal("ListAudit of exactly a page reports more")
		}
		none, more, err := db.ListAudit(ctx, ulid.ULID{}, 0, 0, nil)
		must(t, "ListAudit", err)
		if len(none) != 0 || !more {
			t.Fatalf("ListAudit with a limit of 0: %d events, more %v; want none, true", len(none), more)
		}

		alice := func(r *storagev1.AuditRecord) bool { return r.Principal == "alice" }
		got, more, err := db.ListAudit(ctx, ulid.ULID{}, 0, 10, alice)
		must(t, "ListAudit of alice", err)
		if g := auditIDs(got); !slices.Equal(g, []ulid.ULID{ids[0], ids[2], ids[4]}) || more {
			t.Fatalf("ListAudit of alice: %v, more %v", g, more)
		}
		got, more, err = db.ListAudit(ctx, ulid.ULID{}, 0, 2, alice)
		must(t, "ListAudit of alice", err)
		if g := auditIDs(got); !slices.Equal(g, []ulid.ULID{ids[0], ids[2]}) || !more {
			t.Fatalf("ListAudit of alice, 2: %v, more %v", g, more)
		}
		got, more, err = db.ListAudit(ctx, ids[2], 0, 2, alice)
		must(t, "ListAudit of alice before the last listed", err)
		if g := auditIDs(got); !slices.Equal(g, []ulid.ULID{ids[4]}) || more {
			t.Fatalf("ListAudit of alice, next page: %v, more %v", g, more)
		}
		// before is exclusive, and need not be an event's id.
		got, _, err = db.ListAudit(ctx, ids[1], 0, 10, nil)
		must(t, "ListAudit before an id", err)
		if g := auditIDs(got); !slices.Equal(g, ids[2:]) {
			t.Fatalf("ListAudit before %s: %v", ids[1], g)
		}
		got, _, err = db.ListAudit(ctx, ulid.MustNew(ulid.MaxTime(), nil), 0, 10, nil)
		must(t, "ListAudit before the end of time", err)
		if g := auditIDs(got); !slices.Equal(g, ids) {
			t.Fatalf("ListAudit before the end of time: %v", g)
		}
		got, more, err = db.ListAudit(ctx, ids[4], 0, 10, nil)
		must(t, "ListAudit before the oldest", err)
		if len(got) != 0 || more {
			t.Fatalf("ListAudit before the oldest: %v, more %v", auditIDs(got), more)
		}
	}},
	{"audit/since stops at the first event whose id is older, whatever its record's time", func(t *testing.T, ctx context.Context, db Backend) {
		old := auditRecord("bob", "GetCluster")
		old.TimeMs = t0 // years before its id's time
		appendAudit(t, ctx, db, auditRecord("alice", "CreateCluster"), old, auditRecord("carol", "ListClusters"))
		all, _, err := db.ListAudit(ctx, ulid.ULID{}, 0, 10, nil)
		must(t, "ListAudit", err)
		ids := auditIDs(all)
		for _, since := range []ulid.ULID{ids[0], ids[1], ids[2]} {
			sinceMs := int64(since.Time())
			var want []ulid.ULID
			for _, id := range ids {
				if int64(id.Time()) >= sinceMs {
					want = append(want, id)
				}
			}
			got, more, err := db.ListAudit(ctx, ulid.ULID{}, sinceMs, 10, nil)
			must(t, "ListAudit since", err)
			if g := auditIDs(got); !slices.Equal(g, want) || more {
				t.Fatalf("ListAudit since %d: %v, more %v; want %v", sinceMs, g, more, want)
			}
		}
		got, _, err := db.ListAudit(ctx, ulid.ULID{}, int64(ids[2].Time()), 10, func(r *storagev1.AuditRecord) bool { return r.Principal == "bob" })
		must(t, "ListAudit of bob since", err)
		if len(got) != 1 || got[0].Record.TimeMs != t0 {
			t.Fatalf("ListAudit of bob since his id's time: %v", auditIDs(got))
		}
		got, more, err := db.ListAudit(ctx, ulid.ULID{}, time.Now().Add(time.Hour).UnixMilli(), 10, nil)
		must(t, "ListAudit since an hour ahead", err)
		if len(got) != 0 || more {
			t.Fatalf("ListAudit since an hour ahead: %v, more %v", auditIDs(got), more)
		}
	}},
}
