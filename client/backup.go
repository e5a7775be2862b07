package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	fleetscanv1 "github.com/fleetscan/fleetscan/proto/fleetscan/v1"
)

// ErrBackupIncomplete: the backup stream ended before its last message, or
// what arrived does not match the size and SHA-256 the server sent.
var ErrBackupIncomplete = errors.New("backup incomplete")

// Backup writes a consistent copy of the server's database to w and
// returns its size. progress, if not nil, is called with the bytes
// received so far. An error means that what w received is not a backup;
// the caller discards it.
func (c *Client) Backup(ctx context.Context, w io.Writer, progress func(int64)) (int64, error) {
	stream, err := c.AdminService.Backup(ctx, &fleetscanv1.BackupRequest{})
	if err != nil {
		return 0, err
	}
	sum := sha256.New()
	var n int64
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return n, fmt.Errorf("%w: the stream ended after %d bytes without its last message", ErrBackupIncomplete, n)
		}
		if err != nil {
			return n, err
		}
		if chunk.Last {
			if chunk.TotalBytes != n || !bytes.Equal(chunk.Sha256, sum.Sum(nil)) {
				return n, fmt.Errorf("%w: received %d bytes, the server sent %d (or their SHA-256 differs)", ErrBackupIncomplete, n, chunk.TotalBytes)
			}
			return n, nil
		}
		if _, err := w.Write(chunk.Data); err != nil {
			return n, err
		}
		sum.Write(chunk.Data)
		n += int64(len(chunk.Data))
		if progress != nil {
			progress(n)
		}
	}
}
