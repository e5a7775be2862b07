package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// The outbox: deliveries and the once keys. A delivery's notifier,
// cluster, state, create time and due time are columns; the rest of its
// record is detail. The due time is set exactly while it is pending (a
// constraint), so a delivery that is not pending reads with
// NextAttemptMs 0, as the dispatcher leaves it.

const deliveryColumns = `id, notifier_id, cluster_id, state, create_at, next_attempt_at, detail`

const pending = int16(fleetscanv1.DeliveryState_DELIVERY_STATE_PENDING)

// deliveryRow is a delivery as the columns of deliveryColumns.
type deliveryRow struct {
	id, notifier pgtype.UUID
	cluster      string
	state        int16
	create, due  pgtype.Timestamptz
	detail       []byte
}

// deliveryToRow splits a record into its columns.
func deliveryToRow(id ulid.ULID, d *storagev1.DeliveryRecord) (deliveryRow, error) {
	notifier, err := parseUUID(d.NotifierId)
	if err != nil {
		return deliveryRow{}, fmt.Errorf("delivery %s: notifier %q: %w", id, d.NotifierId, err)
	}
	r := deliveryRow{
		id: idUUID(id), notifier: notifier, cluster: d.ClusterId, state: int16(d.State),
		create: pgtype.Timestamptz{Time: time.UnixMilli(d.CreateMs), Valid: true},
	}
	if r.state == pending {
		// Due at 0 when its time is not set, first of all, as bbolt's index.
		r.due = pgtype.Timestamptz{Time: time.UnixMilli(max(d.NextAttemptMs, 0)), Valid: true}
	}
	rest := proto.CloneOf(d)
	rest.NotifierId, rest.ClusterId, rest.State, rest.CreateMs, rest.NextAttemptMs = "", "", 0, 0, 0
	if r.detail, err = proto.Marshal(rest); err != nil {
		return deliveryRow{}, fmt.Errorf("delivery %s: %w", id, err)
	}
	return r, nil
}

// scanDelivery reads a row of deliveryColumns.
func scanDelivery(row pgx.Row) (store.Delivery, error) {
	var r deliveryRow
	if err := row.Scan(&r.id, &r.notifier, &r.cluster, &r.state, &r.create, &r.due, &r.detail); err != nil {
		return store.Delivery{}, err
	}
	id := ulid.ULID(r.id.Bytes)
	d := &storagev1.DeliveryRecord{}
	if err := proto.Unmarshal(r.detail, d); err != nil {
		return store.Delivery{}, fmt.Errorf("delivery %s: %w", id, err)
	}
	d.NotifierId, d.ClusterId, d.State = ulid.ULID(r.notifier.Bytes).String(), r.cluster, fleetscanv1.DeliveryState(r.state)
	d.CreateMs, d.NextAttemptMs = timeMs(r.create), timeMs(r.due)
	return store.Delivery{ID: id, Record: d}, nil
}

// AddDeliveries writes deliveries to the outbox. With a once key, it
// writes them only if no earlier call wrote that key, in the same
// transaction as the key, and reports whether it did.
func (db *DB) AddDeliveries(ctx context.Context, once string, out []store.Outgoing) (bool, error) {
	added := false
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if once != "" {
			tag, err := tx.Exec(ctx, `INSERT INTO notify_once (key, added_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`,
				once, time.UnixMilli(db.nowMs()))
			if err != nil {
				return fmt.Errorf("once key %q: %w", once, err)
			}
			if tag.RowsAffected() == 0 {
				return nil
			}
		}
		added = true
		return putDeliveriesTx(ctx, tx, out)
	})
	if err != nil {
		return false, err
	}
	// The dispatcher's nudge, as bbolt's: here and, through the server,
	// on the replica that leads.
	db.committed(nil, added && len(out) > 0)
	return added, nil
}

// putDeliveriesTx inserts deliveries, in one round trip.
func putDeliveriesTx(ctx context.Context, tx pgx.Tx, out []store.Outgoing) error {
	if len(out) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, o := range out {
		r, err := deliveryToRow(o.ID, o.Record)
		if err != nil {
			return err
		}
		b.Queue(`INSERT INTO deliveries (`+deliveryColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			r.id, r.notifier, r.cluster, r.state, r.create, r.due, r.detail)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("add deliveries: %w", err)
	}
	return nil
}

// PendingDeliveries counts the deliveries not yet made.
func (db *DB) PendingDeliveries() (int, error) {
	var n int
	if err := db.pool.QueryRow(context.Background(), `SELECT count(*) FROM deliveries WHERE state = $1`, pending).Scan(&n); err != nil {
		return 0, fmt.Errorf("pending deliveries: %w", err)
	}
	return n, nil
}

