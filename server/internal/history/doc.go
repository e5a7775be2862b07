// Package history turns stored job summaries into what operators and
// tenants ask of the past: the posture score, trends over days or weeks,
// and the ranking of clusters. It is plain computation over data the
// store hands it, so that it is cheap to test and to reason about.
package history
