package metrics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/promql/parser"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/server/internal/history"
	"github.com/fleetscan/fleetscan/server/internal/metrics"
)

// dashboardFile is the Grafana dashboard the project ships.
const dashboardFile = "../../../deploy/grafana/fleetscan.json"

// targetLabels are the labels Prometheus adds to every series it scrapes
// (the scrape's job and the target's instance), which queries may use on
// any metric.
var targetLabels = []string{"job", "instance"}

// exported is what the server's /metrics serves: every series name with
// its label names. A histogram X serves X_bucket (with le), X_sum and
// X_count; a summary X serves X (with quantile), X_sum and X_count.
type exported struct {
	series map[string]map[string]bool
	// families are the metric families, by name.
	families []string
}

// serverMetrics creates the server's metrics with every gauge and the
// posture collector set, gives every labelled metric a series, scrapes
// them and returns what was served: the names come from the registry,
// not from a list kept here.
func serverMetrics(t *testing.T) exported {
	t.Helper()
	gauge := func() float64 { return 1 }
	posture := metrics.PostureFunc(func(context.Context) ([]history.Posture, error) {
		counts := &fleetscanv1.SeverityCounts{High: 1}
		return []history.Posture{{
			ClusterID: "c", Tenant: "t", Scanned: true, Counts: counts, Objects: 1, Score: 29, ScanMs: 1,
			Parties: []history.Party{{Party: fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_WORKLOAD, Counts: counts}},
		}}, nil
	})
	m := metrics.New(metrics.Gauges{
		WorkersConnected: gauge, JobsRunning: gauge, JobsWaiting: gauge, StoreBytes: gauge, StoreFull: gauge, NotificationsPending: gauge,
		Posture: posture,
	})
	m.FindingsStaged(1)
	m.JobEnded("succeeded", time.Second)
	m.JobCompleted(time.Millisecond)
	m.RPC("/fleetscan.v1.FindingService/GetSummary", "OK", time.Millisecond)
	m.StoreDamage("jobs")
	families := scrape(t, m.Handler(quietLog))
	e := exported{series: map[string]map[string]bool{}}
	add := func(name string, labels map[string]bool, extra ...string) {
		set := maps.Clone(labels)
		for _, l := range append(extra, targetLabels...) {
			set[l] = true
		}
		e.series[name] = set
	}
	for name, f := range families {
		e.families = append(e.families, name)
		labels := map[string]bool{}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				labels[l.GetName()] = true
			}
		}
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM:
			add(name+"_bucket", labels, "le")
			add(name+"_sum", labels)
			add(name+"_count", labels)
		case dto.MetricType_SUMMARY:
			add(name, labels, "quantile")
			add(name+"_sum", labels)
			add(name+"_count", labels)
		default:
			add(name, labels)
		}
	}
	slices.Sort(e.families)
	return e
}

// TestDashboard: every PromQL expression of deploy/grafana/fleetscan.json,
// its panels' queries and its template variables' alike, names metrics
// the server exports, with labels those metrics have: in matchers, in
// by/without, on/ignoring and group_left/right, in functions that read a
// label, and in the legends that print one. Every panel reads the
// ${DS_PROMETHEUS} data source, and every fleetscan_ metric is on the
// dashboard.
func TestDashboard(t *testing.T) {
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	c := newChecker(serverMetrics(t), dash)
	queries := 0
	for _, q := range dashboardQueries(dash) {
		queries++
		if err := c.check(q); err != nil {
			t.Errorf("%s: %v", q.where, err)
		}
	}
	if queries < 10 {
		t.Fatalf("%d queries found in %s; the walk misses them", queries, dashboardFile)
	}
	for _, where := range foreignDataSources(dash, "") {
		t.Errorf("%s: reads a data source other than ${DS_PROMETHEUS}", where)
	}
	for _, f := range c.metrics.families {
		if strings.HasPrefix(f, "fleetscan_") && !c.used[f] {
			t.Errorf("%s: exported but on no panel of the dashboard", f)
		}
	}
	t.Logf("%d queries checked against %d metric families", queries, len(c.metrics.families))
}

