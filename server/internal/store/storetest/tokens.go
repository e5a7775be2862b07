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
	{"tokens/a join token stays usable until the credential it bought is confirmed", func(t *testing.T, ctx context.Context, db Backend) {
		// From the bbolt store's TestJoinTokenExchange.
		createClusters(t, ctx, db, "acme", "c1", "c2")
		join := hashOf("join")
		must(t, "PutToken", db.PutToken(ctx, join, &storagev1.TokenRecord{Id: "01JOIN", Role: "join", ClusterId: "c1"}))
		must(t, "PutToken", db.PutToken(ctx, hashOf("expired"), &storagev1.TokenRecord{Id: "01EXP", Role: "join", ClusterId: "c1", ExpireMs: 1}))
		must(t, "PutToken", db.PutToken(ctx, hashOf("revoked"), &storagev1.TokenRecord{Id: "01REV", Role: "join", ClusterId: "c1", RevokeMs: 1}))
		must(t, "PutToken", db.PutToken(ctx, hashOf("op"), &storagev1.TokenRecord{Id: "01OP", Role: "operator"}))
		worker := func() *storagev1.TokenRecord {
			return &storagev1.TokenRecord{Role: "worker", ClusterId: "c1", Name: "worker c1"}
		}
		for _, c := range []struct {
			what    string
			hash    []byte
			cluster string
		}{
			{"another cluster's", join, "c2"},
			{"an unknown", hashOf("nobody"), "c1"},
			{"an expired", hashOf("expired"), "c1"},
			{"a revoked", hashOf("revoked"), "c1"},
			{"an operator token as a", hashOf("op"), "c1"},
		} {
			err := db.ExchangeJoinToken(ctx, c.hash, c.cluster, hashOf("lost"), worker())
			wantErr(t, "exchange of "+c.what+" join token", err, store.ErrNotFound)
			if want := "join token: not found"; err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
		}
		_, err := db.LookupToken(ctx, hashOf("lost"))
		wantErr(t, "a refused exchange's credential", err, store.ErrNotFound)

		// The first Welcome is lost: the worker comes back with the join token.
		lost := worker()
		must(t, "ExchangeJoinToken", db.ExchangeJoinToken(ctx, join, "c1", hashOf("lost"), lost))
		if lost.Id == "" || lost.CreateMs == 0 || string(lost.PendingJoinHash) != string(join) {
			t.Fatalf("the credential: %v, want an id, a create time, pending on the join token", lost)
		}
		kept := worker()
		kept.Id = "01KEPT"
		must(t, "exchange after a lost Welcome", db.ExchangeJoinToken(ctx, join, "c1", hashOf("kept"), kept))
		_, err = db.LookupToken(ctx, hashOf("lost"))
		wantErr(t, "the credential of the lost Welcome", err, store.ErrNotFound)
		got, err := db.LookupToken(ctx, hashOf("kept"))
		must(t, "LookupToken", err)
		wantProto(t, "the new credential", got, kept)

		must(t, "ConfirmCredential", db.ConfirmCredential(ctx, hashOf("kept")))
		got, err = db.LookupToken(ctx, hashOf("kept"))
		must(t, "LookupToken", err)
		if len(got.PendingJoinHash) != 0 {
			t.Fatalf("confirmed credential still pending: %v", got)
		}
		_, err = db.LookupToken(ctx, join)
		wantErr(t, "the join token after the confirmation", err, store.ErrNotFound)
		err = db.ExchangeJoinToken(ctx, join, "c1", hashOf("thief"), worker())
		wantErr(t, "exchange of a spent join token", err, store.ErrNotFound)
		// Confirming again, as every later connection does, changes nothing.
		must(t, "second confirmation", db.ConfirmCredential(ctx, hashOf("kept")))
		err = db.ConfirmCredential(ctx, hashOf("nobody"))
		wantErr(t, "ConfirmCredential of an unknown hash", err, store.ErrNotFound)
		if want := "credential: not found"; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
	}},
	{"tokens/confirming spends only its own join token", func(t *testing.T, ctx context.Context, db Backend) {
		// From the bbolt store's TestConfirmKeepsOtherClustersPending.
		createClusters(t, ctx, db, "acme", "a", "b")
		for _, c := range []string{"a", "b"} {
			must(t, "PutToken", db.PutToken(ctx, hashOf("join-"+c), &storagev1.TokenRecord{Id: "01J" + c, Role: "join", ClusterId: c}))
			must(t, "ExchangeJoinToken", db.ExchangeJoinToken(ctx, hashOf("join-"+c), c, hashOf("cred-"+c), &storagev1.TokenRecord{Role: "worker", ClusterId: c}))
		}
		must(t, "ConfirmCredential", db.ConfirmCredential(ctx, hashOf("cred-a")))
		got, err := db.LookupToken(ctx, hashOf("cred-b"))
		must(t, "LookupToken of b's credential", err)
		if string(got.PendingJoinHash) != string(hashOf("join-b")) {
			t.Fatalf("b's credential after a's confirmation: %v, want pending on b's join token", got)
		}
		_, err = db.LookupToken(ctx, hashOf("join-b"))
		must(t, "LookupToken of b's join token after a's confirmation", err)
	}},
}
