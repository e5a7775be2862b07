// Package htmlreport writes a posture report as one self-contained,
// printable HTML file: its styles inline, its charts as inline SVG drawn
// here, no script and nothing loaded from anywhere, so that it opens the
// same offline, in a mail client's viewer or on paper, for auditors and
// tenants who will not sign in to the console.
package htmlreport

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"
)

// Report is what a report shows, gathered from the API by its caller.
type Report struct {
	// Scope names what the report covers: "the fleet", "tenant acme",
	// "cluster prod-eu-1".
	Scope     string
	Server    string
	Generated time.Time
	Summary   Summary
	// Trend is one point per day, oldest first; a point without a score
	// is a gap (nothing was scanned yet), not zero findings.
	Trend []Point
	// Clusters are ranked worst first; empty for a one-cluster report.
	Clusters []Cluster
	// Matrix is the check × cluster matrix of open findings, nil for a
	// one-cluster report.
	Matrix    *Matrix
	TopChecks []CheckCount
	Findings  []Finding
	// FindingsNote says which findings are listed and how many were left
	// out: a report never drops any silently.
	FindingsNote string
	Compliance   *Compliance
}

// Summary is the scope's current posture.
type Summary struct {
	Score             int
	Counts            Counts
	Clusters, Scanned int
}

// Counts are open findings by severity.
type Counts struct{ Critical, High, Medium, Low, Info, Suppressed int64 }

// Open is every open finding, suppressed ones aside.
func (c Counts) Open() int64 { return c.Critical + c.High + c.Medium + c.Low + c.Info }

// Point is one bucket of the trend.
type Point struct {
	Time   time.Time
	Score  *int // nil: a gap
	Counts Counts
}

// Cluster is one cluster's current posture.
type Cluster struct {
	ID, Tenant string
	Score      int
	Counts     Counts
	LastScan   time.Time // zero: never scanned
}

// Matrix counts open findings per check and cluster.
type Matrix struct {
	Clusters []string
	Rows     []MatrixRow
	// Note says what was left out of a matrix too large to print.
	Note string
}

// Top is the largest count of the matrix, which its shades are scaled to.
func (m *Matrix) Top() int64 {
	var top int64
	for _, r := range m.Rows {
		for _, n := range r.Counts {
			top = max(top, n)
		}
	}
	return top
}

// MatrixRow is one check's open findings, aligned with Matrix.Clusters.
type MatrixRow struct {
	CheckID string
	Counts  []int64
	Total   int64
}

// CheckCount is a check with its open findings.
type CheckCount struct {
	CheckID, Title string
	Count          int64
}

// Finding is one open finding.
type Finding struct {
	Cluster, CheckID, Severity, Title, Resource, Message, Party string
	FirstSeen                                                   time.Time
}

// Compliance is the report per control of one framework.
type Compliance struct {
	Framework string
	Controls  []Control
	// Note says what the statuses rest on (which scans) and what is
	// missing from them.
	Note string
}

// Control statuses.
const (
	Passed        = "passed"
	Failed        = "failed"
	NotAssessable = "not assessable"
	// NoFinding is for a reader who may not see what the scans could
	// not evaluate (a tenant): no open finding, but not known to pass.
	NoFinding = "no open finding"
)

// Control is one control of a framework, judged by the checks mapped to
// it.
type Control struct {
	Ref    string // e.g. "CIS 5.2.2"
	Checks []string
	Status string
	// Why, for a failed control the clusters and counts, for one not
	// assessable the reasons.
	Why []string
}

//go:embed report.html.tmpl
var files embed.FS

var tmpl = template.Must(template.New("report.html.tmpl").Funcs(template.FuncMap{
	"date":     func(t time.Time) string { return t.UTC().Format("2006-01-02") },
	"datetime": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"num":      thousands,
	"heat":     heat,
	"trendSVG": trendSVG,
	"lower":    strings.ToLower,
}).ParseFS(files, "report.html.tmpl"))

// Write writes r as HTML.
func Write(w io.Writer, r *Report) error {
	return tmpl.Execute(w, r)
}

// thousands writes n with thousands separators, as the CLI's tables do
// not need to but a printed page does.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// heat is the CSS class of a matrix cell: its count against the largest
// of the matrix, in five steps, so that the shade reads the same printed
// in grey.
func heat(n, top int64) string {
	if n <= 0 || top <= 0 {
		return "h0"
	}
	step := int(math.Ceil(4 * float64(n) / float64(top)))
	return fmt.Sprintf("h%d", min(max(step, 1), 4))
}

// trendSVG draws the posture score (0 to 100) over time as an inline SVG
// line, broken where the trend has a gap, with the first and last dates
// and a grid at 25-point steps. Only numbers and dates go into it.
func trendSVG(points []Point) template.HTML {
	const w, h, left, right, top, bottom = 720.0, 180.0, 36.0, 8.0, 8.0, 22.0
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="trend" viewBox="0 0 %g %g" role="img" aria-label="posture score over time">`, w, h)
	plotW, plotH := w-left-right, h-top-bottom
	for _, s := range []int{0, 25, 50, 75, 100} {
		y := top + plotH*(1-float64(s)/100)
		fmt.Fprintf(&b, `<line class="grid" x1="%g" y1="%.1f" x2="%g" y2="%.1f"/><text class="axis" x="%g" y="%.1f" text-anchor="end">%d</text>`, left, y, w-right, y, left-4, y+4, s)
	}
	n := len(points)
	x := func(i int) float64 {
		if n <= 1 {
			return left + plotW/2
		}
		return left + plotW*float64(i)/float64(n-1)
	}
	var seg []string
	flush := func() {
		if len(seg) == 1 {
			fmt.Fprintf(&b, `<circle class="line" cx="%s" r="2"/>`, strings.Replace(seg[0], ",", `" cy="`, 1))
		} else if len(seg) > 1 {
			fmt.Fprintf(&b, `<polyline class="line" points="%s"/>`, strings.Join(seg, " "))
		}
		seg = seg[:0]
	}
	for i, p := range points {
		if p.Score == nil {
			flush()
			continue
		}
		seg = append(seg, fmt.Sprintf("%.1f,%.1f", x(i), top+plotH*(1-float64(*p.Score)/100)))
	}
	flush()
	if n > 0 {
		fmt.Fprintf(&b, `<text class="axis" x="%g" y="%g">%s</text><text class="axis" x="%g" y="%g" text-anchor="end">%s</text>`,
			left, h-4, points[0].Time.UTC().Format("2006-01-02"), w-right, h-4, points[n-1].Time.UTC().Format("2006-01-02"))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
