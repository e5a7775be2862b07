package storetest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

const (
	pendingState   = fleetscanv1.DeliveryState_DELIVERY_STATE_PENDING
	deliveredState = fleetscanv1.DeliveryState_DELIVERY_STATE_DELIVERED
	failedState    = fleetscanv1.DeliveryState_DELIVERY_STATE_FAILED
)

// t0 is the contract's epoch for deliveries, in milliseconds.
const t0 = int64(1_700_000_000_000)

// delivery is an outgoing delivery as the outbox hook and the watcher make
// them, created at createMs (its id's time too, as theirs): pending and due
// at dueMs, or in the state given, ended at createMs+1000 (as the
// dispatcher leaves it, with no next attempt).
func delivery(notifierID string, createMs int64, state fleetscanv1.DeliveryState, dueMs int64) store.Outgoing {
	r := &storagev1.DeliveryRecord{
		NotifierId: notifierID, EventType: fleetscanv1.EventType_EVENT_TYPE_NEW_FINDINGS, ClusterId: "prod",
		Summary: "3 new findings", Event: []byte(`{"specversion":"1.0"}`), State: state, CreateMs: createMs,
	}
	switch state {
	case pendingState:
		r.NextAttemptMs = dueMs
	case deliveredState:
		r.Attempts, r.LastAttemptMs, r.DeliveredMs, r.LastStatus = 1, createMs+1000, createMs+1000, 200
	case failedState:
		r.Attempts, r.LastAttemptMs, r.LastStatus, r.LastError = 3, createMs+1000, 410, "gone"
	}
	return store.Outgoing{ID: ulid.MustNew(uint64(createMs), ulid.DefaultEntropy()), Record: r}
}

