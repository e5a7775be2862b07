package catalog

import (
	"cmp"
	"errors"
	"regexp"
	"slices"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// ErrUnknownCheck is returned for a check id that is not in the catalog.
var ErrUnknownCheck = errors.New("unknown check")

// Categories of the catalog.
const (
	CategoryPodSecurity     = "pod-security"
	CategoryImages          = "images"
	CategoryResources       = "resources"
	CategoryServiceAccounts = "service-accounts"
	CategorySecrets         = "secrets"
	CategoryRBAC            = "rbac"
	CategoryNetwork         = "network"
	CategoryAdmission       = "admission"
	CategoryCluster         = "cluster"
	CategoryThirdParty      = "third-party"
	// CategoryControlPlane is the category of the control-plane flag checks.
	CategoryControlPlane = "control-plane"
	// CategoryNamespaces is the category of the checks of how namespaces
	// are set up and used.
	CategoryNamespaces = "namespaces"
	// CategoryPSS is the category of the Pod Security Standards checks.
	CategoryPSS = "pod-security-standards"
)

// Severities, for callers that compare findings with a threshold.
const (
	SeverityCritical = fleetscanv1.Severity_SEVERITY_CRITICAL
	SeverityHigh     = fleetscanv1.Severity_SEVERITY_HIGH
)

const (
	critical = fleetscanv1.Severity_SEVERITY_CRITICAL
	high     = fleetscanv1.Severity_SEVERITY_HIGH
	medium   = fleetscanv1.Severity_SEVERITY_MEDIUM
	low      = fleetscanv1.Severity_SEVERITY_LOW

	partyWorkload = fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_WORKLOAD
	partyPlatform = fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_PLATFORM
	partyProvider = fleetscanv1.ResponsibleParty_RESPONSIBLE_PARTY_PROVIDER
	// The provider runs the control plane: a managed one entirely, a
	// self-managed one by its platform team, which here is the provider
	// too.
	partyControlPlane = partyProvider
)

// Meta describes a check: what the catalog lists and a finding cites.
type Meta struct {
	ID          string
	Title       string
	Description string
	Severity    fleetscanv1.Severity
	Category    string
	Party       fleetscanv1.ResponsibleParty
	Remediation string
	// Frameworks cites the controls of other frameworks that this check
	// implements, e.g. "CIS 5.2.2", "NSA 1.2", "PSS Baseline: Privileged
	// Containers", "MITRE Privilege escalation".
	Frameworks []string
	// NotAssessable is set for checks that the Kubernetes API can never
	// answer (node files, registries): why. They are listed, never passed,
	// and have no implementation.
	NotAssessable string
}

var entries = func() []Meta {
	all := slices.Concat(podChecks, workloadChecks, podHardeningChecks, rbacRoleChecks, rbacBindingChecks, autoscalingChecks, networkChecks, resourceChecks, secretChecks, namespaceChecks, clusterChecks, thirdPartyChecks, flagChecks, hostChecks, pssChecks, registryChecks)
	slices.SortFunc(all, func(a, b Meta) int { return cmp.Compare(a.ID, b.ID) })
	for i := 1; i < len(all); i++ {
		if all[i].ID == all[i-1].ID {
			panic("catalog: duplicate check id " + all[i].ID)
		}
	}
	return all
}()

// All returns the catalog, ordered by id.
func All() []Meta { return slices.Clone(entries) }

// Lookup returns the catalog entry of a check id.
func Lookup(id string) (Meta, bool) {
	i, ok := slices.BinarySearchFunc(entries, id, func(m Meta, id string) int { return cmp.Compare(m.ID, id) })
	if !ok {
		return Meta{}, false
	}
	return entries[i], true
}

var customID = regexp.MustCompile(`^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$`)

// CustomID reports whether id has the form of a custom check's id:
// upper-case words joined by '-', e.g. ACME-001.
func CustomID(id string) bool { return customID.MatchString(id) }

// ValidID reports whether id is a built-in check's id or has the form of a
// custom check's.
func ValidID(id string) bool {
	_, builtin := Lookup(id)
	return builtin || CustomID(id)
}