// TestDashboardCheckerCatchesMistakes: the checks TestDashboard runs fail
// on each kind of mistake they are there for, and pass the same queries
// put right.
func TestDashboardCheckerCatchesMistakes(t *testing.T) {
	c := newChecker(serverMetrics(t), map[string]any{"templating": map[string]any{"list": []any{map[string]any{"name": "tenant"}}}})
	tests := []struct {
		name    string
		q       query
		wantErr string // "" for a query that is right
	}{
		{"right", query{expr: `sum by (severity) (fleetscan_cluster_open_findings{tenant=~"$tenant"})`, legend: "{{severity}}"}, ""},
		{"metric name misspelt", query{expr: `fleetscan_cluster_posture_scores`}, "fleetscan_cluster_posture_scores: not a metric"},
		{"label the metric lacks", query{expr: `fleetscan_cluster_posture_score{cluster="a"}`}, `no label "cluster"`},
		{"by a label the metric lacks", query{expr: `sum by (party) (fleetscan_cluster_open_findings)`}, `by "party"`},
		{"by a label summed away", query{expr: `sum by (tenant) (sum by (cluster_id) (fleetscan_cluster_posture_score))`}, `by "tenant"`},
		{"without a label it lacks", query{expr: `sum without (le) (fleetscan_cluster_posture_score)`}, `without "le"`},
		{"histogram read by its family name", query{expr: `rate(fleetscan_job_duration_seconds[5m])`}, "fleetscan_job_duration_seconds: not a metric"},
		{"quantile without le", query{expr: `histogram_quantile(0.9, sum by (method) (rate(fleetscan_rpc_duration_seconds_bucket[5m])))`}, `no "le"`},
		{"quantile right", query{expr: `histogram_quantile(0.9, sum by (le, method) (rate(fleetscan_rpc_duration_seconds_bucket[$__rate_interval])))`, legend: "{{method}}"}, ""},
		{"on a label one side lacks", query{expr: `fleetscan_cluster_info and on (party) fleetscan_cluster_posture_score`}, `on "party"`},
		{"group_left a label the other side lacks", query{expr: `fleetscan_cluster_open_findings * on (cluster_id) group_left (severity) fleetscan_cluster_info`}, `group_left "severity"`},
		{"legend of a label the result lacks", query{expr: `sum by (severity) (fleetscan_cluster_open_findings)`, legend: "{{cluster_id}}"}, `legend "cluster_id"`},
		{"legend after on()", query{expr: `fleetscan_cluster_posture_score / on (cluster_id) fleetscan_cluster_last_successful_scan_timestamp_seconds`, legend: "{{tenant}}"}, `legend "tenant"`},
		{"variable not defined", query{expr: `fleetscan_cluster_info{tenant=~"$region"}`}, `"$region"`},
		{"not PromQL", query{expr: `sum by (severity (fleetscan_cluster_open_findings)`}, "parse"},
		{"label_values of a label the metric lacks", query{variable: true, expr: `label_values(fleetscan_cluster_info, party)`}, `no label "party"`},
		{"label_values of a metric not exported", query{variable: true, expr: `label_values(fleetscan_clusters, tenant)`}, "not a metric"},
		{"label_values right", query{variable: true, expr: `label_values(fleetscan_cluster_info{tenant=~"$tenant"}, cluster_id)`}, ""},
		{"label_values without a metric", query{variable: true, expr: `label_values(tenant)`}, "name a metric"},
		{"query_result checked as PromQL", query{variable: true, expr: `query_result(topk(5, fleetscan_cluster_posture_score{severity="high"}))`}, `no label "severity"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.q.where = tt.name
			err := c.check(tt.q)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("%s: %v, want no error", tt.q.expr, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("%s: error %v, want one saying %s", tt.q.expr, err, tt.wantErr)
			}
		})
	}
}

// query is one PromQL expression of the dashboard, or a template
// variable's query, with the legend that prints its labels.
type query struct {
	where, expr, legend string
	variable            bool
}

// dashboardQueries returns the template variables' queries and every
// target's expression, in panels and in rows' panels alike.
func dashboardQueries(dash map[string]any) []query {
	var out []query
	templating, _ := dash["templating"].(map[string]any)
	list, _ := templating["list"].([]any)
	for _, v := range list {
		v, _ := v.(map[string]any)
		if v["type"] != "query" {
			continue
		}
		where := fmt.Sprintf("variable %v", v["name"])
		switch q := v["query"].(type) {
		case string:
			out = append(out, query{where: where, expr: q, variable: true})
		case map[string]any:
			s, _ := q["query"].(string)
			out = append(out, query{where: where, expr: s, variable: true})
		default:
			out = append(out, query{where: where, variable: true}) // fails: empty
		}
		if d, ok := v["definition"].(string); ok {
			out = append(out, query{where: where + " (definition)", expr: d, variable: true})
		}
	}
	var walk func(panels []any)
	walk = func(panels []any) {
		for _, p := range panels {
			p, _ := p.(map[string]any)
			targets, _ := p["targets"].([]any)
			for _, tg := range targets {
				tg, _ := tg.(map[string]any)
				expr, _ := tg["expr"].(string)
				legend, _ := tg["legendFormat"].(string)
				out = append(out, query{where: fmt.Sprintf("panel %q, query %v", p["title"], tg["refId"]), expr: expr, legend: legend})
			}
			inner, _ := p["panels"].([]any)
			walk(inner)
		}
	}
	panels, _ := dash["panels"].([]any)
	walk(panels)
	return out
}

// foreignDataSources returns where in v a data source other than the
// dashboard's ${DS_PROMETHEUS} is named; the DS_PROMETHEUS variable itself
// and Grafana's built-in annotations are not data sources of queries.
func foreignDataSources(v any, where string) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		if v["type"] == "datasource" || v["builtIn"] != nil {
			return nil
		}
		for k, x := range v {
			if k == "datasource" {
				ds, _ := x.(map[string]any)
				if ds["uid"] != "${DS_PROMETHEUS}" || ds["type"] != "prometheus" {
					out = append(out, fmt.Sprintf("%s (%v)", where, x))
				}
				continue
			}
			if title, ok := v["title"].(string); ok {
				k = fmt.Sprintf("%s %q", k, title)
			}
			out = append(out, foreignDataSources(x, where+"/"+k)...)
		}
	case []any:
		for i, x := range v {
			out = append(out, foreignDataSources(x, fmt.Sprintf("%s[%d]", where, i))...)
		}
	}
	return out
}

// checker checks queries against the exported metrics.
type checker struct {
	metrics exported
	// vars are the dashboard's template variables.
	vars map[string]bool
	// used are the metric families the queries read.
	used   map[string]bool
	parser parser.Parser
}

func newChecker(e exported, dash map[string]any) *checker {
	c := &checker{metrics: e, vars: map[string]bool{}, used: map[string]bool{}, parser: parser.NewParser(parser.Options{})}
	templating, _ := dash["templating"].(map[string]any)
	list, _ := templating["list"].([]any)
	for _, v := range list {
		v, _ := v.(map[string]any)
		if name, ok := v["name"].(string); ok {
			c.vars[name] = true
		}
	}
	return c
}

var (
	// variableRef is a reference to a Grafana variable: $name, ${name},
	// ${name:format} or [[name]].
	variableRef = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]`)
	// grafanaIntervals are Grafana's interval variables, durations in a
	// range selector.
	grafanaIntervals = map[string]bool{"__rate_interval": true, "__interval": true, "__range": true}
	labelValues      = regexp.MustCompile(`^label_values\((.*)\)$`)
	queryResult      = regexp.MustCompile(`^query_result\((.*)\)$`)
	legendLabel      = regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)
)

