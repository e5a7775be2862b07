// Package web serves the fleetscan API to web browsers: the Connect and
// gRPC-Web protocols, transcoded by vanguard into gRPC in front of the
// server's own grpc.Server, so that a browser's call goes through the
// same interceptors (authentication, rate limit, audit) and handlers as
// any other client's, and the console's static files, on a listener of
// their own.
package web

import (
	"errors"
	"fmt"
	"net/http"

	"connectrpc.com/vanguard"
)

// Options configure a Handler.
type Options struct {
	// Services are the full names of the gRPC services served to
	// browsers; each must be registered on the gRPC server. The worker
	// protocol and the server's health and reflection stay off the web
	// listener.
	Services []string
	// MaxMessageBytes bounds a message the transcoder holds in memory,
	// as the gRPC server bounds what it receives.
	MaxMessageBytes int
	// Console, if not nil, serves every path that names no method of
	// Services: the console's files.
	Console http.Handler
}

// ContentSecurityPolicy lets a page load scripts, styles, images and data
// from the server itself only: the console makes no request that leaves
// it, and an injected script could not send anything elsewhere.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// NewHandler returns the handler of the web listener. grpcServer is the
// server's grpc.Server (its ServeHTTP method): vanguard hands it each call
// as a gRPC request, simulating HTTP/2 for it over HTTP/1.1.
func NewHandler(grpcServer http.Handler, opts Options) (http.Handler, error) {
	if len(opts.Services) == 0 {
		return nil, errors.New("web: no services to serve")
	}
	if opts.MaxMessageBytes <= 0 {
		return nil, fmt.Errorf("web: max message size %d: must be positive", opts.MaxMessageBytes)
	}
	services := make([]*vanguard.Service, len(opts.Services))
	for i, name := range opts.Services {
		services[i] = vanguard.NewService(name, grpcServer,
			vanguard.WithTargetProtocols(vanguard.ProtocolGRPC),
			vanguard.WithTargetCodecs(vanguard.CodecProto),
			// In-process: compressing for the gRPC server would only
			// cost CPU.
			vanguard.WithNoTargetCompression(),
			vanguard.WithMaxMessageBufferBytes(uint32(opts.MaxMessageBytes)),
		)
	}
	var tropts []vanguard.TranscoderOption
	if opts.Console != nil {
		tropts = append(tropts, vanguard.WithUnknownHandler(opts.Console))
	}
	transcoder, err := vanguard.NewTranscoder(services, tropts...)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	return secure(transcoder), nil
}

// secure sets the headers that keep a browser from running the console
// inside another site's frame, guessing content types, sending the
// console's address on, or loading anything from elsewhere.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}
