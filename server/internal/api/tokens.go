package api

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"k8s.io/apimachinery/pkg/util/validation"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/auth"
)

// TokenStore is what TokenServer needs of the store.
type TokenStore interface {
	NewID() ulid.ULID
	PutToken(ctx context.Context, hash []byte, t *storagev1.TokenRecord) error
	ListTokens(ctx context.Context, keep func(*storagev1.TokenRecord) bool) ([]*storagev1.TokenRecord, error)
	RevokeToken(ctx context.Context, id string, keep func(*storagev1.TokenRecord) bool) (*storagev1.TokenRecord, error)
}

// Token lifetimes.
const (
	defaultTokenTTL = 90 * 24 * time.Hour
	maxTokenTTL     = 400 * 24 * time.Hour
)

// TokenServer implements fleetscan.v1.TokenService.
type TokenServer struct {
	fleetscanv1.UnimplementedTokenServiceServer
	store TokenStore
	log   *slog.Logger
	pages *PageTokens
	// Now is the clock of expiries (time.Now unless a test sets it).
	Now func() time.Time
}

// NewTokenServer returns the TokenService handlers.
func NewTokenServer(s TokenStore, log *slog.Logger, pages *PageTokens) *TokenServer {
	return &TokenServer{pages: pages, store: s, log: log, Now: time.Now}
}

// apiToken selects operator and tenant tokens: worker credentials and
// join tokens belong to their clusters (cluster rotate-token).
func apiToken(t *storagev1.TokenRecord) bool {
	return t.Role == string(auth.RoleOperator) || t.Role == string(auth.RoleTenant)
}

// CreateToken mints an operator or tenant token.
func (s *TokenServer) CreateToken(ctx context.Context, req *fleetscanv1.CreateTokenRequest) (*fleetscanv1.CreateTokenResponse, error) {
	if req.Name == "" || len(req.Name) > 128 {
		return nil, toStatus(s.log, "CreateToken", invalid("name: required, at most 128 characters"))
	}
	rec := &storagev1.TokenRecord{Name: req.Name}
	switch req.Role {
	case fleetscanv1.TokenRole_TOKEN_ROLE_OPERATOR:
		if req.Tenant != "" {
			return nil, toStatus(s.log, "CreateToken", invalid("tenant: an operator token is for the whole fleet; leave tenant empty"))
		}
		rec.Role = string(auth.RoleOperator)
	case fleetscanv1.TokenRole_TOKEN_ROLE_TENANT:
		if errs := validation.IsDNS1123Label(req.Tenant); len(errs) > 0 {
			return nil, toStatus(s.log, "CreateToken", invalid("tenant %q: %s", req.Tenant, strings.Join(errs, "; ")))
		}
		rec.Role, rec.Tenant = string(auth.RoleTenant), req.Tenant
	default:
		return nil, toStatus(s.log, "CreateToken", invalid("role: TOKEN_ROLE_OPERATOR or TOKEN_ROLE_TENANT"))
	}
	ttl := defaultTokenTTL
	if req.Ttl != nil {
		ttl = req.Ttl.AsDuration()
		if ttl <= 0 || ttl > maxTokenTTL {
			return nil, toStatus(s.log, "CreateToken", invalid("ttl: between 1s and %v", maxTokenTTL))
		}
	}
	p, _ := auth.FromContext(ctx)
	now := s.Now()
	rec.Id = s.store.NewID().String()
	rec.CreateMs, rec.ExpireMs, rec.CreatedBy = now.UnixMilli(), now.Add(ttl).UnixMilli(), p.Name
	secret, hash := auth.NewToken(auth.PrefixAPI)
	if err := s.store.PutToken(ctx, hash, rec); err != nil {
		return nil, toStatus(s.log, "CreateToken", err)
	}
	s.log.Info("token created", "token", rec.Id, "name", rec.Name, "role", rec.Role, "tenant", rec.Tenant, "expires", time.UnixMilli(rec.ExpireMs).UTC(), "by", p.Name)
	return &fleetscanv1.CreateTokenResponse{Token: tokenToProto(rec), Secret: secret}, nil
}

// ListTokens pages through operator and tenant tokens by id.
func (s *TokenServer) ListTokens(ctx context.Context, req *fleetscanv1.ListTokensRequest) (*fleetscanv1.ListTokensResponse, error) {
	size, err := pageSize(req.PageSize, defaultPageSize, maxPageSize)
	if err != nil {
		return nil, toStatus(s.log, "ListTokens", err)
	}
	p, _ := auth.FromContext(ctx)
	bind := s.pages.bind(p, "ListTokens", boolString(req.ShowAll))
	after, err := decodePageToken(req.PageToken, bind)
	if err != nil {
		return nil, toStatus(s.log, "ListTokens", err)
	}
	now := s.Now().UnixMilli()
	all, err := s.store.ListTokens(ctx, func(t *storagev1.TokenRecord) bool {
		live := t.RevokeMs == 0 && (t.ExpireMs == 0 || t.ExpireMs > now)
		return apiToken(t) && (req.ShowAll || live)
	})
	if err != nil {
		return nil, toStatus(s.log, "ListTokens", err)
	}
	page, next := pageAfter(all, string(after), size, func(t *storagev1.TokenRecord) string { return t.Id }, false)
	resp := &fleetscanv1.ListTokensResponse{}
	for _, t := range page {
		resp.Tokens = append(resp.Tokens, tokenToProto(t))
	}
	if next != "" {
		resp.NextPageToken = encodePageToken([]byte(next), bind)
	}
	return resp, nil
}

// RevokeToken stops a token from working.
func (s *TokenServer) RevokeToken(ctx context.Context, req *fleetscanv1.RevokeTokenRequest) (*fleetscanv1.RevokeTokenResponse, error) {
	if req.TokenId == "" {
		return nil, toStatus(s.log, "RevokeToken", invalid("token_id: required"))
	}
	rec, err := s.store.RevokeToken(ctx, req.TokenId, apiToken)
	if err != nil {
		return nil, toStatus(s.log, "RevokeToken", err)
	}
	p, _ := auth.FromContext(ctx)
	s.log.Info("token revoked", "token", rec.Id, "name", rec.Name, "by", p.Name)
	return &fleetscanv1.RevokeTokenResponse{Token: tokenToProto(rec)}, nil
}

func tokenToProto(t *storagev1.TokenRecord) *fleetscanv1.Token {
	out := &fleetscanv1.Token{
		Id: t.Id, Name: t.Name, Tenant: t.Tenant, CreatedBy: t.CreatedBy,
		CreateTime: ts(t.CreateMs), ExpireTime: ts(t.ExpireMs), RevokeTime: ts(t.RevokeMs),
	}
	switch auth.Role(t.Role) {
	case auth.RoleOperator:
		out.Role = fleetscanv1.TokenRole_TOKEN_ROLE_OPERATOR
	case auth.RoleTenant:
		out.Role = fleetscanv1.TokenRole_TOKEN_ROLE_TENANT
	}
	return out
}

func boolString(b bool) string {
	if b {
		return "all"
	}
	return "live"
}
