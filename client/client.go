package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/fleetscan/fleetscan/internal/replicaset"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// Errors a caller can test with errors.Is on any error of the client.
var (
	ErrNotFound         = errors.New("not found")
	ErrInvalidArgument  = errors.New("invalid argument")
	ErrUnauthenticated  = errors.New("unauthenticated")
	ErrPermissionDenied = errors.New("permission denied")
	ErrAlreadyExists    = errors.New("already exists")
	ErrUnavailable      = errors.New("server unavailable")
)

// Client talks to a fleetscan server.
type Client struct {
	conn *grpc.ClientConn
	// The generated stubs, for what the typed methods do not cover.
	ClusterService fleetscanv1.ClusterServiceClient
	ScanService    fleetscanv1.ScanServiceClient
	FindingService fleetscanv1.FindingServiceClient
	TokenService   fleetscanv1.TokenServiceClient
	AuditService   fleetscanv1.AuditServiceClient
	AdminService   fleetscanv1.AdminServiceClient
	// ExceptionService manages exceptions (accepted risks).
	ExceptionService fleetscanv1.ExceptionServiceClient
	// NotifierService manages notifiers and lists their deliveries.
	NotifierService fleetscanv1.NotifierServiceClient
}

type options struct {
	token     string
	tokenFile string
	caFile    string
	certFile  string
	keyFile   string
	plaintext bool
	dialOpts  []grpc.DialOption
	// rateLimitWaits bounds how often a call the rate limit refused is
	// sent again; -1 means maxRateLimitedWaits.
	rateLimitWaits int
}

// Option configures New.
type Option func(*options)

// WithToken authenticates every call with an API token.
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithTokenFile authenticates every call with the API token in a file
// (surrounding whitespace ignored), read once by New.
func WithTokenFile(path string) Option { return func(o *options) { o.tokenFile = path } }

// WithCAFile verifies the server's certificate against the PEM CA in path
// instead of the system roots.
func WithCAFile(path string) Option { return func(o *options) { o.caFile = path } }

// WithClientCert presents a client certificate (mTLS). On a server with a
// client CA, a certificate with a fleetscan:// URI SAN identifies the
// caller without a token.
func WithClientCert(certFile, keyFile string) Option {
	return func(o *options) { o.certFile, o.keyFile = certFile, keyFile }
}

// WithPlaintext turns TLS off, for a server on a loopback address.
func WithPlaintext() Option { return func(o *options) { o.plaintext = true } }

// WithRateLimitWaits sets how many times a call the server's rate limit
// refused is sent again, about a second apart (default 30; 0 returns the
// refusal at once).
func WithRateLimitWaits(n int) Option { return func(o *options) { o.rateLimitWaits = n } }

// WithDialOptions adds gRPC dial options, e.g. a bufconn dialer in tests.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOpts = append(o.dialOpts, opts...) }
}

// New returns a client of the server at target ("host:port", or the
// addresses of several replicas of it, comma-separated, of which it uses
// one at a time and another when that one fails). Nothing is dialled
// until the first call.
func New(target string, opts ...Option) (*Client, error) {
	o := options{rateLimitWaits: -1}
	for _, opt := range opts {
		opt(&o)
	}
	if o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("token file: %w", err)
		}
		if o.token = strings.TrimSpace(string(b)); o.token == "" {
			return nil, fmt.Errorf("token file %s is empty", o.tokenFile)
		}
	}
	var creds credentials.TransportCredentials
	if o.plaintext {
		creds = insecure.NewCredentials()
	} else {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if o.caFile != "" {
			pem, err := os.ReadFile(o.caFile)
			if err != nil {
				return nil, fmt.Errorf("ca: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("ca %s: no PEM certificate in it", o.caFile)
			}
		}
		if o.certFile != "" || o.keyFile != "" {
			cert, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
			if err != nil {
				return nil, fmt.Errorf("client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		creds = credentials.NewTLS(tc)
	}
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithChainUnaryInterceptor(convertErrors, retry(o.rateLimitWaits)),
	}
	if o.token != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(bearer{token: o.token, secure: !o.plaintext}))
	}
	to, replicas := replicaset.Dial(target)
	dial = append(dial, replicas...)
	conn, err := grpc.NewClient(to, append(dial, o.dialOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("server address %q: %w", target, err)
	}
	return &Client{
		conn:             conn,
		ClusterService:   fleetscanv1.NewClusterServiceClient(conn),
		ScanService:      fleetscanv1.NewScanServiceClient(conn),
		FindingService:   fleetscanv1.NewFindingServiceClient(conn),
		TokenService:     fleetscanv1.NewTokenServiceClient(conn),
		AuditService:     fleetscanv1.NewAuditServiceClient(conn),
		AdminService:     fleetscanv1.NewAdminServiceClient(conn),
		ExceptionService: fleetscanv1.NewExceptionServiceClient(conn),
		NotifierService:  fleetscanv1.NewNotifierServiceClient(conn),
	}, nil
}

// Close releases the connection.
func (c *Client) Close() error { return c.conn.Close() }

type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.secure }

