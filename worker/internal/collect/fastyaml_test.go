package collect

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fleetscan/fleetscan/worker/checks/checkstest"
)

// fastCases are documents in the forms manifests are written in, which
// the fast path must convert (want is the JSON), and forms it leaves to
// yamlToJSON (want is ""). Either way, the result must be yamlToJSON's.
var fastCases = []struct{ name, yaml, want string }{
	{"scalars", "a: 1\nb: -0x10\nc: 1.5\nd: true\ne: null\nf: ~\ng: text\nh: '1'\ni: 2024-01-01T00:00:00Z\nj:\n",
		`{"a":1,"b":-16,"c":1.5,"d":true,"e":null,"f":null,"g":"text","h":"1","i":"2024-01-01T00:00:00Z","j":null}`},
	{"YAML 1.2 booleans", "a: yes\nb: on\nc: False\n", `{"a":"yes","b":"on","c":false}`},
	{"numbers", "a: 0644\nb: 0o644\nc: 1_000\nd: .5\ne: 1e3\nf: +7\ng: 0b101\nh: 18446744073709551615\ni: 1e400\nj: .inf\nk: 100m\nl: 1.\n",
		`{"a":420,"b":420,"c":1000,"d":0.5,"e":1000,"f":7,"g":5,"h":18446744073709551615,"i":"1e400","j":".inf","k":"100m","l":1}`},
	{"comments", "# head\na: b # tail\nc: d#e\n  # indented\n\nf: 'g' # after quotes\n", `{"a":"b","c":"d#e","f":"g"}`},
	{"nesting", "metadata:\n  name: x\n  labels:\n    app: web\nspec:\n  replicas: 2\n", `{"metadata":{"name":"x","labels":{"app":"web"}},"spec":{"replicas":2}}`},
	{"sequences", "a:\n  - x\n  - y: 1\n    z: 2\n  -\n  - - n\n    - m\nb:\n- c\n- d\ne: f\n",
		`{"a":["x",{"y":1,"z":2},null,["n","m"]],"b":["c","d"],"e":"f"}`},
	{"entry on the next line", "a:\n  -\n    b: 1\n", `{"a":[{"b":1}]}`},
	{"flow", "a: [1, \"two\", 'three', {b: c, \"d\":e}]\nf: {}\ng: []\nh: [[x], {i: [j]}]\n",
		`{"a":[1,"two","three",{"b":"c","d":"e"}],"f":{},"g":[],"h":[["x"],{"i":["j"]}]}`},
	{"quoted", "a: \"q\\\"\\\\\\t\\n\\u00e9\\x41\"\nb: 'it''s'\n\"c d\": 1\n'e': \"\"\n", `{"a":"q\"\\\t\né` + "A" + `","b":"it's","c d":1,"e":""}`},
	{"literal", "a: |\n  line1\n\n    indented\n  line3\n\nb: |-\n  stripped\nc: |\n\n  after a blank\nd: |\ne: x\n",
		`{"a":"line1\n\n  indented\nline3\n","b":"stripped","c":"\nafter a blank\n","d":"","e":"x"}`},
	{"literal in a sequence", "- |\n  text\n  # not a comment\n- x\n", `["text\n# not a comment\n","x"]`},
	{"keys are text", "80: http\ntrue: 1\nnull: 2\n", `{"80":"http","true":1,"null":2}`},
	{"indented document", "  a: 1\n  b: 2\n", `{"a":1,"b":2}`},
	{"empty", "# only a comment\n\n", `null`},
	{"unicode", "a: héllo wörld ✓\n", `{"a":"héllo wörld ✓"}`},

	{"anchors", "a: &x {k: v}\nb: *x\n", ""},
	{"tags", "a: !!str 1\n", ""},
	{"folded", "a: >\n  folded\n  text\n", ""},
	{"kept", "a: |+\n  kept\n\n", ""},
	{"indentation indicator", "a: |2\n   text\n", ""},
	{"multi-line plain", "a: one\n  two\n", ""},
	{"multi-line quoted", "a: \"one\n  two\"\n", ""},
	{"multi-line flow", "a: [1,\n  2]\n", ""},
	{"tab indentation", "a:\n\tb: 1\n", ""},
	{"carriage return", "a: 1\r\n", ""},
	{"directive", "%YAML 1.2\n---\na: 1\n", ""},
	{"complex key", "? [a, b]\n: c\n", ""},
	{"scalar document", "just text\n", ""},
	{"bad indent", "a:\n  b: 1\n c: 2\n", ""},
	{"mapping in a value", "a: b: c\n", ""},
	{"unclosed flow", "a: [1, 2\n", ""},
	{"trailing comma", "a: [1, 2,]\n", ""},
	{"NEL", "a: x\u0085y\n", ""},
}

func TestFastYAML(t *testing.T) {
	for _, tt := range fastCases {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := fastYAMLToJSON([]byte(tt.yaml), nil)
			if ok != (tt.want != "") {
				t.Fatalf("fast path took it: %v, want %v (output %s)", ok, tt.want != "", got)
			}
			if ok && string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			agrees(t, tt.name, []byte(tt.yaml))
		})
	}
}

// agrees fails when the fast path converts doc otherwise than yamlToJSON.
func agrees(t *testing.T, where string, doc []byte) bool {
	t.Helper()
	fast, ok := fastYAMLToJSON(doc, nil)
	if !ok {
		return false
	}
	slow, err := yamlToJSON(doc)
	if err != nil {
		t.Errorf("%s: the fast path converted what yaml.v3 rejects (%v):\n%s\n-> %s", where, err, doc, fast)
		return true
	}
	if !bytes.Equal(fast, slow) {
		t.Errorf("%s: differs from yamlToJSON\n%s\n fast: %s\n slow: %s", where, doc, fast, slow)
	}
	return true
}

// TestFastYAMLAgrees: on every manifest of the repository and on a
// generated cluster, the fast path's JSON is yamlToJSON's, and it takes
// nearly all of them.
func TestFastYAMLAgrees(t *testing.T) {
	onFastPath(t, "on the fast path", 0.9, []string{".yaml", ".yml"}, agrees)
}

// onFastPath runs took over every document of the repository's manifests
// (the files ending in exts) and of a generated cluster, and fails when
// it took less than minRepo of the former or any less than all of the
// latter: a fast path that declined everything would pass every other
// test.
func onFastPath(t *testing.T, what string, minRepo float64, exts []string, took func(t *testing.T, where string, doc []byte) bool) {
	t.Helper()
	generated := t.TempDir()
	if err := checkstest.WriteSnapshot(generated, checkstest.Objects(2000), 500); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		roots   []string
		minFast float64
	}{
		{[]string{"../../../deploy", "../../checks/testdata", "testdata"}, minRepo},
		{[]string{generated}, 1},
	} {
		docs, fast := 0, 0
		for _, root := range c.roots {
			filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() || !slices.Contains(exts, filepath.Ext(path)) {
					return nil
				}
				f, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				return splitDocuments(f, MaxDocumentSize, func(doc []byte, line int) {
					docs++
					if took(t, path, doc) {
						fast++
					}
				}, func(int, string) {})
			})
		}
		t.Logf("%v: %d of %d documents %s", c.roots, fast, docs, what)
		if docs < 100 || float64(fast)/float64(docs) < c.minFast {
			t.Errorf("%v: %d of %d documents %s, want at least %.0f%%", c.roots, fast, docs, what, 100*c.minFast)
		}
	}
}

func FuzzFastYAML(f *testing.F) {
	for _, tt := range fastCases {
		f.Add([]byte(tt.yaml))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		agrees(t, "fuzz", doc)
	})
}
