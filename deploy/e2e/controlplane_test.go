//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// process is a child the harness started. It runs in its own process
// group, so that stopping it stops whatever it forked and nothing else.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func startProcess(name, logPath, bin string, args ...string) (*process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p := &process{name: name, cmd: exec.Command(bin, args...), log: logPath, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	// Pdeathsig: a test binary that dies (a panic, a timeout) takes its
	// control planes with it instead of leaving them bound to ports.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *process) stop(grace time.Duration) {
	if p == nil {
		return
	}
	pgid := p.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the last n lines of the process's log, for failure messages.
func (p *process) tail(n int) string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// memory returns the process's resident set now and at its peak, in KiB.
func (p *process) memory() (rss, peak int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			peak = n
		}
	}
	return rss, peak
}

// controlPlane is one cluster: etcd and kube-apiserver on loopback ports,
// with an admin token in system:masters.
type controlPlane struct {
	name       string
	dir        string
	etcd       *process
	apiserver  *process
	url        string
	caFile     string
	adminToken string
	admin      *rest.Config
	adminConf  string // kubeconfig with the admin token, for kubectl
	client     kubernetes.Interface
	auditLog   string // JSON lines, one per List request
}

// auditPolicyYAML records the metadata of every List, and nothing else.
const auditPolicyYAML = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    verbs: [list]
  - level: None
