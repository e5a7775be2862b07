package collect

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/fleetscan/fleetscan/worker/catalog"
	"github.com/fleetscan/fleetscan/worker/checks"
)

// MaxDocumentSize is the default bound of one manifest document; a larger
// one is reported and skipped rather than read into memory, and the rest
// of its file is read on (fleetscan-worker --max-document-size).
const MaxDocumentSize = 16 << 20

// SnapshotStats says what a snapshot load read and what it skipped.
type SnapshotStats struct {
	Files   int
	Objects int
	// Skipped counts objects of kinds no check reads (CRDs, ConfigMaps, …).
	Skipped int
	// Problems lists the documents that could not be decoded, as
	// "file:line: reason". They are skipped; the rest of the snapshot loads.
	Problems []string
	// Warnings lists objects that decoded with unknown or duplicate
	// fields, as "file:line: ..."; the objects are kept.
	Warnings []string
}

func namespaceOf(obj runtime.Object) string {
	if m, ok := obj.(interface{ GetNamespace() string }); ok {
		return m.GetNamespace()
	}
	return ""
}

func nameOf(obj runtime.Object) string {
	if m, ok := obj.(interface{ GetName() string }); ok {
		return m.GetName()
	}
	return ""
}

// LoadSnapshot reads every .yaml, .yml and .json file under dir, in lexical
// order, into an inventory. Files may hold several YAML documents and
// `kind: List` objects, as `kubectl get -A -o yaml` writes them. A document
// that does not decode is reported in the stats and skipped.
func LoadSnapshot(dir string) (*checks.Inventory, SnapshotStats, error) {
	return LoadSnapshotLimit(dir, MaxDocumentSize)
}

// LoadSnapshotLimit is LoadSnapshot with documents bounded by maxDocument
// bytes instead of MaxDocumentSize (0: the default).
func LoadSnapshotLimit(dir string, maxDocument int) (*checks.Inventory, SnapshotStats, error) {
	return loadSnapshot(dir, maxDocument, checks.TrimBookkeeping, nil)
}

