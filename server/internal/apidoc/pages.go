package main

import "google.golang.org/grpc/codes"

// fleetscanPages are the two references: the public API and the internal
// worker protocol. The codes are those of server/internal/api's toStatus,
// of the auth interceptor and of gRPC itself; TestCodesDocumented fails
// when the server's code names one that no page documents.
var fleetscanPages = []page{{
	file:  "api.md",
	pkg:   "fleetscan.v1",
	title: "fleetscan API reference",
	intro: `
The public gRPC API of fleetscan-server, package ` + "`fleetscan.v1`" + `.
This file is generated from the comments in [proto/fleetscan/v1](../proto/fleetscan/v1)
and from the server's authorization table: do not edit it, change the
comments and run ` + "`make apidoc`" + `. ` + "`make test`" + ` fails while it is stale.

The Go SDK ([client](../client)) and the TypeScript SDK
([client/typescript](../client/typescript)) wrap this API, and the
` + "`fleetscan`" + ` CLI is built on the Go SDK. Any gRPC client can call it
too: the server offers reflection, so ` + "`grpcurl`" + ` works. The protocol
between the server and its workers is internal:
[worker-protocol.md](worker-protocol.md).

Conventions: every List RPC is paginated with ` + "`page_size`" + ` (each
documents its default and maximum), ` + "`page_token`" + ` and
` + "`next_page_token`" + `; a page token only works with the parameters and
the caller it was issued for. Times are ` + "`google.protobuf.Timestamp`" + `.
An enum's ` + "`_UNSPECIFIED`" + ` value (0) means "not set".
`,
	authz: `
Every call carries a bearer token in its metadata, ` + "`authorization: Bearer <token>`" + `,
over TLS. The server stores only the token's SHA-256 with its role; who the
caller is, and which tenant a tenant token speaks for, comes from the token,
never from a request field. The server writes the first operator token to
` + "`DATA_DIR/operator.token`" + ` when it starts for the first time.

This table is the server's own (server/internal/auth): a method it does
not list is refused to every role with ` + "`PermissionDenied`" + `. The gRPC
health service and server reflection need no token.

A tenant token is further narrowed to its tenant's scope: the clusters the
tenant owns, and the namespaces other clusters grant it
(` + "`Cluster.namespace_grants`" + `). Of a granted namespace it reads the findings
(ListFindings, GetFinding); trends, summaries, comparisons and diffs are
per cluster and cover owned clusters only. Whatever is out of scope is
` + "`NotFound`" + ` with the message an absent id gets, and is left out of lists and
counts. See [security.md](security.md).
`,
	errs: `
Errors are gRPC status codes with a message for people; the Go SDK maps
the common ones to errors that ` + "`errors.Is`" + ` recognises
(` + "`client.ErrNotFound`" + `, …). These are the codes the API returns:
`,
	codes: []codeDoc{
		{codes.Canceled, "The caller cancelled the call."},
		{codes.InvalidArgument, "A request field is invalid; the message names the field. Also: an unknown check id, a custom check that does not compile, a malformed id, a page token issued for other parameters, another caller or another server (tokens are signed with a key kept in the server's database), a DiffScans of scans that cover several clusters without naming one."},
		{codes.DeadlineExceeded, "The call's deadline passed."},
		{codes.NotFound, "The object does not exist, or the caller may not see it: the two are indistinguishable."},
		{codes.AlreadyExists, "An object with that id exists, e.g. a cluster registered twice."},
		{codes.PermissionDenied, "The token's role may not call the RPC (see [Authorization](#authorization))."},
		{codes.ResourceExhausted, "The token made more calls than its rate limit allows (fleetscan-server --rate-limit, --rate-burst): slow down and retry. Or a request is larger than the server accepts (8 MiB); gRPC itself refuses it."},
		{codes.Internal, "An unexpected server error. The message says no more; the server log has the details."},
		{codes.DataLoss, "The server's database holds a damaged record where the answer would come from (its checksum does not match): the server refuses rather than answer with less. The message names the record; an operator runs `fleetscan-server check` and restores a backup. A damaged token record answers this too, on any call made with that token."},
		{codes.Unavailable, "The server cannot check the token right now, or cannot be reached (gRPC); retry with backoff."},
		{codes.Unauthenticated, "The token is missing, malformed, unknown, expired or revoked."},
		{codes.Unimplemented, "The server does not do this in its configuration: `AdminService.Backup` on a server whose store is PostgreSQL (`--store postgres://…`), which is backed up with PostgreSQL's own tools; the message says so."},
	},
}, {
	file:  "worker-protocol.md",
	pkg:   "fleetscan.worker.v1",
	title: "fleetscan worker protocol (internal)",
	intro: `
**Internal.** The protocol between fleetscan-server and the
fleetscan-worker in each cluster, package ` + "`fleetscan.worker.v1`" + `. It is
not a public API and changes with the server and the worker; clients use
the [public API](api.md). Optional features are negotiated: the worker
lists its capabilities in Hello, the server answers with the ones this
stream uses in Welcome, and each side ignores what it does not know, so
older workers work with newer servers and the other way round.

This file is generated from the comments in
[proto/fleetscan/worker/v1](../proto/fleetscan/worker/v1) and from the
server's authorization table: do not edit it, change the comments and run
` + "`make apidoc`" + `.
`,
	authz: `
The worker sends its cluster's join token (returned once by
[RegisterCluster](api.md#fleetscan.v1.ClusterService.RegisterCluster)) as
` + "`authorization: Bearer <token>`" + `. The token has the worker role and
is valid for one cluster: the cluster id in Hello must be that cluster.
`,
	errs: `
Besides the codes of the [public API](api.md#errors), a stream ends with
these; the worker reconnects with backoff after all but
` + "`Unauthenticated`" + ` and ` + "`PermissionDenied`" + `, which stop it.
`,
	codes: []codeDoc{
		{codes.InvalidArgument, "The worker broke the protocol: no Hello first, Hello twice, a batch out of range, a job that is not assigned to this stream, a malformed id."},
		{codes.DeadlineExceeded, "A worker with heartbeats sent nothing for three heartbeat intervals (Welcome.heartbeat_interval)."},
		{codes.PermissionDenied, "The token is not a worker token, or Hello names a cluster other than the token's."},
		{codes.FailedPrecondition, "A job's state on the server conflicts with what the worker reports and the stream cannot reconcile it."},
		{codes.Aborted, "A newer stream of the same cluster took over."},
	},
}}
