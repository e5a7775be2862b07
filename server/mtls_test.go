package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fleetscan/fleetscan/client"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server"
	"github.com/fleetscan/fleetscan/worker"
)

// testCA signs certificates for the mTLS test.
type testCA struct {
	t    *testing.T
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	n    int64
}

func newTestCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{t: t, dir: dir, cert: cert, key: key, n: 1}
	writePEM(t, filepath.Join(dir, name+".crt"), "CERTIFICATE", der)
	return ca
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// issue writes name.crt and name.key, for a server (ips) or a client
// (uris), and returns their paths.
func (ca *testCA) issue(name string, ips []net.IP, uris ...string) (certFile, keyFile string) {
	ca.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		ca.t.Fatal(err)
	}
	ca.n++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.n), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, IPAddresses: ips,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, u := range uris {
		parsed, err := url.Parse(u)
		if err != nil {
			ca.t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		ca.t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(ca.dir, name+".crt"), filepath.Join(ca.dir, name+".key")
	writePEM(ca.t, certFile, "CERTIFICATE", der)
	writePEM(ca.t, keyFile, "EC PRIVATE KEY", keyDER)
	return certFile, keyFile
}

// TestClientCertificates: on a server with a client CA, a certificate
// with a fleetscan:// URI SAN authenticates as the principal it names, with
// that principal's scope; a certificate without one, or from another CA,
// gets nothing; tokens keep working.
func TestClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	stranger := newTestCA(t, dir, "stranger-ca")
	serverCert, serverKey := ca.issue("server", []net.IP{net.ParseIP("127.0.0.1")})
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Config{
		DataDir: filepath.Join(dir, "data"), Listen: "127.0.0.1:0", TLSCertFile: serverCert, TLSKeyFile: serverKey,
		ClientCAFile: filepath.Join(dir, "ca.crt"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	addr := srv.Addr().String()
	dial := func(opts ...client.Option) *client.Client {
		c, err := client.New(addr, append([]client.Option{client.WithCAFile(filepath.Join(dir, "ca.crt"))}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	certOf := func(name string, uris ...string) client.Option {
		c, k := ca.issue(name, nil, uris...)
		return client.WithClientCert(c, k)
	}
	bg := context.Background()

	operator := dial(certOf("alice", "fleetscan://operator/alice"))
	for _, c := range []struct{ id, tenant string }{{"acme-prod", "acme"}, {"globex-prod", "globex"}} {
		if _, err := operator.ClusterService.RegisterCluster(bg, &fleetscanv1.RegisterClusterRequest{ClusterId: c.id, Tenant: c.tenant}); err != nil {
			t.Fatalf("operator by certificate registering %s: %v", c.id, err)
		}
	}
	tenant := dial(certOf("acme-ci", "fleetscan://tenant/acme/ci"))
	var ids []string
	for c, err := range tenant.ListClusters(bg) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.Id)
	}
	if len(ids) != 1 || ids[0] != "acme-prod" {
		t.Errorf("tenant acme by certificate lists %v, want acme-prod only", ids)
	}
	if _, err := tenant.ClusterService.RegisterCluster(bg, &fleetscanv1.RegisterClusterRequest{ClusterId: "x"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("tenant certificate registering a cluster: %v", err)
	}

	for name, opt := range map[string]client.Option{
		"no fleetscan SAN":      certOf("plain"),
		"unknown role":          certOf("root", "fleetscan://admin/root"),
		"two principals":        certOf("twice", "fleetscan://operator/a", "fleetscan://tenant/acme/b"),
		"no certificate at all": nil,
	} {
		opts := []client.Option{}
		if opt != nil {
			opts = append(opts, opt)
		}
		_, err := dial(opts...).ClusterService.ListClusters(bg, &fleetscanv1.ListClustersRequest{})
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s: %v, want Unauthenticated", name, err)
		}
	}
	strangerCert, strangerKey := stranger.issue("mallory", nil, "fleetscan://operator/mallory")
	_, err = dial(client.WithClientCert(strangerCert, strangerKey)).ClusterService.ListClusters(bg, &fleetscanv1.ListClustersRequest{})
	if err == nil || status.Code(err) == codes.OK {
		t.Errorf("a certificate of another CA was accepted")
	}

	// A worker by certificate speaks for the cluster the certificate names.
	workerCert, workerKey := ca.issue("worker-acme", nil, "fleetscan://worker/acme-prod")
	w, err := worker.New(worker.Config{
		Server: addr, ClusterID: "acme-prod", CAFile: filepath.Join(dir, "ca.crt"), CertFile: workerCert, KeyFile: workerKey,
		Source: worker.SnapshotSource(filepath.Join(demoClusters, "acme-prod"), nil), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWorker := context.WithCancel(bg)
	wdone := make(chan error, 1)
	go func() { wdone <- w.Run(wctx) }()
	defer func() { stopWorker(); <-wdone }()
	resp, err := operator.ScanService.StartScan(bg, &fleetscanv1.StartScanRequest{Target: &fleetscanv1.ScanTarget{ClusterIds: []string{"acme-prod"}}})
	if err != nil {
		t.Fatal(err)
	}
	if scan := waitScan(t, operator, resp.Scan.Id); scan.State != fleetscanv1.ScanState_SCAN_STATE_SUCCEEDED {
		t.Errorf("scan through a worker with a certificate: %v", scan.State)
	}
}

// TestCallersListenerServesTLS: a server given its listener serves TLS on
// it when TLS is configured (a plaintext client fails, a TLS one is
// answered), and refuses a listener without TLS unless asked for
// plaintext, and then only on loopback.
func TestCallersListenerServesTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	serverCert, serverKey := ca.issue("server", []net.IP{net.ParseIP("127.0.0.1")})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Config{DataDir: filepath.Join(dir, "data"), Listener: lis, TLSCertFile: serverCert, TLSKeyFile: serverKey, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	token, err := os.ReadFile(filepath.Join(dir, "data", server.OperatorTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	plain, err := client.New(lis.Addr().String(), client.WithToken(string(token[:len(token)-1])), client.WithPlaintext())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.ClusterService.ListClusters(bg, &fleetscanv1.ListClustersRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("plaintext client on a TLS listener: %v, want Unavailable", err)
	}
	secure, err := client.New(lis.Addr().String(), client.WithToken(string(token[:len(token)-1])), client.WithCAFile(filepath.Join(dir, "ca.crt")))
	if err != nil {
		t.Fatal(err)
	}
	defer secure.Close()
	if _, err := secure.ClusterService.ListClusters(bg, &fleetscanv1.ListClustersRequest{}); err != nil {
		t.Errorf("TLS client: %v", err)
	}

	wide, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer wide.Close()
	for name, cfg := range map[string]server.Config{
		"no TLS, no plaintext":   {Listener: wide},
		"plaintext off loopback": {Listener: wide, Plaintext: true},
		"client CA without TLS":  {Listener: wide, Plaintext: true, ClientCAFile: filepath.Join(dir, "ca.crt")},
	} {
		cfg.DataDir, cfg.Logger = filepath.Join(dir, "refused"), quiet
		if _, err := server.New(bg, cfg); err == nil {
			t.Errorf("%s: server.New accepted it", name)
		}
	}
}
