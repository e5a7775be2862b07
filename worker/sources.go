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
func SnapshotSource(dir string, warn func(problem string)) Source {
	return &collect.Snapshot{Dir: dir, Warn: warn}
}