// DueDeliveries returns at most limit pending deliveries due at nowMs,
// the most overdue first, and when the next one not returned is due (0:
// none), as the bbolt store: the first not yet due, or the first past the
// limit.
func (db *DB) DueDeliveries(ctx context.Context, nowMs int64, limit int) ([]store.Delivery, int64, error) {
	var lim pgtype.Int8
	if limit >= 0 {
		lim = pgtype.Int8{Int64: int64(limit) + 1, Valid: true}
	}
	rows, err := db.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM deliveries WHERE state = $1
		ORDER BY next_attempt_at, id LIMIT $2`, pending, lim)
	if err != nil {
		return nil, 0, fmt.Errorf("due deliveries: %w", err)
	}
	defer rows.Close()
	var out []store.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("due deliveries: %w", err)
		}
		if at := max(d.Record.NextAttemptMs, 0); at > nowMs || len(out) == limit {
			return out, at, nil
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("due deliveries: %w", err)
	}
	return out, 0, nil
}

// UpdateDelivery applies change to a delivery, its row locked, and keeps
// its due time in step: a PENDING delivery is due at its next attempt,
// others are not due.
func (db *DB) UpdateDelivery(ctx context.Context, id ulid.ULID, change func(*storagev1.DeliveryRecord)) (*storagev1.DeliveryRecord, error) {
	var out *storagev1.DeliveryRecord
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		d, err := scanDelivery(tx.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM deliveries WHERE id = $1 FOR UPDATE`, idUUID(id)))
		if errors.Is(err, pgx.ErrNoRows) {
			err = store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("delivery %s: %w", id, err)
		}
		change(d.Record)
		r, err := deliveryToRow(id, d.Record)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE deliveries SET notifier_id = $2, cluster_id = $3, state = $4, create_at = $5,
			next_attempt_at = $6, detail = $7 WHERE id = $1`, r.id, r.notifier, r.cluster, r.state, r.create, r.due, r.detail)
		if err != nil {
			return fmt.Errorf("delivery %s: %w", id, err)
		}
		out = d.Record
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListDeliveries returns at most limit deliveries that the filter
// selects, newest first, from the one before the key before (nil: the
// newest), and the key to go on from, nil at the end.
func (db *DB) ListDeliveries(ctx context.Context, f store.DeliveryFilter, before []byte, limit int) ([]store.Delivery, []byte, error) {
	var notifiers []pgtype.UUID
	if f.Notifiers != nil {
		notifiers = []pgtype.UUID{}
		for n, ok := range f.Notifiers {
			if u, err := parseUUID(n); err == nil && ok {
				notifiers = append(notifiers, u)
			}
		}
	}
	// The ids before `before` in byte order, as bbolt's cursor finds them:
	// a shorter key is padded with zeros (a key it prefixes sorts after
	// it), a longer one cut to 16 bytes, its first 16 then included.
	var bound pgtype.UUID
	inclusive := false
	if before != nil {
		var b [16]byte
		copy(b[:], before)
		bound, inclusive = pgtype.UUID{Bytes: b, Valid: true}, len(before) > 16
	}
	var lim pgtype.Int8
	if limit >= 0 {
		lim = pgtype.Int8{Int64: int64(limit) + 1, Valid: true}
	}
	rows, err := db.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM deliveries
		WHERE ($1::uuid[] IS NULL OR notifier_id = ANY($1))
		  AND ($2::smallint = 0 OR state = $2)
		  AND ($3::uuid IS NULL OR id < $3 OR ($4 AND id = $3))
		ORDER BY id DESC LIMIT $5`, notifiers, int16(f.State), bound, inclusive, lim)
	if err != nil {
		return nil, nil, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	var out []store.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, nil, fmt.Errorf("list deliveries: %w", err)
		}
		if len(out) == limit {
			if limit == 0 {
				return nil, nil, nil
			}
			return out, bytes.Clone(out[len(out)-1].ID[:]), nil
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("list deliveries: %w", err)
	}
	return out, nil, nil
}

// CompactDeliveries drops the deliveries that ended (delivered or given
// up) before cutoffMs and the once keys written before it. As the bbolt
// store, it looks at deliveries in id order up to the first one created
// at or after the cutoff.
func (db *DB) CompactDeliveries(ctx context.Context, cutoffMs int64) (int, error) {
	cutoff := time.UnixMilli(cutoffMs)
	dropped := 0
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+deliveryColumns+` FROM deliveries
			WHERE state <> $1 AND create_at < $2
			  AND id < coalesce((SELECT id FROM deliveries WHERE create_at >= $2 ORDER BY id LIMIT 1), 'ffffffff-ffff-ffff-ffff-ffffffffffff')
			ORDER BY id FOR UPDATE`, pending, cutoff)
		if err != nil {
			return fmt.Errorf("compact deliveries: %w", err)
		}
		ds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Delivery, error) { return scanDelivery(row) })
		if err != nil {
			return fmt.Errorf("compact deliveries: %w", err)
		}
		var gone []pgtype.UUID
		for _, d := range ds {
			if r := d.Record; max(r.DeliveredMs, r.LastAttemptMs, r.CreateMs) < cutoffMs {
				gone = append(gone, idUUID(d.ID))
			}
		}
		if len(gone) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM deliveries WHERE id = ANY($1)`, gone); err != nil {
				return fmt.Errorf("compact deliveries: %w", err)
			}
		}
		dropped = len(gone)
		if _, err := tx.Exec(ctx, `DELETE FROM notify_once WHERE added_at < $1`, cutoff); err != nil {
			return fmt.Errorf("compact once keys: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return dropped, nil
}
