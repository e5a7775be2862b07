// Package pgstore is the PostgreSQL store, the second implementation of
// the store's seam beside the bbolt one (server/internal/store), for
// fleets that run several server replicas. It talks to PostgreSQL with
// pgx/v5 and is the only package that does.
//
// What exists so far is the schema (migrations/), Open, which applies the
// migrations the database lacks, and the first slice of the store's
// operations: clusters, tokens, exceptions and notifiers, with the bbolt
// store's signatures and sentinels. The contract in
// server/internal/store/storetest holds both stores to the same results;
// the rest comes slice by slice (docs/postgres.md).
package pgstore
