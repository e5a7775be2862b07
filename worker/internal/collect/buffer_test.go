package collect

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/fleetscan/fleetscan/worker/checks"
	"github.com/fleetscan/fleetscan/worker/checks/checkstest"
)

// TestDecodeKeepsNoBuffer: decodeManifests hands decodeDocument the split
// document and one JSON buffer, both overwritten by the next document.
// Decoding every manifest of the repository and a generated cluster with
// both overwritten after each document gives the inventory that decoding
// each document from memory of its own gives: nothing decoded points
// into them.
func TestDecodeKeepsNoBuffer(t *testing.T) {
	generated := t.TempDir()
	if err := checkstest.WriteSnapshot(generated, checkstest.Objects(1000), 250); err != nil {
		t.Fatal(err)
	}
	for _, trim := range []checks.TrimMode{checks.TrimNone, checks.TrimUnread} {
		own, reused := &checks.Inventory{Trim: trim}, &checks.Inventory{Trim: trim}
		var ownStats, reusedStats SnapshotStats
		var ownErrs, reusedErrs []string
		var scratch []byte
		docs := 0
		for _, root := range []string{"../../../deploy", "../../checks/testdata", "testdata", generated} {
			err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() || !slices.Contains([]string{".yaml", ".yml", ".json"}, filepath.Ext(path)) {
					return err
				}
				f, err := os.Open(path)
				if err != nil {
					return err
				}
				defer f.Close()
				return splitDocuments(f, MaxDocumentSize, func(doc []byte, line int) {
					docs++
					if err := decodeDocument(slices.Clone(doc), path, own, &ownStats, nil); err != nil {
						ownErrs = append(ownErrs, err.Error())
					}
					if err := decodeDocument(doc, path, reused, &reusedStats, &scratch); err != nil {
						reusedErrs = append(reusedErrs, err.Error())
					}
					for i := range doc {
						doc[i] = '#'
					}
					for i, s := 0, scratch[:cap(scratch)]; i < len(s); i++ {
						s[i] = '#'
					}
				}, func(int, string) {})
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if docs < 1000 || own.Len() < 1000 {
			t.Fatalf("trim %d: %d documents, %d objects: too few to tell", trim, docs, own.Len())
		}
		if !reflect.DeepEqual(own, reused) {
			for i, v := 0, reflect.ValueOf(own).Elem(); i < v.NumField(); i++ {
				if f := v.Type().Field(i); f.IsExported() && !reflect.DeepEqual(v.Field(i).Interface(), reflect.ValueOf(reused).Elem().Field(i).Interface()) {
					t.Errorf("trim %d: %s differ once the buffers are overwritten", trim, f.Name)
				}
			}
			t.Fatalf("trim %d: the inventories differ", trim)
		}
		if !reflect.DeepEqual(ownStats, reusedStats) || !slices.Equal(ownErrs, reusedErrs) {
			t.Errorf("trim %d: stats or errors differ: %+v %q / %+v %q", trim, ownStats, ownErrs, reusedStats, reusedErrs)
		}
	}
}
