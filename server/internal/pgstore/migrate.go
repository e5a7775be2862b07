package pgstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Schema migrations are our own, about 120 lines of code, rather than a
// library's. What the store needs of them is small and exact: SQL files
// embedded in the binary, each applied in one transaction together with
// the row that records it, under an advisory lock so that replicas
// starting at once apply each file once, a database that a newer server
// migrated refused by name, and a released file that was edited caught
// by its checksum. Of the libraries the module proxy serves,
// golang-migrate records a version apart from the file's statements,
// marking the database "dirty" before a file and clean after, so that a
// failure in between leaves it for a person to force a version; goose
// runs a file and its record in one transaction and can take an advisory
// lock, but works through database/sql (a second pool, through pgx's
// stdlib adapter, beside the store's pgxpool) and keeps no checksum of
// what it applied. Both bring what the store does not want (down
// migrations, migrations in Go, out-of-order application) and modules of
// their own. Migrations go forward only: a release's schema is undone by
// restoring a backup, as with bbolt.

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationsDir is the root of the embedded migrations.
func migrationsDir() fs.FS {
	dir, _ := fs.Sub(migrationFiles, "migrations") // fails only on an invalid name
	return dir
}

// migration is one file of migrations/.
type migration struct {
	version int
	name    string // the file's name
	sql     string
	sum     [sha256.Size]byte // of sql: a released file is never edited
}

// migrationName is NNNN_what.sql; versions start at 1 and have no gaps.
var migrationName = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.sql$`)

// loadMigrations reads the migrations of fsys's root, in version order.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration %s: the name is not NNNN_name.sql", e.Name())
		}
		version, _ := strconv.Atoi(m[1])
		if version != len(out)+1 {
			return nil, fmt.Errorf("migration %s: version %d where %d was next", e.Name(), version, len(out)+1)
		}
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: version, name: e.Name(), sql: string(b), sum: sha256.Sum256(b)})
	}
	return out, nil
}

// migrationLock is the key of the transaction-level advisory lock that
// every migration transaction holds: the bytes of "fleetsca". Advisory
// locks are per database, so tests' databases on one server do not
// contend.
const migrationLock int64 = 0x666c656574736361

// Errors of migrate.
var (
	// ErrSchemaTooNew: the database was migrated by a newer server.
	ErrSchemaTooNew = errors.New("database schema newer than this server")
	// ErrSchemaChanged: a migration applied to the database differs from
	// this server's file of the same version.
	ErrSchemaChanged = errors.New("applied migration differs from this server's")
)

// migrate brings the database to the last of ms, one transaction per
// migration, and returns the versions it applied. Each transaction takes
// the migration lock first and then reads what is applied, so that of
// replicas starting at once, one applies a migration and the others find
// it applied. A migration that fails is rolled back whole, its record
// with it; the error names it.
func migrate(ctx context.Context, pool *pgxpool.Pool, ms []migration) ([]int, error) {
	var applied []int
	for {
		var done *migration
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLock); err != nil {
				return fmt.Errorf("take the migration lock: %w", err)
			}
			next, err := nextMigration(ctx, tx, ms)
			if err != nil || next == nil {
				return err
			}
			if _, err := tx.Exec(ctx, next.sql); err != nil {
				return fmt.Errorf("migration %s: %w", next.name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
				next.version, next.name, next.sum[:]); err != nil {
				return fmt.Errorf("record migration %s: %w", next.name, err)
			}
			done = next
			return nil
		})
		if err != nil {
			return applied, err
		}
		if done == nil {
			return applied, nil
		}
		applied = append(applied, done.version)
	}
}

// nextMigration returns the first of ms not applied to the database, nil
// when all are, after checking that those applied are ms's own.
func nextMigration(ctx context.Context, tx pgx.Tx, ms []migration) (*migration, error) {
	// Created under the lock, by the first server to start on the
	// database.
	_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		checksum   bytea NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`)
	if err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	rows, _ := tx.Query(ctx, "SELECT version, name, checksum FROM schema_migrations ORDER BY version")
	type record struct {
		Version  int
		Name     string
		Checksum []byte
	}
	recs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[record])
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	if n := len(recs); n > 0 && recs[n-1].Version > len(ms) {
		return nil, fmt.Errorf("database schema version %d (%s), this server knows %d: a newer fleetscan-server migrated it; run that release or a later one, or restore a backup from before the upgrade: %w",
			recs[n-1].Version, recs[n-1].Name, len(ms), ErrSchemaTooNew)
	}
	for i, r := range recs {
		if r.Version != i+1 {
			return nil, fmt.Errorf("schema_migrations has version %d where %d was next: %w", r.Version, i+1, ErrSchemaChanged)
		}
		if m := ms[i]; r.Name != m.name || !bytes.Equal(r.Checksum, m.sum[:]) {
			return nil, fmt.Errorf("migration %d was applied as %s (sha256 %x), this server's is %s (sha256 %x): a released migration was edited: %w",
				r.Version, r.Name, r.Checksum, m.name, m.sum, ErrSchemaChanged)
		}
	}
	if len(recs) == len(ms) {
		return nil, nil
	}
	return &ms[len(recs)], nil
}
