package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetscan/fleetscan/client/webhook"
	"github.com/fleetscan/fleetscan/cmd/internal/receiver"
)

func notifierReceiveCommand(g *globals) *cobra.Command {
	var listen, secretFile, addressFile string
	var failFirst int
	cmd := &cobra.Command{
		Use:   "receive --secret-file PATH [--listen 127.0.0.1:PORT] [--address-file PATH] [--fail-first N]",
		Short: "Run a local webhook receiver that verifies and prints events, to try notifiers out",
		Long: `Receive a webhook notifier's events on this machine, and print one line
per event: when it arrived, its id (the webhook-id; "(again)" when an id
it printed comes back: delivery is at least once), type, subject and
summary, and for new findings the worst of them, one per line.

Every request is verified against the notifier's secret, read from
--secret-file at each request: start the receiver first, then create the
notifier with the same --secret-file. A request whose signature does not
verify, or whose timestamp is more than 5 minutes away, is answered 401
with the reason (printed on stderr); while the secret file is missing, 503,
which the server tries again. --fail-first N answers 500 to the first N
verified requests, to watch the server retry them.

It listens on loopback unless --listen says otherwise; the server sends
plain http only to loopback addresses, so an operator's notifier reaches
it at http://127.0.0.1:PORT/. It runs until Ctrl-C or SIGTERM.`,
		Example: `  fleetscan notifier receive --secret-file hook.secret
  fleetscan notifier create local --webhook http://127.0.0.1:8090/ --secret-file hook.secret   # in another terminal
  fleetscan notifier test local
  fleetscan notifier receive --listen 127.0.0.1:0 --address-file hook.addr --secret-file hook.secret --fail-first 2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if failFirst < 0 {
				return fmt.Errorf("--fail-first %d: 0 or more", failFirst)
			}
			readSecret := func() (string, error) {
				b, err := os.ReadFile(secretFile)
				if err != nil {
					return "", err
				}
				s := strings.TrimSpace(string(b))
				if _, err := webhook.ParseSecret(s); err != nil {
					return "", fmt.Errorf("%s: %w", secretFile, err)
				}
				return s, nil
			}
			stderr := cmd.ErrOrStderr()
			_, err := readSecret()
			switch {
			case errors.Is(err, fs.ErrNotExist):
				fmt.Fprintf(stderr, "%s is not there yet: requests are answered 503 until a notifier's secret is written to it (notifier create --secret-file %s)\n", secretFile, secretFile)
			case err != nil:
				return fmt.Errorf("--secret-file: %w", err)
			}
			lis, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen: %w", err)
			}
			defer lis.Close()
			addr := lis.Addr().(*net.TCPAddr)
			if addressFile != "" {
				f, err := newPendingFile(addressFile)
				if err == nil {
					err = f.commit(addr.String() + "\n")
					f.abandon()
				}
				if err != nil {
					return fmt.Errorf("--address-file: %w", err)
				}
			}
			fmt.Fprintf(g.stdout, "Receiving on http://%s/ with the secret in %s; Ctrl-C stops it.\n", addr, secretFile)
			if !addr.IP.IsLoopback() {
				fmt.Fprintf(stderr, "%s is not a loopback address: whoever reaches it can send requests (they are refused unless signed), and the server sends plain http only to loopback\n", addr.IP)
			}
			h := receiver.New(receiver.Config{Secret: readSecret, Out: g.stdout, Log: stderr, FailFirst: failFirst})
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(stderr, "", 0)}
			served := make(chan error, 1)
			go func() { served <- srv.Serve(lis) }()
			select {
			case err := <-served:
				return fmt.Errorf("receiving: %w", err)
			case <-cmd.Context().Done():
			}
			// Requests under way are answered; the server tries again
			// whatever is cut short.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				srv.Close()
			}
			<-served
			fmt.Fprintln(stderr, "stopped receiving")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8090", "address to listen on, host:port (port 0: a free one; see --address-file)")
	f.StringVar(&secretFile, "secret-file", "", "file holding the notifier's signing secret, read at each request (required)")
	f.StringVar(&addressFile, "address-file", "", "write the address listened on (host:port) to this file")
	f.IntVar(&failFirst, "fail-first", 0, "answer 500 to the first N verified requests, to see the server retry")
	_ = cmd.MarkFlagRequired("secret-file")
	return cmd
}
