package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

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
)

// Principal is the authenticated caller.
type Principal struct {
	Role Role
	// Name of the token, for logs.
	Name string
	// Tenant of a tenant principal.
	Tenant string
	// ClusterID of a worker principal: the one cluster it speaks for.
	ClusterID string
}

// Token prefixes make fleetscan credentials recognisable to secret
// scanners and to people.
const (
	PrefixAPI    = "fsa_"
	PrefixWorker = "fsw_"
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
	tokens   TokenLookup
	notFound error
	// public methods need no credential: health checks and reflection.
	public func(method string) bool
}

// New returns an Authenticator over the stored tokens; notFound is the
// error LookupToken wraps for an unknown token.
func New(tokens TokenLookup, notFound error) *Authenticator {
	return &Authenticator{tokens: tokens, notFound: notFound, public: func(method string) bool {
		return strings.HasPrefix(method, "/grpc.health.v1.Health/") || strings.HasPrefix(method, "/grpc.reflection.")
	}}
}

var errUnauthenticated = status.Error(codes.Unauthenticated, "missing or invalid token: send it as 'authorization: Bearer <token>'")

// authorize authenticates the call in ctx and checks that its principal may
// call method.
func (a *Authenticator) authorize(ctx context.Context, method string) (context.Context, error) {
	if a.public(method) {
		return ctx, nil
	}
	token, ok := bearer(ctx)
	if !ok {
		return nil, errUnauthenticated
	}
	rec, err := a.tokens.LookupToken(ctx, Hash(token))
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil, status.FromContextError(ctx.Err()).Err()
	case errors.Is(err, a.notFound):
		return nil, errUnauthenticated
	default:
		// Not the caller's fault: a worker must retry, not give up.
		return nil, status.Error(codes.Unavailable, "cannot check the token now; retry")
	}
	p := Principal{Role: Role(rec.Role), Name: rec.Name, Tenant: rec.Tenant, ClusterID: rec.ClusterId}
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
	"/fleetscan.v1.ClusterService/RegisterCluster": {RoleOperator},
	"/fleetscan.v1.ClusterService/ListClusters":    {RoleOperator},
	"/fleetscan.v1.ClusterService/GetCluster":      {RoleOperator},
	"/fleetscan.v1.ScanService/StartScan":          {RoleOperator},
	"/fleetscan.v1.ScanService/GetScan":            {RoleOperator},
	"/fleetscan.v1.ScanService/ListScans":          {RoleOperator},
	"/fleetscan.v1.ScanService/CancelScan":         {RoleOperator},
	"/fleetscan.v1.ScanService/WatchScan":          {RoleOperator},
	"/fleetscan.v1.ScanService/CreateSchedule":     {RoleOperator},
	"/fleetscan.v1.ScanService/ListSchedules":      {RoleOperator},
	"/fleetscan.v1.ScanService/DeleteSchedule":     {RoleOperator},
	"/fleetscan.v1.FindingService/ListFindings":    {RoleOperator},
	"/fleetscan.v1.FindingService/GetFinding":      {RoleOperator},
	"/fleetscan.v1.FindingService/DiffScans":       {RoleOperator},
	"/fleetscan.v1.FindingService/GetTrend":        {RoleOperator},
	"/fleetscan.v1.FindingService/CompareClusters": {RoleOperator},
	"/fleetscan.v1.FindingService/GetSummary":      {RoleOperator},
	"/fleetscan.v1.FindingService/ListChecks":      {RoleOperator, RoleTenant},
	"/fleetscan.worker.v1.WorkerService/Connect":   {RoleWorker},
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
