// Package scheduler turns scan requests into per-cluster jobs and wakes the
// sessions of connected workers when they have work. Jobs of clusters whose
// worker is not connected wait in the store's queue until it connects.
package scheduler
