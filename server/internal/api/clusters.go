package api

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/auth"
	"github.com/fleetscan/fleetscan/server/internal/store"
)

// ClusterStore is what ClusterServer needs of the store.
type ClusterStore interface {
	CreateCluster(ctx context.Context, c *storagev1.ClusterRecord, tokenHash []byte, token *storagev1.TokenRecord) error
	GetCluster(ctx context.Context, id string) (*storagev1.ClusterRecord, error)
	UpdateCluster(ctx context.Context, id string, change func(*storagev1.ClusterRecord) error) (*storagev1.ClusterRecord, error)
	RotateClusterTokens(ctx context.Context, clusterID string, joinHash []byte, join *storagev1.TokenRecord) (int, error)
	ListClusters(ctx context.Context, after string, limit int, keep func(*storagev1.ClusterRecord) bool) ([]*storagev1.ClusterRecord, bool, error)
}

// Connectivity tells whether a cluster's worker is connected now, and
// ends its stream.
type Connectivity interface {
	Connected(c *storagev1.ClusterRecord) bool
	Disconnect(clusterID string)
}

// ClusterServer implements fleetscan.v1.ClusterService.
type ClusterServer struct {
	fleetscanv1.UnimplementedClusterServiceServer
	store ClusterStore
	conn  Connectivity
	log   *slog.Logger
	pages *PageTokens
}

// NewClusterServer returns the ClusterService handlers.
func NewClusterServer(s ClusterStore, conn Connectivity, log *slog.Logger, pages *PageTokens) *ClusterServer {
	return &ClusterServer{pages: pages, store: s, conn: conn, log: log}
}

// RegisterCluster adds a cluster and mints its worker token.
func (s *ClusterServer) RegisterCluster(ctx context.Context, req *fleetscanv1.RegisterClusterRequest) (*fleetscanv1.RegisterClusterResponse, error) {
	if errs := validation.IsDNS1123Label(req.ClusterId); len(errs) > 0 {
		return nil, toStatus(s.log, "RegisterCluster", invalid("cluster_id %q: %s", req.ClusterId, strings.Join(errs, "; ")))
	}
	rec := &storagev1.ClusterRecord{Id: req.ClusterId, DisplayName: req.DisplayName, Tenant: req.Tenant, Labels: req.Labels, NamespaceGrants: req.NamespaceGrants}
	if rec.DisplayName == "" {
		rec.DisplayName = rec.Id
	}
	if err := validateCluster(rec); err != nil {
		return nil, toStatus(s.log, "RegisterCluster", err)
	}
	p, _ := auth.FromContext(ctx)
	token, hash, tokenRec := s.joinToken(rec.Id, "registered by "+p.Name)
	if err := s.store.CreateCluster(ctx, rec, hash, tokenRec); err != nil {
		return nil, toStatus(s.log, "RegisterCluster", err)
	}
	s.log.Info("cluster registered", "cluster", rec.Id, "tenant", rec.Tenant, "by", p.Name)
	return &fleetscanv1.RegisterClusterResponse{Cluster: clusterToProto(rec, false, p), JoinToken: token, JoinTokenExpireTime: ts(tokenRec.ExpireMs)}, nil
}

// joinTokenTTL is how long a join token works if unused.
const joinTokenTTL = 24 * time.Hour

// joinToken mints a single-use join token for a cluster's worker.
func (s *ClusterServer) joinToken(clusterID, why string) (token string, hash []byte, rec *storagev1.TokenRecord) {
	token, hash = auth.NewToken(auth.PrefixJoin)
	now := time.Now()
	return token, hash, &storagev1.TokenRecord{
		Name: "join token of " + clusterID + " (" + why + ")", Role: string(auth.RoleJoin), ClusterId: clusterID,
		CreateMs: now.UnixMilli(), ExpireMs: now.Add(joinTokenTTL).UnixMilli(),
	}
}

// RotateClusterToken revokes the worker's credentials, disconnects it and
// mints a new join token.
func (s *ClusterServer) RotateClusterToken(ctx context.Context, req *fleetscanv1.RotateClusterTokenRequest) (*fleetscanv1.RotateClusterTokenResponse, error) {
	if req.ClusterId == "" {
		return nil, toStatus(s.log, "RotateClusterToken", invalid("cluster_id: required"))
	}
	p, _ := auth.FromContext(ctx)
	token, hash, rec := s.joinToken(req.ClusterId, "rotated by "+p.Name)
	n, err := s.store.RotateClusterTokens(ctx, req.ClusterId, hash, rec)
	if err != nil {
		return nil, toStatus(s.log, "RotateClusterToken", err)
	}
	s.conn.Disconnect(req.ClusterId)
	s.log.Info("cluster token rotated", "cluster", req.ClusterId, "revoked", n, "by", p.Name)
	return &fleetscanv1.RotateClusterTokenResponse{JoinToken: token, JoinTokenExpireTime: ts(rec.ExpireMs), Revoked: int32(n)}, nil
}

