package store

// schemaVersion is written to the meta bucket; Open refuses a database of
// another version instead of misreading it, and upgrades one of an older
// version in place (store.go). Version 5 added bucketStrings: its records
// may name shared strings, which a release before it would misread.
const schemaVersion = 5

// Every bucket of the database. Keys are fixed-width and big-endian where a
// range is read, so that byte order is the order we want.
var (
	// bucketMeta: "schema" → schemaVersion (uint64). From version 4 every
	// value of every bucket ends in a checksum (see sealed.go). "page_key" →
	// 32 random bytes, the HMAC key of page tokens.
	bucketMeta = []byte("meta")
	// bucketClusters: cluster id → ClusterRecord.
	bucketClusters = []byte("clusters")
	// bucketTokens: SHA-256 of the token → TokenRecord.
	bucketTokens = []byte("tokens")
	// bucketScans: scan id (16-byte ULID, time-ordered) → ScanRecord.
	bucketScans = []byte("scans")
	// bucketJobs: job id (16-byte ULID) → JobRecord.
	bucketJobs = []byte("jobs")
	// bucketPending: cluster id, 0x00, job id → empty. Jobs waiting for
	// their cluster's worker, oldest first per cluster.
	bucketPending = []byte("pending")
	// bucketStaging: job id, seq (uint64) → FindingBatch. Batches received
	// for a job that has not completed; invisible to readers.
	bucketStaging = []byte("staging")
	// bucketFindings: cluster seq (uint64), fingerprint (16 bytes) →
	// FindingRecord. One lifecycle per finding per cluster.
	bucketFindings = []byte("findings")
	// bucketJobFingerprints: job id → the set of fingerprints the job saw,
	// in full or as a delta from the cluster's previous job (see fpset.go).
	bucketJobFingerprints = []byte("job_fingerprints")
	// bucketSummaries: cluster seq (uint64), finish time (uint64 ms), job id
	// → the job's counts (see summary.go). Trends are range scans of it.
	bucketSummaries = []byte("summaries")

	// bucketResolved: resolved time (uint64 ms), cluster seq, fingerprint →
	// empty. An index of resolved lifecycles by age, for retention.
	bucketResolved = []byte("resolved")

	// bucketSchedules: schedule id (16-byte ULID) → fleetscan.v1.Schedule.
	bucketSchedules = []byte("schedules")
	// bucketClusterSeqs: cluster seq (uint64) → cluster id, to name the
	// cluster of a finding key without reading every cluster.
	bucketClusterSeqs = []byte("cluster_seqs")

	// bucketCatalog: "check/ID" → CatalogEntry, "kind/KIND" → API version:
	// the catalog snapshot finding records are encoded against.
	bucketCatalog = []byte("catalog")

	// bucketActive: cluster id, 0x00, job id → empty. Jobs that have not
	// ended, so that a new scan finds the one it can join.
	bucketActive = []byte("active")

	// bucketAudit: event id (16-byte ULID, time-ordered) → AuditRecord.
	bucketAudit = []byte("audit")

	// bucketExceptions: exception id (16-byte ULID) → fleetscan.v1.Exception.
	bucketExceptions = []byte("exceptions")

	// bucketStrings: id (uint32, from 1, without gaps) → a string that
	// finding records share (FindingRecord.shared; see record.go). Entries
	// are only ever added.
	bucketStrings = []byte("strings")

	// bucketNotifiers: notifier id (16-byte ULID) → NotifierRecord.
	bucketNotifiers = []byte("notifiers")
	// bucketDeliveries: delivery id (16-byte ULID, time-ordered) →
	// DeliveryRecord: the outbox, and what became of each event.
	bucketDeliveries = []byte("deliveries")
	// bucketDeliveriesDue: next attempt (uint64 ms), delivery id → empty.
	// The pending deliveries, in the order they are due.
	bucketDeliveriesDue = []byte("deliveries_due")
	// bucketNotifyOnce: a key of an event that must be sent once (a
	// worker's disconnection, an exception's coming expiry) → when it was
	// written (uint64 ms).
	bucketNotifyOnce = []byte("notify_once")

	allBuckets = [][]byte{bucketCatalog, bucketMeta, bucketClusters, bucketTokens, bucketScans, bucketJobs,
		bucketPending, bucketStaging, bucketFindings, bucketJobFingerprints, bucketSummaries, bucketResolved,
		bucketSchedules, bucketClusterSeqs, bucketActive, bucketAudit, bucketExceptions, bucketStrings,
		bucketNotifiers, bucketDeliveries, bucketDeliveriesDue, bucketNotifyOnce}
)
