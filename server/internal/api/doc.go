// Package api holds fleetscan's gRPC handlers. They are thin: validate the
// request, take the caller from the context, make one domain call, convert
// the result; every error becomes a status in one place, toStatus.
package api