// loadSnapshot is LoadSnapshotLimit with the objects reduced as trim and
// whole say (see checks.Inventory).
func loadSnapshot(dir string, maxDocument int, trim checks.TrimMode, whole map[string]bool) (*checks.Inventory, SnapshotStats, error) {
	if maxDocument <= 0 {
		maxDocument = MaxDocumentSize
	}
	var stats SnapshotStats
	inv := &checks.Inventory{Trim: trim, WholeKinds: whole}
	var files []string
	var sizes []int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			// A directory that cannot be read is reported, not the end.
			stats.Problems = append(stats.Problems, fmt.Sprintf("%s: cannot read: %v; skipped", path, err))
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".yaml", ".yml", ".json":
			if d.IsDir() {
				return nil
			}
			// A named pipe would block the scan for ever on open, a
			// device would read without end: only regular files, also
			// through a symlink, are read.
			info, err := os.Stat(path)
			if err != nil {
				stats.Problems = append(stats.Problems, fmt.Sprintf("%s: cannot read: %v; skipped", path, err))
				return nil
			}
			if !info.Mode().IsRegular() {
				stats.Problems = append(stats.Problems, fmt.Sprintf("%s: not a regular file (%s); skipped", path, fileType(info.Mode())))
				return nil
			}
			files = append(files, path)
			sizes = append(sizes, info.Size())
		}
		return nil
	})
	if err != nil {
		return nil, stats, fmt.Errorf("read snapshot: %w", err)
	}
	if len(files) == 0 && len(stats.Problems) == 0 {
		return nil, stats, fmt.Errorf("read snapshot: no .yaml, .yml or .json files in %s", dir)
	}
	slices.Sort(files)
	// Files decode in parallel, each into its own inventory, and are merged
	// in file order as they come, so the result does not depend on
	// scheduling. A file's slot frees when its inventory is merged, not
	// when it is decoded: at most GOMAXPROCS files' inventories exist
	// apart from the merged one, whatever order they finish in. (Holding
	// every file's until the last was decoded doubled the peak heap.)
	type result struct {
		inv   *checks.Inventory
		stats SnapshotStats
		err   error
	}
	results := make([]chan result, len(files))
	for i := range results {
		results[i] = make(chan result, 1)
	}
	slots := make(chan struct{}, goruntime.GOMAXPROCS(0))
	// What the files merged so far held, for sizing the next ones.
	type sofar struct {
		counts []int
		bytes  int64
	}
	var merged atomic.Pointer[sofar]
	go func() {
		for i, path := range files {
			slots <- struct{}{}
			seen := merged.Load()
			go func() {
				r := result{inv: &checks.Inventory{Trim: trim, WholeKinds: whole}}
				if seen != nil && seen.bytes > 0 {
					r.inv.Expect(seen.counts, float64(sizes[i])/float64(seen.bytes))
				}
				f, err := os.Open(path)
				if err != nil {
					r.stats.Problems = append(r.stats.Problems, fmt.Sprintf("%s: cannot read: %v; skipped", path, err))
				} else {
					r.err = decodeManifests(f, path, r.inv, &r.stats, maxDocument)
					f.Close()
				}
				results[i] <- r
			}()
		}
	}()
	var total, done int64
	for _, n := range sizes {
		total += n
	}
	var firstErr error
	for i := range files {
		r := <-results[i]
		<-slots
		if firstErr != nil {
			continue // the rest is taken only to free the slots
		}
		if r.err != nil {
			firstErr = r.err
			continue
		}
		// Once a tenth of the bytes is in, the kinds' slices grow at once
		// to what the bytes still to come should hold, not in many small
		// steps; an estimate from fewer files would overshoot the kinds
		// that come first.
		done += sizes[i]
		scale := 1.0
		if done*10 >= total && done > 0 {
			scale = float64(total) / float64(done)
		}
		inv.MergeExpecting(r.inv, scale)
		merged.Store(&sofar{counts: inv.Counts(), bytes: done})
		stats.Files++
		stats.Objects += r.stats.Objects
		stats.Skipped += r.stats.Skipped
		stats.Problems = append(stats.Problems, r.stats.Problems...)
		stats.Warnings = append(stats.Warnings, r.stats.Warnings...)
	}
	if firstErr != nil {
		return nil, stats, firstErr
	}
	return inv, stats, nil
}

// LoadSnapshotFile reads one manifest file into a new inventory.
func LoadSnapshotFile(path string) (*checks.Inventory, SnapshotStats, error) {
	var stats SnapshotStats
	f, err := os.Open(path)
	if err != nil {
		return nil, stats, fmt.Errorf("read snapshot: %w", err)
	}
	defer f.Close()
	inv := &checks.Inventory{}
	err = decodeManifests(f, path, inv, &stats, MaxDocumentSize)
	stats.Files = 1
	return inv, stats, err
}

// DecodeManifests decodes the YAML or JSON documents of r into inv; name
// is used in problem reports.
func DecodeManifests(r io.Reader, name string, inv *checks.Inventory) (SnapshotStats, error) {
	var stats SnapshotStats
	err := decodeManifests(r, name, inv, &stats, MaxDocumentSize)
	return stats, err
}

// decodeManifests decodes every document of r. What it cannot read (a
// document that does not decode, one over MaxDocumentSize, the rest of a
// file that fails mid-way) is a problem in stats, with where and why; it
// returns an error only for what no later document could escape.
func decodeManifests(r io.Reader, name string, inv *checks.Inventory, stats *SnapshotStats, maxDocument int) error {
	var scratch []byte // each document's JSON, in turn
	err := splitDocuments(r, maxDocument, func(doc []byte, line int) {
		warnings := len(stats.Warnings)
		if err := decodeDocument(doc, fmt.Sprintf("%s:%d", name, line), inv, stats, &scratch); err != nil {
			stats.Problems = append(stats.Problems, fmt.Sprintf("%s:%d: %v", name, line, err))
		}
		for i := warnings; i < len(stats.Warnings); i++ {
			stats.Warnings[i] = fmt.Sprintf("%s:%d: %s", name, line, stats.Warnings[i])
		}
	}, func(line int, problem string) {
		stats.Problems = append(stats.Problems, fmt.Sprintf("%s:%d: %s", name, line, problem))
	})
	if err != nil {
		stats.Problems = append(stats.Problems, fmt.Sprintf("%s: cannot read on: %v; the rest of the file is skipped", name, err))
	}
	return nil
}

