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
