package policy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// PolicyAPIVersion and PolicyKind identify a custom check file:
//
//	apiVersion: fleetscan.io/v1alpha1
//	kind: CheckPolicy
//	metadata: {name: team-label}
//	spec:
//	  id: ORG-TEAM-LABEL
//	  title: Workloads name their team
//	  severity: LOW
//	  match: {kinds: [Deployment, StatefulSet]}
//	  expression: "has(object.metadata.labels) && 'team' in object.metadata.labels"
//	  messageExpression: "object.kind + ' ' + object.metadata.name + ' has no team label'"
const (
	PolicyAPIVersion = "fleetscan.io/v1alpha1"
	PolicyKind       = "CheckPolicy"
)

// LoadPolicies reads custom checks from a YAML file, or from every .yaml
// and .yml file of a directory, and compiles each to report its errors
// with the file they are in.
func LoadPolicies(path string) ([]*fleetscanv1.CustomCheck, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	files := []string{path}
	if info.IsDir() {
		files = nil
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("policies: %w", err)
		}
		for _, e := range entries {
			if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		slices.Sort(files)
	}
	var out []*fleetscanv1.CustomCheck
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("policies: %w", err)
		}
		defs, err := ParsePolicies(f, file)
		f.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, defs...)
	}
	return out, nil
}

// ParsePolicies reads the CheckPolicy documents of r; name is used in
// errors. Every policy is compiled, so that an error names its file.
func ParsePolicies(r io.Reader, name string) ([]*fleetscanv1.CustomCheck, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var out []*fleetscanv1.CustomCheck
	for doc := 1; ; doc++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidPolicy, name, err)
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		where := fmt.Sprintf("%s (document %d)", name, doc)
		def, err := parsePolicy(raw, where)
		if err != nil {
			return nil, err
		}
		if def == nil {
			continue // only comments
		}
		if _, err := Compile(def, where); err != nil {
			return nil, err
		}
		out = append(out, def)
	}
}

func parsePolicy(raw []byte, where string) (*fleetscanv1.CustomCheck, error) {
	var doc struct {
		APIVersion string         `json:"apiVersion"`
		Kind       string         `json:"kind"`
		Spec       map[string]any `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidPolicy, where, err)
	}
	if doc.APIVersion == "" && doc.Kind == "" && doc.Spec == nil {
		return nil, nil
	}
	if doc.APIVersion != PolicyAPIVersion || doc.Kind != PolicyKind {
		return nil, fmt.Errorf("%w: %s: want apiVersion %s and kind %s, got %q and %q", ErrInvalidPolicy, where, PolicyAPIVersion, PolicyKind, doc.APIVersion, doc.Kind)
	}
	// Enums are written the short way, "HIGH" and "WORKLOAD".
	for field, prefix := range map[string]string{"severity": "SEVERITY_", "responsibleParty": "RESPONSIBLE_PARTY_"} {
		if v, ok := doc.Spec[field].(string); ok && !strings.HasPrefix(strings.ToUpper(v), prefix) {
			doc.Spec[field] = prefix + strings.ToUpper(v)
		}
	}
	spec, err := yaml.Marshal(doc.Spec)
	if err != nil {
		return nil, err
	}
	js, err := yaml.YAMLToJSON(spec)
	if err != nil {
		return nil, err
	}
	def := &fleetscanv1.CustomCheck{}
	if err := protojson.Unmarshal(js, def); err != nil {
		return nil, fmt.Errorf("%w: %s: spec: %w", ErrInvalidPolicy, where, err)
	}
	return def, nil
}
