package render

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const chartDir = "../fleetscan"

var release = Release{Name: "fleetscan", Namespace: "fleetscan"}

func load(t *testing.T) *Chart {
	t.Helper()
	c, err := Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestValueSets renders the defaults and every ci/*-values.yaml: each
// renders, has objects and notes. What the objects are is judged in
// worker/internal/collect (TestHelmChartPassesOwnChecks) and deploy/e2e.
func TestValueSets(t *testing.T) {
	c := load(t)
	sets, err := c.ValueSets()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range sets {
		names = append(names, s.Name)
	}
	if want := []string{"cert-manager", "custom", "default", "postgres-replicas", "server-and-worker", "worker-only"}; !slices.Equal(slices.Sorted(slices.Values(names)), want) {
		t.Errorf("value sets %v, want %v", names, want)
	}
	for _, s := range sets {
		t.Run(s.Name, func(t *testing.T) {
			out, err := c.Render(t.Context(), release, s.Values)
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Manifests) == 0 {
				t.Error("no object rendered")
			}
			if strings.TrimSpace(out.Notes) == "" {
				t.Error("NOTES.txt rendered to nothing")
			}
			for name, text := range out.Manifests {
				if !strings.HasPrefix(name, "templates/") {
					t.Errorf("manifest %s is not a template's", name)
				}
				if strings.Contains(text, "<no value>") {
					t.Errorf("%s reads a value that is not set:\n%s", name, text)
				}
			}
			yaml := out.YAML()
			for name := range out.Manifests {
				if !strings.Contains(yaml, "# Source: "+name+"\n") {
					t.Errorf("YAML() leaves out %s", name)
				}
			}
		})
	}
}

// TestRefusedValues: values that would install something broken or open
// fail the render with a message that says what to set.
func TestRefusedValues(t *testing.T) {
	c := load(t)
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"nothing enabled", map[string]any{"server": map[string]any{"enabled": false}},
			"would install nothing"},
		{"worker without server address", map[string]any{"worker": map[string]any{"enabled": true, "clusterID": "c1"}},
			"worker.serverAddress is required"},
		{"worker without cluster id", map[string]any{"worker": map[string]any{"enabled": true, "serverAddress": "s:8443"}},
			"worker.clusterID is required"},
		{"no TLS secret", map[string]any{"server": map[string]any{"tls": map[string]any{"secretName": ""}}},
			"server.tls.secretName is required"},
		{"cert-manager without issuer", map[string]any{"server": map[string]any{"tls": map[string]any{"certManager": map[string]any{"enabled": true}}}},
			"server.tls.certManager.issuer.name is required"},
		{"load balancer open to all", map[string]any{"server": map[string]any{"service": map[string]any{"type": "LoadBalancer"}}},
			"needs server.service.loadBalancerSourceRanges"},
		// values.schema.json: a misspelt key fails instead of being ignored.
		{"unknown key", map[string]any{"server": map[string]any{"replica": 2}},
			"replica"},
		// Replicas share a PostgreSQL database; bbolt is one process's.
		{"replicas without postgres", map[string]any{"server": map[string]any{"replicas": 3}},
			"at '/server/replicas': maximum: got 3, want 1"},
		{"postgres without url", map[string]any{"server": map[string]any{"store": map[string]any{"postgres": map[string]any{"enabled": true}}}},
			"server.store.postgres.enabled needs the database's URL"},
		{"postgres url and url secret", map[string]any{"server": map[string]any{"store": map[string]any{"postgres": map[string]any{
			"enabled": true, "url": "postgres://fs@db/fs", "urlSecret": map[string]any{"name": "db"}}}}},
			"set url or urlSecret.name, not both"},
		{"password in the url", map[string]any{"server": map[string]any{"store": map[string]any{"postgres": map[string]any{
			"enabled": true, "url": "postgres://fs:secret@db/fs"}}}},
			"url"},
		{"password in the url's query", map[string]any{"server": map[string]any{"store": map[string]any{"postgres": map[string]any{
			"enabled": true, "url": "postgres://fs@db/fs?password=secret"}}}},
			"holds a password"},
		{"store in extraArgs", map[string]any{"server": map[string]any{"extraArgs": []any{"--store=postgres://fs@db/fs"}}},
			"set server.store.postgres instead"},
		{"flag without dashes", map[string]any{"server": map[string]any{"extraArgs": []any{"retention=1h"}}},
			"extraArgs"},
		{"log format", map[string]any{"worker": map[string]any{"logFormat": "xml"}},
			"logFormat"},
		{"resources misspelt", map[string]any{"worker": map[string]any{"resources": map[string]any{"request": map[string]any{"cpu": "1"}}}},
			"resources"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.Render(t.Context(), release, tc.values)
			if err == nil {
				t.Fatalf("rendered, want an error with %q:\n%s", tc.want, out.YAML())
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}

// TestRefusedWithoutSchema: what values.schema.json refuses,
// templates/validate.yaml refuses too, with a message that says what to
// set, for installs with --skip-schema-validation.
func TestRefusedWithoutSchema(t *testing.T) {
	c := load(t)
	noSchema := *c.chart
	noSchema.Schema = nil
	c = &Chart{dir: c.dir, chart: &noSchema}
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"replicas without postgres", map[string]any{"server": map[string]any{"replicas": 3}},
			"server.replicas is 3, but more than one fleetscan-server needs server.store.postgres.enabled"},
		{"password in the url", map[string]any{"server": map[string]any{"store": map[string]any{"postgres": map[string]any{
			"enabled": true, "url": "postgres://fs:secret@db/fs"}}}},
			"server.store.postgres.url holds a password"},
		{"not a postgres url", map[string]any{"server": map[string]any{"store": map[string]any{"postgres": map[string]any{
			"enabled": true, "url": "mysql://fs@db/fs"}}}},
			"must be a postgres:// or postgresql:// URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.Render(t.Context(), release, tc.values)
			if err == nil {
				t.Fatalf("rendered, want an error with %q:\n%s", tc.want, out.YAML())
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}

// TestPostgresReplicas: with PostgreSQL the server runs as many replicas
// as asked, governed by a headless Service, with --store or its Secret and
// PGPASSWORD from a Secret; the password is nowhere in the objects.
func TestPostgresReplicas(t *testing.T) {
	c := load(t)
	out, err := c.Render(t.Context(), release, map[string]any{"server": map[string]any{
		"replicas": 3,
		"store": map[string]any{"postgres": map[string]any{
			"enabled":        true,
			"urlSecret":      map[string]any{"name": "db-url"},
			"passwordSecret": map[string]any{"name": "db", "key": "pw"},
		}},
		"tls": map[string]any{"certManager": map[string]any{"enabled": true, "issuer": map[string]any{"name": "ca"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	sts := out.Manifests["templates/server/statefulset.yaml"]
	for _, want := range []string{
		"replicas: 3\n",
		"serviceName: fleetscan-server-headless\n",
		"- name: FLEETSCAN_SERVER_STORE\n",
		`secretKeyRef: {name: "db-url", key: "url"}`,
		"- name: PGPASSWORD\n",
		`secretKeyRef: {name: "db", key: "pw"}`,
	} {
		if !strings.Contains(sts, want) {
			t.Errorf("statefulset.yaml has no %q:\n%s", want, sts)
		}
	}
	if strings.Contains(sts, "- --store=") {
		t.Errorf("statefulset.yaml passes --store as well as its Secret:\n%s", sts)
	}
	if svc := out.Manifests["templates/server/service-headless.yaml"]; !strings.Contains(svc, "clusterIP: None\n") {
		t.Errorf("no headless Service:\n%s", svc)
	}
	if cert := out.Manifests["templates/server/certificate.yaml"]; !strings.Contains(cert, `"*.fleetscan-server-headless.fleetscan.svc"`) {
		t.Errorf("the Certificate is not for the replicas' names:\n%s", cert)
	}
	if np := out.Manifests["templates/server/networkpolicy.yaml"]; !strings.Contains(np, "port: 5432}") {
		t.Errorf("the NetworkPolicy does not let the server reach the database:\n%s", np)
	}

	// The default, bbolt: one replica, no headless Service, no --store.
	out, err = c.Render(t.Context(), release, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := out.Manifests["templates/server/service-headless.yaml"]; ok {
		t.Error("a headless Service without PostgreSQL")
	}
	sts = out.Manifests["templates/server/statefulset.yaml"]
	if !strings.Contains(sts, "replicas: 1\n") || !strings.Contains(sts, "serviceName: fleetscan-server\n") || strings.Contains(sts, "STORE") {
		t.Errorf("the default StatefulSet changed:\n%s", sts)
	}
}

// TestNames: release "fleetscan" names the objects as deploy/kubernetes
// does; another release prefixes them with its name.
func TestNames(t *testing.T) {
	c := load(t)
	worker := map[string]any{"worker": map[string]any{"enabled": true, "serverAddress": "s:8443", "clusterID": "c1"}}
	for _, tc := range []struct {
		release Release
		want    []string
	}{
		{release, []string{"name: fleetscan-server\n", "name: fleetscan-worker\n"}},
		{Release{Name: "prod", Namespace: "x"}, []string{"name: prod-fleetscan-server\n", "name: prod-fleetscan-worker\n"}},
		{Release{Name: "fleetscan-eu", Namespace: "x"}, []string{"name: fleetscan-eu-server\n", "name: fleetscan-eu-worker\n"}},
	} {
		out, err := c.Render(t.Context(), tc.release, worker)
		if err != nil {
			t.Fatal(err)
		}
		yaml := out.YAML()
		for _, w := range tc.want {
			if !strings.Contains(yaml, w) {
				t.Errorf("release %s: no %q in\n%s", tc.release.Name, w, yaml)
			}
		}
	}
}

// TestValuesDocumented: values.yaml, values.schema.json and the values
// table of README.md name the same values. A map is one value where the
// schema leaves its keys free (podAnnotations, …) or where the table lists
// it as one (resources).
func TestValuesDocumented(t *testing.T) {
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(chartDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var schema map[string]any
	if err := json.Unmarshal(read("values.schema.json"), &schema); err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(read("values.yaml"), &values); err != nil {
		t.Fatal(err)
	}
	var inReadme []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(string(read("README.md")), -1) {
		inReadme = append(inReadme, m[1])
	}

	var inSchema, inValues []string
	var walk func(prefix string, node map[string]any, vals map[string]any)
	walk = func(prefix string, node map[string]any, vals map[string]any) {
		props, _ := node["properties"].(map[string]any)
		for key, sub := range props {
			path := prefix + key
			if path == "global" {
				continue // Helm's, for subcharts
			}
			subNode, _ := sub.(map[string]any)
			v, ok := vals[key]
			if _, nested := subNode["properties"]; nested && !slices.Contains(inReadme, path) {
				subVals, _ := v.(map[string]any)
				if ok && subVals == nil {
					t.Errorf("values.yaml: %s is not a map", path)
				}
				walk(path+".", subNode, subVals)
				continue
			}
			inSchema = append(inSchema, path)
			if ok {
				inValues = append(inValues, path)
			}
		}
		for key := range vals {
			if _, ok := props[key]; !ok {
				t.Errorf("values.yaml: %s%s is not in values.schema.json", prefix, key)
			}
		}
	}
	walk("", schema, values)
	slices.Sort(inSchema)
	slices.Sort(inValues)
	if !slices.Equal(inSchema, inValues) {
		t.Errorf("values.schema.json has %v\nvalues.yaml has      %v", inSchema, inValues)
	}
	for _, v := range inSchema {
		if !slices.Contains(inReadme, v) {
			t.Errorf("README.md's table lacks %s", v)
		}
	}
	for _, v := range inReadme {
		if !slices.Contains(inSchema, v) {
			t.Errorf("README.md's table lists %s, which values.schema.json does not have", v)
		}
	}
}
