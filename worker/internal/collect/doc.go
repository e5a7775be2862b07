// Package collect builds a checks.Inventory of a cluster: from its API
// server through client-go, listing every kind in pages and never reading
// Secrets, or from a snapshot directory of manifests for offline use.
package collect
