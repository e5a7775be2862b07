package checks

import (
	"context"
	"fmt"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
	"github.com/fleetscan/fleetscan/worker/catalog"
	"github.com/fleetscan/fleetscan/worker/policy"
)

// Resource identifies the object a finding is about, and carries what the
// engine needs of the object besides: its annotations, for exemptions.
type Resource struct {
	catalog.Resource

	// annotations of the object, for exemptions; not part of its identity.
	annotations map[string]string
}

// resourceOf identifies an object by its metadata.
func resourceOf(apiVersion, kind string, m *metav1.ObjectMeta) Resource {
	return Resource{Resource: catalog.Resource{APIVersion: apiVersion, Kind: kind, Namespace: m.Namespace, Name: m.Name}, annotations: m.Annotations}
}

// Annotations that exempt an object from checks. The finding is still
// reported, as suppressed with the reason, never dropped.
const (
	AnnotationExempt       = "fleetscan.io/exempt"        // comma-separated check ids
	AnnotationExemptReason = "fleetscan.io/exempt-reason" // why; shown with the finding
)

// exemption returns the reason the object is exempt from check id, if it
// is.
func (r Resource) exemption(id string) (string, bool) {
	list, ok := r.annotations[AnnotationExempt]
	if !ok {
		return "", false
	}
	for _, item := range strings.Split(list, ",") {
		if strings.EqualFold(strings.TrimSpace(item), id) {
			reason := strings.TrimSpace(r.annotations[AnnotationExemptReason])
			if reason == "" {
				reason = "exempted by the " + AnnotationExempt + " annotation, no reason given"
			}
			return reason, true
		}
	}
	return "", false
}

// Finding is one failed check on one resource.
type Finding struct {
	CheckID  string
	Severity fleetscanv1.Severity
	Category string
	Party    fleetscanv1.ResponsibleParty
	Resource catalog.Resource
	Message  string
	// Suppressed holds the reason when the object is exempt from the check;
	// the finding is reported all the same.
	Suppressed string
}

// NotAssessable says that a check could not be evaluated on a cluster, and
// why: it needs data the API does not give (node files, a registry), or
// the cluster hides it (a managed control plane). It is never a pass.
type NotAssessable struct {
	CheckID string
	Reason  string
}

// selected returns the checks of sel, built-in and custom.
func selected(sel policy.Selection, custom []*customCheck) []*Check {
	all := registry
	if len(custom) > 0 {
		all = slices.Clone(registry)
		for _, c := range custom {
			all = append(all, c.check())
		}
	}
	var out []*Check
	for _, c := range all {
		if sel.Selects(c.ID) {
			out = append(out, c)
		}
	}
	return out
}

// Run runs the selected checks over the inventory and hands every finding
// to emit as it is produced, so that a caller can stream them out instead
// of holding them. It returns the checks that could not be assessed on this
// inventory. It stops at the first error of emit or of ctx and returns it.
func Run(ctx context.Context, inv *Inventory, sel policy.Selection, emit func(Finding) error) ([]NotAssessable, error) {
	compiled, err := sel.Compile()
	if err != nil {
		return nil, err
	}
	custom := make([]*customCheck, len(compiled))
	for i, c := range compiled {
		custom[i] = &customCheck{Custom: c}
	}
	var skipped []NotAssessable
	var runs []*Check
	for _, c := range selected(sel, custom) {
		reason := c.unassessable(inv)
		if reason == "" && c.needs != nil {
			reason = c.needs(sel)
		}
		if reason != "" {
			skipped = append(skipped, NotAssessable{CheckID: c.ID, Reason: reason})
			continue
		}
		runs = append(runs, c)
	}
	if err := run(ctx, inv, sel, runs, emit); err != nil {
		return nil, err
	}
	for _, c := range custom {
		if na, ok := c.unassessed(); ok {
			skipped = append(skipped, na)
		}
	}
	return skipped, nil
}

func run(ctx context.Context, inv *Inventory, sel policy.Selection, selected []*Check, emit func(Finding) error) error {
	r := &reporter{emit: emit, sel: &sel, pssCache: &pssCache{}}
	if len(sel.Namespaces) > 0 {
		r.namespaces = make(map[string]bool, len(sel.Namespaces))
		for _, ns := range sel.Namespaces {
			r.namespaces[ns] = true
		}
	}
	var perWorkload []*Check
	for _, c := range selected {
		if c.inventory == nil {
			perWorkload = append(perWorkload, c)
		}
	}
	// The per-workload checks start on the other cores while this
	// goroutine runs the checks that read the whole inventory.
	pool := startWorkloadPool(ctx, r, perWorkload, r.workloads(inv))
	defer pool.stop()
	for _, c := range selected {
		if c.inventory != nil {
			r.check = c
			c.inventory(r, inv)
			if r.err != nil {
				return r.err
			}
		}
	}
	if err := pool.drain(r); err != nil {
		return err
	}
	return ctx.Err()
}

// checkWorkloads runs the per-workload checks on ws.
func (r *reporter) checkWorkloads(ctx context.Context, checks []*Check, ws []Workload) error {
	for _, w := range ws {
		if err := ctx.Err(); err != nil {
			return err
		}
		if r.namespaces != nil && !r.namespaces[w.Namespace] {
			continue
		}
		containers := w.Containers()
		for _, c := range checks {
			r.check = c
			if c.workload != nil {
				c.workload(r, &w)
			}
			if c.container != nil {
				for i := range containers {
					c.container(r, &w, &containers[i])
				}
			}
			if r.err != nil {
				return r.err
			}
		}
	}
	return nil
}

