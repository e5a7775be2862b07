// Package pgstore is the PostgreSQL store, the second implementation of
// the store's seam beside the bbolt one (server/internal/store), for
// fleets that run several server replicas. It talks to PostgreSQL with
// pgx/v5 and is the only package that does.
//
// What exists so far is the schema (migrations/) and Open, which applies
// the migrations the database lacks; the store's operations come next,
// one contract test suite for both stores with them (docs/postgres.md).
package pgstore
