package webhook_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetscan/fleetscan/client/webhook"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func signed(t *testing.T, id string, at time.Time, body string) http.Header {
	t.Helper()
	key, err := webhook.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(webhook.HeaderID, id)
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	h.Set(webhook.HeaderSignature, webhook.Sign(key, id, at.Unix(), []byte(body)))
	return h
}

// TestVerify: a request verifies only with its own id, timestamp, body
// and secret, inside the tolerance; every refusal says why.
func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := `{"specversion":"1.0"}`
	good := signed(t, "msg_1", now, body)
	with := func(k, v string) http.Header {
		h := good.Clone()
		if v == "" {
			h.Del(k)
		} else {
			h.Set(k, v)
		}
		return h
	}
	for _, tt := range []struct {
		name   string
		secret string
		h      http.Header
		body   string
		want   string // "" verifies
	}{
		{"signed", secret, good, body, ""},
		{"one of several signatures", secret, with(webhook.HeaderSignature, "v1,bm90IGl0 "+good.Get(webhook.HeaderSignature)), body, ""},
		{"a changed body", secret, good, body + " ", "no signature matches"},
		{"another id", secret, with(webhook.HeaderID, "msg_2"), body, "no signature matches"},
		{"another timestamp", secret, with(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix()+1, 10)), body, "no signature matches"},
		{"another secret", "whsec_" + strings.Repeat("A", 32), good, body, "no signature matches"},
		{"too old", secret, signed(t, "msg_1", now.Add(-6*time.Minute), body), body, "more than 5m0s away"},
		{"from the future", secret, signed(t, "msg_1", now.Add(6*time.Minute), body), body, "more than 5m0s away"},
		{"no signature", secret, with(webhook.HeaderSignature, ""), body, "missing"},
		{"no id", secret, with(webhook.HeaderID, ""), body, "missing"},
		{"a timestamp that is no number", secret, with(webhook.HeaderTimestamp, "yesterday"), body, "not Unix seconds"},
		{"a secret without its prefix", strings.TrimPrefix(secret, "whsec_"), good, body, "not whsec_ and base64"},
		{"a secret that is not base64", "whsec_!!!", good, body, "not whsec_ and base64"},
		{"an empty secret", "whsec_", good, body, "not whsec_ and base64"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := webhook.Verify(tt.secret, tt.h, []byte(tt.body), now, webhook.DefaultTolerance)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

// TestParse: each type's data decodes into its struct, whose summary is
// the line the server lists the delivery with; unknown types keep their
// data raw; what is not a CloudEvent is refused.
func TestParse(t *testing.T) {
	for _, tt := range []struct {
		body, summary string
	}{
		{`{"specversion":"1.0","id":"1","type":"dev.fleetscan.findings.new","data":{"cluster_id":"acme-prod","min_severity":"HIGH","first_scan":true,"counts":{"HIGH":2,"CRITICAL":1},"total":3}}`,
			"acme-prod: 3 new finding(s) at high or worse (its first scan): 1 critical, 2 high"},
		{`{"specversion":"1.0","id":"1","type":"dev.fleetscan.score.dropped","data":{"cluster_id":"c","score_before":90,"score":70,"drop":20,"threshold":10}}`,
			"c: posture score fell from 90 to 70 (20 points, more than 10)"},
		{`{"specversion":"1.0","id":"1","type":"dev.fleetscan.job.failed","data":{"cluster_id":"c","scan_id":"S","job_id":"J","state":"TIMED_OUT","error":"no answer"}}`,
			"c: job J of scan S timed out: no answer"},
		{`{"specversion":"1.0","id":"1","type":"dev.fleetscan.worker.offline","data":{"cluster_id":"c","last_seen":"2026-12-07T03:00:00Z","offline_seconds":1200,"threshold_seconds":900}}`,
			"c: worker offline for 20m0s (since 2026-12-07T03:00:00Z), more than 15m0s"},
		{`{"specversion":"1.0","id":"1","type":"dev.fleetscan.exception.expiring","data":{"exception_id":"E","cluster_id":"c","check_id":"POD-001","reason":"r","expire_time":"2026-12-08T00:00:00Z"}}`,
			"exception E (check POD-001, cluster c) expires at 2026-12-08T00:00:00Z: r"},
		{`{"specversion":"1.0","id":"1","type":"dev.fleetscan.test","data":{"notifier":"ops"}}`,
			"test event for notifier ops"},
	} {
		e, err := webhook.Parse([]byte(tt.body))
		if err != nil {
			t.Errorf("%s: %v", tt.body, err)
			continue
		}
		s, ok := e.Data.(interface{ Summary() string })
		if !ok {
			t.Errorf("%s: data %T has no summary", e.Type, e.Data)
			continue
		}
		if got := s.Summary(); got != tt.summary {
			t.Errorf("%s: summary\n%q, want\n%q", e.Type, got, tt.summary)
		}
	}
	e, err := webhook.Parse([]byte(`{"specversion":"1.0","id":"1","type":"dev.fleetscan.future","data":{"x":1}}`))
	if raw, ok := dataOf(e).(json.RawMessage); err != nil || !ok || string(raw) != `{"x":1}` {
		t.Errorf("an unknown type: %v, %#v", err, e)
	}
	for _, bad := range []string{`[]`, `{"id":"1","type":"dev.fleetscan.test"}`, `{"specversion":"1.0","type":"dev.fleetscan.test"}`,
		`{"specversion":"1.0","id":"1","type":"dev.fleetscan.test","data":"text"}`} {
		if _, err := webhook.Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%s) took it", bad)
		}
	}
}

func dataOf(e *webhook.Event) any {
	if e == nil {
		return nil
	}
	return e.Data
}
