// Package report writes findings as a table, JSON or SARIF 2.1.0, one
// finding at a time, so that a scan of a large cluster is written out as
// it runs instead of held in memory.
package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/worker/catalog"
)

// Formats lists the output formats.
var Formats = []string{"table", "json", "sarif"}

// Writer writes a report. Finding may be called any number of times
// between the creation of the writer and Close.
type Writer interface {
	// Finding writes one finding; location is where its object is defined
	// ("file:line"), or "". f is not kept after Finding returns: a caller
	// may reuse it for the next finding.
	Finding(f *fleetscanv1.Finding, location string) error
	// Close ends the report with what the scan did not judge.
	Close(Outcome) error
}

// Outcome is what a report ends with: what the scan did not judge.
type Outcome struct {
	// NotAssessable are the checks that could not be evaluated.
	NotAssessable []*fleetscanv1.CheckNotAssessable
	// Problems are the input that could not be read ("file:line:
	// reason"): a report with problems is of an incomplete scan.
	Problems []string
	// Unchecked are the documents read that no check reads. The scan is
	// complete without them; they are listed so that none is skipped
	// silently.
	Unchecked []catalog.Unchecked
}

// New returns a writer of format to w. toolVersion is reported in SARIF.
func New(format string, w io.Writer, toolVersion string) (Writer, error) {
	switch format {
	case "table":
		return &tableWriter{w: w, tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}, nil
	case "json":
		return &jsonWriter{w: w}, nil
	case "sarif":
		return newSARIF(w, toolVersion), nil
	}
	return nil, fmt.Errorf("output format %q: use %s", format, strings.Join(Formats, ", "))
}

// SeverityName is the short upper-case name of a severity, e.g. "HIGH".
func SeverityName(s fleetscanv1.Severity) string { return strings.TrimPrefix(s.String(), "SEVERITY_") }

// ParseSeverity reads "low", "HIGH", … The empty string is SEVERITY_UNSPECIFIED.
func ParseSeverity(s string) (fleetscanv1.Severity, error) {
	if s == "" {
		return 0, nil
	}
	v, ok := fleetscanv1.Severity_value["SEVERITY_"+strings.ToUpper(s)]
	if !ok || v == 0 {
		return 0, fmt.Errorf("severity %q: use info, low, medium, high or critical", s)
	}
	return fleetscanv1.Severity(v), nil
}

// ResourceString is "Kind/namespace/name sub-path".
func ResourceString(r *fleetscanv1.ResourceRef) string {
	s := r.GetKind() + "/"
	if r.GetNamespace() != "" {
		s += r.GetNamespace() + "/"
	}
	s += r.GetName()
	if r.GetSubPath() != "" {
		s += " " + r.GetSubPath()
	}
	return s
}

// tableWriter flushes its rows in chunks: columns align within a chunk and
// memory stays flat.
type tableWriter struct {
	w    io.Writer
	tw   *tabwriter.Writer
	rows int
}

const tableChunk = 200

func (t *tableWriter) Finding(f *fleetscanv1.Finding, location string) error {
	if t.rows%tableChunk == 0 {
		if err := t.tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(t.tw, "SEVERITY\tCHECK\tRESOURCE\tMESSAGE")
	}
	t.rows++
	msg := f.Message
	if f.Status == fleetscanv1.FindingStatus_FINDING_STATUS_SUPPRESSED {
		msg = "[suppressed: " + f.SuppressionReason + "] " + msg
	}
	_, err := fmt.Fprintf(t.tw, "%s\t%s\t%s\t%s\n", SeverityName(f.Severity), f.CheckId, ResourceString(f.Resource), msg)
	return err
}

func (t *tableWriter) Close(o Outcome) error {
	notAssessable, problems := o.NotAssessable, o.Problems
	if err := t.tw.Flush(); err != nil {
		return err
	}
	if t.rows == 0 && len(problems) == 0 {
		fmt.Fprintln(t.w, "No findings.")
	} else if t.rows == 0 {
		fmt.Fprintln(t.w, "No findings in what could be read.")
	}
	if len(problems) > 0 {
		fmt.Fprintf(t.w, "\nNot scanned (%d, the scan is incomplete):\n", len(problems))
		for _, p := range problems {
			fmt.Fprintf(t.w, "  %s\n", p)
		}
	}
	if len(o.Unchecked) > 0 {
		fmt.Fprintf(t.w, "\nNot checked (%d documents that no check reads):\n", len(o.Unchecked))
		for _, g := range groupUnchecked(o.Unchecked) {
			fmt.Fprintf(t.w, "  %s\n", g)
		}
	}
	if len(notAssessable) > 0 {
		fmt.Fprintf(t.w, "\nNot assessable (%d checks, neither passed nor failed):\n", len(notAssessable))
		for _, na := range notAssessable {
			fmt.Fprintf(t.tw, "  %s\t%s\n", na.CheckId, na.Reason)
		}
	}
	return t.tw.Flush()
}

// jsonWriter writes {"findings": [...], "notAssessable": [...]}, each
// finding in the API's JSON form.
type jsonWriter struct {
	w     io.Writer
	count int
	buf   []byte
}

var jsonOpts = protojson.MarshalOptions{}

