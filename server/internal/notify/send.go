package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fleetscan/fleetscan/client/webhook"
	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// NewSecret makes a webhook signing key and its printable form.
func NewSecret() (key []byte, printable string) {
	key = make([]byte, 32)
	rand.Read(key)
	return key, webhook.SecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// Sender posts events to receivers.
type Sender struct {
	// Trusted sends operators' notifiers' requests; Guarded sends tenants',
	// and refuses to connect to loopback, private and link-local addresses
	// (the server's own network), whatever the name resolves to.
	Trusted, Guarded *http.Client
	Now              func() time.Time
	// UserAgent names the server in requests.
	UserAgent string
	// Timeout bounds one attempt: a receiver that does not answer in time
	// is tried again later.
	Timeout time.Duration
}

// DefaultAttemptTimeout is an attempt's timeout unless NewSender is told
// otherwise.
const DefaultAttemptTimeout = 10 * time.Second

// NewSender makes a Sender with its two clients, whose attempts time out
// after timeout (0: DefaultAttemptTimeout). Neither follows redirects nor
// uses a proxy from the environment.
func NewSender(now func() time.Time, userAgent string, timeout time.Duration) *Sender {
	if timeout <= 0 {
		timeout = DefaultAttemptTimeout
	}
	client := func(control func(network, address string, c syscall.RawConn) error) *http.Client {
		d := &net.Dialer{Timeout: timeout, Control: control}
		return &http.Client{
			Timeout:       timeout,
			Transport:     &http.Transport{DialContext: d.DialContext, TLSHandshakeTimeout: timeout, MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &Sender{Trusted: client(nil), Guarded: client(publicOnly), Now: now, UserAgent: userAgent, Timeout: timeout}
}

// ErrPrivateAddress: a tenant's notifier named an address of the server's
// own network.
var ErrPrivateAddress = errors.New("a tenant's notifier may not reach loopback, private or link-local addresses")

func publicOnly(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%s: %w", address, err)
	}
	if a := ap.Addr().Unmap(); !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || cgnat.Contains(a) {
		return fmt.Errorf("%s: %w", address, ErrPrivateAddress)
	}
	return nil
}

// cgnat is the shared address space of carrier-grade NAT (RFC 6598),
// private in practice: cloud metadata services live there too.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// Result is how a receiver answered an attempt.
type Result struct {
	Status int
	Err    error
	// Permanent: trying again will not help (a 4xx other than 408, 425
	// and 429, or an address a tenant may not reach).
	Permanent bool
}

// Send makes one attempt to deliver an event (its CloudEvent JSON) to a
// notifier.
func (s *Sender) Send(ctx context.Context, n *storagev1.NotifierRecord, id string, event []byte) Result {
	body, contentType := event, "application/cloudevents+json"
	if n.Kind == fleetscanv1.NotifierKind_NOTIFIER_KIND_SLACK {
		var err error
		if body, err = SlackMessage(event); err != nil {
			return Result{Err: err, Permanent: true}
		}
		contentType = "application/json"
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.Url, bytes.NewReader(body))
	if err != nil {
		return Result{Err: err, Permanent: true}
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", s.UserAgent)
	// The idempotency key, on every attempt and in every kind.
	req.Header.Set(webhook.HeaderID, id)
	req.Header.Set("Idempotency-Key", id)
	if n.Kind == fleetscanv1.NotifierKind_NOTIFIER_KIND_WEBHOOK {
		ts := s.Now().Unix()
		req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts, 10))
		req.Header.Set(webhook.HeaderSignature, webhook.Sign(n.Secret, id, ts, body))
	}
	client := s.Trusted
	if n.OwnerTenant != "" {
		client = s.Guarded
	}
	resp, err := client.Do(req)
	if err != nil {
		return Result{Err: err, Permanent: errors.Is(err, ErrPrivateAddress)}
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return Result{Status: resp.StatusCode}
	}
	msg := strings.TrimSpace(string(snippet))
	if msg != "" {
		msg = ": " + msg
	}
	r := Result{Status: resp.StatusCode, Err: fmt.Errorf("the receiver answered %s%s", resp.Status, msg)}
	switch c := resp.StatusCode; {
	case c >= 300 && c < 400:
		r.Err = fmt.Errorf("the receiver redirected (%s to %s), which is not followed: give its final address", resp.Status, resp.Header.Get("Location"))
		r.Permanent = true
	case c >= 400 && c < 500 && c != http.StatusRequestTimeout && c != http.StatusTooEarly && c != http.StatusTooManyRequests:
		r.Permanent = true
	}
	return r
}

// SlackMessage is the Slack-compatible form of an event: its summary and,
// for new findings, the worst of them, as mrkdwn text.
func SlackMessage(event []byte) ([]byte, error) {
	var e struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(event, &e); err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	text, err := slackText(e.Type, e.Data)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]string{"text": text})
}

