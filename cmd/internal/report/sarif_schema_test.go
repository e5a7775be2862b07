package report

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/worker/catalog"
)

// TestSARIFMatchesTheSchema: a log with every kind of content (findings
// with and without a manifest location, on cluster-scoped objects, a
// suppressed one, one of a custom check, checks not assessable, input that
// could not be read, documents no check reads, text that JSON must
// escape) is valid against the SARIF 2.1.0 schema, and every result has a
// physical location, as code-scanning uploads require. make test fetches
// the schema (OASIS' sarif-2.1.0-rtm.5, from npm) and names it in
// FLEETSCAN_SARIF_SCHEMA.
func TestSARIFMatchesTheSchema(t *testing.T) {
	path := os.Getenv("FLEETSCAN_SARIF_SCHEMA")
	if path == "" {
		t.Skip("FLEETSCAN_SARIF_SCHEMA is not set: run make test, which fetches the SARIF 2.1.0 schema")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("the SARIF schema named by FLEETSCAN_SARIF_SCHEMA: %v", err)
	}
	doc, err := jsonschema.UnmarshalJSON(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat() // URIs must be URIs
	if err := c.AddResource("sarif.json", doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("sarif.json")
	if err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	w, err := New("sarif", &buf, "1.2.3-dev")
	if err != nil {
		t.Fatal(err)
	}
	res := func(kind, ns, name, sub string) *fleetscanv1.ResourceRef {
		return &fleetscanv1.ResourceRef{ApiVersion: "v1", Kind: kind, Namespace: ns, Name: name, SubPath: sub}
	}
	findings := []struct {
		f        *fleetscanv1.Finding
		location string
	}{
		{&fleetscanv1.Finding{ClusterId: "prod eu/1", CheckId: "POD-001", Severity: fleetscanv1.Severity_SEVERITY_CRITICAL, Fingerprint: "aa",
			Resource: res("Pod", "shop", "web", "containers[app]"), Message: "container \"app\" runs privileged \u0000 <&> \u2028"}, "manifests/shop.yaml:12"},
		{&fleetscanv1.Finding{ClusterId: "prod", CheckId: "RBAC-001", Severity: fleetscanv1.Severity_SEVERITY_HIGH, Fingerprint: "bb",
			Resource: res("ClusterRoleBinding", "", "admins", ""), Message: "grants cluster-admin"}, ""},
		{&fleetscanv1.Finding{ClusterId: "prod", CheckId: "POD-020", Severity: fleetscanv1.Severity_SEVERITY_LOW, Fingerprint: "cc",
			Resource: res("Pod", "shop", "web", ""), Message: "no AppArmor", Status: fleetscanv1.FindingStatus_FINDING_STATUS_SUPPRESSED, SuppressionReason: "accepted"}, "/abs/path/shop.yaml:3"},
		{&fleetscanv1.Finding{ClusterId: "prod eu/1", CheckId: "POD-001", Severity: fleetscanv1.Severity_SEVERITY_CRITICAL, Fingerprint: "ee",
			Resource: res("Pod", "shop", "web", "containers[app]"), Message: "privileged"}, ""},
		{&fleetscanv1.Finding{ClusterId: "prod", CheckId: "ACME-007", Severity: fleetscanv1.Severity_SEVERITY_MEDIUM, Fingerprint: "dd",
			Resource: res("ConfigMap", "shop", "x", ""), Message: "custom"}, "not-a-location"},
	}
	for _, f := range findings {
		if err := w.Finding(f.f, f.location); err != nil {
			t.Fatal(err)
		}
	}
	err = w.Close(Outcome{
		NotAssessable: []*fleetscanv1.CheckNotAssessable{{CheckId: "HOST-001", Reason: "needs node access"}},
		Problems:      []string{"manifests/bad.yaml:4: not YAML", "manifests/pipe.yaml: not a regular file"},
		Unchecked:     []catalog.Unchecked{{Location: "manifests/crd.yaml:1", APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition", Name: "x", Reason: catalog.ReasonUnknown}},
	})
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("not JSON: %v\n%s", err, buf.String())
	}
	if err := schema.Validate(inst); err != nil {
		t.Fatalf("not valid SARIF 2.1.0: %v", err)
	}
	// The schema is applied: a log without its version is not valid.
	delete(inst.(map[string]any), "version")
	if schema.Validate(inst) == nil {
		t.Fatal("the schema accepts a log without a version: it is not the SARIF schema")
	}
	var log struct {
		Runs []struct {
			Results []struct {
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }
					}
				}
			}
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &log); err != nil || len(log.Runs) != 1 || len(log.Runs[0].Results) != len(findings) {
		t.Fatalf("%v: %s", err, buf.String())
	}
	want := []string{"manifests/shop.yaml", "kubernetes/prod/_cluster/ClusterRoleBinding/admins", "file:///abs/path/shop.yaml",
		"kubernetes/prod%20eu%2F1/shop/Pod/web", "kubernetes/prod/shop/ConfigMap/x"}
	for i, r := range log.Runs[0].Results {
		if got := r.Locations[0].PhysicalLocation.ArtifactLocation.URI; got != want[i] {
			t.Errorf("result %d at %q, want %q", i, got, want[i])
		}
	}
}

// TestSARIFOfNothing: a log without results is valid JSON with an empty
// results array.
func TestSARIFOfNothing(t *testing.T) {
	var buf bytes.Buffer
	w, _ := New("sarif", &buf, "")
	if err := w.Close(Outcome{}); err != nil {
		t.Fatal(err)
	}
	var log struct {
		Runs []struct {
			Results     []json.RawMessage
			Invocations []struct{ ExecutionSuccessful bool }
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &log); err != nil || len(log.Runs) != 1 || log.Runs[0].Results == nil || !log.Runs[0].Invocations[0].ExecutionSuccessful {
		t.Fatalf("%v: %s", err, buf.String())
	}
}
