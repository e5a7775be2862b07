package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// CreateException stores a new exception and returns it with its id and
// create time.
func (s *DB) CreateException(_ context.Context, e *fleetscanv1.Exception) (*fleetscanv1.Exception, error) {
	id := s.NewID()
	e.Id = id.String()
	err := s.update(func(tx *txn) error {
		return putProto(tx.bucket(bucketExceptions), id[:], e)
	})
	return e, err
}

// ListExceptions returns the exceptions keep selects, newest first.
func (s *DB) ListExceptions(_ context.Context, keep func(*fleetscanv1.Exception) bool) ([]*fleetscanv1.Exception, error) {
	var out []*fleetscanv1.Exception
	err := s.view(func(tx *txn) error {
		c := tx.bucket(bucketExceptions).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			e := &fleetscanv1.Exception{}
			if err := protoUnmarshal(v, e); err != nil {
				return err
			}
			if keep == nil || keep(e) {
				out = append(out, e)
			}
		}
		return nil
	})
	return out, err
}

// DeleteException ends an exception that keep selects, now; it stays
// stored, marked deleted.
func (s *DB) DeleteException(_ context.Context, id string, keep func(*fleetscanv1.Exception) bool) (*fleetscanv1.Exception, error) {
	parsed, err := ulid.ParseStrict(id)
	if err != nil {
		return nil, fmt.Errorf("exception %q: %w", id, ErrNotFound)
	}
	e := &fleetscanv1.Exception{}
	err = s.update(func(tx *txn) error {
		b := tx.bucket(bucketExceptions)
		if err := getProto(b, parsed[:], e); err != nil || !keep(e) {
			return fmt.Errorf("exception %q: %w", id, ErrNotFound)
		}
		if e.DeleteTime == nil {
			e.DeleteTime = timestamppb.New(time.UnixMilli(s.nowMs()))
		}
		return putProto(b, parsed[:], e)
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// exceptions are the exceptions in force at one moment.
type exceptions []*fleetscanv1.Exception

// activeExceptionsTx loads the exceptions that apply at nowMs. There are
// few (tens, hundreds): they are read whole per call.
func activeExceptionsTx(tx *txn, nowMs int64) (exceptions, error) {
	var out exceptions
	err := tx.bucket(bucketExceptions).ForEach(func(_, v []byte) error {
		e := &fleetscanv1.Exception{}
		if err := protoUnmarshal(v, e); err != nil {
			return err
		}
		if ExceptionState(e, nowMs) == fleetscanv1.ExceptionState_EXCEPTION_STATE_ACTIVE {
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// ExceptionState is whether e applies at nowMs.
func ExceptionState(e *fleetscanv1.Exception, nowMs int64) fleetscanv1.ExceptionState {
	switch {
	case e.DeleteTime != nil:
		return fleetscanv1.ExceptionState_EXCEPTION_STATE_DELETED
	case e.ExpireTime != nil && e.ExpireTime.AsTime().UnixMilli() <= nowMs:
		return fleetscanv1.ExceptionState_EXCEPTION_STATE_EXPIRED
	}
	return fleetscanv1.ExceptionState_EXCEPTION_STATE_ACTIVE
}

// forReader keeps the exceptions that apply for a reader: tenant, or ""
// for the operators and for the counts of a scan. An operator's exception
// applies for everybody. A tenant's exception on its own cluster applies
// for that tenant and the operators; one on a namespace granted to it (a
// shared cluster) for that tenant alone, so that no tenant's accepted risk
// hides a finding from another tenant or from the provider. A tenant sees
// an operator's exception with the author "operator".
func (es exceptions) forReader(reader string) exceptions {
	var out exceptions
	for _, e := range es {
		switch {
		case e.OwnerTenant == "" && reader != "":
			// A tenant learns why, not who at the provider decided it.
			e = proto.CloneOf(e)
			e.Author = "operator"
		case e.OwnerTenant == "":
		case e.OwnerTenant == reader:
		case reader == "" && e.Tenant != "": // on the tenant's own clusters
		default:
			continue
		}
		out = append(out, e)
	}
	return out
}

// granted reports whether cluster c still grants tenant the namespace.
func granted(c *storagev1.ClusterRecord, tenant, namespace string) bool {
	for _, g := range c.NamespaceGrants {
		if g.Tenant == tenant && slices.Contains(g.Namespaces, namespace) {
			return true
		}
	}
	return false
}

// match returns the first exception covering a finding of check on r in
// cluster c, or nil. A tenant's exception on a granted namespace covers it
// only while the grant does.
func (es exceptions) match(c *storagev1.ClusterRecord, check string, r *fleetscanv1.ResourceRef) *fleetscanv1.Exception {
	for _, e := range es {
		if e.OwnerTenant != "" && e.Tenant == "" && !granted(c, e.OwnerTenant, e.Namespace) {
			continue
		}
		if (e.Tenant == "" || e.Tenant == c.Tenant) &&
			(e.ClusterId == "" || e.ClusterId == c.Id) &&
			(e.Namespace == "" || e.Namespace == r.GetNamespace()) &&
			(e.CheckId == "" || e.CheckId == check) &&
			(e.ResourceKind == "" || e.ResourceKind == r.GetKind()) &&
			(e.ResourceName == "" || e.ResourceName == r.GetName()) {
			return e
		}
	}
	return nil
}

// apply marks a finding record suppressed by the first exception that
// covers it, unless the object's own annotation already suppresses it; it
// returns the exception's id.
func (es exceptions) apply(c *storagev1.ClusterRecord, rec *storagev1.FindingRecord) string {
	if len(es) == 0 || rec.SuppressionReason != "" {
		return ""
	}
	e := es.match(c, rec.CheckId, rec.Resource)
	if e == nil {
		return ""
	}
	rec.SuppressionReason = fmt.Sprintf("exception %s by %s until %s: %s", e.Id, e.Author, e.ExpireTime.AsTime().UTC().Format(time.DateOnly), e.Reason)
	return e.Id
}
