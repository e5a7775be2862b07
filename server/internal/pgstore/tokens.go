package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"google.golang.org/protobuf/proto"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// Every field of a token has its column: tokens have no detail.

const tokenColumns = `hash, id, name, role, tenant, cluster_id, create_at, expire_at, revoke_at, created_by, pending_join_hash`

// scanToken reads a row of tokenColumns; it returns the token's hash.
func scanToken(row pgx.Row) ([]byte, *storagev1.TokenRecord, error) {
	var (
		t                            storagev1.TokenRecord
		hash                         []byte
		id, cluster                  pgtype.Text
		createAt, expireAt, revokeAt pgtype.Timestamptz
	)
	err := row.Scan(&hash, &id, &t.Name, &t.Role, &t.Tenant, &cluster, &createAt, &expireAt, &revokeAt, &t.CreatedBy, &t.PendingJoinHash)
	if err != nil {
		return nil, nil, err
	}
	t.Id, t.ClusterId = id.String, cluster.String
	t.CreateMs, t.ExpireMs, t.RevokeMs = timeMs(createAt), timeMs(expireAt), timeMs(revokeAt)
	if len(t.PendingJoinHash) == 0 {
		t.PendingJoinHash = nil
	}
	return hash, &t, nil
}

// putTokenTx stores t under hash, created at createMs, replacing the token
// stored there. Ids are unique: another token's id is ErrAlreadyExists.
func putTokenTx(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, hash []byte, t *storagev1.TokenRecord, createMs int64) error {
	_, err := q.Exec(ctx, `INSERT INTO tokens (`+tokenColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (hash) DO UPDATE SET id = $2, name = $3, role = $4, tenant = $5, cluster_id = $6,
			create_at = $7, expire_at = $8, revoke_at = $9, created_by = $10, pending_join_hash = $11`,
		hash, nullText(t.Id), t.Name, t.Role, t.Tenant, nullText(t.ClusterId),
		msTime(createMs), msTime(t.ExpireMs), msTime(t.RevokeMs), t.CreatedBy, nullBytes(t.PendingJoinHash))
	if isUnique(err, "tokens_id_key") {
		return fmt.Errorf("token %q: %w", t.Id, store.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("token %q: %w", store.TokenID(hash, t), err)
	}
	return nil
}

// nullBytes is b as a column: NULL when empty.
func nullBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// PutToken stores an API token under the hash of its secret, replacing
// the one stored there.
func (db *DB) PutToken(ctx context.Context, hash []byte, t *storagev1.TokenRecord) error {
	created := t.CreateMs
	if created == 0 {
		created = db.nowMs()
	}
	if err := putTokenTx(ctx, db.pool, hash, t, created); err != nil {
		return err
	}
	t.CreateMs = created
	return nil
}

// LookupToken returns the token stored under hash. Unknown, it fails with
// store.ErrNotFound itself, as the bbolt store does.
func (db *DB) LookupToken(ctx context.Context, hash []byte) (*storagev1.TokenRecord, error) {
	_, t, err := scanToken(db.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("look up token: %w", err)
	}
	return t, nil
}

// CountTokens returns the number of stored API tokens.
func (db *DB) CountTokens(ctx context.Context) (int, error) {
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM tokens`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count tokens: %w", err)
	}
	return n, nil
}

