package collect

import (
	"reflect"
	"testing"
)

// typedAgrees fails when decodeTyped decodes the YAML or JSON document doc
// otherwise than the strict serializer; it reports whether decodeTyped
// took it.
func typedAgrees(t *testing.T, where string, doc []byte) bool {
	t.Helper()
	js, err := toJSON(doc)
	if err != nil {
		return false
	}
	if js, _, err = upgrade(js); err != nil {
		return false
	}
	fast, ok := decodeTyped(js)
	if !ok {
		return false
	}
	slow, _, err := decoder.Decode(js, nil, nil)
	if err != nil {
		t.Errorf("%s: decoded what the serializer rejects or warns about (%v):\n%s", where, err, js)
		return true
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Errorf("%s: differs from the serializer's\n%s\n fast: %#v\n slow: %#v", where, js, fast, slow)
	}
	return true
}

var typedCases = []struct {
	name, doc string
	fast      bool
}{
	{"deployment", `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {app: web}, creationTimestamp: null}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  strategy: {rollingUpdate: {maxSurge: 25%, maxUnavailable: 1}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: nginx:1.27
        ports: [{containerPort: 8080}]
        resources: {limits: {cpu: 500m, memory: 1Gi}, requests: {cpu: 0.25}}
        securityContext: {runAsNonRoot: true, capabilities: {drop: [ALL]}}
`, true},
	{"json input", `{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "a\u00e9\n", "namespace": "b"}, "automountServiceAccountToken": false}`, true},
	{"empty collections", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: {}\ndata: {}\n", true},
	{"unknown field", "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\nspec: {}\n", false},
	{"duplicate field", "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n  name: b\n", false},
	{"duplicate map key", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: 1\n  k: 2\n", false},
	{"wrong type", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\nspec:\n  replicas: many\n", false},
	{"overflow", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\nspec:\n  replicas: 4294967296\n", false},
	{"bytes", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: a\ndata:\n  k: dmFsdWU=\n", false},
	{"not registered", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: a\n", false},
	{"list", "apiVersion: v1\nkind: List\nitems: []\n", false},
	{"kind in other case", "apiVersion: v1\nKind: ServiceAccount\nkind: ServiceAccount\nmetadata:\n  name: a\n", false},
}

func TestDecodeTyped(t *testing.T) {
	for _, tt := range typedCases {
		t.Run(tt.name, func(t *testing.T) {
			if got := typedAgrees(t, tt.name, []byte(tt.doc)); got != tt.fast {
				t.Errorf("decodeTyped took it: %v, want %v", got, tt.fast)
			}
		})
	}
}

// TestDecodeTypedAgrees: on every manifest of the repository and on a
// generated cluster, decodeTyped's objects equal the serializer's, and it
// takes nearly all of them.
func TestDecodeTypedAgrees(t *testing.T) {
	onFastPath(t, "decoded in one pass", 0.8, []string{".yaml", ".yml", ".json"}, typedAgrees)
}

func FuzzDecodeTyped(f *testing.F) {
	for _, tt := range typedCases {
		f.Add([]byte(tt.doc))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		typedAgrees(t, "fuzz", doc)
	})
}
