package checks

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// secretChecks are about service accounts and where credentials live. They
// never read Secrets, and never report a value: a finding names the key and
// where it is.
var secretChecks = []*Check{
	{
		ID: "SA-003",
		inventory: func(r *reporter, inv *Inventory) {
			// Bindings to groups concern every service account, not the
			// default one: RBAC-015 and SA-005 look at those.
			var direct []binding
			for _, b := range r.rbac(inv).bindings {
				b.subjects = slices.DeleteFunc(slices.Clone(b.subjects), func(s rbacv1.Subject) bool { return s.Kind == rbacv1.GroupKind })
				direct = append(direct, b)
			}
			grants := defaultAccountBindings(direct)
			boundBy := func(ns string) []string {
				var bound []string
				for _, j := range grants[ns] {
					bound = append(bound, fmt.Sprintf("%s %q", direct[j].Kind, direct[j].qualifiedName()))
				}
				return bound
			}
			seen := map[string]bool{}
			for i := range inv.ServiceAccounts {
				sa := &inv.ServiceAccounts[i]
				if sa.Name != "default" {
					continue
				}
				seen[sa.Namespace] = true
				var problems []string
				if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
					problems = append(problems, "automounts its token")
				}
				if bound := boundBy(sa.Namespace); len(bound) > 0 {
					problems = append(problems, "is bound by "+strings.Join(bound, ", "))
				}
				if len(problems) > 0 {
					r.report(resourceOf("v1", "ServiceAccount", &sa.ObjectMeta), "", "the default service account of namespace %q %s", sa.Namespace, strings.Join(problems, " and "))
				}
			}
			// Kubernetes creates the default service account of every
			// namespace, so manifests seldom hold it: the bindings that
			// name it are judged all the same.
			for _, ns := range defaultAccountsNamed(direct) {
				if seen[ns] {
					continue
				}
				sa := metav1.ObjectMeta{Namespace: ns, Name: "default"}
				r.report(resourceOf("v1", "ServiceAccount", &sa), "", "the default service account of namespace %q is bound by %s", ns, strings.Join(boundBy(ns), ", "))
			}
		},
	},
	{
		ID: "SA-004",
		assessable: func(inv *Inventory) string {
			if len(inv.ServiceAccounts) == 0 {
				return "the inventory holds no ServiceAccounts: whether the ones pods name exist cannot be told"
			}
			return ""
		},
		inventory: func(r *reporter, inv *Inventory) {
			exists, seen := map[string]bool{}, map[string]bool{}
			for i := range inv.ServiceAccounts {
				sa := &inv.ServiceAccounts[i]
				exists[sa.Namespace+"/"+sa.Name] = true
				seen[sa.Namespace] = true
			}
			for _, w := range r.workloads(inv) {
				name := serviceAccountName(w.Spec)
				if name == "default" || !seen[w.Namespace] || exists[w.Namespace+"/"+name] {
					continue
				}
				r.report(w.Resource, "", "pods run as service account %q, which does not exist in namespace %q", name, w.Namespace)
			}
		},
	},
	{
		ID: "SEC-001",
		container: func(r *reporter, w *Workload, c *Container) {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					ref := e.ValueFrom.SecretKeyRef
					r.report(w.Resource, fmt.Sprintf("%s.env[%s]", c.Path, e.Name), "container %q reads key %q of Secret %q into environment variable %s", c.Name, ref.Key, ref.Name, e.Name)
				}
			}
			seen := map[string]bool{}
			for _, from := range containerSpec(w, c).EnvFrom {
				if from.SecretRef != nil && !seen[from.SecretRef.Name] {
					seen[from.SecretRef.Name] = true
					r.report(w.Resource, fmt.Sprintf("%s.envFrom[%s]", c.Path, from.SecretRef.Name), "container %q loads every key of Secret %q into its environment", c.Name, from.SecretRef.Name)
				}
			}
		},
	},
	{
		ID: "SEC-003",
		inventory: func(r *reporter, inv *Inventory) {
			for i := range inv.ConfigMaps {
				cm := &inv.ConfigMaps[i]
				res := resourceOf("v1", "ConfigMap", &cm.ObjectMeta)
				for _, key := range slices.Sorted(maps.Keys(cm.Data)) {
					if what := credentialIn(key, cm.Data[key]); what != "" {
						r.report(res, fmt.Sprintf("data[%s]", key), "ConfigMap %q key %q %s", cm.Name, key, what)
					}
				}
				for _, key := range slices.Sorted(maps.Keys(cm.BinaryData)) {
					if what := credentialIn(key, string(cm.BinaryData[key])); what != "" {
						r.report(res, fmt.Sprintf("binaryData[%s]", key), "ConfigMap %q key %q %s", cm.Name, key, what)
					}
				}
			}
			inv.eachObject(func(apiVersion, kind string, m metav1.Object, obj runtime.Object) {
				lastApplied(r, resourceOf(apiVersion, kind, objectMeta(m)), obj)
			})
		},
	},
	{
		ID: "SEC-005",
		inventory: func(r *reporter, inv *Inventory) {
			owners := inv.templateOwners()
			inv.eachObject(func(apiVersion, kind string, m metav1.Object, _ runtime.Object) {
				meta := objectMeta(m)
				if kind == "Pod" && controlledBy(meta, owners) {
					return // its annotations are its template's, reported there
				}
				annotationCredentials(r, resourceOf(apiVersion, kind, meta), "metadata", kind+" "+strconv.Quote(meta.Name), meta.Annotations)
			})
			for _, w := range r.workloads(inv) {
				if w.PodMeta != w.Meta {
					annotationCredentials(r, w.Resource, "spec.template.metadata", "the pod template of "+w.Kind+" "+strconv.Quote(w.Name), w.PodMeta.Annotations)
				}
			}
		},
	},
}

