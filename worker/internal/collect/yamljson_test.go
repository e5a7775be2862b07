package collect

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	sigsyaml "sigs.k8s.io/yaml"
)

func TestYAMLToJSON(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"scalars", "a: 1\nb: -0x10\nc: 1.5\nd: true\ne: null\nf: ~\ng: text\nh: '1'\ni: 2024-01-01T00:00:00Z\n",
			`{"a":1,"b":-16,"c":1.5,"d":true,"e":null,"f":null,"g":"text","h":"1","i":"2024-01-01T00:00:00Z"}`},
		{"YAML 1.2 booleans", "a: yes\nb: on\nc: False\n", `{"a":"yes","b":"on","c":false}`},
		// 0644 stays octal as kubectl reads it (defaultMode: 0644 means 420).
		{"octal", "mode: 0o644\nold: 0644\n", `{"mode":420,"old":420}`},
		{"sequences and flow", "a: [1, {b: c}]\nd:\n  - x\n  - y\n", `{"a":[1,{"b":"c"}],"d":["x","y"]}`},
		{"escaping", "a: \"q\\\"\\\\\\t\\n\\u0001é\"\n", `{"a":"q\"\\\t\n\u0001é"}`},
		{"block scalar", "a: |\n  line1\n  line2\n", `{"a":"line1\nline2\n"}`},
		{"anchors", "a: &x {k: v}\nb: *x\n", `{"a":{"k":"v"},"b":{"k":"v"}}`},
		{"numeric key", "80: http\n", `{"80":"http"}`},
		{"infinity stays text", "a: .inf\n", `{"a":".inf"}`},
		{"empty", "# only a comment\n", `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := yamlToJSON([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestYAMLToJSONRejects(t *testing.T) {
	var bomb strings.Builder
	bomb.WriteString("a: &a [x, x, x, x, x, x, x, x, x, x]\n")
	prev := "a"
	for _, name := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		bomb.WriteString(name + ": &" + name + " [")
		for j := range 10 {
			if j > 0 {
				bomb.WriteString(", ")
			}
			bomb.WriteString("*" + prev)
		}
		bomb.WriteString("]\n")
		prev = name
	}
	for name, doc := range map[string]string{
		"alias bomb":    bomb.String(),
		"bad indent":    "a:\n  b: 1\n c: 2\n",
		"mapping key":   "? [a, b]\n: c\n",
		"unclosed flow": "a: [1, 2\n",
	} {
		if _, err := yamlToJSON([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestYAMLToJSONMatchesSigsYAML: on every manifest of the repository the
// fast converter yields the same JSON value as sigs.k8s.io/yaml, the
// converter kubectl uses.
func TestYAMLToJSONMatchesSigsYAML(t *testing.T) {
	var files []string
	for _, root := range []string{"../../../deploy", "../../checks/testdata", "testdata"} {
		filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
				files = append(files, path)
			}
			return nil
		})
	}
	if len(files) < 50 {
		t.Fatalf("only %d manifests found", len(files))
	}
	docs := 0
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		err = splitDocuments(f, MaxDocumentSize, func(doc []byte, line int) {
			docs++
			want, err1 := sigsyaml.YAMLToJSON(doc)
			got, err2 := yamlToJSON(doc)
			if (err1 == nil) != (err2 == nil) {
				t.Errorf("%s:%d: sigs.k8s.io/yaml error %v, ours %v", path, line, err1, err2)
				return
			}
			if err1 != nil {
				return
			}
			var a, b any
			if json.Unmarshal(want, &a) != nil || json.Unmarshal(got, &b) != nil || !reflect.DeepEqual(a, b) {
				t.Errorf("%s:%d: differs\n sigs: %s\n ours: %s", path, line, want, got)
			}
		}, func(line int, problem string) { t.Errorf("%s:%d: %s", path, line, problem) })
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d documents of %d files compared", docs, len(files))
}

func FuzzYAMLToJSON(f *testing.F) {
	f.Add([]byte("a: [1, {b: c}]\nd: &x yes\ne: *x\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		out, err := yamlToJSON(doc)
		if err == nil && !json.Valid(out) {
			t.Fatalf("invalid JSON %q from %q", out, doc)
		}
	})
}