`

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// startControlPlane starts etcd and kube-apiserver from bin and waits until
// the API server reports ready.
func startControlPlane(ctx context.Context, bin, name, serviceCIDR, dir string) (*controlPlane, error) {
	cp := &controlPlane{name: name, dir: dir, adminToken: randomHex(24)}
	if err := os.MkdirAll(filepath.Join(dir, "certs"), 0o700); err != nil {
		return nil, err
	}
	ports := make([]int, 3)
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	client, peer, secure := ports[0], ports[1], ports[2]

	var err error
	cp.etcd, err = startProcess(name+" etcd", filepath.Join(dir, "etcd.log"), filepath.Join(bin, "etcd"),
		"--name", name,
		"--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", fmt.Sprintf("http://127.0.0.1:%d", client),
		"--advertise-client-urls", fmt.Sprintf("http://127.0.0.1:%d", client),
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peer),
		"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peer),
		"--initial-cluster", fmt.Sprintf("%s=http://127.0.0.1:%d", name, peer),
		// A test cluster is thrown away: durability buys nothing here.
		"--unsafe-no-fsync",
		"--log-level", "warn",
	)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, cp.etcd, fmt.Sprintf("http://127.0.0.1:%d/health", client), "", "", 60*time.Second); err != nil {
		cp.stop()
		return nil, err
	}

	saKey, saPub, err := serviceAccountKeys(dir)
	if err != nil {
		cp.stop()
		return nil, err
	}
	// Every List is audited, so that a test can see how the worker paged.
	auditPolicy := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(auditPolicy, []byte(auditPolicyYAML), 0o600); err != nil {
		cp.stop()
		return nil, err
	}
	cp.auditLog = filepath.Join(dir, "audit.log")
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(cp.adminToken+`,e2e-admin,e2e-admin,"system:masters"`+"\n"), 0o600); err != nil {
		cp.stop()
		return nil, err
	}
	cp.apiserver, err = startProcess(name+" kube-apiserver", filepath.Join(dir, "kube-apiserver.log"), filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers", fmt.Sprintf("http://127.0.0.1:%d", client),
		"--bind-address", "127.0.0.1",
		"--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(secure),
		"--cert-dir", filepath.Join(dir, "certs"),
		"--token-auth-file", tokens,
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", saPub,
		"--service-account-signing-key-file", saKey,
		"--service-cluster-ip-range", serviceCIDR,
		"--authorization-mode", "Node,RBAC",
		// The seeded insecure workloads are what the checks must find, so
		// the API server admits privileged pods where PSA labels allow.
		"--allow-privileged=true",
		// The endpoint reconciler refuses a loopback advertise address.
		"--endpoint-reconciler-type", "none",
		"--profiling=false",
		"--audit-policy-file", auditPolicy,
		"--audit-log-path", cp.auditLog,
		// blocking: an event is on disk before its response is sent.
		"--audit-log-mode", "blocking",
	)
	if err != nil {
		cp.stop()
		return nil, err
	}
	cp.url = fmt.Sprintf("https://127.0.0.1:%d", secure)
	// The API server writes its self-signed serving certificate, with the CA
	// that signed it, into --cert-dir before it listens.
	cp.caFile = filepath.Join(dir, "certs", "apiserver.crt")
	if err := waitHTTP(ctx, cp.apiserver, cp.url+"/readyz", cp.adminToken, cp.caFile, 120*time.Second); err != nil {
		cp.stop()
		return nil, err
	}
	cp.admin = &rest.Config{Host: cp.url, BearerToken: cp.adminToken, TLSClientConfig: rest.TLSClientConfig{CAFile: cp.caFile}, QPS: 200, Burst: 400,
		// The seeded insecure pods draw Pod Security warnings by design.
		WarningHandler: rest.NoWarnings{}}
	if cp.client, err = kubernetes.NewForConfig(cp.admin); err != nil {
		cp.stop()
		return nil, err
	}
	cp.adminConf = filepath.Join(dir, "admin.kubeconfig")
	if err := cp.kubeconfig(cp.adminConf, "e2e-admin", cp.adminToken); err != nil {
		cp.stop()
		return nil, err
	}
	return cp, nil
}

// kubectl runs the built kubectl as the cluster's admin.
func (cp *controlPlane) kubectl(tools string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(tools, "kubectl"), append([]string{"--kubeconfig", cp.adminConf}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (cp *controlPlane) stop() {
	// kube-apiserver first, so that it does not log etcd's disappearance.
	cp.apiserver.stop(10 * time.Second)
	cp.etcd.stop(10 * time.Second)
}

// serviceAccountKeys writes the key pair the API server signs and verifies
// service-account tokens (the TokenRequest API) with.
func serviceAccountKeys(dir string) (keyFile, pubFile string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", err
	}
	keyFile, pubFile = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return "", "", err
	}
	return keyFile, pubFile, os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}

// waitHTTP polls url until it answers 200, the process exits, or timeout.
func waitHTTP(ctx context.Context, p *process, url, token, caFile string, timeout time.Duration) error {
	tr := &http.Transport{}
	if f := caFile; f != "" {
		pool := x509.NewCertPool()
		deadline := time.Now().Add(timeout)
		for {
			b, err := os.ReadFile(f)
			if err == nil && pool.AppendCertsFromPEM(b) {
				break
			}
			if p.exited() {
				return fmt.Errorf("%s exited before it wrote %s:\n%s", p.name, f, p.tail(30))
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s did not write %s within %s", p.name, f, timeout)
			}
			time.Sleep(100 * time.Millisecond)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	deadline := time.Now().Add(timeout)
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		last = err
		if p.exited() {
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.tail(30))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not ready at %s after %s: %v\n%s", p.name, url, timeout, last, p.tail(30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// kubeconfig writes a kubeconfig for the cluster that authenticates with
// token, for kubectl and the worker.
func (cp *controlPlane) kubeconfig(path, user, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[cp.name] = &clientcmdapi.Cluster{Server: cp.url, CertificateAuthority: cp.caFile}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts[cp.name] = &clientcmdapi.Context{Cluster: cp.name, AuthInfo: user}
	cfg.CurrentContext = cp.name
	return clientcmd.WriteToFile(*cfg, path)
}

// planeSpec names a control plane and its Service IP range (the seeded
// Services keep the cluster IPs of the clusters they were exported from).
type planeSpec struct{ name, serviceCIDR string }

// startAll starts the control planes concurrently: each takes seconds, and
// they do not share anything.
func startAll(ctx context.Context, bin, root string, specs ...planeSpec) ([]*controlPlane, error) {
	out := make([]*controlPlane, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, sp := range specs {
		wg.Go(func() {
			out[i], errs[i] = startRetrying(ctx, bin, sp.name, sp.serviceCIDR, filepath.Join(root, sp.name))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, cp := range out {
			if cp != nil {
				cp.stop()
			}
		}
		return nil, err
	}
	return out, nil
}

// startRetrying starts a control plane, again when a port it was given was
// taken before etcd or the API server bound it (the ports are picked free,
// then bound by another process).
func startRetrying(ctx context.Context, bin, name, serviceCIDR, dir string) (*controlPlane, error) {
	for attempt := 1; ; attempt++ {
		d := fmt.Sprintf("%s-%d", dir, attempt)
		cp, err := startControlPlane(ctx, bin, name, serviceCIDR, d)
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			return cp, err
		}
		os.RemoveAll(d)
	}
}
