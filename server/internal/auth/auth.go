package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
)

// Role is what a principal is.
type Role string

// Roles.
const (
	RoleOperator Role = "operator"
	RoleTenant   Role = "tenant"
	RoleWorker   Role = "worker"
	// RoleJoin is a cluster's single-use join token: it may open the
	// worker stream once, to be exchanged for a worker credential.
	RoleJoin Role = "join"
)

// Principal is the authenticated caller.
type Principal struct {
	Role Role
	// Name of the token, for logs.
	Name string
	// Tenant of a tenant principal.
	Tenant string
	// ClusterID of a worker or join principal: the one cluster it speaks
	// for.
	ClusterID string
	// TokenHash is the hash of the token the call came with, if any.
	TokenHash []byte
}

// IsOperator reports whether p may read and change everything.
func (p Principal) IsOperator() bool { return p.Role == RoleOperator }

// Access is how much of a cluster a principal may read.
type Access int

// Levels of Access.
const (
	// NoAccess: the cluster does not exist for the principal.
	NoAccess Access = iota
	// NamespaceAccess: the findings of some namespaces only (a grant on a
	// cluster the principal does not own); nothing cluster-scoped, no
	// per-cluster aggregates (trends, summaries, diffs).
	NamespaceAccess
	// FullAccess: everything about the cluster.
	FullAccess
)

// ClusterAccess returns what p may read of cluster c and, for
// NamespaceAccess, which namespaces.
func (p Principal) ClusterAccess(c *storagev1.ClusterRecord) (Access, []string) {
	switch p.Role {
	case RoleOperator:
		return FullAccess, nil
	case RoleTenant:
		if p.Tenant == "" {
			return NoAccess, nil
		}
		if c.Tenant == p.Tenant {
			return FullAccess, nil
		}
		for _, g := range c.NamespaceGrants {
			if g.Tenant == p.Tenant && len(g.Namespaces) > 0 {
				return NamespaceAccess, g.Namespaces
			}
		}
	}
	return NoAccess, nil
}

// SeesAll reports whether p has full access to c: the predicate of
// per-cluster aggregates.
func (p Principal) SeesAll(c *storagev1.ClusterRecord) bool {
	a, _ := p.ClusterAccess(c)
	return a == FullAccess
}

// Token prefixes make fleetscan credentials recognisable to secret
// scanners and to people.
const (
	PrefixAPI    = "fsa_"
	PrefixWorker = "fsw_"
	PrefixJoin   = "fsj_"
)

// NewToken returns a new random 256-bit token with the prefix, and the hash
// under which it is stored.
func NewToken(prefix string) (token string, hash []byte) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	token = prefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, Hash(token)
}

// Hash is how a token is stored: the token has 256 bits of entropy, so a
// plain SHA-256 cannot be reversed by guessing.
func Hash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

type observerKey struct{}

// Observe returns ctx with a place where the authenticator notes the
// principal it found, even when it then refuses the call: interceptors
// that run before it (the audit log) learn who was refused.
func Observe(ctx context.Context) (context.Context, *Principal) {
	p := &Principal{}
	return context.WithValue(ctx, observerKey{}, p), p
}

func note(ctx context.Context, p Principal) {
	if o, ok := ctx.Value(observerKey{}).(*Principal); ok {
		*o = p
	}
}

// FromContext returns the principal of an authenticated call.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// TokenLookup finds a stored token by hash; it returns an error wrapping
// a not-found sentinel for unknown tokens.
type TokenLookup interface {
	LookupToken(ctx context.Context, hash []byte) (*storagev1.TokenRecord, error)
}

// Authenticator checks bearer tokens and the authorization table.
type Authenticator struct {
	// Now is the clock of token expiry (time.Now unless a test sets it).
	Now      func() time.Time
	tokens   TokenLookup
	notFound error
	dataLoss error
	// public methods need no credential: health checks and reflection.
	public func(method string) bool
}

// New returns an Authenticator over the stored tokens; notFound is the
// error LookupToken wraps for an unknown token, dataLoss the one it wraps
// for a token record it cannot read.
func New(tokens TokenLookup, notFound, dataLoss error) *Authenticator {
	return &Authenticator{Now: time.Now, tokens: tokens, notFound: notFound, dataLoss: dataLoss, public: func(method string) bool {
		return strings.HasPrefix(method, "/grpc.health.v1.Health/") || strings.HasPrefix(method, "/grpc.reflection.")
	}}
}

var errUnauthenticated = status.Error(codes.Unauthenticated, "missing or invalid token: send it as 'authorization: Bearer <token>', or present a client certificate")

