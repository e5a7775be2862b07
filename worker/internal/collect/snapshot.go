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
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/fleetscan/fleetscan/worker/checks"
)

// maxDocumentSize bounds one manifest document; larger ones are refused
// rather than read into memory.
const maxDocumentSize = 16 << 20

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
	var stats SnapshotStats
	inv := &checks.Inventory{}
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".yaml", ".yml", ".json":
			if !d.IsDir() {
				files = append(files, path)
			}
		}
		return nil
	})
	if err != nil {
		return nil, stats, fmt.Errorf("read snapshot: %w", err)
	}
	if len(files) == 0 {
		return nil, stats, fmt.Errorf("read snapshot: no .yaml, .yml or .json files in %s", dir)
	}
	slices.Sort(files)
	// Files decode in parallel, each into its own inventory, and are merged
	// in file order, so the result does not depend on scheduling.
	type result struct {
		inv   *checks.Inventory
		stats SnapshotStats
		err   error
	}
	results := make([]result, len(files))
	sem := make(chan struct{}, goruntime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, path := range files {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			r := &results[i]
			r.inv = &checks.Inventory{}
			f, err := os.Open(path)
			if err != nil {
				r.err = fmt.Errorf("read snapshot: %w", err)
				return
			}
			defer f.Close()
			r.err = decodeManifests(f, path, r.inv, &r.stats)
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r.err != nil {
			return nil, stats, r.err
		}
		inv.Merge(r.inv)
		stats.Files++
		stats.Objects += r.stats.Objects
		stats.Skipped += r.stats.Skipped
		stats.Problems = append(stats.Problems, r.stats.Problems...)
		stats.Warnings = append(stats.Warnings, r.stats.Warnings...)
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
	err = decodeManifests(f, path, inv, &stats)
	stats.Files = 1
	return inv, stats, err
}

// DecodeManifests decodes the YAML or JSON documents of r into inv; name
// is used in problem reports.
func DecodeManifests(r io.Reader, name string, inv *checks.Inventory) (SnapshotStats, error) {
	var stats SnapshotStats
	err := decodeManifests(r, name, inv, &stats)
	return stats, err
}

func decodeManifests(r io.Reader, name string, inv *checks.Inventory, stats *SnapshotStats) error {
	return splitDocuments(r, func(doc []byte, line int) {
		warnings := len(stats.Warnings)
		if err := decodeDocument(doc, fmt.Sprintf("%s:%d", name, line), inv, stats); err != nil {
			stats.Problems = append(stats.Problems, fmt.Sprintf("%s:%d: %v", name, line, err))
		}
		for i := warnings; i < len(stats.Warnings); i++ {
			stats.Warnings[i] = fmt.Sprintf("%s:%d: %s", name, line, stats.Warnings[i])
		}
	})
}

// splitDocuments calls fn with each YAML document of r and the line it
// starts on. Documents are separated by lines that start with "---".
func splitDocuments(r io.Reader, fn func(doc []byte, line int)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxDocumentSize)
	var doc bytes.Buffer
	start, line := 1, 0
	flush := func() {
		if len(bytes.TrimSpace(doc.Bytes())) > 0 {
			fn(slices.Clone(doc.Bytes()), start)
		}
		doc.Reset()
	}
	for sc.Scan() {
		line++
		text := sc.Bytes()
		if bytes.HasPrefix(text, []byte("---")) {
			flush()
			start = line + 1
			continue
		}
		if doc.Len() == 0 && len(bytes.TrimSpace(text)) == 0 {
			start = line + 1
		}
		doc.Write(text)
		doc.WriteByte('\n')
		if doc.Len() > maxDocumentSize {
			return fmt.Errorf("document at line %d is larger than %d bytes", start, maxDocumentSize)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	flush()
	return nil
}

// decoder is strict: a misspelled or unknown field is reported instead of
// silently dropped, since a typo in a security setting hides a finding.
// toJSON passes JSON documents through and converts YAML ones.
func toJSON(doc []byte) ([]byte, error) {
	if trimmed := bytes.TrimSpace(doc); len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(trimmed) {
		return trimmed, nil
	}
	return yamlToJSON(doc)
}

var decoder = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()

func decodeDocument(doc []byte, location string, inv *checks.Inventory, stats *SnapshotStats) error {
	js, err := toJSON(doc)
	if err != nil {
		return fmt.Errorf("not YAML or JSON: %w", err)
	}
	if string(bytes.TrimSpace(js)) == "null" {
		return nil // only comments
	}
	obj, _, err := decoder.Decode(js, nil, nil)
	if err != nil && obj != nil && runtime.IsStrictDecodingError(err) {
		// The object decoded; keep it, and say what was ignored.
		stats.Warnings = append(stats.Warnings, fmt.Sprintf("%s %s/%s: %v", obj.GetObjectKind().GroupVersionKind().Kind, namespaceOf(obj), nameOf(obj), err))
		err = nil
	}
	if err != nil {
		if runtime.IsNotRegisteredError(err) {
			stats.Skipped++
			return nil
		}
		if runtime.IsMissingKind(err) || runtime.IsMissingVersion(err) {
			return errors.New("not a Kubernetes object: apiVersion and kind are required")
		}
		return err
	}
	if list, ok := obj.(*corev1.List); ok {
		for i, item := range list.Items {
			if err := decodeDocument(item.Raw, location, inv, stats); err != nil {
				return fmt.Errorf("items[%d]: %w", i, err)
			}
		}
		return nil
	}
	if inv.Add(obj) {
		stats.Objects++
		if inv.Locations == nil {
			inv.Locations = map[string]string{}
		}
		inv.Locations[obj.GetObjectKind().GroupVersionKind().Kind+"/"+namespaceOf(obj)+"/"+nameOf(obj)] = location
	} else {
		stats.Skipped++
	}
	return nil
}