// ListTokens returns every token that keep selects, ordered by id (a
// token without one by store.TokenID's).
func (db *DB) ListTokens(ctx context.Context, keep func(*storagev1.TokenRecord) bool) ([]*storagev1.TokenRecord, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+tokenColumns+` FROM tokens`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []*storagev1.TokenRecord
	for rows.Next() {
		hash, t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		if keep == nil || keep(t) {
			t.Id = store.TokenID(hash, t)
			out = append(out, t)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	slices.SortFunc(out, func(a, b *storagev1.TokenRecord) int { return strings.Compare(a.Id, b.Id) })
	return out, nil
}

// RevokeToken marks the token with this id revoked, unless it already is,
// and returns it; keep must select it, or it is not found. A token
// without an id is named by store.TokenID's: "h" and the first 16 hex
// digits of its hash.
func (db *DB) RevokeToken(ctx context.Context, id string, keep func(*storagev1.TokenRecord) bool) (*storagev1.TokenRecord, error) {
	var found *storagev1.TokenRecord
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+tokenColumns+` FROM tokens
			WHERE id = $1 OR (id IS NULL AND 'h' || encode(substring(hash FROM 1 FOR 8), 'hex') = $1)
			ORDER BY hash FOR UPDATE`, id)
		if err != nil {
			return fmt.Errorf("token %q: %w", id, err)
		}
		var key []byte
		for rows.Next() {
			hash, t, err := scanToken(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("token %q: %w", id, err)
			}
			if keep(t) {
				key, found = hash, t
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("token %q: %w", id, err)
		}
		if found == nil {
			return fmt.Errorf("token %q: %w", id, store.ErrNotFound)
		}
		if found.RevokeMs == 0 {
			found.RevokeMs = db.nowMs()
		}
		if _, err := tx.Exec(ctx, `UPDATE tokens SET revoke_at = $2 WHERE hash = $1`, key, msTime(found.RevokeMs)); err != nil {
			return fmt.Errorf("token %q: %w", id, err)
		}
		found.Id = store.TokenID(key, found)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return found, nil
}

// RotateClusterTokens revokes every worker credential of the cluster,
// deletes its unspent join tokens, and stores a new join token, created
// now; it returns how many credentials it revoked or deleted. A
// credential pending on a deleted join token is left pending on nothing
// (the schema's ON DELETE SET NULL), and revoked.
func (db *DB) RotateClusterTokens(ctx context.Context, clusterID string, joinHash []byte, join *storagev1.TokenRecord) (int, error) {
	now := db.nowMs()
	n := 0
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		// The cluster's row lock orders rotations of one cluster.
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM clusters WHERE id = $1 FOR UPDATE`, clusterID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			err = store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("cluster %q: %w", clusterID, err)
		}
		deleted, err := tx.Exec(ctx, `DELETE FROM tokens WHERE cluster_id = $1 AND role = 'join' AND revoke_at IS NULL`, clusterID)
		if err != nil {
			return fmt.Errorf("cluster %q: delete join tokens: %w", clusterID, err)
		}
		revoked, err := tx.Exec(ctx, `UPDATE tokens SET revoke_at = $2 WHERE cluster_id = $1 AND role = 'worker' AND revoke_at IS NULL`,
			clusterID, msTime(now))
		if err != nil {
			return fmt.Errorf("cluster %q: revoke credentials: %w", clusterID, err)
		}
		n = int(deleted.RowsAffected() + revoked.RowsAffected())
		return putTokenTx(ctx, tx, joinHash, join, now)
	})
	if err != nil {
		return 0, err
	}
	join.CreateMs = now
	return n, nil
}

// ExchangeJoinToken stores the worker's own credential under workerHash in
// exchange for the cluster's join token stored under joinHash. The join
// token is not spent yet: the credential is pending (PendingJoinHash) until
// ConfirmCredential, so that a worker that never received it can exchange
// the join token again. An earlier pending credential of the same join
// token, which its worker evidently lost, is deleted. It fails with
// store.ErrNotFound when the join token is unknown, spent, expired,
// revoked or of another cluster.
func (db *DB) ExchangeJoinToken(ctx context.Context, joinHash []byte, clusterID string, workerHash []byte, worker *storagev1.TokenRecord) error {
	now := db.nowMs()
	id := worker.Id
	if id == "" {
		id = db.NewID().String()
	}
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		// The join token's row lock orders two exchanges of one token.
		_, join, err := scanToken(tx.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = $1 FOR UPDATE`, joinHash))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("join token: %w", store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("join token: %w", err)
		}
		if join.Role != "join" || join.ClusterId != clusterID || join.RevokeMs != 0 || (join.ExpireMs != 0 && now >= join.ExpireMs) {
			return fmt.Errorf("join token: %w", store.ErrNotFound)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tokens WHERE pending_join_hash = $1`, joinHash); err != nil {
			return fmt.Errorf("join token: delete lost credentials: %w", err)
		}
		rec := proto.CloneOf(worker)
		rec.Id, rec.PendingJoinHash = id, joinHash
		return putTokenTx(ctx, tx, workerHash, rec, now)
	})
	if err != nil {
		return err
	}
	worker.Id, worker.CreateMs, worker.PendingJoinHash = id, now, joinHash
	return nil
}

// ConfirmCredential records that the worker holds the credential stored
// under workerHash: the join token it was exchanged for is spent now, and
// any other credential pending on that join token is deleted. A credential
// that is not pending is left as it is.
func (db *DB) ConfirmCredential(ctx context.Context, workerHash []byte) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		var join []byte
		err := tx.QueryRow(ctx, `SELECT pending_join_hash FROM tokens WHERE hash = $1 FOR UPDATE`, workerHash).Scan(&join)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("credential: %w", store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("credential: %w", err)
		}
		if len(join) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE tokens SET pending_join_hash = NULL WHERE hash = $1`, workerHash); err != nil {
			return fmt.Errorf("credential: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tokens WHERE pending_join_hash = $1 AND hash <> $2`, join, workerHash); err != nil {
			return fmt.Errorf("credential: delete other pending credentials: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tokens WHERE hash = $1`, join); err != nil {
			return fmt.Errorf("spend join token: %w", err)
		}
		return nil
	})
}