// jsonFinding is fleetscan.v1.Finding in its protojson form (camelCase
// names, enums by name), as encoding/json writes it. Finding writes the
// same bytes by hand (TestFindingJSONAsEncodingJSON): at 100,000
// findings, marshalling them by reflection was a tenth of a scan's
// allocations.
type jsonFinding struct {
	Fingerprint       string       `json:"fingerprint,omitempty"`
	ClusterID         string       `json:"clusterId,omitempty"`
	CheckID           string       `json:"checkId"`
	Title             string       `json:"title,omitempty"`
	Severity          string       `json:"severity"`
	Category          string       `json:"category,omitempty"`
	ResponsibleParty  string       `json:"responsibleParty,omitempty"`
	Resource          jsonResource `json:"resource"`
	Message           string       `json:"message"`
	Remediation       string       `json:"remediation,omitempty"`
	Status            string       `json:"status"`
	SuppressionReason string       `json:"suppressionReason,omitempty"`
}

type jsonResource struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	SubPath    string `json:"subPath,omitempty"`
}

func (j *jsonWriter) Finding(f *fleetscanv1.Finding, _ string) error {
	r := f.GetResource()
	b := j.buf[:0]
	if j.count == 0 {
		b = append(b, "{\"findings\": [\n  "...)
	} else {
		b = append(b, ",\n  "...)
	}
	j.count++
	b = appendFindingJSON(b, jsonFinding{
		Fingerprint: f.Fingerprint, ClusterID: f.ClusterId, CheckID: f.CheckId, Title: f.Title,
		Severity: f.Severity.String(), Category: f.Category, ResponsibleParty: f.ResponsibleParty.String(),
		Resource: jsonResource{APIVersion: r.GetApiVersion(), Kind: r.GetKind(), Namespace: r.GetNamespace(), Name: r.GetName(), SubPath: r.GetSubPath()},
		Message:  f.Message, Remediation: f.Remediation, Status: f.Status.String(), SuppressionReason: f.SuppressionReason,
	})
	j.buf = b
	_, err := j.w.Write(b)
	return err
}

// appendFindingJSON appends f as json.Marshal writes it.
func appendFindingJSON(b []byte, f jsonFinding) []byte {
	field := func(b []byte, name, v string, omitEmpty bool) []byte {
		if omitEmpty && v == "" {
			return b
		}
		if b[len(b)-1] != '{' {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		return appendJSONString(b, v)
	}
	b = append(b, '{')
	b = field(b, "fingerprint", f.Fingerprint, true)
	b = field(b, "clusterId", f.ClusterID, true)
	b = field(b, "checkId", f.CheckID, false)
	b = field(b, "title", f.Title, true)
	b = field(b, "severity", f.Severity, false)
	b = field(b, "category", f.Category, true)
	b = field(b, "responsibleParty", f.ResponsibleParty, true)
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, `"resource":{`...)
	r := f.Resource
	b = field(b, "apiVersion", r.APIVersion, true)
	b = field(b, "kind", r.Kind, false)
	b = field(b, "namespace", r.Namespace, true)
	b = field(b, "name", r.Name, false)
	b = field(b, "subPath", r.SubPath, true)
	b = append(b, '}')
	b = field(b, "message", f.Message, false)
	b = field(b, "remediation", f.Remediation, true)
	b = field(b, "status", f.Status, false)
	b = field(b, "suppressionReason", f.SuppressionReason, true)
	return append(b, '}')
}

// appendJSONString appends s quoted as encoding/json quotes it, HTML
// escaping included: <, > and & as \u escapes, U+2028 and U+2029
// escaped, invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func (j *jsonWriter) Close(o Outcome) error {
	notAssessable, problems := o.NotAssessable, o.Problems
	if j.count == 0 {
		fmt.Fprint(j.w, "{\"findings\": [")
	}
	fmt.Fprint(j.w, "\n], \"notAssessable\": [")
	for i, na := range notAssessable {
		b, err := jsonOpts.Marshal(na)
		if err != nil {
			return err
		}
		if i > 0 {
			fmt.Fprint(j.w, ",")
		}
		fmt.Fprintf(j.w, "\n  %s", b)
	}
	fmt.Fprint(j.w, "\n], \"problems\": ")
	if problems == nil {
		problems = []string{}
	}
	b, err := json.Marshal(problems)
	if err != nil {
		return err
	}
	unchecked := o.Unchecked
	if unchecked == nil {
		unchecked = []catalog.Unchecked{}
	}
	u, err := json.Marshal(unchecked)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(j.w, "%s, \"unchecked\": %s}\n", b, u)
	return err
}

// groupUnchecked summarises unchecked documents one line per kind and
// reason, with where the first few are: a snapshot may hold thousands of
// Secrets, each listed in the JSON and SARIF reports.
func groupUnchecked(unchecked []catalog.Unchecked) []string {
	type group struct {
		key   string
		where []string
	}
	var groups []*group
	index := map[string]*group{}
	for _, u := range unchecked {
		key := u.APIVersion + " " + u.Kind + ": " + u.Reason
		g := index[key]
		if g == nil {
			g = &group{key: key}
			index[key] = g
			groups = append(groups, g)
		}
		g.where = append(g.where, u.Location)
	}
	const shown = 3
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		where := strings.Join(g.where[:min(len(g.where), shown)], ", ")
		if len(g.where) > shown {
			where += fmt.Sprintf(", and %d more", len(g.where)-shown)
		}
		out = append(out, fmt.Sprintf("%d × %s (%s)", len(g.where), g.key, where))
	}
	return out
}

var errClosed = errors.New("report: closed")
