package pgstore

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"google.golang.org/protobuf/proto"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// TestDeleteNotifierGivesUpPendingDeliveries: deleting a notifier fails
// its pending deliveries ("notifier deleted", out of the due index) and
// leaves its others and other notifiers' as they are. The contract cannot
// say it until the store writes deliveries (AddDeliveries), so the
// deliveries are inserted here as rows.
func TestDeleteNotifierGivesUpPendingDeliveries(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	db, err := Open(ctx, newDatabase(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keepAll := func(*storagev1.NotifierRecord) bool { return true }
	gone, err := db.CreateNotifier(ctx, &storagev1.NotifierRecord{Name: "gone", Url: "https://a.example"})
	if err != nil {
		t.Fatal(err)
	}
	kept, err := db.CreateNotifier(ctx, &storagev1.NotifierRecord{Name: "kept", Url: "https://b.example"})
	if err != nil {
		t.Fatal(err)
	}
	const (
		pending   = int16(fleetscanv1.DeliveryState_DELIVERY_STATE_PENDING)
		delivered = int16(fleetscanv1.DeliveryState_DELIVERY_STATE_DELIVERED)
		failed    = int16(fleetscanv1.DeliveryState_DELIVERY_STATE_FAILED)
	)
	due := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	type row struct {
		notifier string
		state    int16
	}
	rows := []row{{gone.Id, pending}, {gone.Id, pending}, {gone.Id, delivered}, {kept.Id, pending}}
	ids := make([]string, len(rows))
	for i, r := range rows {
		id := db.NewID()
		ids[i] = id.String()
		detail, err := proto.Marshal(&storagev1.DeliveryRecord{Summary: "event", Attempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		next := msTime(0)
		if r.state == pending {
			next = msTime(due.UnixMilli())
		}
		notifier, err := parseUUID(r.notifier)
		if err != nil {
			t.Fatal(err)
		}
		_, err = db.pool.Exec(ctx, `INSERT INTO deliveries (id, notifier_id, state, create_at, next_attempt_at, detail)
			VALUES ($1, $2, $3, $4, $5, $6)`, idUUID(id), notifier, r.state, due, next, detail)
		if err != nil {
			t.Fatal(err)
		}
	}

	n, err := db.DeleteNotifier(ctx, gone.Id, keepAll)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("DeleteNotifier gave up %d deliveries, want 2", n)
	}
	want := []struct {
		state     int16
		lastError string
	}{{failed, "notifier deleted"}, {failed, "notifier deleted"}, {delivered, ""}, {pending, ""}}
	for i, id := range ids {
		var (
			state  int16
			isDue  bool
			detail []byte
		)
		err := db.pool.QueryRow(ctx, `SELECT state, next_attempt_at IS NOT NULL, detail FROM deliveries WHERE id = $1::uuid`,
			mustUUID(t, id)).Scan(&state, &isDue, &detail)
		if err != nil {
			t.Fatal(err)
		}
		d := &storagev1.DeliveryRecord{}
		if err := proto.Unmarshal(detail, d); err != nil {
			t.Fatal(err)
		}
		if state != want[i].state || d.LastError != want[i].lastError || isDue != (state == pending) || d.Summary != "event" {
			t.Errorf("delivery %d: state %d, due %v, error %q, summary %q; want state %d, error %q",
				i, state, isDue, d.LastError, d.Summary, want[i].state, want[i].lastError)
		}
	}
}

func mustUUID(t *testing.T, id string) pgtype.UUID {
	t.Helper()
	u, err := parseUUID(id)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
