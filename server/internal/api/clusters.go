package api

import (
	"context"
	"log/slog"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/auth"
)

// ClusterStore is what ClusterServer needs of the store.
type ClusterStore interface {
	CreateCluster(ctx context.Context, c *storagev1.ClusterRecord, tokenHash []byte, token *storagev1.TokenRecord) error
	GetCluster(ctx context.Context, id string) (*storagev1.ClusterRecord, error)
	ListClusters(ctx context.Context, after string, limit int) ([]*storagev1.ClusterRecord, bool, error)
}

// Connectivity tells whether a cluster's worker is connected now.
type Connectivity interface {
	Connected(clusterID string) bool
}

// ClusterServer implements fleetscan.v1.ClusterService.
type ClusterServer struct {
	fleetscanv1.UnimplementedClusterServiceServer
	store ClusterStore
	conn  Connectivity
	log   *slog.Logger
}

// NewClusterServer returns the ClusterService handlers.
func NewClusterServer(s ClusterStore, conn Connectivity, log *slog.Logger) *ClusterServer {
	return &ClusterServer{store: s, conn: conn, log: log}
}

// RegisterCluster adds a cluster and mints its worker token.
func (s *ClusterServer) RegisterCluster(ctx context.Context, req *fleetscanv1.RegisterClusterRequest) (*fleetscanv1.RegisterClusterResponse, error) {
	if err := validateRegister(req); err != nil {
		return nil, toStatus(s.log, "RegisterCluster", err)
	}
	rec := &storagev1.ClusterRecord{Id: req.ClusterId, DisplayName: req.DisplayName, Tenant: req.Tenant, Labels: req.Labels}
	if rec.DisplayName == "" {
		rec.DisplayName = rec.Id
	}
	token, hash := auth.NewToken(auth.PrefixWorker)
	p, _ := auth.FromContext(ctx)
	tokenRec := &storagev1.TokenRecord{Name: "worker of " + rec.Id + " (registered by " + p.Name + ")", Role: string(auth.RoleWorker), Tenant: rec.Tenant, ClusterId: rec.Id}
	if err := s.store.CreateCluster(ctx, rec, hash, tokenRec); err != nil {
		return nil, toStatus(s.log, "RegisterCluster", err)
	}
	s.log.Info("cluster registered", "cluster", rec.Id, "tenant", rec.Tenant, "by", p.Name)
	return &fleetscanv1.RegisterClusterResponse{Cluster: clusterToProto(rec, false), JoinToken: token}, nil
}

func validateRegister(req *fleetscanv1.RegisterClusterRequest) error {
	if errs := validation.IsDNS1123Label(req.ClusterId); len(errs) > 0 {
		return invalid("cluster_id %q: %s", req.ClusterId, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Label(req.Tenant); len(errs) > 0 {
		return invalid("tenant %q: %s", req.Tenant, strings.Join(errs, "; "))
	}
	if len(req.DisplayName) > 256 {
		return invalid("display_name: at most 256 characters")
	}
	for k, v := range req.Labels {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return invalid("labels: key %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return invalid("labels: value of %q: %s", k, strings.Join(errs, "; "))
		}
	}
	return nil
}

// GetCluster returns one cluster.
func (s *ClusterServer) GetCluster(ctx context.Context, req *fleetscanv1.GetClusterRequest) (*fleetscanv1.GetClusterResponse, error) {
	if req.ClusterId == "" {
		return nil, toStatus(s.log, "GetCluster", invalid("cluster_id: required"))
	}
	rec, err := s.store.GetCluster(ctx, req.ClusterId)
	if err != nil {
		return nil, toStatus(s.log, "GetCluster", err)
	}
	return &fleetscanv1.GetClusterResponse{Cluster: clusterToProto(rec, s.conn.Connected(rec.Id))}, nil
}

// ListClusters pages through clusters in id order.
func (s *ClusterServer) ListClusters(ctx context.Context, req *fleetscanv1.ListClustersRequest) (*fleetscanv1.ListClustersResponse, error) {
	size, err := pageSize(req.PageSize, defaultPageSize, maxPageSize)
	if err != nil {
		return nil, toStatus(s.log, "ListClusters", err)
	}
	p, _ := auth.FromContext(ctx)
	bind := binding(p, "ListClusters")
	after, err := decodePageToken(req.PageToken, bind)
	if err != nil {
		return nil, toStatus(s.log, "ListClusters", err)
	}
	recs, more, err := s.store.ListClusters(ctx, string(after), size)
	if err != nil {
		return nil, toStatus(s.log, "ListClusters", err)
	}
	resp := &fleetscanv1.ListClustersResponse{}
	for _, rec := range recs {
		resp.Clusters = append(resp.Clusters, clusterToProto(rec, s.conn.Connected(rec.Id)))
	}
	if more {
		resp.NextPageToken = encodePageToken([]byte(recs[len(recs)-1].Id), bind)
	}
	return resp, nil
}
