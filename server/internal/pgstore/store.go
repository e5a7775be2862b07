package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// DB is the PostgreSQL-backed store.
type DB struct {
	pool *pgxpool.Pool
}

// Open connects to the database at dsn (a postgres:// URL or key=value
// DSN, as pgx reads them) and applies the migrations it lacks. ctx bounds
// the connection and the wait for a replica that is migrating the same
// database. A database that a newer server migrated is refused
// (ErrSchemaTooNew), as is one whose applied migrations differ from this
// server's (ErrSchemaChanged).
func Open(ctx context.Context, dsn string) (*DB, error) {
	ms, err := loadMigrations(migrationsDir())
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db, _, err := open(ctx, dsn, ms)
	return db, err
}

// open is Open with the migrations to apply; it returns the versions it
// applied.
func open(ctx context.Context, dsn string, ms []migration) (*DB, []int, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("open postgres: %w", err)
	}
	// Named without the password, for errors.
	where := fmt.Sprintf("postgres %s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", where, err)
	}
	applied, err := migrate(ctx, pool, ms)
	if err != nil {
		pool.Close()
		return nil, applied, fmt.Errorf("open %s: %w", where, err)
	}
	return &DB{pool: pool}, applied, nil
}

// Close closes the pool's connections, waiting for those in use.
func (db *DB) Close() { db.pool.Close() }