// splitDocuments calls fn with each YAML document of r and the line it
// starts on; the document's bytes are valid until fn returns. Documents are separated by lines that start with "---". A
// document over MaxDocumentSize is not kept: skipped is told where it
// starts, and reading goes on at the next separator. Lines are read in
// pieces, so no line is too long to read past. It returns an error only
// when r fails.
func splitDocuments(r io.Reader, maxDocument int, fn func(doc []byte, line int), skipped func(line int, problem string)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var doc bytes.Buffer
	start, line := 1, 0
	tooLarge := false
	flush := func() {
		switch {
		case tooLarge:
			skipped(start, fmt.Sprintf("document larger than %d bytes (--max-document-size); skipped", maxDocument))
		case len(bytes.TrimSpace(doc.Bytes())) > 0:
			fn(doc.Bytes(), start)
		}
		doc.Reset()
		tooLarge = false
	}
	for {
		text, err := readLine(br, maxDocument, func([]byte) { tooLarge = true })
		if err != nil && len(text) == 0 && !errors.Is(err, errLongLine) {
			if errors.Is(err, io.EOF) {
				break
			}
			flush()
			return err
		}
		line++
		if bytes.HasPrefix(text, []byte("---")) {
			flush()
			start = line + 1
			continue
		}
		if doc.Len() == 0 && len(bytes.TrimSpace(text)) == 0 && !tooLarge {
			start = line + 1
		}
		if !tooLarge {
			doc.Write(text)
			doc.WriteByte('\n')
			if doc.Len() > maxDocument {
				tooLarge = true
				doc.Reset()
			}
		}
		if err != nil && !errors.Is(err, errLongLine) {
			if errors.Is(err, io.EOF) {
				break // the last line, without a newline
			}
			flush()
			return err
		}
	}
	flush()
	return nil
}

// errLongLine: readLine returned the start of a line longer than its
// buffer; the rest was read and dropped.
var errLongLine = errors.New("line too long")

// readLine returns the next line of br without its newline. A line longer
// than MaxDocumentSize is read to its end without being kept: long is
// called, and the line's start is returned with errLongLine. At the end
// of br it returns the last line and io.EOF. The line is valid until the
// next read from br.
func readLine(br *bufio.Reader, maxDocument int, long func([]byte)) ([]byte, error) {
	var out []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if out == nil && !errors.Is(err, bufio.ErrBufferFull) && len(chunk) <= maxDocument {
			// The line in one piece, returned without a copy: the
			// caller is done with it before it reads on.
			return bytes.TrimRight(chunk, "\r\n"), err
		}
		if len(out)+len(chunk) <= maxDocument {
			out = append(out, chunk...)
		} else if out != nil || len(chunk) > 0 {
			long(out)
			// Drop the rest of the line without keeping it.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, err
			}
			return bytes.TrimRight(out[:min(len(out), 64)], "\r\n"), errLongLine
		}
		switch {
		case err == nil:
			return bytes.TrimRight(out, "\r\n"), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return bytes.TrimRight(out, "\r\n"), err
		}
	}
}

// fileType names a file mode that is not a regular file's.
func fileType(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m.IsDir():
		return "a directory"
	}
	return m.Type().String()
}

// decoder is strict: a misspelled or unknown field is reported instead of
// silently dropped, since a typo in a security setting hides a finding.
// toJSON passes JSON documents through and converts YAML ones: in one
// pass when they are in the block style manifests are written in, through
// yaml.v3's node tree otherwise.
func toJSON(doc []byte) ([]byte, error) {
	js, _, err := toJSONInto(doc, nil)
	return js, err
}

