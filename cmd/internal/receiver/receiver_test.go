package receiver_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetscan/fleetscan/client/webhook"
	"github.com/fleetscan/fleetscan/cmd/internal/receiver"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

var now = time.Date(2026, 12, 7, 4, 5, 6, 0, time.UTC)

const findingsBody = `{"specversion":"1.0","id":"01JD5S0Q4C3Y8X2M7V6K1N9B0T","source":"/fleetscan/clusters/acme-prod","type":"dev.fleetscan.findings.new",` +
	`"subject":"acme-prod","time":"2026-12-07T04:05:00Z","datacontenttype":"application/json","data":{"cluster_id":"acme-prod","min_severity":"HIGH",` +
	`"first_scan":true,"counts":{"CRITICAL":1,"HIGH":2},"total":3,"findings":[` +
	`{"check_id":"POD-001","severity":"CRITICAL","kind":"Deployment","namespace":"shop","name":"web","sub_path":"containers[0]","message":"runs privileged"},` +
	`{"check_id":"RBAC-002","severity":"HIGH","kind":"ClusterRoleBinding","name":"ci-admin","message":"binds cluster-admin"}]}}`

// request is a POST of body signed with key as the server signs it.
func request(t *testing.T, key, id, body string) *http.Request {
	t.Helper()
	k, err := webhook.ParseSecret(key)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	r.Header.Set(webhook.HeaderID, id)
	r.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	r.Header.Set(webhook.HeaderSignature, webhook.Sign(k, id, now.Unix(), []byte(body)))
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func newHandler(failFirst int) (*receiver.Handler, *bytes.Buffer, *bytes.Buffer) {
	var out, log bytes.Buffer
	h := receiver.New(receiver.Config{Secret: func() (string, error) { return secret, nil }, Out: &out, Log: &log, FailFirst: failFirst,
		Now: func() time.Time { return now }})
	return h, &out, &log
}

// TestReceiverPrintsEvents: a signed event is answered 204 and printed
// with its worst findings, one per line; the same id again is marked.
func TestReceiverPrintsEvents(t *testing.T) {
	h, out, _ := newHandler(0)
	for range 2 {
		if w := serve(h, request(t, secret, "01JD5S0Q4C3Y8X2M7V6K1N9B0T", findingsBody)); w.Code != http.StatusNoContent {
			t.Fatalf("answered %d %s", w.Code, w.Body)
		}
	}
	at := now.Format(time.TimeOnly)
	first := at + "  01JD5S0Q4C3Y8X2M7V6K1N9B0T  dev.fleetscan.findings.new  acme-prod  3 new finding(s) at high or worse (its first scan): 1 critical, 2 high\n" +
		"    CRITICAL  POD-001  Deployment shop/web containers[0]: runs privileged\n" +
		"    HIGH      RBAC-002  ClusterRoleBinding ci-admin: binds cluster-admin\n" +
		"    … and 1 more\n"
	again := strings.Replace(first, "1N9B0T  dev", "1N9B0T (again)  dev", 1)
	if got := out.String(); got != first+again {
		t.Errorf("printed\n%s\nwant\n%s%s", got, first, again)
	}
}

// TestReceiverRefuses: what does not verify is answered 401 with the
// reason and printed nowhere but the log; a secret not there yet is 503,
// which the server tries again.
func TestReceiverRefuses(t *testing.T) {
	forged := request(t, "whsec_"+strings.Repeat("A", 32), "01JD5S0Q4C3Y8X2M7V6K1N9B0T", findingsBody)
	unsigned := request(t, secret, "01JD5S0Q4C3Y8X2M7V6K1N9B0T", findingsBody)
	unsigned.Header.Del(webhook.HeaderSignature)
	changed := request(t, secret, "01JD5S0Q4C3Y8X2M7V6K1N9B0T", findingsBody)
	changed.Body = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Replace(findingsBody, "CRITICAL\":1", "CRITICAL\":0", 1))).Body
	old := request(t, secret, "01JD5S0Q4C3Y8X2M7V6K1N9B0T", findingsBody)
	old.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Add(-time.Hour).Unix(), 10))
	for _, tt := range []struct {
		name   string
		r      *http.Request
		code   int
		reason string
	}{
		{"another secret", forged, http.StatusUnauthorized, "no signature matches"},
		{"no signature", unsigned, http.StatusUnauthorized, "webhook-signature missing"},
		{"a changed body", changed, http.StatusUnauthorized, "no signature matches"},
		{"a replay", old, http.StatusUnauthorized, "a replay"},
		{"a GET", httptest.NewRequest(http.MethodGet, "/", nil), http.StatusMethodNotAllowed, "only POST"},
		{"signed, but no CloudEvent", request(t, secret, "x", `{"hello":"world"}`), http.StatusBadRequest, "not a CloudEvent"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, out, log := newHandler(0)
			w := serve(h, tt.r)
			if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.reason) {
				t.Errorf("answered %d %q, want %d with %q", w.Code, w.Body, tt.code, tt.reason)
			}
			if out.Len() != 0 || !strings.Contains(log.String(), "refused a request") || !strings.Contains(log.String(), tt.reason) {
				t.Errorf("printed %q, logged %q", out, log)
			}
		})
	}

	var log bytes.Buffer
	h := receiver.New(receiver.Config{Secret: func() (string, error) { return "", errors.New("secret.txt: no such file") }, Out: &bytes.Buffer{}, Log: &log,
		Now: func() time.Time { return now }})
	if w := serve(h, request(t, secret, "x", findingsBody)); w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "secret.txt") {
		t.Errorf("without its secret: answered %d %q, want 503 naming the file", w.Code, w.Body)
	}
}