// validateCluster checks what an operator may set on a cluster.
func validateCluster(c *storagev1.ClusterRecord) error {
	if c.Tenant != "" {
		if errs := validation.IsDNS1123Label(c.Tenant); len(errs) > 0 {
			return invalid("tenant %q: %s", c.Tenant, strings.Join(errs, "; "))
		}
	}
	if len(c.DisplayName) > 256 {
		return invalid("display_name: at most 256 characters")
	}
	for k, v := range c.Labels {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return invalid("labels: key %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return invalid("labels: value of %q: %s", k, strings.Join(errs, "; "))
		}
	}
	seen := map[string]bool{}
	for i, g := range c.NamespaceGrants {
		if errs := validation.IsDNS1123Label(g.Tenant); len(errs) > 0 {
			return invalid("namespace_grants[%d].tenant %q: %s", i, g.Tenant, strings.Join(errs, "; "))
		}
		if g.Tenant == c.Tenant {
			return invalid("namespace_grants[%d]: %q owns the cluster and sees all of it already", i, g.Tenant)
		}
		if seen[g.Tenant] {
			return invalid("namespace_grants[%d]: a second grant for %q; list all its namespaces in one", i, g.Tenant)
		}
		seen[g.Tenant] = true
		if len(g.Namespaces) == 0 {
			return invalid("namespace_grants[%d].namespaces: at least one", i)
		}
		for _, ns := range g.Namespaces {
			if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
				return invalid("namespace_grants[%d].namespaces: %q: %s", i, ns, strings.Join(errs, "; "))
			}
		}
	}
	return nil
}

// UpdateCluster changes the fields of a cluster that the mask names.
func (s *ClusterServer) UpdateCluster(ctx context.Context, req *fleetscanv1.UpdateClusterRequest) (*fleetscanv1.UpdateClusterResponse, error) {
	id := req.GetCluster().GetId()
	if id == "" {
		return nil, toStatus(s.log, "UpdateCluster", invalid("cluster.id: required"))
	}
	if len(req.GetUpdateMask().GetPaths()) == 0 {
		return nil, toStatus(s.log, "UpdateCluster", invalid("update_mask: name the fields to change: display_name, tenant, labels, namespace_grants"))
	}
	p, _ := auth.FromContext(ctx)
	rec, err := s.store.UpdateCluster(ctx, id, func(c *storagev1.ClusterRecord) error {
		for _, path := range req.UpdateMask.Paths {
			switch path {
			case "display_name":
				c.DisplayName = req.Cluster.DisplayName
				if c.DisplayName == "" {
					c.DisplayName = c.Id
				}
			case "tenant":
				c.Tenant = req.Cluster.Tenant
			case "labels":
				c.Labels = req.Cluster.Labels
			case "namespace_grants":
				c.NamespaceGrants = req.Cluster.NamespaceGrants
			default:
				return invalid("update_mask: %q is not a field that can change (display_name, tenant, labels, namespace_grants)", path)
			}
		}
		return validateCluster(c)
	})
	if err != nil {
		return nil, toStatus(s.log, "UpdateCluster", err)
	}
	s.log.Info("cluster updated", "cluster", id, "fields", req.UpdateMask.Paths, "by", p.Name)
	return &fleetscanv1.UpdateClusterResponse{Cluster: clusterToProto(rec, s.conn.Connected(rec), p)}, nil
}

// GetCluster returns one cluster the caller may see.
func (s *ClusterServer) GetCluster(ctx context.Context, req *fleetscanv1.GetClusterRequest) (*fleetscanv1.GetClusterResponse, error) {
	if req.ClusterId == "" {
		return nil, toStatus(s.log, "GetCluster", invalid("cluster_id: required"))
	}
	p, _ := auth.FromContext(ctx)
	rec, err := s.store.GetCluster(ctx, req.ClusterId)
	if err == nil {
		if a, _ := p.ClusterAccess(rec); a == auth.NoAccess {
			err = store.NotFoundf("cluster %q", req.ClusterId) // the same as absent
		}
	}
	if err != nil {
		return nil, toStatus(s.log, "GetCluster", err)
	}
	return &fleetscanv1.GetClusterResponse{Cluster: clusterToProto(rec, s.conn.Connected(rec), p)}, nil
}

// ListClusters pages through the clusters the caller may see, in id order.
func (s *ClusterServer) ListClusters(ctx context.Context, req *fleetscanv1.ListClustersRequest) (*fleetscanv1.ListClustersResponse, error) {
	size, err := pageSize(req.PageSize, defaultPageSize, maxPageSize)
	if err != nil {
		return nil, toStatus(s.log, "ListClusters", err)
	}
	p, _ := auth.FromContext(ctx)
	bind := s.pages.bind(p, "ListClusters")
	after, err := decodePageToken(req.PageToken, bind)
	if err != nil {
		return nil, toStatus(s.log, "ListClusters", err)
	}
	recs, more, err := s.store.ListClusters(ctx, string(after), size, func(c *storagev1.ClusterRecord) bool {
		a, _ := p.ClusterAccess(c)
		return a != auth.NoAccess
	})
	if err != nil {
		return nil, toStatus(s.log, "ListClusters", err)
	}
	resp := &fleetscanv1.ListClustersResponse{}
	for _, rec := range recs {
		resp.Clusters = append(resp.Clusters, clusterToProto(rec, s.conn.Connected(rec), p))
	}
	if more {
		resp.NextPageToken = encodePageToken([]byte(recs[len(recs)-1].Id), bind)
	}
	return resp, nil
}