// authorize authenticates the call in ctx and checks that its principal may
// call method.
func (a *Authenticator) authorize(ctx context.Context, method string) (context.Context, error) {
	if a.public(method) {
		return ctx, nil
	}
	token, ok := bearer(ctx)
	if !ok {
		// No token: a verified client certificate may name the caller.
		p, err := fromCertificate(ctx)
		if err != nil {
			return nil, err
		}
		note(ctx, p)
		if err := Allowed(p, method); err != nil {
			return nil, status.Error(codes.PermissionDenied, err.Error())
		}
		return WithPrincipal(ctx, p), nil
	}
	rec, err := a.tokens.LookupToken(ctx, Hash(token))
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil, status.FromContextError(ctx.Err()).Err()
	case errors.Is(err, a.notFound):
		return nil, errUnauthenticated
	case a.dataLoss != nil && errors.Is(err, a.dataLoss):
		// Retrying will not mend it, but a worker retries anyway: the
		// operator may restore a backup, and the worker then goes on.
		return nil, status.Error(codes.DataLoss, "the token's record in the server's database is damaged: an operator runs fleetscan-server check and restores a backup")
	default:
		// Not the caller's fault: a worker must retry, not give up.
		return nil, status.Error(codes.Unavailable, "cannot check the token now; retry")
	}
	if rec.RevokeMs != 0 || (rec.ExpireMs != 0 && a.Now().UnixMilli() >= rec.ExpireMs) {
		return nil, status.Error(codes.Unauthenticated, "token expired or revoked: ask an operator for a new one")
	}
	p := Principal{Role: Role(rec.Role), Name: rec.Name, Tenant: rec.Tenant, ClusterID: rec.ClusterId, TokenHash: Hash(token)}
	note(ctx, p)
	if err := Allowed(p, method); err != nil {
		return nil, status.Error(codes.PermissionDenied, err.Error())
	}
	return WithPrincipal(ctx, p), nil
}

func bearer(ctx context.Context) (string, bool) {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if scheme, token, ok := strings.Cut(v, " "); ok && strings.EqualFold(scheme, "bearer") && token != "" {
			return token, true
		}
	}
	return "", false
}

// ErrForbidden is returned by Allowed.
var ErrForbidden = errors.New("forbidden")

// methodRoles is the authorization table: who may call what. A method that
// is not listed is refused to everybody.
var methodRoles = map[string][]Role{
	"/fleetscan.v1.ClusterService/RegisterCluster":    {RoleOperator},
	"/fleetscan.v1.ClusterService/UpdateCluster":      {RoleOperator},
	"/fleetscan.v1.ClusterService/ListClusters":       {RoleOperator, RoleTenant},
	"/fleetscan.v1.ClusterService/GetCluster":         {RoleOperator, RoleTenant},
	"/fleetscan.v1.ScanService/StartScan":             {RoleOperator},
	"/fleetscan.v1.ScanService/GetScan":               {RoleOperator},
	"/fleetscan.v1.ScanService/ListScans":             {RoleOperator},
	"/fleetscan.v1.ScanService/CancelScan":            {RoleOperator},
	"/fleetscan.v1.ScanService/WatchScan":             {RoleOperator},
	"/fleetscan.v1.ScanService/CreateSchedule":        {RoleOperator},
	"/fleetscan.v1.ScanService/ListSchedules":         {RoleOperator},
	"/fleetscan.v1.ScanService/DeleteSchedule":        {RoleOperator},
	"/fleetscan.v1.FindingService/ListFindings":       {RoleOperator, RoleTenant},
	"/fleetscan.v1.FindingService/GetFinding":         {RoleOperator, RoleTenant},
	"/fleetscan.v1.FindingService/DiffScans":          {RoleOperator, RoleTenant},
	"/fleetscan.v1.FindingService/GetTrend":           {RoleOperator, RoleTenant},
	"/fleetscan.v1.FindingService/CompareClusters":    {RoleOperator, RoleTenant},
	"/fleetscan.v1.FindingService/GetSummary":         {RoleOperator, RoleTenant},
	"/fleetscan.v1.FindingService/ListChecks":         {RoleOperator, RoleTenant},
	"/fleetscan.v1.TokenService/CreateToken":          {RoleOperator},
	"/fleetscan.v1.TokenService/ListTokens":           {RoleOperator},
	"/fleetscan.v1.TokenService/RevokeToken":          {RoleOperator},
	"/fleetscan.v1.AuditService/ListAuditEvents":      {RoleOperator},
	"/fleetscan.v1.AdminService/Backup":               {RoleOperator},
	"/fleetscan.v1.ExceptionService/CreateException":  {RoleOperator, RoleTenant},
	"/fleetscan.v1.ExceptionService/ListExceptions":   {RoleOperator, RoleTenant},
	"/fleetscan.v1.ExceptionService/DeleteException":  {RoleOperator, RoleTenant},
	"/fleetscan.v1.ClusterService/RotateClusterToken": {RoleOperator},
	"/fleetscan.v1.NotifierService/CreateNotifier":    {RoleOperator, RoleTenant},
	"/fleetscan.v1.NotifierService/ListNotifiers":     {RoleOperator, RoleTenant},
	"/fleetscan.v1.NotifierService/DeleteNotifier":    {RoleOperator, RoleTenant},
	"/fleetscan.v1.NotifierService/TestNotifier":      {RoleOperator, RoleTenant},
	"/fleetscan.v1.NotifierService/ListDeliveries":    {RoleOperator, RoleTenant},
	"/fleetscan.worker.v1.WorkerService/Connect":      {RoleWorker, RoleJoin},
}

// Allowed reports whether p may call method.
func Allowed(p Principal, method string) error {
	for _, r := range methodRoles[method] {
		if r == p.Role {
			return nil
		}
	}
	return fmt.Errorf("%w: a %s token may not call %s", ErrForbidden, p.Role, method)
}

// UnaryInterceptor authenticates and authorizes unary calls.
func (a *Authenticator) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := a.authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// StreamInterceptor authenticates and authorizes streaming calls.
func (a *Authenticator) StreamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := a.authorize(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return handler(srv, &wrappedStream{ServerStream: ss, ctx: ctx})
}

type wrappedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *wrappedStream) Context() context.Context { return w.ctx }