// Error is a failed call: the sentinel it matches and the server's status.
type Error struct {
	kind   error
	Status *status.Status
}

func (e *Error) Error() string { return e.Status.Message() }

// Is matches the sentinel of the call's status code.
func (e *Error) Is(target error) bool { return e.kind != nil && target == e.kind }

// GRPCStatus lets status.FromError see through the wrapper.
func (e *Error) GRPCStatus() *status.Status { return e.Status }

var codeErrors = map[codes.Code]error{
	codes.NotFound:         ErrNotFound,
	codes.InvalidArgument:  ErrInvalidArgument,
	codes.Unauthenticated:  ErrUnauthenticated,
	codes.PermissionDenied: ErrPermissionDenied,
	codes.AlreadyExists:    ErrAlreadyExists,
	codes.Unavailable:      ErrUnavailable,
}

func convertErrors(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	return &Error{kind: codeErrors[st.Code()], Status: st}
}

// readPrefixes name the RPCs that only read, which are safe to send again.
var readPrefixes = []string{"Get", "List", "Diff", "Compare"}

// maxReadAttempts bounds how often a read is sent.
const maxReadAttempts = 4

// maxRateLimitedWaits bounds how often a call the server's rate limit
// refused is sent again, a second apart: the token's bucket refills in
// that time, so only a client far over its rate gives up.
const maxRateLimitedWaits = 30

// retry sends a read again when the server is unavailable (it is
// restarting, or the connection broke), with jittered exponential backoff
// from 100 ms, at most maxReadAttempts times in all and never past ctx.
// Calls that change something are not retried on Unavailable: they may
// have taken effect before the error. Any call the rate limit refused is
// sent again after a second, read or not: the limit refuses a call before
// it runs, so paging through 150,000 findings slows down instead of
// failing.
func retry(rateLimitWaits int) grpc.UnaryClientInterceptor {
	if rateLimitWaits < 0 {
		rateLimitWaits = maxRateLimitedWaits
	}
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return retryCall(ctx, rateLimitWaits, method, req, reply, cc, invoker, opts...)
	}
}