// chunkWorkloads is how many workloads a pool's task checks: enough to
// make handing it over cheap, few enough that the findings it holds until
// their turn stay small.
const chunkWorkloads = 128

// chunksAhead bounds how many checked chunks wait to be emitted.
const chunksAhead = 4

// workloadPool runs the per-workload checks on GOMAXPROCS-1 helpers, in
// chunks of workloads claimed in order, while drain emits every chunk's
// findings in that order: the report is the same as from one goroutine,
// byte for byte. drain's goroutine checks itself every chunk no helper
// has claimed, emitting straight through; a helper's chunk waits in
// memory for its turn, and helpers stop claiming when chunksAhead of them
// wait.
type workloadPool struct {
	ctx     context.Context
	checks  []*Check
	chunks  [][]Workload
	results []chunkResult
	next    atomic.Int64 // the first chunk not claimed
	tokens  chan struct{}
	free    chan []Finding // emitted chunks' buffers, for helpers to reuse
	quit    chan struct{}
	wg      sync.WaitGroup
}

type chunkResult struct {
	findings []Finding
	err      error
	done     chan struct{}
}

func startWorkloadPool(ctx context.Context, r *reporter, checks []*Check, workloads []Workload) *workloadPool {
	p := &workloadPool{ctx: ctx, checks: checks, tokens: make(chan struct{}, chunksAhead), free: make(chan []Finding, chunksAhead), quit: make(chan struct{})}
	if len(checks) == 0 {
		return p
	}
	for ws := range slices.Chunk(workloads, chunkWorkloads) {
		p.chunks = append(p.chunks, ws)
	}
	p.results = make([]chunkResult, len(p.chunks))
	for i := range p.results {
		p.results[i].done = make(chan struct{})
	}
	for range min(goruntime.GOMAXPROCS(0)-1, len(p.chunks)) {
		p.wg.Add(1)
		go p.help(r)
	}
	return p
}

// help claims chunks and checks them into memory until none is left or
// the pool stops.
func (p *workloadPool) help(r *reporter) {
	defer p.wg.Done()
	res := &chunkResult{}
	hr := &reporter{sel: r.sel, namespaces: r.namespaces, workloadList: r.workloadList, pssCache: r.pssCache,
		emit: func(f Finding) error { res.findings = append(res.findings, f); return nil }}
	for {
		select {
		case p.tokens <- struct{}{}:
		case <-p.quit:
			return
		}
		i := p.next.Add(1) - 1
		if i >= int64(len(p.chunks)) {
			return
		}
		res = &p.results[i]
		select {
		case res.findings = <-p.free:
		default:
		}
		res.err = hr.checkWorkloads(p.ctx, p.checks, p.chunks[i])
		hr.err = nil
		close(res.done)
	}
}

// drain emits the chunks' findings in order through r, checking the
// chunks no helper claimed itself.
func (p *workloadPool) drain(r *reporter) error {
	for i := range p.chunks {
		if p.next.CompareAndSwap(int64(i), int64(i)+1) {
			if err := r.checkWorkloads(p.ctx, p.checks, p.chunks[i]); err != nil {
				return err
			}
			continue
		}
		res := &p.results[i]
		select {
		case <-res.done:
		case <-p.ctx.Done():
			return p.ctx.Err()
		}
		if res.err != nil {
			return res.err
		}
		for _, f := range res.findings {
			if err := r.emit(f); err != nil {
				return err
			}
		}
		clear(res.findings)
		select {
		case p.free <- res.findings[:0]:
		default:
		}
		res.findings = nil
		<-p.tokens
	}
	return nil
}

// stop ends the helpers and waits for them.
func (p *workloadPool) stop() {
	close(p.quit)
	p.wg.Wait()
}

// reporter turns a check's observations into Findings for one check at a
// time.
type reporter struct {
	check      *Check
	sel        *policy.Selection
	emit       func(Finding) error
	namespaces map[string]bool
	err        error

	// Per-run caches of what several checks compute alike.
	workloadList []Workload
	pssCache     *pssCache // shared by the run's reporters
	rbacView     *rbacView
}

// workloads lists the inventory's workloads once per run.
func (r *reporter) workloads(inv *Inventory) []Workload {
	if r.workloadList == nil {
		r.workloadList = inv.Workloads()
	}
	return r.workloadList
}

// report emits a finding of the current check at its default severity.
func (r *reporter) report(res Resource, subPath, format string, args ...any) {
	r.reportAt(r.check.meta.Severity, res, subPath, format, args...)
}

func (r *reporter) reportAt(sev fleetscanv1.Severity, res Resource, subPath, format string, args ...any) {
	if r.err != nil {
		return
	}
	if res.Namespace != "" && r.namespaces != nil && !r.namespaces[res.Namespace] {
		return
	}
	res.SubPath = subPath
	f := Finding{
		CheckID:  r.check.ID,
		Severity: sev,
		Category: r.check.meta.Category,
		Party:    r.check.meta.Party,
		Resource: res.Resource,
		Message:  catalog.CapMessage(fmt.Sprintf(format, args...)),
	}
	f.Suppressed, _ = res.exemption(r.check.ID)
	r.err = r.emit(f)
}
