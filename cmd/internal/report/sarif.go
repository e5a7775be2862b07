package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"strconv"
	"strings"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/worker/catalog"
)

// The SARIF 2.1.0 log is built from these types with encoding/json only;
// its results are streamed between the parts of the run marshalled before
// and after them, so that a scan of 100,000 findings is not held in memory.
// Structs, not maps: encoding/json sorts map keys, which costs more than
// everything else at 100,000 results.

type sarifLog struct {
	Version string     `json:"version"`
	Schema  string     `json:"$schema"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Results     json.RawMessage   `json:"results"`
	Invocations []sarifInvocation `json:"invocations,omitempty"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID                   string             `json:"id"`
	Name                 string             `json:"name"`
	ShortDescription     sarifText          `json:"shortDescription"`
	FullDescription      sarifText          `json:"fullDescription"`
	Help                 sarifText          `json:"help"`
	DefaultConfiguration sarifConfiguration `json:"defaultConfiguration"`
	Properties           sarifRuleProperty  `json:"properties"`
}

type sarifConfiguration struct {
	Level string `json:"level"`
}

type sarifRuleProperty struct {
	Tags             []string `json:"tags"`
	SecuritySeverity string   `json:"security-severity"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifResult struct {
	RuleID              string              `json:"ruleId"`
	RuleIndex           int                 `json:"ruleIndex"`
	Level               string              `json:"level"`
	Message             sarifText           `json:"message"`
	Locations           []sarifLocation     `json:"locations"`
	PartialFingerprints sarifFingerprints   `json:"partialFingerprints"`
	Suppressions        []sarifSuppression  `json:"suppressions,omitempty"`
	Properties          sarifResultProperty `json:"properties"`
}

type sarifLocation struct {
	Physical *sarifPhysical `json:"physicalLocation,omitempty"`
	Logical  []sarifLogical `json:"logicalLocations,omitempty"`
}

type sarifPhysical struct {
	Artifact sarifArtifact `json:"artifactLocation"`
	Region   *sarifRegion  `json:"region,omitempty"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

type sarifLogical struct {
	Name               string `json:"name,omitempty"`
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

type sarifFingerprints struct {
	Fleetscan string `json:"fleetscan/v1"`
}

type sarifSuppression struct {
	Kind          string `json:"kind"`
	Justification string `json:"justification"`
}

type sarifResultProperty struct {
	Severity string `json:"severity"`
	Cluster  string `json:"cluster,omitempty"`
}

type sarifInvocation struct {
	ExecutionSuccessful            bool                `json:"executionSuccessful"`
	ToolConfigurationNotifications []sarifNotification `json:"toolConfigurationNotifications"`
	ToolExecutionNotifications     []sarifNotification `json:"toolExecutionNotifications"`
}

type sarifNotification struct {
	Level      string                 `json:"level"`
	Message    sarifText              `json:"message"`
	Locations  []sarifLocation        `json:"locations,omitempty"`
	Descriptor *sarifReportingDescRef `json:"descriptor,omitempty"`
}

type sarifReportingDescRef struct {
	ID    string `json:"id"`
	Index int    `json:"index"`
}

// sarifWriter streams a SARIF 2.1.0 log with one run: the whole catalog as
// rules, then the results as they come, then the invocation.
type sarifWriter struct {
	w         io.Writer
	count     int
	ruleIndex map[string]int
	closed    bool
	// tail is the marshalled log after the results' opening bracket: "]"
	// and what follows the results in the run, the invocation spliced in
	// by Close.
	tail []byte
	err  error
}

// resultsMark stands for the results in the marshalled frame of the log.
var resultsMark = []byte(`"results":[]`)

func newSARIF(w io.Writer, version string) *sarifWriter {
	s := &sarifWriter{w: w, ruleIndex: map[string]int{}}
	var rules []sarifRule
	for i, m := range catalog.All() {
		s.ruleIndex[m.ID] = i
		rules = append(rules, sarifRule{
			ID: m.ID, Name: ruleName(m.Title),
			ShortDescription:     sarifText{m.Title},
			FullDescription:      sarifText{m.Description},
			Help:                 sarifText{m.Remediation},
			DefaultConfiguration: sarifConfiguration{Level: level(m.Severity)},
			Properties:           sarifRuleProperty{Tags: append([]string{"security", "kubernetes", m.Category}, m.Frameworks...), SecuritySeverity: securitySeverity(m.Severity)},
		})
	}
	frame, err := json.Marshal(sarifLog{
		Version: "2.1.0", Schema: "https://json.schemastore.org/sarif-2.1.0.json",
		Runs: []sarifRun{{
			Tool:    sarifTool{Driver: sarifDriver{Name: "fleetscan", Version: version, InformationURI: "https://github.com/fleetscan/fleetscan", Rules: rules}},
			Results: json.RawMessage("[]"),
		}},
	})
	i := bytes.Index(frame, resultsMark)
	if err != nil || i < 0 {
		s.err = errors.Join(errors.New("report: SARIF frame"), err)
		return s
	}
	cut := i + len(resultsMark) - 1 // before the closing bracket
	s.tail = frame[cut:]
	_, s.err = s.w.Write(frame[:cut])
	return s
}

// ruleName is a PascalCase identifier, as SARIF viewers expect.
func ruleName(title string) string {
	var b strings.Builder
	for _, word := range strings.FieldsFunc(title, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) {
		b.WriteString(strings.ToUpper(word[:1]) + word[1:])
	}
	return b.String()
}

func level(s fleetscanv1.Severity) string {
	switch {
	case s >= fleetscanv1.Severity_SEVERITY_HIGH:
		return "error"
	case s == fleetscanv1.Severity_SEVERITY_MEDIUM:
		return "warning"
	}
	return "note"
}

// securitySeverity is the CVSS-like score code-scanning tools rank by.
func securitySeverity(s fleetscanv1.Severity) string {
	return map[fleetscanv1.Severity]string{
		fleetscanv1.Severity_SEVERITY_CRITICAL: "9.5", fleetscanv1.Severity_SEVERITY_HIGH: "8.0",
		fleetscanv1.Severity_SEVERITY_MEDIUM: "5.5", fleetscanv1.Severity_SEVERITY_LOW: "3.0",
	}[s]
}

// resourceURI is the artifact of a finding whose object has no manifest
// file: a relative URI that names it, kubernetes/CLUSTER/NAMESPACE/KIND/NAME
// (cluster-scoped objects under "_cluster"), which code-scanning UIs
// accept and group by.
func resourceURI(cluster string, r *fleetscanv1.ResourceRef) string {
	ns := r.GetNamespace()
	if ns == "" {
		ns = "_cluster"
	}
	if cluster == "" {
		cluster = "_unknown"
	}
	parts := []string{"kubernetes", cluster, ns, r.GetKind(), r.GetName()}
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

func (s *sarifWriter) Finding(f *fleetscanv1.Finding, location string) error {
	if s.closed {
		return errClosed
	}
	if s.err != nil {
		return s.err
	}
	// Every result is placeable: at its manifest's file and line where
	// the object came from one, else at a URI that names the object; the
	// logical location always names it.
	phys := &sarifPhysical{Artifact: sarifArtifact{URI: resourceURI(f.ClusterId, f.Resource)}}
	if file, line, ok := splitLocation(location); ok {
		phys = &sarifPhysical{Artifact: sarifArtifact{URI: fileURI(file)}, Region: &sarifRegion{StartLine: line}}
	}
	logical := sarifLogical{Name: f.GetResource().GetName(), FullyQualifiedName: ResourceString(f.Resource), Kind: "resource"}
	if f.ClusterId != "" {
		logical.FullyQualifiedName = f.ClusterId + "/" + logical.FullyQualifiedName
	}
	r := sarifResult{
		RuleID: f.CheckId, RuleIndex: s.ruleIndex[f.CheckId], Level: level(f.Severity),
		Message:             sarifText{f.Message},
		Locations:           []sarifLocation{{Physical: phys, Logical: []sarifLogical{logical}}},
		PartialFingerprints: sarifFingerprints{Fleetscan: f.Fingerprint},
		Properties:          sarifResultProperty{Severity: SeverityName(f.Severity), Cluster: f.ClusterId},
	}
	if idx, ok := s.ruleIndex[f.CheckId]; !ok {
		r.RuleIndex = -1 // a custom check: not in the catalog's rules
	} else {
		r.RuleIndex = idx
	}
	if f.Status == fleetscanv1.FindingStatus_FINDING_STATUS_SUPPRESSED {
		r.Suppressions = []sarifSuppression{{Kind: "inSource", Justification: f.SuppressionReason}}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if s.count > 0 {
		b = append([]byte(",\n"), b...)
	} else {
		b = append([]byte("\n"), b...)
	}
	s.count++
	_, err = s.w.Write(b)
	return err
}

// fileURI writes a file path as a URI reference: relative paths stay
// relative (to the directory the scan ran in), absolute ones become
// file:// URIs.
func fileURI(path string) string {
	u := url.URL{Path: path}
	if strings.HasPrefix(path, "/") {
		u.Scheme = "file"
	}
	return u.String()
}

func splitLocation(loc string) (string, int, bool) {
	i := strings.LastIndexByte(loc, ':')
	if i < 0 {
		return "", 0, false
	}
	line, err := strconv.Atoi(loc[i+1:])
	if err != nil || line < 1 {
		return "", 0, false
	}
	return loc[:i], line, true
}

func (s *sarifWriter) Close(o Outcome) error {
	if s.closed {
		return errClosed
	}
	s.closed = true
	if s.err != nil {
		return s.err
	}
	inv := sarifInvocation{ExecutionSuccessful: len(o.Problems) == 0, ToolConfigurationNotifications: []sarifNotification{}, ToolExecutionNotifications: []sarifNotification{}}
	for _, na := range o.NotAssessable {
		n := sarifNotification{Level: "note", Message: sarifText{na.CheckId + " not assessable: " + na.Reason}}
		if idx, ok := s.ruleIndex[na.CheckId]; ok {
			n.Descriptor = &sarifReportingDescRef{ID: na.CheckId, Index: idx}
		}
		inv.ToolConfigurationNotifications = append(inv.ToolConfigurationNotifications, n)
	}
	// Input that could not be read is an error of the run, which did not
	// succeed: a code-scanning gate must not take it for clean.
	for _, p := range o.Problems {
		n := sarifNotification{Level: "error", Message: sarifText{p}}
		// "file:line: reason": the location is before the first ": ".
		if file, line, ok := splitLocation(p[:max(strings.Index(p, ": "), 0)]); ok {
			n.Locations = []sarifLocation{{Physical: &sarifPhysical{Artifact: sarifArtifact{URI: fileURI(file)}, Region: &sarifRegion{StartLine: line}}}}
		}
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, n)
	}
	// What no check reads is a note of the run, which succeeded: a
	// reader sees each document, and a gate does not fail on them.
	for _, u := range o.Unchecked {
		n := sarifNotification{Level: "note", Message: sarifText{u.String()}}
		if file, line, ok := splitLocation(u.Location); ok {
			n.Locations = []sarifLocation{{Physical: &sarifPhysical{Artifact: sarifArtifact{URI: fileURI(file)}, Region: &sarifRegion{StartLine: line}}}}
		}
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, n)
	}
	invocations, err := json.Marshal([]sarifInvocation{inv})
	if err != nil {
		return err
	}
	// The tail is "]" and the rest of the frame: "}]}".
	var out bytes.Buffer
	out.WriteString("\n]")
	out.WriteString(`,"invocations":`)
	out.Write(invocations)
	out.Write(s.tail[1:])
	out.WriteByte('\n')
	_, err = s.w.Write(out.Bytes())
	return err
}
