package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server"
	"github.com/fleetscan/fleetscan/server/internal/web"
)

// webClient calls the web listener as a browser's Connect or gRPC-Web
// client does, over HTTP/1.1.
type webClient struct {
	t       *testing.T
	base    string
	http    *http.Client
	options []connect.ClientOption
	name    string
}

// webProtocols are the protocols a browser speaks: Connect with JSON
// (what @connectrpc/connect-web sends by default) and gRPC-Web.
var webProtocols = []struct {
	name    string
	options []connect.ClientOption
}{
	{"connect+json", []connect.ClientOption{connect.WithProtoJSON()}},
	{"grpc-web", []connect.ClientOption{connect.WithGRPCWeb()}},
}

// startWebServer starts a test server whose web listener is on a loopback
// port, with cfg applied too.
func startWebServer(t *testing.T, cfg func(*server.Config)) (*testServer, string) {
	t.Helper()
	ts := &testServer{t: t, dataDir: t.TempDir()}
	var addr string
	ts.cfg = withWeb(t, &addr, cfg)
	ts.start()
	t.Cleanup(ts.shutdown)
	return ts, addr
}

// withWeb adds a web listener on a loopback port to a test server's
// configuration, and stores its address in addr.
func withWeb(t *testing.T, addr *string, more func(*server.Config)) func(*server.Config) {
	return func(c *server.Config) {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c.WebListener = lis
		*addr = "http://" + lis.Addr().String()
		if more != nil {
			more(c)
		}
	}
}

func newWebClients(t *testing.T, base string) []*webClient {
	t.Helper()
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	var out []*webClient
	for _, p := range webProtocols {
		out = append(out, &webClient{t: t, base: base, http: &http.Client{Transport: transport}, options: p.options, name: p.name})
	}
	return out
}

// call makes one unary call of procedure with token ("" for none).
func call[Req, Res any](w *webClient, procedure, token string, req *Req) (*Res, error) {
	c := connect.NewClient[Req, Res](w.http, w.base+procedure, w.options...)
	r := connect.NewRequest(req)
	if token != "" {
		r.Header().Set("Authorization", "Bearer "+token)
	}
	resp, err := c.CallUnary(context.Background(), r)
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

// connectCode is the gRPC code of a web call's error, as the API's
// clients see it over gRPC.
func connectCode(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return codes.Unknown
	}
	return codes.Code(ce.Code())
}

