package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// Schedules. A schedule is its detail whole but its id: its times carry
// nanoseconds (the jitter of its next run, the clock of its create time),
// which a timestamptz would cut to microseconds. next_run_at is a copy of
// its next run time, for the due index that replicas will claim from.

// scheduleRow is a schedule as its columns.
func scheduleRow(sc *fleetscanv1.Schedule) (pgtype.Timestamptz, []byte, error) {
	rest := proto.CloneOf(sc)
	rest.Id = ""
	detail, err := proto.Marshal(rest)
	return tsTime(sc.NextRunTime), detail, err
}

// scanSchedule reads a row of id, detail.
func scanSchedule(row pgx.Row) (*fleetscanv1.Schedule, error) {
	var (
		id     pgtype.UUID
		detail []byte
	)
	if err := row.Scan(&id, &detail); err != nil {
		return nil, err
	}
	sc := &fleetscanv1.Schedule{}
	if err := proto.Unmarshal(detail, sc); err != nil {
		return nil, fmt.Errorf("schedule %s: %w", ulid.ULID(id.Bytes), err)
	}
	sc.Id = ulid.ULID(id.Bytes).String()
	return sc, nil
}

// CreateSchedule stores a new schedule, assigning its id and create time.
func (db *DB) CreateSchedule(ctx context.Context, sc *fleetscanv1.Schedule) error {
	id := db.NewID()
	sc.Id = id.String()
	sc.CreateTime = timestamppb.New(db.now())
	next, detail, err := scheduleRow(sc)
	if err != nil {
		return fmt.Errorf("schedule %s: %w", id, err)
	}
	if _, err := db.pool.Exec(ctx, `INSERT INTO schedules (id, next_run_at, detail) VALUES ($1, $2, $3)`, idUUID(id), next, detail); err != nil {
		return fmt.Errorf("schedule %s: %w", id, err)
	}
	return nil
}

// ListSchedules returns up to limit schedules with ids after `after` (all
// when zero), in id order, and whether more follow.
func (db *DB) ListSchedules(ctx context.Context, after ulid.ULID, limit int) ([]*fleetscanv1.Schedule, bool, error) {
	var from pgtype.UUID
	if after != (ulid.ULID{}) {
		from = idUUID(after)
	}
	var lim pgtype.Int8
	if limit >= 0 {
		lim = pgtype.Int8{Int64: int64(limit) + 1, Valid: true}
	}
	rows, err := db.pool.Query(ctx, `SELECT id, detail FROM schedules WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2`, from, lim)
	if err != nil {
		return nil, false, fmt.Errorf("list schedules: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*fleetscanv1.Schedule, error) { return scanSchedule(row) })
	if err != nil {
		return nil, false, fmt.Errorf("list schedules: %w", err)
	}
	if limit >= 0 && len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// DeleteSchedule removes a schedule.
func (db *DB) DeleteSchedule(ctx context.Context, id ulid.ULID) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM schedules WHERE id = $1`, idUUID(id))
	if err != nil {
		return fmt.Errorf("schedule %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("schedule %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// UpdateSchedule applies change to a stored schedule, its row locked; a
// schedule deleted meanwhile is store.ErrNotFound, a malformed id
// store.ErrInvalidID.
func (db *DB) UpdateSchedule(ctx context.Context, id string, change func(*fleetscanv1.Schedule)) error {
	key, err := store.ParseID(id)
	if err != nil {
		return err
	}
	return db.inTx(ctx, func(tx pgx.Tx) error {
		sc, err := scanSchedule(tx.QueryRow(ctx, `SELECT id, detail FROM schedules WHERE id = $1 FOR UPDATE`, idUUID(key)))
		if errors.Is(err, pgx.ErrNoRows) {
			err = store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("schedule %s: %w", id, err)
		}
		change(sc)
		next, detail, err := scheduleRow(sc)
		if err != nil {
			return fmt.Errorf("schedule %s: %w", id, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE schedules SET next_run_at = $2, detail = $3 WHERE id = $1`, idUUID(key), next, detail); err != nil {
			return fmt.Errorf("schedule %s: %w", id, err)
		}
		return nil
	})
}