func retryCall(ctx context.Context, rateLimitWaits int, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	name := method[strings.LastIndex(method, "/")+1:]
	read := slices.ContainsFunc(readPrefixes, func(p string) bool { return strings.HasPrefix(name, p) })
	backoff := 100 * time.Millisecond
	for attempt, waits := 1, 0; ; attempt++ {
		err := invoker(ctx, method, req, reply, cc, opts...)
		var wait time.Duration
		switch {
		case rateLimited(err) && waits < rateLimitWaits:
			waits++
			wait = time.Second/2 + rand.N(time.Second)
		case read && status.Code(err) == codes.Unavailable && attempt < maxReadAttempts:
			wait = backoff/2 + rand.N(backoff/2+1)
			backoff *= 2
		default:
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// rateLimited reports whether the server's rate limit refused a call
// (ResourceExhausted is also what gRPC answers to a message too large,
// which sending again cannot help).
func rateLimited(err error) bool {
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.ResourceExhausted && strings.HasPrefix(st.Message(), "rate limit")
}

// paginate turns a List RPC into an iterator over its items.
func paginate[T any](ctx context.Context, page func(ctx context.Context, token string) ([]T, string, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		token := ""
		for {
			items, next, err := page(ctx, token)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			if next == "" {
				return
			}
			token = next
		}
	}
}

// ListClusters iterates over every cluster.
func (c *Client) ListClusters(ctx context.Context) iter.Seq2[*fleetscanv1.Cluster, error] {
	return paginate(ctx, func(ctx context.Context, token string) ([]*fleetscanv1.Cluster, string, error) {
		resp, err := c.ClusterService.ListClusters(ctx, &fleetscanv1.ListClustersRequest{PageToken: token})
		return resp.GetClusters(), resp.GetNextPageToken(), err
	})
}

// ListScans iterates over scans, newest first.
func (c *Client) ListScans(ctx context.Context) iter.Seq2[*fleetscanv1.Scan, error] {
	return paginate(ctx, func(ctx context.Context, token string) ([]*fleetscanv1.Scan, string, error) {
		resp, err := c.ScanService.ListScans(ctx, &fleetscanv1.ListScansRequest{PageToken: token})
		return resp.GetScans(), resp.GetNextPageToken(), err
	})
}

// Findings iterates over the findings matching req's filters; its page
// token is managed by the iterator.
func (c *Client) Findings(ctx context.Context, req *fleetscanv1.ListFindingsRequest) iter.Seq2[*fleetscanv1.Finding, error] {
	return paginate(ctx, func(ctx context.Context, token string) ([]*fleetscanv1.Finding, string, error) {
		r := proto.CloneOf(req)
		r.PageToken = token
		resp, err := c.FindingService.ListFindings(ctx, r)
		return resp.GetFindings(), resp.GetNextPageToken(), err
	})
}

// Finished reports whether a scan has ended.
func Finished(s *fleetscanv1.Scan) bool {
	switch s.State {
	case fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED, fleetscanv1.ScanState_SCAN_STATE_FAILED, fleetscanv1.ScanState_SCAN_STATE_CANCELLED:
		return true
	}
	return false
}

// WaitScan follows a scan until it has ended or ctx is done, calling
// progress (if not nil) with each state it sees. It watches the scan's
// stream (WatchScan), opening it again if the server restarts, and falls
// back to polling every interval on servers without WatchScan. A server
// that never answered is not waited for: after maxReadAttempts tries it
// returns ErrUnavailable, as a read does, instead of waiting out ctx.
func (c *Client) WaitScan(ctx context.Context, scanID string, interval time.Duration, progress func(*fleetscanv1.Scan)) (*fleetscanv1.Scan, error) {
	var last *fleetscanv1.Scan
	for attempt := 1; ; attempt++ {
		scan, err := c.watchOnce(ctx, scanID, func(s *fleetscanv1.Scan) {
			last = s
			if progress != nil {
				progress(s)
			}
		})
		if last == nil && attempt >= maxReadAttempts && status.Code(err) == codes.Unavailable && ctx.Err() == nil {
			return nil, &Error{kind: ErrUnavailable, Status: status.Convert(err)}
		}
		switch {
		case err == nil:
			return scan, nil
		case status.Code(err) == codes.Unimplemented:
			return c.pollScan(ctx, scanID, interval, progress)
		case status.Code(err) == codes.Unavailable && ctx.Err() == nil:
			// The server went away: watch again once it is back.
			select {
			case <-ctx.Done():
				return last, ctx.Err()
			case <-time.After(interval):
			}
		case ctx.Err() != nil:
			return last, ctx.Err()
		default:
			return last, err
		}
	}
}

// watchOnce reads one WatchScan stream to its end: the scan's final
// state, or an error.
func (c *Client) watchOnce(ctx context.Context, scanID string, progress func(*fleetscanv1.Scan)) (*fleetscanv1.Scan, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.ScanService.WatchScan(ctx, &fleetscanv1.WatchScanRequest{ScanId: scanID})
	if err != nil {
		return nil, err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = status.Error(codes.Unavailable, "watch ended before the scan did")
			}
			return nil, err
		}
		progress(resp.Scan)
		if Finished(resp.Scan) {
			return resp.Scan, nil
		}
	}
}

func (c *Client) pollScan(ctx context.Context, scanID string, interval time.Duration, progress func(*fleetscanv1.Scan)) (*fleetscanv1.Scan, error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		resp, err := c.ScanService.GetScan(ctx, &fleetscanv1.GetScanRequest{ScanId: scanID})
		if err != nil {
			return nil, err
		}
		if progress != nil {
			progress(resp.Scan)
		}
		if Finished(resp.Scan) {
			return resp.Scan, nil
		}
		select {
		case <-ctx.Done():
			return resp.Scan, ctx.Err()
		case <-t.C:
		}
	}
}
