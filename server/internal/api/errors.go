package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fleetscan/fleetscan/server/internal/auth"
	"github.com/fleetscan/fleetscan/server/internal/ingest"
	"github.com/fleetscan/fleetscan/server/internal/scheduler"
	"github.com/fleetscan/fleetscan/server/internal/store"
	"github.com/fleetscan/fleetscan/worker/catalog"
	"github.com/fleetscan/fleetscan/worker/policy"
)

// errInvalid marks a request that fails validation; its message names the
// field.
var errInvalid = errors.New("invalid argument")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errInvalid, fmt.Sprintf(format, args...))
}

// NoSpaceRetryDelay is how long a caller refused for a full disk is told
// to wait, unless the error says otherwise (a RetryAfter method).
const NoSpaceRetryDelay = 30 * time.Second

// codeTable maps the domain's sentinel errors to gRPC codes. The first
// match wins.
var codeTable = []struct {
	err  error
	code codes.Code
}{
	{errInvalid, codes.InvalidArgument},
	{scheduler.ErrInvalid, codes.InvalidArgument},
	{catalog.ErrUnknownCheck, codes.InvalidArgument},
	{policy.ErrInvalidPolicy, codes.InvalidArgument},
	{store.ErrDataLoss, codes.DataLoss},
	{store.ErrNotFound, codes.NotFound},
	{store.ErrAlreadyExists, codes.AlreadyExists},
	{store.ErrConflict, codes.FailedPrecondition},
	{store.ErrIncomplete, codes.FailedPrecondition},
	{store.ErrAmbiguous, codes.InvalidArgument},
	{store.ErrInvalidID, codes.InvalidArgument},
	{ingest.ErrProtocol, codes.InvalidArgument},
	{ingest.ErrRefused, codes.InvalidArgument},
	{ingest.ErrMessageTooLarge, codes.ResourceExhausted},
	{errResourceExhausted, codes.ResourceExhausted},
	{ingest.ErrWrongCluster, codes.PermissionDenied},
	{auth.ErrForbidden, codes.PermissionDenied},
	{ingest.ErrSilent, codes.DeadlineExceeded},
	{ingest.ErrJoinToken, codes.Unauthenticated},
	{scheduler.ErrDisconnected, codes.Unauthenticated},
	{scheduler.ErrReplaced, codes.Aborted},
	{errors.ErrUnsupported, codes.Unimplemented},
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
}

// toStatus converts a domain error to a gRPC status error. Errors it does
// not know become Internal, logged here once and not shown to the caller.
func toStatus(log *slog.Logger, method string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, store.ErrNoSpace) {
		// Retrying at once cannot help: the caller (a worker above all)
		// is told when to come back.
		delay := NoSpaceRetryDelay
		var ra interface{ RetryAfter() time.Duration }
		if errors.As(err, &ra) {
			delay = ra.RetryAfter()
		}
		st, _ := status.New(codes.Unavailable, err.Error()).WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)})
		return st.Err()
	}
	for _, e := range codeTable {
		if errors.Is(err, e.err) {
			return status.Error(e.code, err.Error())
		}
	}
	log.Error("internal error", "method", method, "err", err)
	return status.Error(codes.Internal, "internal error; the server log has the details")
}
