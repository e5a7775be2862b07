// Package auth authenticates callers and authorizes their calls. Every
// credential is a bearer token whose SHA-256 is stored; the interceptors
// turn it into a Principal in the call's context, and one table says which
// roles may call which method. Identity never comes from a request field.
package auth
