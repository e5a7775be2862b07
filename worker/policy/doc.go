// Package policy is what a scan runs besides the catalog: custom checks
// written in CEL (CheckPolicy files), compiled here, and the Selection of
// built-in and custom checks a scan asks for. It needs cel-go but no
// Kubernetes API types, so that the server and the CLI validate a scan's
// policies as the worker will run them without linking the check engine.
package policy
