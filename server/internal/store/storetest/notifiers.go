package storetest

import (
	"context"
	"testing"

	"github.com/oklog/ulid/v2"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// notifier is one as the API stores it.
func notifier(name, tenant string) *storagev1.NotifierRecord {
	return &storagev1.NotifierRecord{
		Name: name, Tenant: tenant, OwnerTenant: tenant,
		Kind: fleetscanv1.NotifierKind_NOTIFIER_KIND_WEBHOOK, Url: "https://hooks.example/" + name,
		Events:      []fleetscanv1.EventType{fleetscanv1.EventType_EVENT_TYPE_NEW_FINDINGS},
		MinSeverity: fleetscanv1.Severity_SEVERITY_HIGH, ScoreDrop: 5, OfflineAfterMs: 600_000,
		CreatedBy: "alice", CreateMs: 1_700_000_000_000, Secret: []byte("0123456789abcdef"),
	}
}

var notifierCases = []contractCase{
	{"notifiers/create, get, and list by name", func(t *testing.T, ctx context.Context, db Backend) {
		var made []*storagev1.NotifierRecord
		for _, n := range []*storagev1.NotifierRecord{notifier("ops", ""), notifier("alerts", "acme"), notifier("mail", "other")} {
			want := clone(n)
			got, err := db.CreateNotifier(ctx, n)
			must(t, "CreateNotifier", err)
			if _, err := ulid.ParseStrict(got.Id); err != nil {
				t.Fatalf("id %q: %v", got.Id, err)
			}
			want.Id = got.Id
			wantProto(t, "CreateNotifier's result", got, want)
			made = append(made, got)
		}
		for _, n := range made {
			got, err := db.GetNotifier(ctx, n.Id)
			must(t, "GetNotifier", err)
			wantProto(t, "GetNotifier", got, n)
		}
		all, err := db.ListNotifiers(ctx, nil)
		must(t, "ListNotifiers", err)
		wantIDs(t, "ListNotifiers", all, made[1].Id, made[2].Id, made[0].Id)
		acme, err := db.ListNotifiers(ctx, func(n *storagev1.NotifierRecord) bool { return n.Tenant == "acme" })
		must(t, "ListNotifiers", err)
		wantIDs(t, "ListNotifiers of acme", acme, made[1].Id)
	}},
	{"notifiers/create refuses a name in use", func(t *testing.T, ctx context.Context, db Backend) {
		_, err := db.CreateNotifier(ctx, notifier("ops", ""))
		must(t, "CreateNotifier", err)
		_, err = db.CreateNotifier(ctx, notifier("ops", "acme"))
		wantErr(t, "CreateNotifier of a name in use", err, store.ErrAlreadyExists)
		if want := `notifier "ops": already exists`; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
		all, err := db.ListNotifiers(ctx, nil)
		must(t, "ListNotifiers", err)
		if len(all) != 1 || all[0].Tenant != "" {
			t.Fatalf("ListNotifiers: %v, want the first alone", all)
		}
	}},
	{"notifiers/get of an unknown or malformed id is not found", func(t *testing.T, ctx context.Context, db Backend) {
		for _, id := range []string{ulid.Make().String(), "not-an-id", ""} {
			_, err := db.GetNotifier(ctx, id)
			wantErr(t, "GetNotifier("+id+")", err, store.ErrNotFound)
			if want := `notifier "` + id + `": not found`; err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
		}
	}},
	{"notifiers/delete what keep selects; the name is free again", func(t *testing.T, ctx context.Context, db Backend) {
		n, err := db.CreateNotifier(ctx, notifier("alerts", "acme"))
		must(t, "CreateNotifier", err)
		acme := func(n *storagev1.NotifierRecord) bool { return n.OwnerTenant == "acme" }
		other := func(n *storagev1.NotifierRecord) bool { return n.OwnerTenant == "other" }
		_, err = db.DeleteNotifier(ctx, n.Id, other)
		wantErr(t, "DeleteNotifier that keep refuses", err, store.ErrNotFound)
		for _, id := range []string{ulid.Make().String(), "not-an-id"} {
			_, err = db.DeleteNotifier(ctx, id, acme)
			wantErr(t, "DeleteNotifier("+id+")", err, store.ErrNotFound)
		}
		abandoned, err := db.DeleteNotifier(ctx, n.Id, acme)
		must(t, "DeleteNotifier", err)
		if abandoned != 0 {
			t.Fatalf("DeleteNotifier gave up %d deliveries of a notifier that had none", abandoned)
		}
		_, err = db.GetNotifier(ctx, n.Id)
		wantErr(t, "GetNotifier after delete", err, store.ErrNotFound)
		_, err = db.DeleteNotifier(ctx, n.Id, acme)
		wantErr(t, "DeleteNotifier again", err, store.ErrNotFound)
		_, err = db.CreateNotifier(ctx, notifier("alerts", "other"))
		must(t, "CreateNotifier of a deleted notifier's name", err)
	}},
}