// substitute replaces Grafana's variables in a query with values PromQL
// accepts: a duration for the interval variables, a word inside the
// strings of label matchers for the dashboard's own. Any other variable
// is an error; a dashboard variable outside a string fails to parse.
func (c *checker) substitute(q string) (string, error) {
	var err error
	out := variableRef.ReplaceAllStringFunc(q, func(ref string) string {
		m := variableRef.FindStringSubmatch(ref)
		name := m[1] + m[2] + m[3]
		switch {
		case grafanaIntervals[name]:
			return "5m"
		case c.vars[name]:
			return "x"
		}
		if err == nil {
			err = fmt.Errorf("%q: not a variable of the dashboard", ref)
		}
		return ref
	})
	return out, err
}

// check checks one query.
func (c *checker) check(q query) error {
	expr, err := c.substitute(strings.TrimSpace(q.expr))
	if err != nil {
		return err
	}
	if expr == "" {
		return fmt.Errorf("no query")
	}
	if q.variable {
		return c.checkVariable(expr)
	}
	res, err := c.parseAndInfer(expr)
	if err != nil {
		return err
	}
	for _, m := range legendLabel.FindAllStringSubmatch(q.legend, -1) {
		if !res.labels[m[1]] {
			return fmt.Errorf("legend %q: the result of %s has labels %v only", m[1], q.expr, sorted(res.labels))
		}
	}
	return nil
}

