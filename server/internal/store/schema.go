package store

// schemaVersion is written to the meta bucket; Open refuses a database of
// another version instead of misreading it.
const schemaVersion = 1

// Every bucket of the database. Keys are fixed-width and big-endian where a
// range is read, so that byte order is the order we want.
var (
	// bucketMeta: "schema" → schemaVersion (uint64).
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
	// bucketJobFingerprints: job id → the sorted fingerprints the job saw,
	// concatenated (16 bytes each).
	bucketJobFingerprints = []byte("job_fingerprints")

	allBuckets = [][]byte{bucketMeta, bucketClusters, bucketTokens, bucketScans, bucketJobs,
		bucketPending, bucketStaging, bucketFindings, bucketJobFingerprints}
)
