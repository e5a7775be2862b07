// Package storetest is the store's contract: the behaviour that every
// store (the bbolt one in server/internal/store, the PostgreSQL one in
// server/internal/pgstore) must show, as one table of cases run against
// each. The API layer maps the store's errors to gRPC codes by the
// store's sentinels (store.ErrNotFound, store.ErrAlreadyExists, …), so the
// cases compare errors with errors.Is against those, and both stores
// return them.
//
// A store's tests run the contract with
//
//	storetest.Run(t, func(t *testing.T, o storetest.Options) storetest.Backend { return open(t, o) })
//
// where open returns a fresh, empty store that the test closes itself.
package storetest
