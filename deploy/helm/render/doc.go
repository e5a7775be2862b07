// Package render renders the Helm chart in deploy/helm/fleetscan with the
// Helm Go SDK, as `helm template` does, for the tests that judge what the
// chart installs: the unit test that scans it with fleetscan's own checks
// (worker/internal/collect) and the end-to-end test that sends it through
// a real API server's dry run (deploy/e2e).
//
// The value sets those tests render are the chart's defaults and the files
// ci/<name>-values.yaml of the chart, the convention of Helm's
// chart-testing: a new file there is tested by both without a code change.
package render
