package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/apimachinery/pkg/util/validation"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/auth"
	"github.com/fleetscan/fleetscan/server/internal/store"
	"github.com/fleetscan/fleetscan/worker/catalog"
)

// ExceptionStore is what ExceptionServer needs of the store.
type ExceptionStore interface {
	CreateException(ctx context.Context, e *fleetscanv1.Exception) (*fleetscanv1.Exception, error)
	ListExceptions(ctx context.Context, keep func(*fleetscanv1.Exception) bool) ([]*fleetscanv1.Exception, error)
	DeleteException(ctx context.Context, id string, keep func(*fleetscanv1.Exception) bool) (*fleetscanv1.Exception, error)
	GetCluster(ctx context.Context, id string) (*storagev1.ClusterRecord, error)
}

// maxExceptionTTL bounds how long an exception may apply.
const maxExceptionTTL = 366 * 24 * time.Hour

// ExceptionServer implements fleetscan.v1.ExceptionService.
type ExceptionServer struct {
	fleetscanv1.UnimplementedExceptionServiceServer
	store ExceptionStore
	log   *slog.Logger
	pages *PageTokens
	// Now is the clock of expiries (time.Now unless a test sets it).
	Now func() time.Time
	// TenantsMayCreate lets tenants manage exceptions inside their scope.
	TenantsMayCreate bool
}

// NewExceptionServer returns the ExceptionService handlers.
func NewExceptionServer(s ExceptionStore, log *slog.Logger, pages *PageTokens) *ExceptionServer {
	return &ExceptionServer{pages: pages, store: s, log: log, Now: time.Now}
}

// CreateException validates an exception, checks it is in the caller's
// scope, and stores it.
func (s *ExceptionServer) CreateException(ctx context.Context, req *fleetscanv1.CreateExceptionRequest) (*fleetscanv1.CreateExceptionResponse, error) {
	p, _ := auth.FromContext(ctx)
	e := proto.CloneOf(req.GetException())
	if e == nil {
		return nil, toStatus(s.log, "CreateException", invalid("exception: required"))
	}
	if e.Reason == "" || len(e.Reason) > 1024 {
		return nil, toStatus(s.log, "CreateException", invalid("exception.reason: required, at most 1024 characters"))
	}
	if e.ClusterId == "" && e.Namespace == "" && e.CheckId == "" && e.Tenant == "" {
		return nil, toStatus(s.log, "CreateException", invalid("exception: give at least one of cluster_id, namespace, check_id or tenant; an exception for everything is not one"))
	}
	for field, v := range map[string]string{"tenant": e.Tenant, "cluster_id": e.ClusterId, "namespace": e.Namespace} {
		if v != "" && len(validation.IsDNS1123Label(v)) > 0 {
			return nil, toStatus(s.log, "CreateException", invalid("exception.%s %q: not a DNS label", field, v))
		}
	}
	if e.CheckId != "" && !catalog.ValidID(e.CheckId) {
		return nil, toStatus(s.log, "CreateException", invalid("exception.check_id %q: not a check", e.CheckId))
	}
	if e.ResourceName != "" && e.ResourceKind == "" {
		return nil, toStatus(s.log, "CreateException", invalid("exception.resource_kind: required with resource_name"))
	}
	now := s.Now()
	switch {
	case e.ExpireTime != nil:
	case req.Ttl != nil:
		e.ExpireTime = timestamppb.New(now.Add(req.Ttl.AsDuration()))
	default:
		return nil, toStatus(s.log, "CreateException", invalid("exception.expire_time or ttl: required; every exception expires"))
	}
	if exp := e.ExpireTime.AsTime(); !exp.After(now) || exp.Sub(now) > maxExceptionTTL {
		return nil, toStatus(s.log, "CreateException", invalid("exception.expire_time: in the future, at most a year away"))
	}
	if !p.IsOperator() {
		if err := s.inTenantScope(ctx, p, e); err != nil {
			return nil, toStatus(s.log, "CreateException", err)
		}
	}
	e.Id, e.DeleteTime, e.State, e.OwnerTenant = "", nil, fleetscanv1.ExceptionState_EXCEPTION_STATE_UNSPECIFIED, ""
	if !p.IsOperator() {
		e.OwnerTenant = p.Tenant
	}
	e.Author, e.CreateTime = p.Name, timestamppb.New(now)
	stored, err := s.store.CreateException(ctx, e)
	if err != nil {
		return nil, toStatus(s.log, "CreateException", err)
	}
	s.log.Info("exception created", "exception", stored.Id, "by", p.Name, "expires", stored.ExpireTime.AsTime())
	return &fleetscanv1.CreateExceptionResponse{Exception: s.withState(stored)}, nil
}

// inTenantScope checks a tenant's exception: allowed by the operator, on a
// cluster the tenant owns, or on namespaces granted to it.
func (s *ExceptionServer) inTenantScope(ctx context.Context, p auth.Principal, e *fleetscanv1.Exception) error {
	if !s.TenantsMayCreate {
		return errForbiddenf("tenants may not manage exceptions on this server (fleetscan-server --tenant-exceptions)")
	}
	if e.Tenant != "" && e.Tenant != p.Tenant {
		return invalid("exception.tenant: a tenant's exceptions are its own; leave it empty or give %q", p.Tenant)
	}
	e.Tenant = p.Tenant
	if e.ClusterId == "" {
		return invalid("exception.cluster_id: required for a tenant's exception")
	}
	c, err := s.store.GetCluster(ctx, e.ClusterId)
	if err != nil {
		return store.NotFoundf("cluster %q", e.ClusterId)
	}
	switch access, namespaces := p.ClusterAccess(c); access {
	case auth.FullAccess:
		return nil
	case auth.NamespaceAccess:
		if e.Namespace == "" || !slices.Contains(namespaces, e.Namespace) {
			return invalid("exception.namespace: on a shared cluster, one of your namespaces: %s", strings.Join(namespaces, ", "))
		}
		// Only that namespace's findings: the exception must not reach the
		// cluster's other tenants, whose clusters' tenant field is empty.
		e.Tenant = ""
		return nil
	}
	return store.NotFoundf("cluster %q", e.ClusterId)
}

