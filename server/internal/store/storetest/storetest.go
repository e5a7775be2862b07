package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
	"github.com/fleetscan/fleetscan/server/internal/store"
	"github.com/fleetscan/fleetscan/worker/catalog"
)

// Backend is the part of the store the contract covers so far: clusters,
// tokens, exceptions, notifiers, the outbox, audit, schedules, scans and
// jobs. Its methods are *store.DB's, with the
// same signatures, so that the server's consumer interfaces accept either
// store.
type Backend interface {
	CreateCluster(ctx context.Context, c *storagev1.ClusterRecord, tokenHash []byte, token *storagev1.TokenRecord) error
	GetCluster(ctx context.Context, id string) (*storagev1.ClusterRecord, error)
	ListClusters(ctx context.Context, after string, limit int, keep func(*storagev1.ClusterRecord) bool) ([]*storagev1.ClusterRecord, bool, error)
	UpdateCluster(ctx context.Context, id string, change func(*storagev1.ClusterRecord) error) (*storagev1.ClusterRecord, error)
	RecordWorker(ctx context.Context, id, workerVersion, kubeVersion string, at time.Time) error

	PutToken(ctx context.Context, hash []byte, t *storagev1.TokenRecord) error
	LookupToken(ctx context.Context, hash []byte) (*storagev1.TokenRecord, error)
	CountTokens(ctx context.Context) (int, error)
	ListTokens(ctx context.Context, keep func(*storagev1.TokenRecord) bool) ([]*storagev1.TokenRecord, error)
	RevokeToken(ctx context.Context, id string, keep func(*storagev1.TokenRecord) bool) (*storagev1.TokenRecord, error)
	RotateClusterTokens(ctx context.Context, clusterID string, joinHash []byte, join *storagev1.TokenRecord) (int, error)
	ExchangeJoinToken(ctx context.Context, joinHash []byte, clusterID string, workerHash []byte, worker *storagev1.TokenRecord) error
	ConfirmCredential(ctx context.Context, workerHash []byte) error

	CreateException(ctx context.Context, e *fleetscanv1.Exception) (*fleetscanv1.Exception, error)
	ListExceptions(ctx context.Context, keep func(*fleetscanv1.Exception) bool) ([]*fleetscanv1.Exception, error)
	DeleteException(ctx context.Context, id string, keep func(*fleetscanv1.Exception) bool) (*fleetscanv1.Exception, error)

	CreateNotifier(ctx context.Context, n *storagev1.NotifierRecord) (*storagev1.NotifierRecord, error)
	ListNotifiers(ctx context.Context, keep func(*storagev1.NotifierRecord) bool) ([]*storagev1.NotifierRecord, error)
	GetNotifier(ctx context.Context, id string) (*storagev1.NotifierRecord, error)
	DeleteNotifier(ctx context.Context, id string, keep func(*storagev1.NotifierRecord) bool) (int, error)

	AddDeliveries(ctx context.Context, once string, out []store.Outgoing) (bool, error)
	DueDeliveries(ctx context.Context, nowMs int64, limit int) ([]store.Delivery, int64, error)
	UpdateDelivery(ctx context.Context, id ulid.ULID, change func(*storagev1.DeliveryRecord)) (*storagev1.DeliveryRecord, error)
	ListDeliveries(ctx context.Context, f store.DeliveryFilter, before []byte, limit int) ([]store.Delivery, []byte, error)
	CompactDeliveries(ctx context.Context, cutoffMs int64) (int, error)
	PendingDeliveries() (int, error)

	AppendAudit(ctx context.Context, r *storagev1.AuditRecord) error
	ListAudit(ctx context.Context, before ulid.ULID, sinceMs int64, limit int, keep func(*storagev1.AuditRecord) bool) ([]store.AuditEvent, bool, error)

	CreateSchedule(ctx context.Context, sc *fleetscanv1.Schedule) error
	ListSchedules(ctx context.Context, after ulid.ULID, limit int) ([]*fleetscanv1.Schedule, bool, error)
	DeleteSchedule(ctx context.Context, id ulid.ULID) error
	UpdateSchedule(ctx context.Context, id string, change func(*fleetscanv1.Schedule)) error

	// Scans and jobs.
	CreateScan(ctx context.Context, target *fleetscanv1.ScanTarget, spec *fleetscanv1.ScanSpec, clusterIDs []string) (*store.Scan, error)
	GetScan(ctx context.Context, id ulid.ULID) (*store.Scan, error)
	ListScans(ctx context.Context, before ulid.ULID, limit int) ([]*store.Scan, bool, error)
	GetJob(ctx context.Context, id ulid.ULID) (*store.Job, error)
	DispatchPending(ctx context.Context, clusterID string, limit int) ([]store.Assignment, error)
	RequeueJobs(ctx context.Context, maxAttempts int, ids ...ulid.ULID) error
	ResumeJob(ctx context.Context, clusterID string, id ulid.ULID) (acked int64, ok bool, err error)
	RecoverJobs(ctx context.Context, maxAttempts int) (int, error)
	FailJob(ctx context.Context, id ulid.ULID, reason string) error
	CancelScan(ctx context.Context, id ulid.ULID) (*store.Scan, []string, error)
	Reap(ctx context.Context, timeout, expiry time.Duration) ([]string, error)
	StageBatch(ctx context.Context, jobID ulid.ULID, batch *workerv1.FindingBatch) error

	// Findings and history.
	PlanBatch(ctx context.Context, jobID ulid.ULID, p *store.JobPlan, batch *workerv1.FindingBatch) error
	CompleteJob(ctx context.Context, jobID ulid.ULID, done store.Completion) error
	ListFindings(ctx context.Context, f store.FindingFilter, after []byte, limit int) ([]store.FindingView, []byte, error)
	GetFinding(ctx context.Context, clusterID string, fingerprint [catalog.FingerprintSize]byte, limit int, reader string) (store.FindingView, []store.Sighting, int, error)
	DiffScans(ctx context.Context, baseScan, headScan ulid.ULID, clusterID string, keep func(*storagev1.ClusterRecord) bool) (*store.Diff, error)
	Histories(ctx context.Context, keep func(*storagev1.ClusterRecord) bool, sinceMs int64) ([]store.ClusterHistory, error)
	SummariesBefore(ctx context.Context, keep func(*storagev1.ClusterRecord) bool, atMs int64) (map[string]store.Summary, error)
	LatestJobs(ctx context.Context, keep func(*storagev1.ClusterRecord) bool) ([]store.Latest, error)
	ClustersVersion() uint64
	Compact(ctx context.Context, cutoffMs int64) (int, error)
}