// checkVariable checks a template variable's query: label_values(metric
// selector, label), or query_result(PromQL).
func (c *checker) checkVariable(q string) error {
	if m := queryResult.FindStringSubmatch(q); m != nil {
		_, err := c.parseAndInfer(m[1])
		return err
	}
	m := labelValues.FindStringSubmatch(q)
	if m == nil {
		return fmt.Errorf("%s: want label_values(metric, label) or query_result(expression)", q)
	}
	args := m[1]
	i := strings.LastIndex(args, ",")
	if i < 0 {
		return fmt.Errorf("%s: name a metric, so that the label is checked against it", q)
	}
	selector, label := strings.TrimSpace(args[:i]), strings.TrimSpace(args[i+1:])
	res, err := c.parseAndInfer(selector)
	if err != nil {
		return err
	}
	if _, ok := c.mustParse(selector).(*parser.VectorSelector); !ok {
		return fmt.Errorf("%s: label_values wants a series selector", q)
	}
	if !res.labels[label] {
		return fmt.Errorf("label_values: %s has no label %q (it has %v)", selector, label, sorted(res.labels))
	}
	return nil
}

func (c *checker) mustParse(expr string) parser.Expr {
	e, _ := c.parser.ParseExpr(expr)
	return e
}

// result is what an expression yields: a scalar, or a vector whose
// series can have these labels.
type result struct {
	scalar bool
	labels map[string]bool
}

func (c *checker) parseAndInfer(expr string) (result, error) {
	e, err := c.parser.ParseExpr(expr)
	if err != nil {
		return result{}, fmt.Errorf("parse %s: %w", expr, err)
	}
	return c.infer(e)
}

// infer checks e and works out the labels its result can have.
func (c *checker) infer(e parser.Expr) (result, error) {
	vector := func(labels map[string]bool) result { return result{labels: labels} }
	switch e := e.(type) {
	case *parser.NumberLiteral, *parser.StringLiteral:
		return result{scalar: true, labels: map[string]bool{}}, nil
	case *parser.ParenExpr:
		return c.infer(e.Expr)
	case *parser.UnaryExpr:
		return c.infer(e.Expr)
	case *parser.StepInvariantExpr:
		return c.infer(e.Expr)
	case *parser.SubqueryExpr:
		return c.infer(e.Expr)
	case *parser.MatrixSelector:
		return c.infer(e.VectorSelector)
	case *parser.VectorSelector:
		name := e.Name
		for _, m := range e.LabelMatchers {
			if m.Name == "__name__" && name == "" {
				name = m.Value
			}
		}
		labels, ok := c.metrics.series[name]
		if !ok {
			return result{}, fmt.Errorf("%s: not a metric the server exports", e)
		}
		c.used[c.family(name)] = true
		for _, m := range e.LabelMatchers {
			if m.Name != "__name__" && !labels[m.Name] {
				return result{}, fmt.Errorf("%s: %s has no label %q (it has %v)", e, name, m.Name, sorted(labels))
			}
		}
		return vector(maps.Clone(labels)), nil
	case *parser.AggregateExpr:
		in, err := c.infer(e.Expr)
		if err != nil {
			return result{}, err
		}
		modifier := "by"
		if e.Without {
			modifier = "without"
		}
		for _, l := range e.Grouping {
			if !in.labels[l] {
				return result{}, fmt.Errorf("%s: %s %q: its argument has labels %v only", e, modifier, l, sorted(in.labels))
			}
		}
		switch {
		case e.Op == parser.TOPK || e.Op == parser.BOTTOMK || e.Op == parser.LIMITK || e.Op == parser.LIMIT_RATIO:
			return vector(in.labels), nil
		case e.Without:
			out := maps.Clone(in.labels)
			for _, l := range e.Grouping {
				delete(out, l)
			}
			return vector(out), nil
		}
		out := map[string]bool{}
		for _, l := range e.Grouping {
			out[l] = true
		}
		if e.Op == parser.COUNT_VALUES {
			if s, ok := e.Param.(*parser.StringLiteral); ok {
				out[s.Val] = true
			}
		}
		return vector(out), nil
	case *parser.Call:
		return c.call(e)
	case *parser.BinaryExpr:
		return c.binary(e)
	}
	return result{}, fmt.Errorf("%s: an expression of type %T this check does not know", e, e)
}