// toJSONInto is toJSON writing into buf where it can; inBuf says the
// result is buf's memory (grown perhaps), for the caller to reuse.
func toJSONInto(doc, buf []byte) (js []byte, inBuf bool, err error) {
	if trimmed := bytes.TrimSpace(doc); len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(trimmed) {
		return trimmed, false, nil
	}
	if need := len(doc) + len(doc)/4; cap(buf) < need {
		buf = make([]byte, 0, need)
	}
	if js, ok := fastYAMLToJSON(doc, buf[:0]); ok {
		return js, true, nil
	}
	js, err = yamlToJSON(doc)
	return js, false, err
}

// builtinKinds is the scheme snapshots decode with: client-go's built-in
// kinds, and only those. It is collect's own, not client-go's
// scheme.Scheme, into which any package linked into the binary may
// register more (the Helm SDK, which the chart's tests link, registers
// CustomResourceDefinition there when it starts); that would change what
// a snapshot decodes and reports.
var builtinKinds = func() *runtime.Scheme {
	s := runtime.NewScheme()
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	utilruntime.Must(scheme.AddToScheme(s))
	return s
}()

var decoder = serializer.NewCodecFactory(builtinKinds, serializer.EnableStrict).UniversalDeserializer()

// upgrades maps "apiVersion Kind" of the workload and policy versions that
// Kubernetes removed to the version fleetscan reads the kind in: their
// pod templates and the fields the checks read sit at the same paths, so
// such a manifest is checked like a current one instead of being
// skipped, and NS-008 reports the version it is written in.
var upgrades = map[string]string{
	"extensions/v1beta1 Deployment": "apps/v1", "apps/v1beta1 Deployment": "apps/v1", "apps/v1beta2 Deployment": "apps/v1",
	"extensions/v1beta1 DaemonSet": "apps/v1", "apps/v1beta2 DaemonSet": "apps/v1",
	"extensions/v1beta1 ReplicaSet": "apps/v1", "apps/v1beta2 ReplicaSet": "apps/v1",
	"apps/v1beta1 StatefulSet": "apps/v1", "apps/v1beta2 StatefulSet": "apps/v1",
	"batch/v1beta1 CronJob": "batch/v1", "batch/v2alpha1 CronJob": "batch/v1",
	"policy/v1beta1 PodDisruptionBudget": "policy/v1",
	// autoscaling/v2beta2 is v2 under another name; autoscaling/v1, still
	// served, keeps its CPU target in a field of its own, which
	// v1HorizontalPodAutoscaler writes as v2's metric.
	"autoscaling/v2beta2 HorizontalPodAutoscaler": "autoscaling/v2",
	"autoscaling/v1 HorizontalPodAutoscaler":      "autoscaling/v2",
	"extensions/v1beta1 NetworkPolicy":            "networking.k8s.io/v1",
	"extensions/v1beta1 Ingress":                  "networking.k8s.io/v1",
	"networking.k8s.io/v1beta1 Ingress":           "networking.k8s.io/v1",
	"rbac.authorization.k8s.io/v1beta1 Role":      "rbac.authorization.k8s.io/v1", "rbac.authorization.k8s.io/v1beta1 ClusterRole": "rbac.authorization.k8s.io/v1",
	"rbac.authorization.k8s.io/v1beta1 RoleBinding": "rbac.authorization.k8s.io/v1", "rbac.authorization.k8s.io/v1beta1 ClusterRoleBinding": "rbac.authorization.k8s.io/v1",
	"rbac.authorization.k8s.io/v1alpha1 Role": "rbac.authorization.k8s.io/v1", "rbac.authorization.k8s.io/v1alpha1 ClusterRole": "rbac.authorization.k8s.io/v1",
	"rbac.authorization.k8s.io/v1alpha1 RoleBinding": "rbac.authorization.k8s.io/v1", "rbac.authorization.k8s.io/v1alpha1 ClusterRoleBinding": "rbac.authorization.k8s.io/v1",
	// admissionregistration.k8s.io/v1beta1's webhooks default otherwise
	// than v1's (failurePolicy Ignore, not Fail): v1beta1Webhooks writes
	// its defaults out before the document is read as v1.
	"admissionregistration.k8s.io/v1beta1 ValidatingWebhookConfiguration": "admissionregistration.k8s.io/v1",
	"admissionregistration.k8s.io/v1beta1 MutatingWebhookConfiguration":   "admissionregistration.k8s.io/v1",
}

