// Package store keeps fleetscan's state in an embedded bbolt database. It
// is the only package that imports bbolt; callers declare the subset of
// *DB they use as an interface, which is the seam for a later SQL backend.
//
// Findings are stored once per fingerprint per cluster as a lifecycle
// record; a job stages the batches a worker sends and makes them visible in
// one transaction when it completes, so a half-received scan is never
// shown.
package store
