package worker

import (
	"k8s.io/client-go/kubernetes"

	"github.com/fleetscan/fleetscan/worker/internal/collect"
)

// DefaultPageSize is how many objects one List call asks for.
const DefaultPageSize = collect.DefaultPageSize

// KubeSource reads a live cluster through client, listing pageSize objects
// per call.
func KubeSource(client kubernetes.Interface, pageSize int64) Source {
	return &collect.Kube{Client: client, PageSize: pageSize}
}

// SnapshotSource reads a directory of manifests for every job; warn
// receives the documents it had to skip, as "file:line: reason".
func SnapshotSource(dir string, warn func(problem string)) Source {
	return &collect.Snapshot{Dir: dir, Warn: warn}
}