// v1HorizontalPodAutoscaler moves an autoscaling/v1 HPA's
// targetCPUUtilizationPercentage into v2's metrics.
func v1HorizontalPodAutoscaler(doc map[string]any) {
	spec, _ := doc["spec"].(map[string]any)
	if spec == nil {
		return
	}
	if cpu, ok := spec["targetCPUUtilizationPercentage"]; ok {
		delete(spec, "targetCPUUtilizationPercentage")
		spec["metrics"] = []any{map[string]any{"type": "Resource", "resource": map[string]any{
			"name": "cpu", "target": map[string]any{"type": "Utilization", "averageUtilization": cpu}}}}
	}
}

// v1beta1Webhooks sets, on each webhook of an admissionregistration
// v1beta1 configuration, the v1beta1 defaults of the fields it leaves
// out, where v1 would default them otherwise.
func v1beta1Webhooks(doc map[string]any) {
	webhooks, _ := doc["webhooks"].([]any)
	for _, w := range webhooks {
		hook, ok := w.(map[string]any)
		if !ok {
			continue
		}
		for field, def := range map[string]any{
			"failurePolicy": "Ignore", "matchPolicy": "Exact", "sideEffects": "Unknown",
			"timeoutSeconds": 30, "admissionReviewVersions": []any{"v1beta1"},
		} {
			if _, set := hook[field]; !set {
				hook[field] = def
			}
		}
	}
}

// upgrade rewrites a document in a removed version (see upgrades) to the
// current one; it returns the version the document was written in, or ""
// when it needed no rewrite.
func upgrade(js []byte) ([]byte, string, error) {
	// Every removed version is a beta or an alpha: most documents are
	// passed on without being parsed a second time.
	if !bytes.Contains(js, []byte("beta")) && !bytes.Contains(js, []byte("alpha")) && !bytes.Contains(js, []byte("autoscaling/v1")) {
		return js, "", nil
	}
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if json.Unmarshal(js, &tm) != nil {
		return js, "", nil // the decoder says what is wrong
	}
	current, ok := upgrades[tm.APIVersion+" "+tm.Kind]
	if !ok {
		return js, "", nil
	}
	var doc map[string]any
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, "", err
	}
	doc["apiVersion"] = current
	switch {
	case strings.HasPrefix(tm.APIVersion, "admissionregistration.k8s.io/"):
		v1beta1Webhooks(doc)
	case tm.APIVersion == "autoscaling/v1":
		v1HorizontalPodAutoscaler(doc)
		tm.APIVersion = "" // still served: not a removed version for NS-008
	}
	out, err := json.Marshal(doc)
	return out, tm.APIVersion, err
}