// call checks a function call: most keep their argument's labels.
func (c *checker) call(e *parser.Call) (result, error) {
	var args []result
	for _, a := range e.Args {
		r, err := c.infer(a)
		if err != nil {
			return result{}, err
		}
		args = append(args, r)
	}
	str := func(i int) string {
		if i < len(e.Args) {
			if s, ok := e.Args[i].(*parser.StringLiteral); ok {
				return s.Val
			}
		}
		return ""
	}
	switch e.Func.Name {
	case "time", "pi", "scalar":
		return result{scalar: true, labels: map[string]bool{}}, nil
	case "vector", "absent", "absent_over_time":
		// absent's labels are its equality matchers'; none is assumed.
		return result{labels: map[string]bool{}}, nil
	case "histogram_quantile", "histogram_fraction":
		in := args[len(args)-1]
		if !in.labels["le"] {
			return result{}, fmt.Errorf("%s: its buckets have no \"le\" label (aggregate by le): labels %v", e, sorted(in.labels))
		}
		out := maps.Clone(in.labels)
		delete(out, "le")
		return result{labels: out}, nil
	case "label_replace":
		if src := str(3); src != "" && !args[0].labels[src] {
			return result{}, fmt.Errorf("%s: source label %q: its argument has labels %v only", e, src, sorted(args[0].labels))
		}
		out := maps.Clone(args[0].labels)
		out[str(1)] = true
		return result{labels: out}, nil
	case "label_join":
		for i := 3; i < len(e.Args); i++ {
			if src := str(i); !args[0].labels[src] {
				return result{}, fmt.Errorf("%s: source label %q: its argument has labels %v only", e, src, sorted(args[0].labels))
			}
		}
		out := maps.Clone(args[0].labels)
		out[str(1)] = true
		return result{labels: out}, nil
	}
	out := map[string]bool{}
	for i, a := range args {
		if e.Func.ArgTypes[min(i, len(e.Func.ArgTypes)-1)] == parser.ValueTypeString {
			continue
		}
		for l := range a.labels {
			out[l] = true
		}
	}
	if e.Func.ReturnType == parser.ValueTypeScalar {
		return result{scalar: true, labels: map[string]bool{}}, nil
	}
	return result{labels: out}, nil
}

// binary checks an operation on two operands: the labels it matches on
// must be on both vectors, those it copies with group_left/right on the
// other side.
func (c *checker) binary(e *parser.BinaryExpr) (result, error) {
	lhs, err := c.infer(e.LHS)
	if err != nil {
		return result{}, err
	}
	rhs, err := c.infer(e.RHS)
	if err != nil {
		return result{}, err
	}
	switch {
	case lhs.scalar && rhs.scalar:
		return lhs, nil
	case lhs.scalar:
		return rhs, nil
	case rhs.scalar:
		return lhs, nil
	}
	vm := e.VectorMatching
	if vm == nil {
		vm = &parser.VectorMatching{Card: parser.CardOneToOne}
	}
	for _, l := range vm.MatchingLabels {
		if vm.On && (!lhs.labels[l] || !rhs.labels[l]) {
			return result{}, fmt.Errorf("%s: on %q: the left side has labels %v, the right %v", e, l, sorted(lhs.labels), sorted(rhs.labels))
		}
		if !vm.On && !lhs.labels[l] && !rhs.labels[l] {
			return result{}, fmt.Errorf("%s: ignoring %q: neither side has it", e, l)
		}
	}
	switch e.Op {
	case parser.LAND, parser.LUNLESS:
		return lhs, nil
	case parser.LOR:
		out := maps.Clone(lhs.labels)
		maps.Copy(out, rhs.labels)
		return result{labels: out}, nil
	}
	switch vm.Card {
	case parser.CardManyToOne, parser.CardOneToMany:
		many, one, modifier := lhs, rhs, "group_left"
		if vm.Card == parser.CardOneToMany {
			many, one, modifier = rhs, lhs, "group_right"
		}
		out := maps.Clone(many.labels)
		for _, l := range vm.Include {
			if !one.labels[l] {
				return result{}, fmt.Errorf("%s: %s %q: the other side has labels %v only", e, modifier, l, sorted(one.labels))
			}
			out[l] = true
		}
		return result{labels: out}, nil
	}
	// One to one: the result keeps the left side's labels, only those
	// matched on with on(), less those ignored with ignoring().
	out := map[string]bool{}
	if vm.On {
		for _, l := range vm.MatchingLabels {
			out[l] = true
		}
	} else {
		out = maps.Clone(lhs.labels)
		for _, l := range vm.MatchingLabels {
			delete(out, l)
		}
	}
	return result{labels: out}, nil
}

// family is the metric family a series name belongs to.
func (c *checker) family(series string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(series, suffix); ok && slices.Contains(c.metrics.families, base) {
			return base
		}
	}
	return series
}

func sorted(set map[string]bool) []string { return slices.Sorted(maps.Keys(set)) }
