package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

const notifierColumns = `id, name, tenant, owner_tenant, detail`

// scanNotifier reads a row of notifierColumns.
func scanNotifier(row pgx.Row) (*storagev1.NotifierRecord, error) {
	var (
		id     pgtype.UUID
		n      storagev1.NotifierRecord
		detail []byte
	)
	if err := row.Scan(&id, &n.Name, &n.Tenant, &n.OwnerTenant, &detail); err != nil {
		return nil, err
	}
	name, tenant, owner := n.Name, n.Tenant, n.OwnerTenant
	if err := proto.Unmarshal(detail, &n); err != nil {
		return nil, fmt.Errorf("notifier %s: %w", ulid.ULID(id.Bytes), err)
	}
	n.Id, n.Name, n.Tenant, n.OwnerTenant = ulid.ULID(id.Bytes).String(), name, tenant, owner
	return &n, nil
}

// CreateNotifier stores a new notifier under a new id; its name must be
// unused (store.ErrAlreadyExists).
func (db *DB) CreateNotifier(ctx context.Context, n *storagev1.NotifierRecord) (*storagev1.NotifierRecord, error) {
	id := db.NewID()
	d := proto.CloneOf(n)
	d.Id, d.Name, d.Tenant, d.OwnerTenant = "", "", "", ""
	detail, err := proto.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("notifier %q: %w", n.Name, err)
	}
	_, err = db.pool.Exec(ctx, `INSERT INTO notifiers (`+notifierColumns+`) VALUES ($1, $2, $3, $4, $5)`,
		idUUID(id), n.Name, n.Tenant, n.OwnerTenant, detail)
	if isUnique(err, "notifiers_name_key") {
		return nil, fmt.Errorf("notifier %q: %w", n.Name, store.ErrAlreadyExists)
	}
	if err != nil {
		return nil, fmt.Errorf("notifier %q: %w", n.Name, err)
	}
	n.Id = id.String()
	return n, nil
}

// ListNotifiers returns the notifiers keep accepts (nil: all), by name.
func (db *DB) ListNotifiers(ctx context.Context, keep func(*storagev1.NotifierRecord) bool) ([]*storagev1.NotifierRecord, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+notifierColumns+` FROM notifiers`)
	if err != nil {
		return nil, fmt.Errorf("list notifiers: %w", err)
	}
	defer rows.Close()
	var out []*storagev1.NotifierRecord
	for rows.Next() {
		n, err := scanNotifier(rows)
		if err != nil {
			return nil, fmt.Errorf("list notifiers: %w", err)
		}
		if keep == nil || keep(n) {
			out = append(out, n)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list notifiers: %w", err)
	}
	// By bytes, as the bbolt store sorts, whatever the database's collation.
	slices.SortFunc(out, func(a, b *storagev1.NotifierRecord) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// GetNotifier returns one notifier.
func (db *DB) GetNotifier(ctx context.Context, id string) (*storagev1.NotifierRecord, error) {
	parsed, err := ulid.ParseStrict(id)
	if err != nil {
		return nil, fmt.Errorf("notifier %q: %w", id, store.ErrNotFound)
	}
	n, err := scanNotifier(db.pool.QueryRow(ctx, `SELECT `+notifierColumns+` FROM notifiers WHERE id = $1`, idUUID(parsed)))
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("notifier %q: %w", id, err)
	}
	return n, nil
}

// DeleteNotifier removes a notifier that keep accepts and gives up its
// pending deliveries (failed, "notifier deleted"; they stay listed), in
// one transaction. It returns how many it gave up.
func (db *DB) DeleteNotifier(ctx context.Context, id string, keep func(*storagev1.NotifierRecord) bool) (int, error) {
	parsed, err := ulid.ParseStrict(id)
	if err != nil {
		return 0, fmt.Errorf("notifier %q: %w", id, store.ErrNotFound)
	}
	abandoned := 0
	err = db.inTx(ctx, func(tx pgx.Tx) error {
		n, err := scanNotifier(tx.QueryRow(ctx, `SELECT `+notifierColumns+` FROM notifiers WHERE id = $1 FOR UPDATE`, idUUID(parsed)))
		switch {
		case errors.Is(err, pgx.ErrNoRows) || (err == nil && !keep(n)):
			return fmt.Errorf("notifier %q: %w", id, store.ErrNotFound)
		case err != nil:
			return fmt.Errorf("notifier %q: %w", id, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM notifiers WHERE id = $1`, idUUID(parsed)); err != nil {
			return fmt.Errorf("notifier %q: %w", id, err)
		}
		abandoned, err = abandonDeliveriesTx(ctx, tx, parsed)
		if err != nil {
			return fmt.Errorf("notifier %q: %w", id, err)
		}
		return nil
	})
	return abandoned, err
}

// abandonDeliveriesTx gives up the pending deliveries to a notifier: they
// fail, with the error "notifier deleted", and leave the due index. A
// delivery's state and due time are columns, not in its detail.
func abandonDeliveriesTx(ctx context.Context, tx pgx.Tx, notifier ulid.ULID) (int, error) {
	rows, err := tx.Query(ctx, `SELECT id, detail FROM deliveries WHERE notifier_id = $1 AND state = $2 ORDER BY id FOR UPDATE`,
		idUUID(notifier), int16(fleetscanv1.DeliveryState_DELIVERY_STATE_PENDING))
	if err != nil {
		return 0, fmt.Errorf("pending deliveries: %w", err)
	}
	type pending struct {
		id     pgtype.UUID
		detail []byte
	}
	ds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (pending, error) {
		var p pending
		err := row.Scan(&p.id, &p.detail)
		return p, err
	})
	if err != nil {
		return 0, fmt.Errorf("pending deliveries: %w", err)
	}
	for _, p := range ds {
		d := &storagev1.DeliveryRecord{}
		if err := proto.Unmarshal(p.detail, d); err != nil {
			return 0, fmt.Errorf("delivery %s: %w", ulid.ULID(p.id.Bytes), err)
		}
		d.LastError = "notifier deleted"
		detail, err := proto.Marshal(d)
		if err != nil {
			return 0, fmt.Errorf("delivery %s: %w", ulid.ULID(p.id.Bytes), err)
		}
		_, err = tx.Exec(ctx, `UPDATE deliveries SET state = $2, next_attempt_at = NULL, detail = $3 WHERE id = $1`,
			p.id, int16(fleetscanv1.DeliveryState_DELIVERY_STATE_FAILED), detail)
		if err != nil {
			return 0, fmt.Errorf("delivery %s: %w", ulid.ULID(p.id.Bytes), err)
		}
	}
	return len(ds), nil
}