// annotationCredentials reports the annotations whose value holds a
// credential, at path.annotations[key]; what names the annotated object.
func annotationCredentials(r *reporter, res Resource, path, what string, annotations map[string]string) {
	for _, key := range slices.Sorted(maps.Keys(annotations)) {
		if key == corev1.LastAppliedConfigAnnotation {
			continue
		}
		value := annotations[key]
		found := credentialValue(value)
		if found == "" {
			if names := credentialAssignments(value); len(names) > 0 {
				found = "a configuration that sets " + strings.Join(names, ", ") + " to a literal value"
			}
		}
		if found != "" {
			r.report(res, fmt.Sprintf("%s.annotations[%s]", path, key), "annotation %q of %s holds %s", key, what, found)
		}
	}
}

// annotationLastApplied is where kubectl apply keeps the manifest it
// applied, values included.
const annotationLastApplied = "metadata.annotations[" + corev1.LastAppliedConfigAnnotation + "]"

// lastApplied reports the credentials of an object's last-applied
// configuration: the keys of any Secret manifest it embeds, and, for a
// ConfigMap, the credentials its data no longer shows.
func lastApplied(r *reporter, res Resource, obj runtime.Object) {
	applied := res.annotations[corev1.LastAppliedConfigAnnotation]
	if applied == "" {
		return
	}
	var doc any
	if json.Unmarshal([]byte(applied), &doc) != nil {
		return
	}
	seen := map[string]bool{}
	embeddedSecrets(doc, func(secret, field, key string) {
		sub := fmt.Sprintf("%s.%s[%s]", annotationLastApplied, field, key)
		if !seen[sub] {
			seen[sub] = true
			r.report(res, sub, "the last-applied-configuration annotation of %s %q embeds Secret %q with key %q", res.Kind, res.Name, secret, key)
		}
	})
	cm, ok := obj.(*corev1.ConfigMap)
	top, _ := doc.(map[string]any)
	if !ok || top["kind"] != "ConfigMap" {
		return
	}
	data, _ := top["data"].(map[string]any)
	for _, key := range slices.Sorted(maps.Keys(data)) {
		value, _ := data[key].(string)
		// What the data still holds is reported on the data.
		if what := credentialIn(key, value); what != "" && credentialIn(key, cm.Data[key]) == "" {
			r.report(res, fmt.Sprintf("%s.data[%s]", annotationLastApplied, key), "the last-applied-configuration annotation of ConfigMap %q still has key %q, which %s", cm.Name, key, what)
		}
	}
}

// embeddedSecrets calls fn for every key of every Secret manifest in an
// applied configuration, at any depth (a List's items, a template).
func embeddedSecrets(doc any, fn func(secret, field, key string)) {
	secretManifests(doc, func(secret map[string]any) {
		meta, _ := secret["metadata"].(map[string]any)
		name, _ := meta["name"].(string)
		for _, field := range []string{"data", "stringData"} {
			values, _ := secret[field].(map[string]any)
			for _, key := range slices.Sorted(maps.Keys(values)) {
				fn(name, field, key)
			}
		}
	})
}