// decodeDocument decodes one YAML or JSON document into inv, noting where
// it is defined; what it cannot read is its error.
//
// scratch, when not nil, is a buffer for the document's JSON, reused from
// one document to the next: nothing decoded keeps the JSON's memory (the
// types copy what they read), and a buffer a document was 13% of what a
// scan allocated (TestDecodeKeepsNoBuffer).
func decodeDocument(doc []byte, location string, inv *checks.Inventory, stats *SnapshotStats, scratch *[]byte) error {
	var buf []byte
	if scratch != nil {
		buf = *scratch
	}
	js, inBuf, err := toJSONInto(doc, buf)
	if err != nil {
		return fmt.Errorf("not YAML or JSON: %w", err)
	}
	if inBuf && scratch != nil {
		*scratch = js[:0]
	}
	if string(bytes.TrimSpace(js)) == "null" {
		return nil // only comments
	}
	js, writtenAs, err := upgrade(js)
	if err != nil {
		return err
	}
	obj, ok := decodeTyped(js)
	if !ok {
		obj, _, err = decoder.Decode(js, nil, nil)
	}
	if err != nil && obj != nil && runtime.IsStrictDecodingError(err) {
		// The object decoded; keep it, and say what was ignored.
		stats.Warnings = append(stats.Warnings, fmt.Sprintf("%s %s/%s: %v", obj.GetObjectKind().GroupVersionKind().Kind, namespaceOf(obj), nameOf(obj), err))
		err = nil
	}
	if err != nil && !runtime.IsNotRegisteredError(err) {
		if runtime.IsMissingKind(err) || runtime.IsMissingVersion(err) {
			return errors.New("not a Kubernetes object: apiVersion and kind are required")
		}
		return err
	}
	if list, ok := obj.(*corev1.List); ok && err == nil {
		for i, item := range list.Items {
			if err := decodeDocument(item.Raw, location, inv, stats, nil); err != nil {
				return fmt.Errorf("items[%d]: %w", i, err)
			}
		}
		return nil
	}
	if err == nil {
		if m, ok := obj.(metav1.Object); ok && m.GetNamespace() == "" && checks.Namespaced(obj.GetObjectKind().GroupVersionKind().Kind) {
			// kubectl apply puts what names no namespace in the default
			// one: it is judged where it would land.
			m.SetNamespace(metav1.NamespaceDefault)
		}
		if inv.Add(obj) {
			record(obj, location, writtenAs, inv, stats)
			return nil
		}
	}
	// A kind fleetscan has no type for, or one no check reads: it is
	// still checked as a workload when it runs pods from a template, and
	// listed as unchecked when it does not.
	templated, unchecked, err := generic(js, location, err != nil)
	if err != nil {
		return err
	}
	if templated == nil {
		stats.Skipped++
		inv.Unchecked = append(inv.Unchecked, unchecked)
		return nil
	}
	if templated.Namespace == "" {
		templated.Namespace = metav1.NamespaceDefault
	}
	inv.Add(templated)
	record(templated, location, writtenAs, inv, stats)
	return nil
}

// record notes where an object the inventory took is defined.
func record(obj runtime.Object, location, writtenAs string, inv *checks.Inventory, stats *SnapshotStats) {
	stats.Objects++
	if inv.Locations == nil {
		inv.Locations = map[string]string{}
	}
	key := obj.GetObjectKind().GroupVersionKind().Kind + "/" + namespaceOf(obj) + "/" + nameOf(obj)
	inv.Locations[key] = location
	if writtenAs != "" {
		if inv.WrittenAs == nil {
			inv.WrittenAs = map[string]string{}
		}
		inv.WrittenAs[key] = writtenAs
	}
}

// generic reads a document of a kind the inventory does not hold as a
// checks.TemplatedObject when it has a pod template; otherwise it returns
// why it is not checked. unknown says the kind has no Go type here.
func generic(js []byte, location string, unknown bool) (*checks.TemplatedObject, catalog.Unchecked, error) {
	var doc map[string]any
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, catalog.Unchecked{}, err
	}
	templated, ok, err := checks.Templated(doc)
	if err != nil || ok {
		return templated, catalog.Unchecked{}, err
	}
	u := catalog.Unchecked{Location: location, Reason: catalog.ReasonNoChecks}
	if unknown {
		u.Reason = catalog.ReasonUnknown
	}
	u.APIVersion, _ = doc["apiVersion"].(string)
	u.Kind, _ = doc["kind"].(string)
	if meta, ok := doc["metadata"].(map[string]any); ok {
		u.Namespace, _ = meta["namespace"].(string)
		u.Name, _ = meta["name"].(string)
	}
	return nil, u, nil
}
