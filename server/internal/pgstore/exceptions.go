package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

const exceptionColumns = `id, tenant, cluster_id, namespace, check_id, owner_tenant, create_at, expire_at, delete_at, detail`

// exceptionDetail is e without the fields that have columns.
func exceptionDetail(e *fleetscanv1.Exception) ([]byte, error) {
	d := proto.CloneOf(e)
	d.Id, d.Tenant, d.ClusterId, d.Namespace, d.CheckId, d.OwnerTenant = "", "", "", "", "", ""
	d.CreateTime, d.ExpireTime, d.DeleteTime = nil, nil, nil
	return proto.Marshal(d)
}

// scanException reads a row of exceptionColumns.
func scanException(row pgx.Row) (*fleetscanv1.Exception, error) {
	var (
		id                                             pgtype.UUID
		tenant, cluster, namespace, check, ownerTenant string
		createAt, expireAt, deleteAt                   pgtype.Timestamptz
		detail                                         []byte
	)
	if err := row.Scan(&id, &tenant, &cluster, &namespace, &check, &ownerTenant, &createAt, &expireAt, &deleteAt, &detail); err != nil {
		return nil, err
	}
	e := &fleetscanv1.Exception{}
	if err := proto.Unmarshal(detail, e); err != nil {
		return nil, fmt.Errorf("exception %s: %w", ulid.ULID(id.Bytes), err)
	}
	e.Id = ulid.ULID(id.Bytes).String()
	e.Tenant, e.ClusterId, e.Namespace, e.CheckId, e.OwnerTenant = tenant, cluster, namespace, check, ownerTenant
	e.CreateTime, e.ExpireTime, e.DeleteTime = timeTs(createAt), timeTs(expireAt), timeTs(deleteAt)
	return e, nil
}

// CreateException stores a new exception and returns it with its id. An
// exception without a create time (the API always gives one) is given its
// id's time: the column is required.
func (db *DB) CreateException(ctx context.Context, e *fleetscanv1.Exception) (*fleetscanv1.Exception, error) {
	id := db.NewID()
	e.Id = id.String()
	if e.CreateTime == nil {
		e.CreateTime = timestamppb.New(ulid.Time(id.Time()))
	}
	detail, err := exceptionDetail(e)
	if err != nil {
		return nil, fmt.Errorf("exception %s: %w", e.Id, err)
	}
	_, err = db.pool.Exec(ctx, `INSERT INTO exceptions (`+exceptionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		idUUID(id), e.Tenant, e.ClusterId, e.Namespace, e.CheckId, e.OwnerTenant,
		tsTime(e.CreateTime), tsTime(e.ExpireTime), tsTime(e.DeleteTime), detail)
	if err != nil {
		return nil, fmt.Errorf("exception %s: %w", e.Id, err)
	}
	return e, nil
}

// ListExceptions returns the exceptions keep selects, newest first.
func (db *DB) ListExceptions(ctx context.Context, keep func(*fleetscanv1.Exception) bool) ([]*fleetscanv1.Exception, error) {
	return queryExceptions(ctx, db.pool, "list exceptions", `SELECT `+exceptionColumns+` FROM exceptions ORDER BY id DESC`, keep)
}

// queryExceptions reads the exceptions a query of exceptionColumns
// returns that keep accepts (nil: all); what names the read in errors.
func queryExceptions(ctx context.Context, q querier, what, query string, keep func(*fleetscanv1.Exception) bool) ([]*fleetscanv1.Exception, error) {
	rows, err := q.Query(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []*fleetscanv1.Exception
	for rows.Next() {
		e, err := scanException(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if keep == nil || keep(e) {
			out = append(out, e)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// DeleteException ends an exception that keep selects, now; it stays
// stored, marked deleted. A second delete keeps the first time.
func (db *DB) DeleteException(ctx context.Context, id string, keep func(*fleetscanv1.Exception) bool) (*fleetscanv1.Exception, error) {
	parsed, err := ulid.ParseStrict(id)
	if err != nil {
		return nil, fmt.Errorf("exception %q: %w", id, store.ErrNotFound)
	}
	var e *fleetscanv1.Exception
	err = db.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		e, err = scanException(tx.QueryRow(ctx, `SELECT `+exceptionColumns+` FROM exceptions WHERE id = $1 FOR UPDATE`, idUUID(parsed)))
		switch {
		case errors.Is(err, pgx.ErrNoRows) || (err == nil && !keep(e)):
			return fmt.Errorf("exception %q: %w", id, store.ErrNotFound)
		case err != nil:
			return fmt.Errorf("exception %q: %w", id, err)
		case e.DeleteTime != nil:
			return nil
		}
		e.DeleteTime = timestamppb.New(time.UnixMilli(db.nowMs()))
		_, err = tx.Exec(ctx, `UPDATE exceptions SET delete_at = $2 WHERE id = $1`, idUUID(parsed), tsTime(e.DeleteTime))
		if err != nil {
			return fmt.Errorf("exception %q: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}
