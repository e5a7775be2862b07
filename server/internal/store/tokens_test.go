package store

import (
	"context"
	"errors"
	"testing"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
)

// TestJoinTokenExchange: a join token stays usable until the credential it
// bought is confirmed, a second exchange replaces an unconfirmed
// credential, and a confirmed one spends the join token for good.
func TestJoinTokenExchange(t *testing.T) {
	db, _, _ := openTest(t)
	ctx := context.Background()
	join, lost, kept, thief := []byte("join"), []byte("lost"), []byte("kept"), []byte("thief")
	if err := db.PutToken(ctx, join, &storagev1.TokenRecord{Role: "join", ClusterId: "c1"}); err != nil {
		t.Fatal(err)
	}
	worker := func() *storagev1.TokenRecord { return &storagev1.TokenRecord{Role: "worker", ClusterId: "c1"} }
	if err := db.ExchangeJoinToken(ctx, join, "c2", lost, worker()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("exchange for another cluster: %v, want ErrNotFound", err)
	}

	// The first Welcome is lost: the worker comes back with the join token.
	if err := db.ExchangeJoinToken(ctx, join, "c1", lost, worker()); err != nil {
		t.Fatal(err)
	}
	if err := db.ExchangeJoinToken(ctx, join, "c1", kept, worker()); err != nil {
		t.Fatalf("exchange after a lost Welcome: %v", err)
	}
	if _, err := db.LookupToken(ctx, lost); !errors.Is(err, ErrNotFound) {
		t.Errorf("the credential of the lost Welcome: %v, want deleted", err)
	}
	rec, err := db.LookupToken(ctx, kept)
	if err != nil || string(rec.PendingJoinHash) != "join" {
		t.Fatalf("new credential: %v %v, want pending on the join token", rec, err)
	}

	if err := db.ConfirmCredential(ctx, kept); err != nil {
		t.Fatal(err)
	}
	if rec, err := db.LookupToken(ctx, kept); err != nil || len(rec.PendingJoinHash) != 0 {
		t.Errorf("confirmed credential: %v %v, want kept and no longer pending", rec, err)
	}
	if _, err := db.LookupToken(ctx, join); !errors.Is(err, ErrNotFound) {
		t.Errorf("join token after the confirmation: %v, want spent", err)
	}
	if err := db.ExchangeJoinToken(ctx, join, "c1", thief, worker()); !errors.Is(err, ErrNotFound) {
		t.Errorf("exchange of a spent join token: %v, want ErrNotFound", err)
	}
	// Confirming again, as every later connection does, changes nothing.
	if err := db.ConfirmCredential(ctx, kept); err != nil {
		t.Errorf("second confirmation: %v", err)
	}
}

// TestConfirmKeepsOtherClustersPending: confirming one cluster's
// credential deletes only the credentials pending on its own join token.
// TestJoinTokenExchange has a single join token, so a deletePending that
// ignored joinHash would pass it.
func TestConfirmKeepsOtherClustersPending(t *testing.T) {
	db, _, _ := openTest(t)
	ctx := context.Background()
	for _, c := range []string{"a", "b"} {
		if err := db.PutToken(ctx, []byte("join-"+c), &storagev1.TokenRecord{Role: "join", ClusterId: c}); err != nil {
			t.Fatal(err)
		}
		if err := db.ExchangeJoinToken(ctx, []byte("join-"+c), c, []byte("cred-"+c), &storagev1.TokenRecord{Role: "worker", ClusterId: c}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.ConfirmCredential(ctx, []byte("cred-a")); err != nil {
		t.Fatal(err)
	}
	if rec, err := db.LookupToken(ctx, []byte("cred-b")); err != nil || string(rec.PendingJoinHash) != "join-b" {
		t.Errorf("cluster b's pending credential after a's confirmation: %v %v, want kept and pending", rec, err)
	}
	if _, err := db.LookupToken(ctx, []byte("join-b")); err != nil {
		t.Errorf("cluster b's join token after a's confirmation: %v, want kept", err)
	}
}