// secretManifests calls fn with every Secret manifest in doc, at any
// depth, in a fixed order: map keys sorted, lists in order.
func secretManifests(doc any, fn func(secret map[string]any)) {
	switch v := doc.(type) {
	case map[string]any:
		if v["kind"] == "Secret" {
			fn(v)
			return
		}
		for _, key := range slices.Sorted(maps.Keys(v)) {
			secretManifests(v[key], fn)
		}
	case []any:
		for _, item := range v {
			secretManifests(item, fn)
		}
	}
}

// objectMeta returns the ObjectMeta of an inventory object.
func objectMeta(m metav1.Object) *metav1.ObjectMeta {
	return m.(metav1.ObjectMetaAccessor).GetObjectMeta().(*metav1.ObjectMeta)
}

// credentialIn says how a ConfigMap value looks like a credential, as a
// phrase that follows "key K", or "" when it does not. It never quotes the
// value.
func credentialIn(key, value string) string {
	if !strings.Contains(strings.TrimSpace(value), "\n") && credentialKey(key) && literalValue(value) {
		return "is named like a credential and holds a literal value"
	}
	if what := credentialValue(value); what != "" {
		return "holds " + what
	}
	if credentialFile.MatchString(key) && !strings.Contains(strings.ToLower(key), "trust") && strings.TrimSpace(value) != "" {
		return "is named like a private key or credential file"
	}
	if names := credentialAssignments(value); len(names) > 0 {
		return "sets " + strings.Join(names, ", ") + " to a literal value"
	}
	return ""
}

// credentialValue says what credential a value holds, whatever its name
// ("a private key", "a URL with a password"), or "". It never quotes the
// value.
func credentialValue(value string) string {
	for _, t := range credentialTokens {
		if t.re.MatchString(value) {
			return t.what
		}
	}
	for _, m := range urlPassword.FindAllStringSubmatch(value, -1) {
		if literalValue(m[1]) {
			return "a URL with a password"
		}
	}
	return ""
}

// credentialKey reports whether a ConfigMap key, or a key inside a
// configuration file, names a credential: SEC-002's credentialName, not as
// part of a longer word (tokenizer, secretary), and not naming where a
// credential is or how it behaves (password_file, token_url).
func credentialKey(name string) bool {
	if !mayNameCredential(name) || credentialKeyMetadata.MatchString(name) || nonSecretKey.MatchString(name) {
		return false
	}
	for _, loc := range credentialName.FindAllStringIndex(name, -1) {
		rest := strings.TrimPrefix(name[loc[1]:], "s") // secrets, tokens, credentials
		if rest == "" || !unicode.IsLower(rune(rest[0])) {
			return true
		}
	}
	return false
}

// credentialKeyMetadata extends SEC-002's credentialMetadata to the
// spellings of configuration files (db.password.file, passwordFile,
// token_url, secret-name).
var credentialKeyMetadata = regexp.MustCompile(`(?i)(file|files|path|dir|directory|name|names|ref|id|ttl|timeout|expiry|expiration|expires|lifetime|length|size|type|kind|header|url|uri|endpoint|host|port|policy|enabled|enable|mode|hint|issuer|audience|region|arn|provider|version|format|algorithm|count|days|seconds|interval)$`)

// literalValue reports whether a configuration value is a literal, rather
// than empty, a placeholder (${X}, {{ .Values.x }}, <password>, %(x)s,
// ****), a reference to a file, a YAML block or tag, a boolean or a number.
func literalValue(v string) bool {
	v = strings.Trim(strings.TrimSpace(v), `"'`)
	if v == "" || strings.Trim(v, "*xX.-_") == "" || strings.IndexFunc(v, func(r rune) bool { return !unicode.IsDigit(r) }) < 0 {
		return false
	}
	switch strings.ToLower(v) {
	case "null", "nil", "none", "~", "true", "false", "yes", "no", "on", "off":
		return false
	}
	return !strings.ContainsAny(v[:1], "${[<%/|>!&*")
}