func deliveryIDs(ds []store.Delivery) []ulid.ULID {
	out := make([]ulid.ULID, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

func wantDeliveries(t *testing.T, what string, got []store.Delivery, want ...store.Outgoing) {
	t.Helper()
	wantIDs := make([]ulid.ULID, 0, len(want))
	for _, o := range want {
		wantIDs = append(wantIDs, o.ID)
	}
	if g := deliveryIDs(got); !slices.Equal(g, wantIDs) {
		t.Fatalf("%s: got %v, want %v", what, g, wantIDs)
	}
	for i, d := range got {
		wantProto(t, what+": "+d.ID.String(), d.Record, want[i].Record)
	}
}

func wantPending(t *testing.T, db Backend, want int) {
	t.Helper()
	n, err := db.PendingDeliveries()
	must(t, "PendingDeliveries", err)
	if n != want {
		t.Fatalf("PendingDeliveries: %d, want %d", n, want)
	}
}

// twoNotifiers creates the notifiers "ops" and "mail" and returns their ids.
func twoNotifiers(t *testing.T, ctx context.Context, db Backend) (string, string) {
	t.Helper()
	a, err := db.CreateNotifier(ctx, notifier("ops", ""))
	must(t, "CreateNotifier", err)
	b, err := db.CreateNotifier(ctx, notifier("mail", "acme"))
	must(t, "CreateNotifier", err)
	return a.Id, b.Id
}

var outboxCases = []contractCase{
	{"outbox/add and list newest first, by notifier and state, in pages", func(t *testing.T, ctx context.Context, db Backend) {
		ops, mail := twoNotifiers(t, ctx, db)
		d := []store.Outgoing{
			delivery(ops, t0, deliveredState, 0),
			delivery(mail, t0+1, pendingState, t0+5000),
			delivery(ops, t0+2, failedState, 0),
			delivery(ops, t0+3, pendingState, t0+3),
			delivery(mail, t0+4, deliveredState, 0),
		}
		added, err := db.AddDeliveries(ctx, "", clonedOutgoing(d))
		must(t, "AddDeliveries", err)
		if !added {
			t.Fatal("AddDeliveries without a once key reports it wrote nothing")
		}
		wantPending(t, db, 2)
		all, more, err := db.ListDeliveries(ctx, store.DeliveryFilter{}, nil, 10)
		must(t, "ListDeliveries", err)
		wantDeliveries(t, "ListDeliveries", all, d[4], d[3], d[2], d[1], d[0])
		if more != nil {
			t.Fatalf("ListDeliveries of all: more %x", more)
		}
		// Exactly a page's worth: no key to go on from.
		all, more, err = db.ListDeliveries(ctx, store.DeliveryFilter{}, nil, 5)
		must(t, "ListDeliveries", err)
		if len(all) != 5 || more != nil {
			t.Fatalf("ListDeliveries of a full page: %d, more %x", len(all), more)
		}
		got, _, err := db.ListDeliveries(ctx, store.DeliveryFilter{Notifiers: map[string]bool{ops: true}}, nil, 10)
		must(t, "ListDeliveries of ops", err)
		wantDeliveries(t, "ListDeliveries of ops", got, d[3], d[2], d[0])
		got, _, err = db.ListDeliveries(ctx, store.DeliveryFilter{Notifiers: map[string]bool{}}, nil, 10)
		must(t, "ListDeliveries of no notifier", err)
		wantDeliveries(t, "ListDeliveries of no notifier", got)
		got, _, err = db.ListDeliveries(ctx, store.DeliveryFilter{State: deliveredState}, nil, 10)
		must(t, "ListDeliveries delivered", err)
		wantDeliveries(t, "ListDeliveries delivered", got, d[4], d[0])
		got, _, err = db.ListDeliveries(ctx, store.DeliveryFilter{Notifiers: map[string]bool{mail: true}, State: pendingState}, nil, 10)
		must(t, "ListDeliveries of mail pending", err)
		wantDeliveries(t, "ListDeliveries of mail pending", got, d[1])

		// Pages of two: the key is the last one listed, and the next page
		// starts after it.
		var pages [][]ulid.ULID
		var before []byte
		for {
			page, next, err := db.ListDeliveries(ctx, store.DeliveryFilter{}, before, 2)
			must(t, "ListDeliveries page", err)
			pages = append(pages, deliveryIDs(page))
			if next == nil {
				break
			}
			if want := page[len(page)-1].ID; string(next) != string(want[:]) {
				t.Fatalf("page key %x, want the last listed %s", next, want)
			}
			before = next
		}
		want := [][]ulid.ULID{{d[4].ID, d[3].ID}, {d[2].ID, d[1].ID}, {d[0].ID}}
		if !slices.EqualFunc(pages, want, slices.Equal) {
			t.Fatalf("pages %v, want %v", pages, want)
		}
		// A key that is no delivery's: those before it.
		between := ulid.MustNew(uint64(t0+2), ulid.DefaultEntropy())
		if between.Compare(d[2].ID) < 0 {
			between = d[2].ID
		} else if between.Compare(d[3].ID) >= 0 {
			t.Fatal("ULID entropy out of order")
		}
		got, _, err = db.ListDeliveries(ctx, store.DeliveryFilter{}, between[:], 10)
		must(t, "ListDeliveries before a key", err)
		if between == d[2].ID {
			wantDeliveries(t, "ListDeliveries before a key", got, d[1], d[0])
		} else {
			wantDeliveries(t, "ListDeliveries before a key", got, d[2], d[1], d[0])
		}
		// A key of another length (the API's page tokens are sealed, so
		// only a store's own keys reach it): those before it in byte order.
		for _, key := range [][]byte{d[2].ID[:8], append(d[2].ID[:], 0), d[2].ID[:0:0], {0xff}} {
			var want []store.Outgoing
			for i := len(d) - 1; i >= 0; i-- {
				if bytes.Compare(d[i].ID[:], key) < 0 {
					want = append(want, d[i])
				}
			}
			got, _, err = db.ListDeliveries(ctx, store.DeliveryFilter{}, key, 10)
			must(t, "ListDeliveries before a key", err)
			wantDeliveries(t, fmt.Sprintf("ListDeliveries before %x", key), got, want...)
		}
	}},
	{"outbox/a once key is written once, with its deliveries", func(t *testing.T, ctx context.Context, db Backend) {
		ops, _ := twoNotifiers(t, ctx, db)
		first := delivery(ops, t0, pendingState, t0)
		added, err := db.AddDeliveries(ctx, "offline/prod/ops", clonedOutgoing([]store.Outgoing{first}))
		must(t, "AddDeliveries", err)
		if !added {
			t.Fatal("AddDeliveries of a new once key wrote nothing")
		}
		again := delivery(ops, t0+1, pendingState, t0+1)
		added, err = db.AddDeliveries(ctx, "offline/prod/ops", clonedOutgoing([]store.Outgoing{again}))
		must(t, "AddDeliveries again", err)
		if added {
			t.Fatal("AddDeliveries of a once key already written wrote again")
		}
		// A key with no deliveries is written too.
		added, err = db.AddDeliveries(ctx, "expiry/x/ops", nil)
		must(t, "AddDeliveries of no deliveries", err)
		if !added {
			t.Fatal("AddDeliveries of a new once key and no deliveries reports nothing written")
		}
		other := delivery(ops, t0+2, pendingState, t0+2)
		added, err = db.AddDeliveries(ctx, "expiry/x/ops", clonedOutgoing([]store.Outgoing{other}))
		must(t, "AddDeliveries after an empty once", err)
		if added {
			t.Fatal("AddDeliveries wrote a once key twice")
		}
		all, _, err := db.ListDeliveries(ctx, store.DeliveryFilter{}, nil, 10)
		must(t, "ListDeliveries", err)
		wantDeliveries(t, "ListDeliveries", all, first)
		wantPending(t, db, 1)
	}},
	{"outbox/due deliveries: most overdue first, a limit, the next due time", func(t *testing.T, ctx context.Context, db Backend) {
		ops, mail := twoNotifiers(t, ctx, db)
		wantDue := func(nowMs int64, limit int, wantNext int64, want ...store.Outgoing) {
			t.Helper()
			got, next, err := db.DueDeliveries(ctx, nowMs, limit)
			must(t, "DueDeliveries", err)
			wantDeliveries(t, "DueDeliveries", got, want...)
			if next != wantNext {
				t.Fatalf("DueDeliveries(%d, %d): next %d, want %d", nowMs, limit, next, wantNext)
			}
		}
		wantDue(t0, 10, 0)
		d := []store.Outgoing{
			delivery(ops, t0, pendingState, t0+3000),
			delivery(mail, t0+1, pendingState, t0+1000),
			delivery(ops, t0+2, deliveredState, 0),
			delivery(mail, t0+3, pendingState, t0+2000),
			delivery(ops, t0+4, pendingState, t0+2000), // due with d[3]: by id
		}
		_, err := db.AddDeliveries(ctx, "", clonedOutgoing(d))
		must(t, "AddDeliveries", err)
		wantPending(t, db, 4)
		wantDue(t0, 10, t0+1000)
		wantDue(t0+1000, 10, t0+2000, d[1])
		wantDue(t0+2500, 10, t0+3000, d[1], d[3], d[4])
		wantDue(t0+2500, 2, t0+2000, d[1], d[3])
		wantDue(t0+2500, 1, t0+2000, d[1])
		wantDue(t0+3000, 10, 0, d[1], d[3], d[4], d[0])
		wantDue(t0+9000, 4, 0, d[1], d[3], d[4], d[0])
		wantDue(t0+9000, 3, t0+3000, d[1], d[3], d[4])
	}},
	{"outbox/update keeps the due time in step with the state", func(t *testing.T, ctx context.Context, db Backend) {
		ops, _ := twoNotifiers(t, ctx, db)
		d := []store.Outgoing{
			delivery(ops, t0, pendingState, t0+1000),
			delivery(ops, t0+1, pendingState, t0+2000),
		}
		_, err := db.AddDeliveries(ctx, "", clonedOutgoing(d))
		must(t, "AddDeliveries", err)

		// A failed attempt: tried again later, after the other.
		want := clone(d[0].Record)
		want.Attempts, want.LastAttemptMs, want.LastStatus, want.LastError, want.NextAttemptMs = 1, t0+1000, 503, "unavailable", t0+4000
		got, err := db.UpdateDelivery(ctx, d[0].ID, func(r *storagev1.DeliveryRecord) {
			r.Attempts, r.LastAttemptMs, r.LastStatus, r.LastError, r.NextAttemptMs = 1, t0+1000, 503, "unavailable", t0+4000
		})
		must(t, "UpdateDelivery", err)
		wantProto(t, "UpdateDelivery's result", got, want)
		due, next, err := db.DueDeliveries(ctx, t0+3000, 10)
		must(t, "DueDeliveries", err)
		if ids := deliveryIDs(due); !slices.Equal(ids, []ulid.ULID{d[1].ID}) || next != t0+4000 {
			t.Fatalf("DueDeliveries after a retry: %v, next %d", ids, next)
		}
		// Delivered: no longer due nor pending.
		_, err = db.UpdateDelivery(ctx, d[1].ID, func(r *storagev1.DeliveryRecord) {
			r.State, r.Attempts, r.LastAttemptMs, r.DeliveredMs, r.LastStatus, r.NextAttemptMs = deliveredState, 1, t0+2000, t0+2000, 200, 0
		})
		must(t, "UpdateDelivery to delivered", err)
		wantPending(t, db, 1)
		due, next, err = db.DueDeliveries(ctx, t0+9000, 10)
		must(t, "DueDeliveries", err)
		if ids := deliveryIDs(due); !slices.Equal(ids, []ulid.ULID{d[0].ID}) || next != 0 {
			t.Fatalf("DueDeliveries after a delivery: %v, next %d", ids, next)
		}
		// Given up, then pending again (a test of the notifier resends).
		_, err = db.UpdateDelivery(ctx, d[0].ID, func(r *storagev1.DeliveryRecord) { r.State, r.NextAttemptMs = failedState, 0 })
		must(t, "UpdateDelivery to failed", err)
		wantPending(t, db, 0)
		due, next, err = db.DueDeliveries(ctx, t0+9000, 10)
		must(t, "DueDeliveries", err)
		if len(due) != 0 || next != 0 {
			t.Fatalf("DueDeliveries with none pending: %v, next %d", deliveryIDs(due), next)
		}
		_, err = db.UpdateDelivery(ctx, d[0].ID, func(r *storagev1.DeliveryRecord) { r.State, r.NextAttemptMs = pendingState, t0+5000 })
		must(t, "UpdateDelivery to pending", err)
		wantPending(t, db, 1)
		due, _, err = db.DueDeliveries(ctx, t0+5000, 10)
		must(t, "DueDeliveries", err)
		if ids := deliveryIDs(due); !slices.Equal(ids, []ulid.ULID{d[0].ID}) {
			t.Fatalf("DueDeliveries after pending again: %v", ids)
		}
		list, _, err := db.ListDeliveries(ctx, store.DeliveryFilter{}, nil, 10)
		must(t, "ListDeliveries", err)
		if len(list) != 2 || list[0].Record.State != deliveredState || list[1].Record.State != pendingState || list[1].Record.NextAttemptMs != t0+5000 {
			t.Fatalf("ListDeliveries after updates: %v", list)
		}

		unknown := ulid.Make()
		called := false
		_, err = db.UpdateDelivery(ctx, unknown, func(*storagev1.DeliveryRecord) { called = true })
		wantErr(t, "UpdateDelivery of an unknown id", err, store.ErrNotFound)
		if want := "delivery " + unknown.String() + ": not found"; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
		if called {
			t.Error("UpdateDelivery of an unknown id called change")
		}
	}},
	{"outbox/compact drops what ended before the cutoff, and old once keys", func(t *testing.T, ctx context.Context, db Backend) {
		ops, _ := twoNotifiers(t, ctx, db)
		d := []store.Outgoing{
			delivery(ops, t0, deliveredState, 0),          // ended t0+1000: dropped
			delivery(ops, t0+1, pendingState, t0+1),       // pending: kept
			delivery(ops, t0+2, failedState, 0),           // ended t0+1002: dropped
			delivery(ops, t0+5000, deliveredState, 0),     // ended t0+6000: kept
			delivery(ops, t0+9, deliveredState, 0),        // ended t0+1009 but created after t0+5000's id: kept
			delivery(ops, t0+10_000, pendingState, t0+10), // pending, after the cutoff
		}
		// d[4]'s id is later than d[3]'s: the stores look at deliveries in
		// id order up to the first created at or after the cutoff.
		d[4].ID = ulid.MustNew(uint64(t0+5001), ulid.DefaultEntropy())
		_, err := db.AddDeliveries(ctx, "", clonedOutgoing(d))
		must(t, "AddDeliveries", err)
		// A delivery ended at the cutoff itself is kept.
		n, err := db.CompactDeliveries(ctx, t0+1000)
		must(t, "CompactDeliveries", err)
		if n != 0 {
			t.Fatalf("CompactDeliveries(t0+1000) dropped %d, want 0", n)
		}
		n, err = db.CompactDeliveries(ctx, t0+4000)
		must(t, "CompactDeliveries", err)
		if n != 2 {
			t.Fatalf("CompactDeliveries dropped %d, want 2", n)
		}
		all, _, err := db.ListDeliveries(ctx, store.DeliveryFilter{}, nil, 10)
		must(t, "ListDeliveries", err)
		wantDeliveries(t, "ListDeliveries after compaction", all, d[5], d[4], d[3], d[1])
		wantPending(t, db, 2)

		// Once keys are stamped with the store's clock, now.
		_, err = db.AddDeliveries(ctx, "offline/prod/ops", nil)
		must(t, "AddDeliveries", err)
		_, err = db.CompactDeliveries(ctx, time.Now().Add(-time.Hour).UnixMilli())
		must(t, "CompactDeliveries", err)
		added, err := db.AddDeliveries(ctx, "offline/prod/ops", nil)
		must(t, "AddDeliveries", err)
		if added {
			t.Fatal("a once key written after the cutoff was dropped")
		}
		_, err = db.CompactDeliveries(ctx, time.Now().Add(time.Hour).UnixMilli())
		must(t, "CompactDeliveries", err)
		added, err = db.AddDeliveries(ctx, "offline/prod/ops", nil)
		must(t, "AddDeliveries", err)
		if !added {
			t.Fatal("a once key written before the cutoff was kept")
		}
	}},
	{"outbox/deleting a notifier gives up its pending deliveries", func(t *testing.T, ctx context.Context, db Backend) {
		ops, mail := twoNotifiers(t, ctx, db)
		d := []store.Outgoing{
			delivery(ops, t0, pendingState, t0+1000),
			delivery(mail, t0+1, pendingState, t0+1000),
			delivery(ops, t0+2, deliveredState, 0),
			delivery(ops, t0+3, pendingState, t0+2000),
		}
		_, err := db.AddDeliveries(ctx, "", clonedOutgoing(d))
		must(t, "AddDeliveries", err)
		n, err := db.DeleteNotifier(ctx, ops, func(*storagev1.NotifierRecord) bool { return true })
		must(t, "DeleteNotifier", err)
		if n != 2 {
			t.Fatalf("DeleteNotifier gave up %d, want 2", n)
		}
		wantPending(t, db, 1)
		due, next, err := db.DueDeliveries(ctx, t0+9000, 10)
		must(t, "DueDeliveries", err)
		wantDeliveries(t, "DueDeliveries", due, d[1])
		if next != 0 {
			t.Fatalf("DueDeliveries: next %d", next)
		}
		gone := []store.Outgoing{d[3], d[0]}
		for i := range gone {
			r := clone(gone[i].Record)
			r.State, r.LastError, r.NextAttemptMs = failedState, "notifier deleted", 0
			gone[i].Record = r
		}
		got, _, err := db.ListDeliveries(ctx, store.DeliveryFilter{Notifiers: map[string]bool{ops: true}}, nil, 10)
		must(t, "ListDeliveries", err)
		wantDeliveries(t, "ListDeliveries of the deleted notifier", got, gone[0], d[2], gone[1])
	}},
}

// clonedOutgoing copies deliveries, so that what a store keeps of them is
// not what the case compares with.
func clonedOutgoing(out []store.Outgoing) []store.Outgoing {
	c := make([]store.Outgoing, 0, len(out))
	for _, o := range out {
		c = append(c, store.Outgoing{ID: o.ID, Record: clone(o.Record)})
	}
	return c
}