// TestReceiverFailFirst: the first N verified requests get 500, then the
// same event is taken and printed once, not as a duplicate; a forged
// request does not use up a failure.
func TestReceiverFailFirst(t *testing.T) {
	h, out, _ := newHandler(2)
	if w := serve(h, request(t, "whsec_"+strings.Repeat("A", 32), "01JD5S0Q4C3Y8X2M7V6K1N9B0T", findingsBody)); w.Code != http.StatusUnauthorized {
		t.Fatalf("a forged request: %d", w.Code)
	}
	var codes []int
	for range 3 {
		codes = append(codes, serve(h, request(t, secret, "01JD5S0Q4C3Y8X2M7V6K1N9B0T", findingsBody)).Code)
	}
	if codes[0] != 500 || codes[1] != 500 || codes[2] != 204 {
		t.Errorf("answered %v, want 500 500 204", codes)
	}
	got := out.String()
	if strings.Count(got, "answered 500 (--fail-first") != 2 || !strings.Contains(got, "2 of 2") || strings.Contains(got, "(again)") ||
		strings.Count(got, "new finding(s)") != 1 {
		t.Errorf("printed:\n%s", got)
	}
}

// TestFormatEveryType: each type's line carries its summary without the
// subject twice; a type this version does not know still gets a line.
func TestFormatEveryType(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{`{"specversion":"1.0","id":"1","type":"dev.fleetscan.job.failed","subject":"c","data":{"cluster_id":"c","scan_id":"S","job_id":"J","state":"FAILED","error":"boom"}}`,
			"  1  dev.fleetscan.job.failed  c  job J of scan S failed: boom\n"},
		{`{"specversion":"1.0","id":"1","type":"dev.fleetscan.test","subject":"ops","data":{"notifier":"ops"}}`,
			"  1  dev.fleetscan.test  ops  test event for notifier ops\n"},
		{`{"specversion":"1.0","id":"1","type":"dev.fleetscan.exception.expiring","subject":"E","data":{"exception_id":"E","check_id":"POD-001","reason":"r","expire_time":"2026-12-08T00:00:00Z"}}`,
			"  1  dev.fleetscan.exception.expiring  E  exception E (check POD-001) expires at 2026-12-08T00:00:00Z: r\n"},
		{`{"specversion":"1.0","id":"1","type":"dev.fleetscan.future","data":{}}`,
			"  1  dev.fleetscan.future  -  (data of a type this version of fleetscan does not know)\n"},
	} {
		e, err := webhook.Parse([]byte(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		if got := receiver.Format(now, "1", false, e); got != now.Format(time.TimeOnly)+tt.want {
			t.Errorf("%q\nwant %q", got, now.Format(time.TimeOnly)+tt.want)
		}
	}
}
