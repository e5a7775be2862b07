package auth

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	storagev1 "github.com/fleetscan/fleetscan/proto/fleetscan/storage/v1"
)

var (
	errNotFound = errors.New("not found")
	errDataLoss = errors.New("data loss")
)

type lookupFunc func() (*storagev1.TokenRecord, error)

func (f lookupFunc) LookupToken(context.Context, []byte) (*storagev1.TokenRecord, error) { return f() }

// TestLookupErrors: what a failed token lookup answers. A damaged record
// is DATA_LOSS, naming what to do, not a retry hint; an unknown token is
// UNAUTHENTICATED; any other failure is UNAVAILABLE, to be retried.
func TestLookupErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want codes.Code
	}{
		{"unknown token", fmt.Errorf("token: %w", errNotFound), codes.Unauthenticated},
		{"damaged record", fmt.Errorf("token record: checksum mismatch: %w", errDataLoss), codes.DataLoss},
		{"database busy", errors.New("timeout"), codes.Unavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := New(lookupFunc(func() (*storagev1.TokenRecord, error) { return nil, tt.err }), errNotFound, errDataLoss)
			ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer secret"))
			_, err := a.authorize(ctx, "/fleetscan.v1.FleetService/ListClusters")
			if got := status.Code(err); got != tt.want {
				t.Errorf("code %v (%v), want %v", got, err, tt.want)
			}
		})
	}
}