func slackText(ceType string, data json.RawMessage) (string, error) {
	var b strings.Builder
	switch ceType {
	case CEType(fleetscanv1.EventType_EVENT_TYPE_NEW_FINDINGS):
		var d NewFindingsData
		if err := json.Unmarshal(data, &d); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, ":rotating_light: *fleetscan* · %s", escape(d.Summary()))
		for _, f := range d.Findings {
			where := f.Name
			if f.Namespace != "" {
				where = f.Namespace + "/" + f.Name
			}
			fmt.Fprintf(&b, "\n• *%s* `%s` %s %s: %s", f.Severity, f.CheckID, escape(f.Kind), escape(where), escape(f.Message))
		}
		if more := d.Total - len(d.Findings); more > 0 {
			fmt.Fprintf(&b, "\n… and %d more", more)
		}
	case CEType(fleetscanv1.EventType_EVENT_TYPE_SCORE_DROPPED):
		var d ScoreDroppedData
		if err := json.Unmarshal(data, &d); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, ":chart_with_downwards_trend: *fleetscan* · %s: posture score fell from %d to %d (%d points)", escape(d.ClusterID), d.ScoreBefore, d.Score, d.Drop)
	case CEType(fleetscanv1.EventType_EVENT_TYPE_JOB_FAILED):
		var d JobFailedData
		if err := json.Unmarshal(data, &d); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, ":x: *fleetscan* · %s: job %s %s: %s", escape(d.ClusterID), d.JobID, strings.ToLower(d.State), escape(d.Error))
	case CEType(fleetscanv1.EventType_EVENT_TYPE_WORKER_OFFLINE):
		var d WorkerOfflineData
		if err := json.Unmarshal(data, &d); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, ":electric_plug: *fleetscan* · %s: worker offline for %v (since %s)", escape(d.ClusterID), time.Duration(d.OfflineSeconds)*time.Second, d.LastSeen.Format(time.RFC3339))
	case CEType(fleetscanv1.EventType_EVENT_TYPE_EXCEPTION_EXPIRING):
		var d ExceptionExpiringData
		if err := json.Unmarshal(data, &d); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, ":hourglass: *fleetscan* · exception %s expires at %s: %s", d.ExceptionID, d.ExpireTime.Format(time.RFC3339), escape(d.Reason))
	case CEType(fleetscanv1.EventType_EVENT_TYPE_TEST):
		var d TestData
		if err := json.Unmarshal(data, &d); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, ":white_check_mark: *fleetscan* · %s (notifier %s)", escape(d.Message), escape(d.Notifier))
	default:
		return "", fmt.Errorf("event type %q: not one fleetscan sends", ceType)
	}
	return b.String(), nil
}

// escape makes text literal in Slack's mrkdwn: &, < and > are its markup.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// CheckURL says whether a notifier may POST to u: https, or http to a
// loopback address for an operator's notifier (a local receiver). A
// tenant's must be https to a name or a public address; where a name
// leads is checked again at every connection.
func CheckURL(u string, tenant bool) error {
	if len(u) > 2048 {
		return errors.New("longer than 2048 bytes")
	}
	p, err := url.Parse(u)
	if err != nil {
		return err
	}
	if p.Host == "" || p.User != nil || p.Fragment != "" {
		return fmt.Errorf("%q: want scheme://host[:port]/path, without user or fragment", u)
	}
	host := p.Hostname()
	ip, ipErr := netip.ParseAddr(host)
	switch {
	case p.Scheme == "https":
	case p.Scheme == "http" && !tenant && (host == "localhost" || (ipErr == nil && ip.IsLoopback())):
	case p.Scheme == "http" && tenant:
		return fmt.Errorf("%q: a tenant's notifier must use https", u)
	default:
		return fmt.Errorf("%q: want https, or http to a loopback address (a local receiver)", u)
	}
	if tenant && (host == "localhost" || (ipErr == nil && publicOnly("", netip.AddrPortFrom(ip, 443).String(), nil) != nil)) {
		return fmt.Errorf("%q: %w", u, ErrPrivateAddress)
	}
	return nil
}
