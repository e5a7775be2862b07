package report

import (
	"bytes"
	"encoding/json"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// TestJSONMatchesProtoJSON: the fast JSON form of a finding reads back as
// the API's message, so that tools can parse either the same way.
func TestJSONMatchesProtoJSON(t *testing.T) {
	f := &fleetscanv1.Finding{
		Fingerprint: "00ff", ClusterId: "c1", CheckId: "POD-001", Title: "Privileged container",
		Severity: fleetscanv1.Severity_SEVERITY_CRITICAL, Category: "pod-security",
		ResponsibleParty: fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_WORKLOAD,
		Resource:         &fleetscanv1.ResourceRef{ApiVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "web", SubPath: "containers[app]"},
		Message:          `container "app" runs privileged <&>`, Remediation: "Remove it.",
		Status: fleetscanv1.FindingStatus_FINDING_STATUS_SUPPRESSED, SuppressionReason: "reviewed",
	}
	var buf bytes.Buffer
	w := &jsonWriter{w: &buf}
	if err := w.Finding(f, ""); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(Outcome{}); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Findings []json.RawMessage `json:"findings"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil || len(doc.Findings) != 1 {
		t.Fatalf("%v: %s", err, buf.String())
	}
	back := &fleetscanv1.Finding{}
	if err := protojson.Unmarshal(doc.Findings[0], back); err != nil {
		t.Fatalf("protojson cannot read %s: %v", doc.Findings[0], err)
	}
	if !proto.Equal(back, f) {
		t.Errorf("round trip:\n got %v\nwant %v", back, f)
	}
}

// TestFindingJSONAsEncodingJSON: the hand-written encoder writes what
// encoding/json writes, escapes and omitted fields included.
func TestFindingJSONAsEncodingJSON(t *testing.T) {
	strs := []string{"", "plain", `quote " and \ back`, "<script>&amp;</script>", "tab\tnew\nline\rret\bback\fform",
		"\x00\x01\x1f\x7f", "é ✓ 😀", "\u2028\u2029", "bad \xff\xfe utf8", "\xe2\x82"}
	for i, s := range strs {
		f := jsonFinding{
			Fingerprint: s, ClusterID: strs[(i+1)%len(strs)], CheckID: s, Title: strs[(i+2)%len(strs)],
			Severity: "SEVERITY_HIGH", Category: s, ResponsibleParty: strs[(i+3)%len(strs)],
			Resource: jsonResource{APIVersion: strs[(i+4)%len(strs)], Kind: s, Namespace: strs[(i+5)%len(strs)], Name: s, SubPath: strs[(i+6)%len(strs)]},
			Message:  s, Remediation: strs[(i+7)%len(strs)], Status: s, SuppressionReason: strs[(i+8)%len(strs)],
		}
		want, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendFindingJSON(nil, f); !bytes.Equal(got, want) {
			t.Errorf("%q:\n got %s\nwant %s", s, got, want)
		}
	}
}

func FuzzJSONString(f *testing.F) {
	f.Add("<a href=\"x\">\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	})
}