// credentialFile matches key names of files that hold private keys or
// credentials by convention: SSH keys, PKCS#12 keystores, password files.
// Keys in PEM form are told by their content; truststores, which hold
// certificates only, are left out by their name.
var credentialFile = regexp.MustCompile(`(?i)(^|[/._-])(id_(rsa|dsa|ecdsa|ed25519)|[^/]*\.(p12|pfx|keystore)|\.?(htpasswd|netrc|pgpass|git-credentials))$`)

// credentialTokens are well-known formats of private keys and tokens.
var credentialTokens = []struct {
	what string
	re   *regexp.Regexp
}{
	{"a private key", regexp.MustCompile(`-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----`)},
	{"an AWS access key ID", regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b`)},
	{"a GitHub token", regexp.MustCompile(`\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b`)},
	{"a Slack token", regexp.MustCompile(`\bxox[abposr]-[A-Za-z0-9-]{10,}`)},
	{"a Google API key", regexp.MustCompile(`\bAIza[0-9A-Za-z_-]{35}\b`)},
	{"a Stripe live key", regexp.MustCompile(`\b[rs]k_live_[0-9A-Za-z]{16,}`)},
	{"a JSON Web Token", regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`)},
}

// urlPassword matches the password of a URL with user information, as in
// postgres://app:PASSWORD@db:5432/app.
var urlPassword = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:([^/\s@]+)@`)

// assignment matches "key = value", "key: value" and "\"key\": \"value\""
// in properties, .env, INI, YAML, JSON and connection strings; element
// matches <key>value</key> in XML.
var (
	assignment = regexp.MustCompile(`["']?([A-Za-z0-9_.\-]+)["']?[ \t]*[:=][ \t]*("[^"\n]*"|'[^'\n]*'|[^\s"',;#}\]]*)`)
	element    = regexp.MustCompile(`<([A-Za-z_][\w.:-]*)>([^<]*)</([A-Za-z_][\w.:-]*)>`)
)

// credentialAssignments returns the keys of a configuration file that are
// named like credentials and set to literal values, in order, once each.
func credentialAssignments(text string) []string {
	var out []string
	add := func(key, value string) {
		if credentialKey(key) && literalValue(value) && !slices.Contains(out, key) {
			out = append(out, key)
		}
	}
	for _, m := range assignment.FindAllStringSubmatch(text, -1) {
		add(m[1], m[2])
	}
	for _, m := range element.FindAllStringSubmatch(text, -1) {
		if m[1] == m[3] {
			add(m[1], m[2])
		}
	}
	return out
}

// defaultAccountBindings returns by namespace the indexes, in order, of
// the bindings that grant its default service account, as
// grantsServiceAccount decides for bindings that name no group: each
// binding read once, where asking every binding about every namespace's
// default account grew as namespaces times bindings.
func defaultAccountBindings(bindings []binding) map[string][]int {
	const prefix, suffix = "system:serviceaccount:", ":default"
	out := map[string][]int{}
	for j := range bindings {
		b := &bindings[j]
		for _, s := range b.subjects {
			var ns string
			switch {
			case s.Kind == rbacv1.ServiceAccountKind && s.Name == "default":
				ns = cmp.Or(s.Namespace, b.Namespace)
			case s.Kind == rbacv1.UserKind && len(s.Name) >= len(prefix)+len(suffix) && strings.HasPrefix(s.Name, prefix) && strings.HasSuffix(s.Name, suffix):
				ns = s.Name[len(prefix) : len(s.Name)-len(suffix)]
			default:
				continue
			}
			if list := out[ns]; len(list) == 0 || list[len(list)-1] != j {
				out[ns] = append(list, j)
			}
		}
	}
	return out
}

// defaultAccountsNamed returns the namespaces whose default service
// account the bindings name, sorted.
func defaultAccountsNamed(bindings []binding) []string {
	set := map[string]bool{}
	for _, b := range bindings {
		for _, s := range b.subjects {
			switch {
			case s.Kind == rbacv1.ServiceAccountKind && s.Name == "default" && cmp.Or(s.Namespace, b.Namespace) != "":
				set[cmp.Or(s.Namespace, b.Namespace)] = true
			case s.Kind == rbacv1.UserKind && strings.HasPrefix(s.Name, "system:serviceaccount:") && strings.HasSuffix(s.Name, ":default"):
				if ns := strings.TrimSuffix(strings.TrimPrefix(s.Name, "system:serviceaccount:"), ":default"); ns != "" && !strings.Contains(ns, ":") {
					set[ns] = true
				}
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}