// applyingTo keeps the exceptions a tenant may see: its own, and an
// operator's whose scope reaches findings the tenant sees (its clusters,
// its granted namespaces of shared ones, or no cluster at all). An
// operator's name is replaced by the role: a tenant learns that its
// findings are suppressed and why, not who at the provider decided it.
func (s *ExceptionServer) applyingTo(ctx context.Context, p auth.Principal, all []*fleetscanv1.Exception) ([]*fleetscanv1.Exception, error) {
	clusters := map[string]*storagev1.ClusterRecord{}
	var out []*fleetscanv1.Exception
	for _, e := range all {
		if visibleTo(p, e) {
			out = append(out, e)
			continue
		}
		if e.Tenant != "" && e.Tenant != p.Tenant {
			continue
		}
		if e.ClusterId != "" {
			c, ok := clusters[e.ClusterId]
			if !ok {
				var err error
				switch c, err = s.store.GetCluster(ctx, e.ClusterId); {
				case errors.Is(err, store.ErrNotFound):
					c = nil
				case err != nil:
					return nil, err
				}
				clusters[e.ClusterId] = c
			}
			if c == nil {
				continue
			}
			switch access, namespaces := p.ClusterAccess(c); access {
			case auth.NoAccess:
				continue
			case auth.NamespaceAccess:
				if e.Namespace != "" && !slices.Contains(namespaces, e.Namespace) {
					continue
				}
			}
		}
		shown := proto.CloneOf(e)
		shown.Author = "operator"
		out = append(out, shown)
	}
	return out, nil
}

// visibleTo says whether p may manage (delete) an exception: operators
// all, a tenant its own.
func visibleTo(p auth.Principal, e *fleetscanv1.Exception) bool {
	return p.IsOperator() || (p.Tenant != "" && e.OwnerTenant == p.Tenant)
}

func errForbiddenf(msg string) error { return fmt.Errorf("%w: %s", auth.ErrForbidden, msg) }

func (s *ExceptionServer) withState(e *fleetscanv1.Exception) *fleetscanv1.Exception {
	e.State = store.ExceptionState(e, s.Now().UnixMilli())
	return e
}

// ListExceptions lists the exceptions the caller may see, newest first.
func (s *ExceptionServer) ListExceptions(ctx context.Context, req *fleetscanv1.ListExceptionsRequest) (*fleetscanv1.ListExceptionsResponse, error) {
	size, err := pageSize(req.PageSize, defaultPageSize, maxPageSize)
	if err != nil {
		return nil, toStatus(s.log, "ListExceptions", err)
	}
	p, _ := auth.FromContext(ctx)
	bind := s.pages.bind(p, "ListExceptions", boolString(req.ShowExpired))
	after, err := decodePageToken(req.PageToken, bind)
	if err != nil {
		return nil, toStatus(s.log, "ListExceptions", err)
	}
	now := s.Now().UnixMilli()
	// An operator's exceptions may reach a tenant's findings: a tenant
	// sees those too (not who made them), besides its own.
	all, err := s.store.ListExceptions(ctx, func(e *fleetscanv1.Exception) bool {
		return (visibleTo(p, e) || e.OwnerTenant == "") && (req.ShowExpired || store.ExceptionState(e, now) == fleetscanv1.ExceptionState_EXCEPTION_STATE_ACTIVE)
	})
	if err != nil {
		return nil, toStatus(s.log, "ListExceptions", err)
	}
	if !p.IsOperator() {
		if all, err = s.applyingTo(ctx, p, all); err != nil {
			return nil, toStatus(s.log, "ListExceptions", err)
		}
	}
	page, next := pageAfter(all, string(after), size, func(e *fleetscanv1.Exception) string { return e.Id }, true)
	resp := &fleetscanv1.ListExceptionsResponse{}
	for _, e := range page {
		resp.Exceptions = append(resp.Exceptions, s.withState(e))
	}
	if next != "" {
		resp.NextPageToken = encodePageToken([]byte(next), bind)
	}
	return resp, nil
}

// DeleteException ends an exception the caller may see.
func (s *ExceptionServer) DeleteException(ctx context.Context, req *fleetscanv1.DeleteExceptionRequest) (*fleetscanv1.DeleteExceptionResponse, error) {
	if req.ExceptionId == "" {
		return nil, toStatus(s.log, "DeleteException", invalid("exception_id: required"))
	}
	p, _ := auth.FromContext(ctx)
	if !p.IsOperator() && !s.TenantsMayCreate {
		return nil, toStatus(s.log, "DeleteException", errForbiddenf("tenants may not manage exceptions on this server (fleetscan-server --tenant-exceptions)"))
	}
	e, err := s.store.DeleteException(ctx, req.ExceptionId, func(e *fleetscanv1.Exception) bool { return visibleTo(p, e) })
	if err != nil {
		return nil, toStatus(s.log, "DeleteException", err)
	}
	s.log.Info("exception deleted", "exception", e.Id, "by", p.Name)
	return &fleetscanv1.DeleteExceptionResponse{Exception: s.withState(e)}, nil
}
