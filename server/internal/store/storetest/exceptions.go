package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// exception is one as the API stores it: with its create time.
func exception(tenant, cluster, check string) *fleetscanv1.Exception {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	return &fleetscanv1.Exception{
		Tenant: tenant, ClusterId: cluster, CheckId: check, OwnerTenant: tenant,
		Namespace: "payments", ResourceKind: "Deployment", ResourceName: "api",
		Reason: "accepted", Author: "alice",
		CreateTime: ts(now), ExpireTime: ts(now.Add(30 * 24 * time.Hour)),
	}
}

var exceptionCases = []contractCase{
	{"exceptions/create assigns ids; list is newest first", func(t *testing.T, ctx context.Context, db Backend) {
		var made []*fleetscanv1.Exception
		for _, tenant := range []string{"acme", "other", "acme"} {
			e, err := db.CreateException(ctx, exception(tenant, "c1", "K001"))
			must(t, "CreateException", err)
			if _, err := ulid.ParseStrict(e.Id); err != nil {
				t.Fatalf("id %q: %v", e.Id, err)
			}
			made = append(made, e)
		}
		// An operator's: no tenant, any cluster, no create time given.
		op := &fleetscanv1.Exception{CheckId: "K002", Reason: "r", Author: "op", CreateTime: ts(time.UnixMilli(1_700_000_000_000))}
		e, err := db.CreateException(ctx, op)
		must(t, "CreateException", err)
		made = append(made, e)

		got, err := db.ListExceptions(ctx, nil)
		must(t, "ListExceptions", err)
		wantIDs(t, "ListExceptions", got, made[3].Id, made[2].Id, made[1].Id, made[0].Id)
		for i, want := range []*fleetscanv1.Exception{made[3], made[2], made[1], made[0]} {
			wantProto(t, "ListExceptions' record", got[i], want)
		}
		acme, err := db.ListExceptions(ctx, func(e *fleetscanv1.Exception) bool { return e.OwnerTenant == "acme" })
		must(t, "ListExceptions", err)
		wantIDs(t, "ListExceptions of acme", acme, made[2].Id, made[0].Id)
	}},
	{"exceptions/delete marks deleted once and keeps it listed", func(t *testing.T, ctx context.Context, db Backend) {
		e, err := db.CreateException(ctx, exception("acme", "c1", "K001"))
		must(t, "CreateException", err)
		acme := func(e *fleetscanv1.Exception) bool { return e.OwnerTenant == "acme" }
		other := func(e *fleetscanv1.Exception) bool { return e.OwnerTenant == "other" }

		_, err = db.DeleteException(ctx, e.Id, other)
		wantErr(t, "DeleteException that keep refuses", err, store.ErrNotFound)
		if want := `exception "` + e.Id + `": not found`; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
		for _, id := range []string{"not-an-id", ulid.Make().String(), ""} {
			_, err = db.DeleteException(ctx, id, acme)
			wantErr(t, "DeleteException("+id+")", err, store.ErrNotFound)
		}

		first, err := db.DeleteException(ctx, e.Id, acme)
		must(t, "DeleteException", err)
		if first.DeleteTime == nil {
			t.Fatal("delete time not set")
		}
		want := clone(e)
		want.DeleteTime = first.DeleteTime
		wantProto(t, "DeleteException's result", first, want)
		again, err := db.DeleteException(ctx, e.Id, acme)
		must(t, "DeleteException again", err)
		wantProto(t, "DeleteException again", again, first)
		got, err := db.ListExceptions(ctx, nil)
		must(t, "ListExceptions", err)
		if len(got) != 1 {
			t.Fatalf("ListExceptions: %d, want the deleted one", len(got))
		}
		wantProto(t, "ListExceptions after delete", got[0], first)
		if s := store.ExceptionState(got[0], time.Now().UnixMilli()); s != fleetscanv1.ExceptionState_EXCEPTION_STATE_DELETED {
			t.Fatalf("state %v, want deleted", s)
		}
	}},
}