// TestWebAPIIsTheAPI: over the web listener, in both browser protocols,
// each tenant and the operator see exactly what they see over gRPC, and
// are refused what they are refused there, with the same codes.
func TestWebAPIIsTheAPI(t *testing.T) {
	var base string
	tf := newTenantFleetWith(t, withWeb(t, &base, nil))
	ts := tf.ts
	principals := map[string]string{"operator": ts.operatorToken(), "acme": tf.acme, "globex": tf.globex}
	for _, w := range newWebClients(t, base) {
		for who, token := range principals {
			grpcClient := ts.client(token)
			ctx := context.Background()

			want, err := grpcClient.ClusterService.ListClusters(ctx, &fleetscanv1.ListClustersRequest{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := call[fleetscanv1.ListClustersRequest, fleetscanv1.ListClustersResponse](w, "/fleetscan.v1.ClusterService/ListClusters", token, &fleetscanv1.ListClustersRequest{})
			if err != nil {
				t.Fatalf("%s, %s: ListClusters: %v", w.name, who, err)
			}
			if !proto.Equal(got, want) {
				t.Errorf("%s, %s: ListClusters over the web differs from gRPC:\n web: %v\ngrpc: %v", w.name, who, got, want)
			}

			req := &fleetscanv1.ListFindingsRequest{PageSize: 1000}
			wantF, err := grpcClient.FindingService.ListFindings(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			gotF, err := call[fleetscanv1.ListFindingsRequest, fleetscanv1.ListFindingsResponse](w, "/fleetscan.v1.FindingService/ListFindings", token, req)
			if err != nil {
				t.Fatalf("%s, %s: ListFindings: %v", w.name, who, err)
			}
			if len(wantF.Findings) == 0 || !proto.Equal(gotF, wantF) {
				t.Errorf("%s, %s: ListFindings over the web: %d findings, over gRPC %d (equal: %v)", w.name, who, len(gotF.Findings), len(wantF.Findings), proto.Equal(gotF, wantF))
			}

			// Another tenant's finding, and an operator's method.
			get := &fleetscanv1.GetFindingRequest{ClusterId: tf.globexFinding.ClusterId, Fingerprint: tf.globexFinding.Fingerprint}
			_, grpcErr := grpcClient.FindingService.GetFinding(ctx, get)
			_, webErr := call[fleetscanv1.GetFindingRequest, fleetscanv1.GetFindingResponse](w, "/fleetscan.v1.FindingService/GetFinding", token, get)
			if connectCode(webErr) != status.Code(grpcErr) {
				t.Errorf("%s, %s: GetFinding of globex's finding: web %v, gRPC %v", w.name, who, webErr, grpcErr)
			}
			if who == "acme" && status.Code(grpcErr) == codes.OK {
				t.Errorf("acme read globex's finding over gRPC: the fleet is not what the test thinks")
			}
			create := &fleetscanv1.CreateTokenRequest{Name: "from-" + who + "-" + w.name, Role: fleetscanv1.TokenRole_TOKEN_ROLE_TENANT, Tenant: "acme"}
			_, webErr = call[fleetscanv1.CreateTokenRequest, fleetscanv1.CreateTokenResponse](w, "/fleetscan.v1.TokenService/CreateToken", token, create)
			wantCode := codes.PermissionDenied
			if who == "operator" {
				wantCode = codes.OK
			}
			if connectCode(webErr) != wantCode {
				t.Errorf("%s, %s: CreateToken over the web: %v, want %v", w.name, who, webErr, wantCode)
			}
		}

		// No token, a wrong token.
		for _, token := range []string{"", "fs_api_not-a-token"} {
			_, err := call[fleetscanv1.ListClustersRequest, fleetscanv1.ListClustersResponse](w, "/fleetscan.v1.ClusterService/ListClusters", token, &fleetscanv1.ListClustersRequest{})
			if connectCode(err) != codes.Unauthenticated {
				t.Errorf("%s: ListClusters with token %q: %v, want Unauthenticated", w.name, token, err)
			}
		}
	}

	// The operator's token calls were audited with the web peer's address,
	// refused ones too.
	events, err := ts.client(ts.operatorToken()).AuditService.ListAuditEvents(context.Background(), &fleetscanv1.ListAuditEventsRequest{PageSize: 500})
	if err != nil {
		t.Fatal(err)
	}
	var webCreates []string
	for _, e := range events.Events {
		if e.Method == "/fleetscan.v1.TokenService/CreateToken" && strings.Contains(e.Request, `"from-`) && strings.HasPrefix(e.Peer, "127.0.0.1:") {
			webCreates = append(webCreates, e.Principal+" "+e.Code)
		}
	}
	slices.Sort(webCreates)
	if len(webCreates) != 6 || !slices.Contains(webCreates, "acme-ci PermissionDenied") || !slices.Contains(webCreates, "bootstrap operator OK") {
		t.Errorf("audited web CreateToken calls: %q, want 3 principals × 2 protocols, refused ones too", webCreates)
	}
}

// TestWebServesOnlyThePublicAPI: the worker protocol, health and
// reflection are not on the web listener, the console is (its page at
// "/", its two assets, nothing else), every response carries the
// security headers, and a server stream (a scan's watch) works over
// HTTP/1.1.
func TestWebServesOnlyThePublicAPI(t *testing.T) {
	ts, base := startWebServer(t, nil)
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	hc := &http.Client{Transport: transport}
	for _, tc := range []struct {
		method, path string
		status       int
		contentType  string // "" for any
	}{
		{"POST", "/fleetscan.worker.v1.WorkerService/Connect", http.StatusNotFound, ""},
		{"POST", "/grpc.health.v1.Health/Check", http.StatusNotFound, ""},
		{"POST", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", http.StatusNotFound, ""},
		{"GET", "/grpc.health.v1.Health/Check", http.StatusNotFound, ""},
		{"POST", "/", http.StatusMethodNotAllowed, ""},
		{"GET", "/", http.StatusOK, "text/html; charset=utf-8"},
		{"GET", "/console.js", http.StatusOK, "text/javascript; charset=utf-8"},
		{"GET", "/console.css", http.StatusOK, "text/css; charset=utf-8"},
		{"GET", "/cluster/prod-eu-1", http.StatusNotFound, ""},
		{"GET", "/index.html", http.StatusNotFound, ""},
	} {
		req, err := http.NewRequest(tc.method, base+tc.path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: %s, want %d", tc.method, tc.path, resp.Status, tc.status)
		}
		if got := resp.Header.Get("Content-Type"); tc.contentType != "" && got != tc.contentType {
			t.Errorf("%s %s: Content-Type %q, want %q", tc.method, tc.path, got, tc.contentType)
		}
		if tc.path == "/" && tc.method == "GET" && !strings.Contains(string(body), `<script type="module" src="/console.js">`) {
			t.Errorf("GET /: not the console's page:\n%s", body)
		}
		for h, want := range map[string]string{"Content-Security-Policy": web.ContentSecurityPolicy, "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"} {
			if got := resp.Header.Get(h); got != want {
				t.Errorf("%s %s: %s %q, want %q", tc.method, tc.path, h, got, want)
			}
		}
	}

	op := ts.client(ts.operatorToken())
	register(t, op, "web-watch", "", nil)
	started, err := op.ScanService.StartScan(context.Background(), &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{ClusterIds: []string{"web-watch"}}})
	if err != nil {
		t.Fatal(err)
	}
	scan := started.Scan // no worker: the scan waits for one
	w := newWebClients(t, base)[0]
	c := connect.NewClient[fleetscanv1.WatchScanRequest, fleetscanv1.WatchScanResponse](w.http, w.base+"/fleetscan.v1.ScanService/WatchScan", w.options...)
	req := connect.NewRequest(&fleetscanv1.WatchScanRequest{ScanId: scan.Id})
	req.Header().Set("Authorization", "Bearer "+ts.operatorToken())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := c.CallServerStream(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !stream.Receive() {
		t.Fatalf("WatchScan over the web: no first message: %v", stream.Err())
	}
	if got := stream.Msg().GetScan().GetId(); got != scan.Id {
		t.Errorf("WatchScan over the web: scan %q, want %q", got, scan.Id)
	}
	if _, err := op.ScanService.CancelScan(context.Background(), &fleetscanv1.CancelScanRequest{ScanId: scan.Id}); err != nil {
		t.Fatal(err)
	}
	for stream.Receive() {
	}
	if err := stream.Err(); err != nil {
		t.Errorf("WatchScan over the web ended with %v after the scan was cancelled", err)
	}
	stream.Close()
}

// TestWebSharesTheRateLimit: a principal's calls over gRPC and over the
// web draw on one budget.
func TestWebSharesTheRateLimit(t *testing.T) {
	ts, base := startWebServer(t, func(c *server.Config) { c.RateLimit, c.RateBurst = 0.0001, 3 })
	token := ts.operatorToken()
	op := ts.client(token)
	for range 3 {
		if _, err := op.ClusterService.ListClusters(context.Background(), &fleetscanv1.ListClustersRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	w := newWebClients(t, base)[0]
	_, err := call[fleetscanv1.ListClustersRequest, fleetscanv1.ListClustersResponse](w, "/fleetscan.v1.ClusterService/ListClusters", token, &fleetscanv1.ListClustersRequest{})
	if connectCode(err) != codes.ResourceExhausted {
		t.Errorf("fourth call, over the web, after a burst of three over gRPC: %v, want ResourceExhausted", err)
	}
}

// TestWebTLS: with TLS configured, the web listener serves the API's
// certificate (over HTTP/2, as browsers negotiate it), and in plaintext it
// refuses an address off loopback as the API listener does.
func TestWebTLS(t *testing.T) {
	var base string
	ts := &testServer{t: t, dataDir: t.TempDir()}
	ts.cfg = withWeb(t, &base, func(c *server.Config) { c.Plaintext, c.DevTLS = false, true })
	ts.start()
	t.Cleanup(ts.shutdown)
	pem, err := os.ReadFile(filepath.Join(ts.dataDir, "tls", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	t.Cleanup(transport.CloseIdleConnections)
	w := &webClient{t: t, base: strings.Replace(base, "http://", "https://", 1), http: &http.Client{Transport: transport}, name: "connect"}
	c := connect.NewClient[fleetscanv1.ListClustersRequest, fleetscanv1.ListClustersResponse](w.http, w.base+"/fleetscan.v1.ClusterService/ListClusters")
	req := connect.NewRequest(&fleetscanv1.ListClustersRequest{})
	req.Header().Set("Authorization", "Bearer "+ts.operatorToken())
	if _, err := c.CallUnary(context.Background(), req); err != nil {
		t.Fatalf("ListClusters over HTTPS: %v", err)
	}
	resp, err := w.http.Get(w.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || !strings.HasPrefix(resp.Header.Get("Strict-Transport-Security"), "max-age=") {
		t.Errorf("GET / over TLS: %s, Strict-Transport-Security %q; want HTTP/2 and HSTS", resp.Proto, resp.Header.Get("Strict-Transport-Security"))
	}

	_, err = server.New(context.Background(), server.Config{DataDir: t.TempDir(), Listener: bufconn.Listen(1 << 10), Plaintext: true, WebListen: "0.0.0.0:0"})
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("plaintext web listener on 0.0.0.0: %v, want a refusal naming loopback", err)
	}
}
