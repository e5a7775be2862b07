package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// uniqueViolation is PostgreSQL's SQLSTATE 23505, unique_violation.
const uniqueViolation = "23505"

// isUnique reports whether err is a unique violation of the constraint
// named (any constraint when name is "").
func isUnique(err error, name string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == uniqueViolation && (name == "" || pgErr.ConstraintName == name)
}

// inTx runs fn in one transaction, committed when fn returns nil and
// rolled back otherwise; fn's error is returned as it is.
func (db *DB) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db.pool, fn)
}

// NewID returns a new time-ordered id, as the bbolt store's: ids made by
// one DB increase even within a millisecond.
func (db *DB) NewID() ulid.ULID {
	db.idMu.Lock()
	defer db.idMu.Unlock()
	return ulid.MustNew(ulid.Timestamp(db.now()), db.entropy)
}

func (db *DB) nowMs() int64 { return db.now().UnixMilli() }

// msTime is a record's time in milliseconds as a column: NULL for 0.
func msTime(ms int64) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: time.UnixMilli(ms), Valid: ms != 0}
}

// timeMs is a column's time in milliseconds: 0 for NULL.
func timeMs(t pgtype.Timestamptz) int64 {
	if !t.Valid {
		return 0
	}
	return t.Time.UnixMilli()
}

// tsTime is a protobuf timestamp as a column: NULL for nil. PostgreSQL
// keeps microseconds.
func tsTime(ts *timestamppb.Timestamp) pgtype.Timestamptz {
	if ts == nil {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: ts.AsTime(), Valid: true}
}

// timeTs is a column's time as a protobuf timestamp: nil for NULL.
func timeTs(t pgtype.Timestamptz) *timestamppb.Timestamp {
	if !t.Valid {
		return nil
	}
	return timestamppb.New(t.Time)
}

// idUUID is a ULID as a uuid column.
func idUUID(id ulid.ULID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: true} }

// bytesUUID is a record's 16-byte id as a uuid column: NULL when empty.
func bytesUUID(b []byte) (pgtype.UUID, error) {
	switch len(b) {
	case 0:
		return pgtype.UUID{}, nil
	case 16:
		return pgtype.UUID{Bytes: [16]byte(b), Valid: true}, nil
	}
	return pgtype.UUID{}, fmt.Errorf("id of %d bytes, want 16", len(b))
}

// uuidBytes is a uuid column as a record's id: nil for NULL.
func uuidBytes(u pgtype.UUID) []byte {
	if !u.Valid {
		return nil
	}
	return u.Bytes[:]
}

// nullText is s as a column: NULL for "".
func nullText(s string) pgtype.Text { return pgtype.Text{String: s, Valid: s != ""} }

// parseUUID is a ULID's string as a uuid column.
func parseUUID(id string) (pgtype.UUID, error) {
	parsed, err := ulid.ParseStrict(id)
	if err != nil {
		return pgtype.UUID{}, err
	}
	return idUUID(parsed), nil
}
