package render

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	"sigs.k8s.io/yaml"

	"github.com/Masterminds/semver/v3"
)

// KubeVersion is the Kubernetes version the chart is rendered for: that of
// the API server the end-to-end tests build (deploy/e2e/tools/kubernetes).
const KubeVersion = "v1.37.2"

// Release is what `helm install NAME --namespace NAMESPACE` names.
type Release struct {
	Name      string
	Namespace string
}

// Chart is a chart loaded from its directory.
type Chart struct {
	dir   string
	chart *chart.Chart
}

// Load loads the chart in dir as `helm template DIR` does, .helmignore
// applied.
func Load(dir string) (*Chart, error) {
	ch, err := loader.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", dir, err)
	}
	if err := ch.Validate(); err != nil {
		return nil, fmt.Errorf("chart %s: %w", dir, err)
	}
	return &Chart{dir: dir, chart: ch}, nil
}

// Output is what a chart rendered to.
type Output struct {
	// Manifests maps each template that rendered to an object, by its path
	// in the chart (templates/server/statefulset.yaml), to its YAML.
	// Templates that rendered to nothing but blanks and comments are left
	// out, as helm template leaves them out.
	Manifests map[string]string
	// Notes is templates/NOTES.txt rendered, what helm install prints.
	Notes string
}

// Render renders the chart for rel with values over its values.yaml, as
// `helm template NAME DIR --namespace NAMESPACE -f values.yaml` does, but
// strictly: a template that reads a value the chart does not define fails
// instead of reading nothing. The values are checked against the chart's
// values.schema.json, and the chart's kubeVersion against KubeVersion.
func (c *Chart) Render(ctx context.Context, rel Release, values map[string]any) (*Output, error) {
	kube, err := common.ParseKubeVersion(KubeVersion)
	if err != nil {
		return nil, err
	}
	if want := c.chart.Metadata.KubeVersion; want != "" {
		// What helm install checks, before it renders anything.
		constraint, err := semver.NewConstraint(want)
		if err != nil {
			return nil, fmt.Errorf("chart %s: kubeVersion %q: %w", c.dir, want, err)
		}
		if !constraint.Check(semver.MustParse(KubeVersion)) {
			return nil, fmt.Errorf("chart %s requires Kubernetes %s, not %s", c.dir, want, kube)
		}
	}
	caps := common.DefaultCapabilities.Copy()
	caps.KubeVersion = *kube
	vals, err := chartutil.ToRenderValues(c.chart, values, common.ReleaseOptions{
		Name: rel.Name, Namespace: rel.Namespace, Revision: 1, IsInstall: true,
	}, caps)
	if err != nil {
		return nil, fmt.Errorf("values of %s: %w", c.dir, err)
	}
	rendered, err := engine.Engine{Strict: true}.RenderWithContext(ctx, c.chart, vals)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", c.dir, err)
	}
	out := &Output{Manifests: map[string]string{}}
	// The engine names each result <chart>/templates/...; partials
	// (templates/_*.tpl) render to nothing and are left out already.
	prefix := c.chart.Name() + "/"
	for name, text := range rendered {
		name = strings.TrimPrefix(name, prefix)
		switch {
		case name == "templates/NOTES.txt":
			out.Notes = text
		case path.Ext(name) != ".yaml" && path.Ext(name) != ".yml":
			return nil, fmt.Errorf("render %s: %s is neither a manifest nor NOTES.txt", c.dir, name)
		case hasContent(text):
			out.Manifests[name] = text
		}
	}
	return out, nil
}

// hasContent says whether a rendered template holds more than blank
// lines, comments and document separators.
func hasContent(text string) bool {
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line != "" && line != "---" && !strings.HasPrefix(line, "#") {
			return true
		}
	}
	return false
}

// YAML is every manifest in one stream, in the order of their paths, as
// helm template prints them.
func (o *Output) YAML() string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(o.Manifests)) {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", name, strings.TrimSpace(o.Manifests[name]))
	}
	return b.String()
}

// WriteDir writes each manifest to its path under dir, the way
// `helm template --output-dir` lays them out (without the chart's name).
func (o *Output) WriteDir(dir string) error {
	for name, text := range o.Manifests {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// ValueSet is a named set of values to render the chart with.
type ValueSet struct {
	// Name is "default" for the chart's own values, else the <name> of
	// ci/<name>-values.yaml.
	Name   string
	Values map[string]any
}

// ValueSets returns the chart's defaults (no values) first, then each
// ci/<name>-values.yaml of the chart, in the order of their names.
func (c *Chart) ValueSets() ([]ValueSet, error) {
	sets := []ValueSet{{Name: "default", Values: map[string]any{}}}
	files, err := filepath.Glob(filepath.Join(c.dir, "ci", "*-values.yaml"))
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var v map[string]any
		if err := yaml.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		sets = append(sets, ValueSet{Name: strings.TrimSuffix(filepath.Base(f), "-values.yaml"), Values: v})
	}
	return sets, nil
}
