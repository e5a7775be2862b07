package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"sigs.k8s.io/yaml"

	"github.com/fleetscan/fleetscan/cmd/internal/report"
	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// structured reports whether the output is a data format rather than a
// table.
func (g *globals) structured() bool { return g.output == "json" || g.output == "yaml" }

// print writes a message as JSON or YAML, in the API's field names.
func (g *globals) print(m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
	if err != nil {
		return err
	}
	if g.output == "yaml" {
		if b, err = yaml.JSONToYAML(b); err != nil {
			return err
		}
		_, err = g.stdout.Write(b)
		return err
	}
	_, err = fmt.Fprintln(g.stdout, string(b))
	return err
}

// table writes aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cols ...string) { fmt.Fprintln(t.tw, strings.Join(cols, "\t")) }
func (t *table) flush() error       { return t.tw.Flush() }

func when(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().Local().Format(time.DateTime)
}

// The CLI words severities and resources as the reports do.
var (
	severityName   = report.SeverityName
	parseSeverity  = report.ParseSeverity
	resourceString = report.ResourceString
)

func countsString(c *fleetscanv1.SeverityCounts) []string {
	return []string{fmt.Sprint(c.GetCritical()), fmt.Sprint(c.GetHigh()), fmt.Sprint(c.GetMedium()), fmt.Sprint(c.GetLow())}
}

func enumName(s fmt.Stringer, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), prefix))
}
