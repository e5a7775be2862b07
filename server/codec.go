package server

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
)

// grpc-go answers INTERNAL to a message its codec cannot decode (a string
// that is not UTF-8, a truncated field), although the fault is the
// caller's. So the server's codec does not fail: it notes the message as
// malformed and leaves it empty, and the interceptors below, which run
// before any handler sees the message, answer INVALID_ARGUMENT.

// malformed maps a message the codec could not decode to why, until an
// interceptor takes it.
var malformed sync.Map

type lenientCodec struct{ encoding.CodecV2 }

func (c lenientCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if err := c.CodecV2.Unmarshal(data, v); err != nil {
		malformed.Store(v, err)
	}
	return nil
}

func newLenientCodec() encoding.CodecV2 {
	return lenientCodec{encoding.GetCodecV2(proto.Name)}
}

func malformedError(v any) error {
	if err, ok := malformed.LoadAndDelete(v); ok {
		return status.Errorf(codes.InvalidArgument, "malformed message: %v", err)
	}
	return nil
}

// malformedUnary refuses a request the codec could not decode. It must
// run for every call (no interceptor before it may end a call early), so
// that every noted message is taken.
func malformedUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := malformedError(req); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// malformedStream ends a stream at a message the codec could not decode.
func malformedStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, strictStream{ss})
}

type strictStream struct{ grpc.ServerStream }

func (s strictStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		malformed.Delete(m)
		return err
	}
	return malformedError(m)
}
