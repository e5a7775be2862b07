package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// The audit log. A record's time, principal, role, tenant, method and
// code are columns; its peer, request and error are detail.

const auditColumns = `id, at, principal, role, tenant, method, code, detail`

// AppendAudit stores an audit record under a new time-ordered id, and
// sets its time to now when it has none.
func (db *DB) AppendAudit(ctx context.Context, r *storagev1.AuditRecord) error {
	id := db.NewID()
	if r.TimeMs == 0 {
		r.TimeMs = db.nowMs()
	}
	detail, err := proto.Marshal(&storagev1.AuditRecord{Peer: r.Peer, Request: r.Request, Error: r.Error})
	if err != nil {
		return fmt.Errorf("audit %s: %w", id, err)
	}
	_, err = db.pool.Exec(ctx, `INSERT INTO audit (`+auditColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		idUUID(id), time.UnixMilli(r.TimeMs), r.Principal, r.Role, r.Tenant, r.Method, r.Code, detail)
	if err != nil {
		return fmt.Errorf("audit %s: %w", id, err)
	}
	return nil
}

// ListAudit returns up to limit events older than `before` (the newest
// when zero) that keep selects, newest first, and whether more follow.
// As the bbolt store, it stops at the first event whose id's time is
// before sinceMs (the id's, not the record's: they differ when the caller
// set the record's).
func (db *DB) ListAudit(ctx context.Context, before ulid.ULID, sinceMs int64, limit int, keep func(*storagev1.AuditRecord) bool) ([]store.AuditEvent, bool, error) {
	var upper, lower pgtype.UUID
	if before != (ulid.ULID{}) {
		upper = idUUID(before)
	}
	if sinceMs > 0 {
		if uint64(sinceMs) > ulid.MaxTime() {
			return nil, false, nil
		}
		var from ulid.ULID
		if err := from.SetTime(uint64(sinceMs)); err != nil {
			return nil, false, fmt.Errorf("list audit: %w", err)
		}
		lower = idUUID(from)
	}
	// Rows are read as they come, and the query ends with the page: keep
	// runs in Go, so the number of rows a page needs is not known.
	rows, err := db.pool.Query(ctx, `SELECT `+auditColumns+` FROM audit
		WHERE ($1::uuid IS NULL OR id < $1) AND ($2::uuid IS NULL OR id >= $2)
		ORDER BY id DESC`, upper, lower)
	if err != nil {
		return nil, false, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	var out []store.AuditEvent
	for rows.Next() {
		var (
			id     pgtype.UUID
			at     time.Time
			r      storagev1.AuditRecord
			detail []byte
		)
		if err := rows.Scan(&id, &at, &r.Principal, &r.Role, &r.Tenant, &r.Method, &r.Code, &detail); err != nil {
			return nil, false, fmt.Errorf("list audit: %w", err)
		}
		rest := &storagev1.AuditRecord{}
		if err := proto.Unmarshal(detail, rest); err != nil {
			return nil, false, fmt.Errorf("audit %s: %w", ulid.ULID(id.Bytes), err)
		}
		r.TimeMs, r.Peer, r.Request, r.Error = at.UnixMilli(), rest.Peer, rest.Request, rest.Error
		if keep != nil && !keep(&r) {
			continue
		}
		if len(out) == limit {
			return out, true, nil
		}
		out = append(out, store.AuditEvent{ID: ulid.ULID(id.Bytes), Record: &r})
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("list audit: %w", err)
	}
	return out, false, nil
}