// A contract case: run is given a fresh, empty store.
type contractCase struct {
	name string
	run  func(t *testing.T, ctx context.Context, db Backend)
}

// Options are what a case asks of the store it opens.
type Options struct {
	// Now, if set, is the store's clock (store.Options.Now,
	// pgstore.Options.Now): cases that age jobs control time.
	Now func() time.Time
	// Outbox and OnOutbox, if set, are the store's outbox hook and its
	// wake-up (store.Options.Outbox and OnOutbox, pgstore's the same).
	Outbox   store.OutboxHook
	OnOutbox func()
}

// A contract case that controls the store's clock and hears its outbox
// hook: its store is opened with e's.
type envCase struct {
	name string
	run  func(t *testing.T, ctx context.Context, db Backend, e *env)
}

// env is what an envCase's store is opened with.
type env struct {
	clock  *Clock
	outbox *outboxRecorder
}

// Run runs every case of the contract as a parallel subtest, each against
// a fresh store from open (which must be safe to call from parallel
// subtests), opened with the options the case asks for.
func Run(t *testing.T, open func(t *testing.T, o Options) Backend) {
	t.Helper()
	for _, group := range [][]contractCase{clusterCases, tokenCases, exceptionCases, notifierCases, outboxCases, auditCases, scheduleCases, scanCases, findingCases, largeFindingCases, historyCases} {
		for _, c := range group {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				c.run(t, ctx, open(t, Options{}))
			})
		}
	}
	for _, group := range [][]envCase{scanEnvCases, findingEnvCases} {
		for _, c := range group {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				e := &env{clock: NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)), outbox: &outboxRecorder{}}
				db := open(t, Options{Now: e.clock.Now, Outbox: e.outbox.hook, OnOutbox: e.outbox.wake})
				c.run(t, ctx, db, e)
			})
		}
	}
}

// Clock is a store's clock that a case moves by hand. It starts at a whole
// millisecond, which both stores keep exactly.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock that reads at until it is moved.
func NewClock(at time.Time) *Clock { return &Clock{now: at} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// wantProto fails t unless got equals want.
func wantProto(t *testing.T, what string, got, want proto.Message) {
	t.Helper()
	if !proto.Equal(got, want) {
		t.Fatalf("%s:\n got  %v\n want %v", what, got, want)
	}
}

// wantErr fails t unless err is target (errors.Is), or nil when target is.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	switch {
	case target == nil && err != nil:
		t.Fatalf("%s: %v", what, err)
	case target != nil && !errors.Is(err, target):
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// must fails t on err.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// hashOf is a token hash, as auth stores them: the SHA-256 of a secret.
func hashOf(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func createClusters(t *testing.T, ctx context.Context, db Backend, tenant string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		must(t, "CreateCluster "+id, db.CreateCluster(ctx, &storagev1.ClusterRecord{Id: id, Tenant: tenant}, nil, nil))
	}
}

func ids[T interface{ GetId() string }](recs []T) []string {
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.GetId())
	}
	return out
}

func wantIDs[T interface{ GetId() string }](t *testing.T, what string, got []T, want ...string) {
	t.Helper()
	if g := ids(got); !slices.Equal(g, want) {
		t.Fatalf("%s: got %q, want %q", what, g, want)
	}
}

// ts is a protobuf timestamp at a whole millisecond, which both stores
// keep exactly.
func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t.Truncate(time.Millisecond)) }

func clone[T proto.Message](m T) T { return proto.Clone(m).(T) }
