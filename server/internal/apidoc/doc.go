// Command apidoc writes fleetscan's API reference, docs/api.md, and the
// reference of the internal worker protocol, docs/worker-protocol.md, from
// a buf image of the protos (a FileDescriptorSet that keeps the comments)
// and from the server's authorization table. `make apidoc` runs it:
//
//	buf build --path proto/fleetscan/v1 --path proto/fleetscan/worker/v1 -o image.binpb
//	go run ./server/internal/apidoc -image image.binpb -out docs
//
// It lives under server/ so that it can read the authorization table from
// server/internal/auth instead of repeating it. The output depends only on
// its inputs: files in path order, everything else in declaration order.
package main
