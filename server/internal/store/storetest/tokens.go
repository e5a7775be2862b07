package storetest

import (
	"context"
	"encoding/hex"
	"testing"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

var tokenCases = []contractCase{
	{"tokens/put, look up and count", func(t *testing.T, ctx context.Context, db Backend) {
		n, err := db.CountTokens(ctx)
		must(t, "CountTokens", err)
		if n != 0 {
			t.Fatalf("CountTokens of an empty store: %d", n)
		}
		_, err = db.LookupToken(ctx, hashOf("nobody"))
		wantErr(t, "LookupToken of an unknown hash", err, store.ErrNotFound)

		op := &storagev1.TokenRecord{Id: "01OP", Name: "admin", Role: "operator", CreatedBy: "bootstrap", ExpireMs: 1 << 42}
		must(t, "PutToken", db.PutToken(ctx, hashOf("op"), op))
		if op.CreateMs == 0 {
			t.Fatal("create time not set")
		}
		ten := &storagev1.TokenRecord{Id: "01TEN", Role: "tenant", Tenant: "acme", CreateMs: 1_700_000_000_000}
		must(t, "PutToken", db.PutToken(ctx, hashOf("ten"), ten))
		if ten.CreateMs != 1_700_000_000_000 {
			t.Fatalf("a create time given was replaced: %d", ten.CreateMs)
		}
		for hash, want := range map[string]*storagev1.TokenRecord{"op": op, "ten": ten} {
			got, err := db.LookupToken(ctx, hashOf(hash))
			must(t, "LookupToken", err)
			wantProto(t, "LookupToken "+hash, got, want)
		}
		// Putting under the same hash replaces.
		ten2 := clone(ten)
		ten2.Name = "renamed"
		must(t, "PutToken again", db.PutToken(ctx, hashOf("ten"), ten2))
		got, err := db.LookupToken(ctx, hashOf("ten"))
		must(t, "LookupToken", err)
		wantProto(t, "LookupToken after a second PutToken", got, ten2)
		n, err = db.CountTokens(ctx)
		must(t, "CountTokens", err)
		if n != 2 {
			t.Fatalf("CountTokens %d, want 2", n)
		}
	}},
	{"tokens/list by id; a token without one is named by its hash", func(t *testing.T, ctx context.Context, db Backend) {
		createClusters(t, ctx, db, "acme", "c1")
		must(t, "PutToken", db.PutToken(ctx, hashOf("b"), &storagev1.TokenRecord{Id: "01B", Role: "tenant", Tenant: "acme"}))
		must(t, "PutToken", db.PutToken(ctx, hashOf("a"), &storagev1.TokenRecord{Id: "01A", Role: "worker", ClusterId: "c1"}))
		must(t, "PutToken", db.PutToken(ctx, hashOf("old"), &storagev1.TokenRecord{Role: "operator"}))
		old := "h" + hex.EncodeToString(hashOf("old")[:8])
		all, err := db.ListTokens(ctx, nil)
		must(t, "ListTokens", err)
		wantIDs(t, "ListTokens", all, "01A", "01B", old)
		// LookupToken leaves a missing id missing.
		got, err := db.LookupToken(ctx, hashOf("old"))
		must(t, "LookupToken", err)
		if got.Id != "" {
			t.Fatalf("LookupToken of a token without id: id %q", got.Id)
		}
		acme, err := db.ListTokens(ctx, func(t *storagev1.TokenRecord) bool { return t.Tenant == "acme" })
		must(t, "ListTokens", err)
		wantIDs(t, "ListTokens of acme", acme, "01B")
	}},
	{"tokens/revoke once, by id, of what keep selects", func(t *testing.T, ctx context.Context, db Backend) {
		must(t, "PutToken", db.PutToken(ctx, hashOf("a"), &storagev1.TokenRecord{Id: "01A", Role: "tenant", Tenant: "acme"}))
		must(t, "PutToken", db.PutToken(ctx, hashOf("old"), &storagev1.TokenRecord{Role: "tenant", Tenant: "other"}))
		acme := func(t *storagev1.TokenRecord) bool { return t.Tenant == "acme" }
		all := func(*storagev1.TokenRecord) bool { return true }

		_, err := db.RevokeToken(ctx, "01X", all)
		wantErr(t, "RevokeToken of an unknown id", err, store.ErrNotFound)
		if want := `token "01X": not found`; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
		old := "h" + hex.EncodeToString(hashOf("old")[:8])
		_, err = db.RevokeToken(ctx, old, acme)
		wantErr(t, "RevokeToken of a token keep refuses", err, store.ErrNotFound)

		first, err := db.RevokeToken(ctx, "01A", acme)
		must(t, "RevokeToken", err)
		if first.RevokeMs == 0 || first.Id != "01A" {
			t.Fatalf("RevokeToken returned %v", first)
		}
		again, err := db.RevokeToken(ctx, "01A", acme)
		must(t, "RevokeToken again", err)
		if again.RevokeMs != first.RevokeMs {
			t.Fatalf("a second revocation moved its time: %d, then %d", first.RevokeMs, again.RevokeMs)
		}
		stored, err := db.LookupToken(ctx, hashOf("a"))
		must(t, "LookupToken", err)
		wantProto(t, "LookupToken of the revoked token", stored, first)

		// A token without an id is revoked by its hash's id, and returned
		// with it; the stored record still has none.
		got, err := db.RevokeToken(ctx, old, all)
		must(t, "RevokeToken by a hash's id", err)
		if got.Id != old || got.RevokeMs == 0 {
			t.Fatalf("RevokeToken(%s) returned %v", old, got)
		}
		stored, err = db.LookupToken(ctx, hashOf("old"))
		must(t, "LookupToken", err)
		if stored.Id != "" || stored.RevokeMs != got.RevokeMs {
			t.Fatalf("stored after revocation: %v", stored)
		}
	}},
	{"tokens/rotating a cluster's revokes its credentials and replaces its join tokens", func(t *testing.T, ctx context.Context, db Backend) {
		createClusters(t, ctx, db, "acme", "c1", "c2")
		put := func(secret string, rec *storagev1.TokenRecord) {
			t.Helper()
			must(t, "PutToken "+secret, db.PutToken(ctx, hashOf(secret), rec))
		}
		put("w1", &storagev1.TokenRecord{Id: "01W1", Role: "worker", ClusterId: "c1"})
		put("w2", &storagev1.TokenRecord{Id: "01W2", Role: "worker", ClusterId: "c1", RevokeMs: 1_700_000_000_000})
		put("j1", &storagev1.TokenRecord{Id: "01J1", Role: "join", ClusterId: "c1"})
		put("other", &storagev1.TokenRecord{Id: "01J9", Role: "join", ClusterId: "c2"})
		put("op", &storagev1.TokenRecord{Id: "01OP", Role: "operator"})

		join := &storagev1.TokenRecord{Id: "01J2", Role: "join", ClusterId: "c1", CreateMs: 1}
		n, err := db.RotateClusterTokens(ctx, "c1", hashOf("j2"), join)
		must(t, "RotateClusterTokens", err)
		if n != 2 {
			t.Fatalf("RotateClusterTokens changed %d tokens, want 2 (w1 revoked, j1 deleted)", n)
		}
		if join.CreateMs <= 1 {
			t.Fatalf("the new join token's create time %d: want the store's", join.CreateMs)
		}
		w1, err := db.LookupToken(ctx, hashOf("w1"))
		must(t, "LookupToken w1", err)
		if w1.RevokeMs == 0 {
			t.Fatal("w1 not revoked")
		}
		w2, err := db.LookupToken(ctx, hashOf("w2"))
		must(t, "LookupToken w2", err)
		if w2.RevokeMs != 1_700_000_000_000 {
			t.Fatalf("w2's revocation moved to %d", w2.RevokeMs)
		}
		_, err = db.LookupToken(ctx, hashOf("j1"))
		wantErr(t, "LookupToken of the replaced join token", err, store.ErrNotFound)
		got, err := db.LookupToken(ctx, hashOf("j2"))
		must(t, "LookupToken of the new join token", err)
		wantProto(t, "the new join token", got, join)
		all, err := db.ListTokens(ctx, nil)
		must(t, "ListTokens", err)
		wantIDs(t, "ListTokens", all, "01J2", "01J9", "01OP", "01W1", "01W2")

		_, err = db.RotateClusterTokens(ctx, "zz", hashOf("j3"), &storagev1.TokenRecord{Id: "01J3", Role: "join", ClusterId: "zz"})
		wantErr(t, "RotateClusterTokens of an unknown cluster", err, store.ErrNotFound)
		if want := `cluster "zz": not found`; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
		_, err = db.LookupToken(ctx, hashOf("j3"))
		wantErr(t, "LookupToken of the unknown cluster's join token", err, store.ErrNotFound)
	}},
}
