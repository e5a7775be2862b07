package worker

import (
	"k8s.io/client-go/kubernetes"

	"github.com/fleetscan/fleetscan/worker/internal/collect"
)

// DefaultPageSize is how many objects one List call asks for.
const DefaultPageSize = collect.DefaultPageSize

// KubeSource reads a live cluster through client, listing pageSize objects
// per call; warn, if not nil, receives what the collector had to work
// around (a kind listed again after its continue token expired).
func KubeSource(client kubernetes.Interface, pageSize int64, warn func(problem string)) Source {
	return &collect.Kube{Client: client, PageSize: pageSize, Warn: warn}
}

// SnapshotSource reads a directory of manifests for every job; warn
// receives the objects that decoded with unknown or duplicate fields, as
// "file:line: ..."; what could not be read is in the inventory's
// Problems, and so in the job's result.
func SnapshotSource(dir string, warn func(problem string), opts ...SnapshotOption) Source {
	s := &collect.Snapshot{Dir: dir, Warn: warn}
	for _, o := range opts {
		o(s)
	}
	return s
}

// DefaultMaxDocumentSize bounds one manifest document of a snapshot
// unless WithMaxDocumentSize says otherwise.
const DefaultMaxDocumentSize = collect.MaxDocumentSize

// SnapshotOption tunes SnapshotSource.
type SnapshotOption func(*collect.Snapshot)

// WithMaxDocumentSize bounds one manifest document (default 16 MiB); a
// larger one is reported with its file and line and skipped, and the
// rest is scanned.
func WithMaxDocumentSize(n int) SnapshotOption {
	return func(s *collect.Snapshot) { s.MaxDocument = n }
}
