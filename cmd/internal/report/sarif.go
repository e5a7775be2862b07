package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/worker/checks"
)

// sarifWriter streams a SARIF 2.1.0 log with one run: the whole catalog as
// rules, then the results as they come.
type sarifWriter struct {
	w         io.Writer
	count     int
	ruleIndex map[string]int
	closed    bool
}

type sarifRule struct {
	ID                   string            `json:"id"`
	Name                 string            `json:"name"`
	ShortDescription     sarifText         `json:"shortDescription"`
	FullDescription      sarifText         `json:"fullDescription"`
	Help                 sarifText         `json:"help"`
	DefaultConfiguration map[string]string `json:"defaultConfiguration"`
	Properties           map[string]any    `json:"properties"`
}

type sarifText struct {
	Text string `json:"text"`
}

func newSARIF(w io.Writer, version string) *sarifWriter {
	s := &sarifWriter{w: w, ruleIndex: map[string]int{}}
	var rules []sarifRule
	for i, m := range checks.All() {
		s.ruleIndex[m.ID] = i
		tags := append([]string{"security", "kubernetes", m.Category}, m.Frameworks...)
		rules = append(rules, sarifRule{
			ID: m.ID, Name: ruleName(m.Title),
			ShortDescription:     sarifText{m.Title},
			FullDescription:      sarifText{m.Description},
			Help:                 sarifText{m.Remediation},
			DefaultConfiguration: map[string]string{"level": level(m.Severity)},
			Properties:           map[string]any{"tags": tags, "security-severity": securitySeverity(m.Severity)},
		})
	}
	rulesJSON, _ := json.Marshal(rules)
	fmt.Fprintf(w, `{"version": "2.1.0", "$schema": "https://json.schemastore.org/sarif-2.1.0.json", "runs": [{"tool": {"driver": {"name": "fleetscan", "version": %q, "informationUri": "https://github.com/fleetscan/fleetscan", "rules": %s}}, "results": [`, version, rulesJSON)
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

// The result types are structs, not maps: encoding/json sorts map keys,
// which costs more than everything else at 100,000 results.
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
	Logical  []sarifLogical `json:"logicalLocations"`
}

type sarifPhysical struct {
	Artifact struct {
		URI string `json:"uri"`
	} `json:"artifactLocation"`
	Region struct {
		StartLine int `json:"startLine"`
	} `json:"region"`
}

type sarifLogical struct {
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

func (s *sarifWriter) Finding(f *fleetscanv1.Finding, location string) error {
	if s.closed {
		return errClosed
	}
	loc := sarifLocation{Logical: []sarifLogical{{FullyQualifiedName: ResourceString(f.Resource), Kind: "resource"}}}
	if file, line, ok := splitLocation(location); ok {
		loc.Physical = &sarifPhysical{}
		loc.Physical.Artifact.URI, loc.Physical.Region.StartLine = file, line
	}
	r := sarifResult{
		RuleID: f.CheckId, RuleIndex: s.ruleIndex[f.CheckId], Level: level(f.Severity),
		Message:             sarifText{f.Message},
		Locations:           []sarifLocation{loc},
		PartialFingerprints: sarifFingerprints{Fleetscan: f.Fingerprint},
		Properties:          sarifResultProperty{Severity: SeverityName(f.Severity), Cluster: f.ClusterId},
	}
	if f.Status == fleetscanv1.FindingStatus_FINDING_STATUS_SUPPRESSED {
		r.Suppressions = []sarifSuppression{{Kind: "inSource", Justification: f.SuppressionReason}}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	sep := ",\n"
	if s.count == 0 {
		sep = "\n"
	}
	s.count++
	_, err = fmt.Fprintf(s.w, "%s%s", sep, b)
	return err
}

func splitLocation(loc string) (string, int, bool) {
	i := strings.LastIndexByte(loc, ':')
	if i < 0 {
		return "", 0, false
	}
	line, err := strconv.Atoi(loc[i+1:])
	if err != nil {
		return "", 0, false
	}
	return loc[:i], line, true
}

func (s *sarifWriter) Close(o Outcome) error {
	notAssessable, problems := o.NotAssessable, o.Problems
	s.closed = true
	var notes []map[string]any
	for _, na := range notAssessable {
		notes = append(notes, map[string]any{
			"level": "note", "message": sarifText{na.CheckId + " not assessable: " + na.Reason},
			"descriptor": map[string]any{"id": na.CheckId, "index": s.ruleIndex[na.CheckId]},
		})
	}
	// Input that could not be read is a notification of the run, which
	// did not succeed: a code-scanning gate must not take it for clean.
	execution := []map[string]any{}
	for _, p := range problems {
		n := map[string]any{"level": "error", "message": sarifText{p}}
		// "file:line: reason": the location is before the first ": ".
		if file, line, ok := splitLocation(p[:max(strings.Index(p, ": "), 0)]); ok {
			n["locations"] = []map[string]any{{"physicalLocation": map[string]any{
				"artifactLocation": map[string]any{"uri": file}, "region": map[string]any{"startLine": line}}}}
		}
		execution = append(execution, n)
	}
	// What no check reads is a note of the run, which succeeded: a
	// reader sees each document, and a gate does not fail on them.
	for _, u := range o.Unchecked {
		n := map[string]any{"level": "note", "message": sarifText{u.String()}}
		if file, line, ok := splitLocation(u.Location); ok {
			n["locations"] = []map[string]any{{"physicalLocation": map[string]any{
				"artifactLocation": map[string]any{"uri": file}, "region": map[string]any{"startLine": line}}}}
		}
		execution = append(execution, n)
	}
	invocation := map[string]any{"executionSuccessful": len(problems) == 0, "toolConfigurationNotifications": notes, "toolExecutionNotifications": execution}
	if notes == nil {
		invocation["toolConfigurationNotifications"] = []any{}
	}
	b, err := json.Marshal([]any{invocation})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(s.w, "\n], \"invocations\": %s}]}\n", b)
	return err
}
