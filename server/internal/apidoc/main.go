package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/fleetscan/fleetscan/server/internal/auth"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "apidoc:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("apidoc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	image := fs.String("image", "", "buf image of the protos, with source info (required)")
	out := fs.String("out", "docs", "directory to write api.md and worker-protocol.md to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *image == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("want -image and no arguments")
	}
	s, err := loadSite(*image, fleetscanPages, authRoles())
	if err != nil {
		return err
	}
	for _, p := range s.pages {
		b, err := s.render(p)
		if err != nil {
			return fmt.Errorf("%s: %w", p.file, err)
		}
		path := filepath.Join(*out, p.file)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "wrote", path)
	}
	return nil
}

// loadSite reads a buf image; images are wire-compatible with
// FileDescriptorSet.
func loadSite(image string, pages []page, roles map[string][]string) (*site, error) {
	data, err := os.ReadFile(image)
	if err != nil {
		return nil, err
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("%s: %w", image, err)
	}
	s, err := newSite(&set, pages, roles)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", image, err)
	}
	return s, nil
}

func newSite(set *descriptorpb.FileDescriptorSet, pages []page, roles map[string][]string) (*site, error) {
	files, err := protodesc.NewFiles(set)
	if err != nil {
		return nil, err
	}
	return &site{pages: pages, files: files, roles: roles}, nil
}

// authRoles is the server's authorization table, by full method name.
func authRoles() map[string][]string {
	roles := map[string][]string{}
	for _, r := range auth.Rules() {
		for _, role := range r.Roles {
			roles[r.Method] = append(roles[r.Method], string(role))
		}
	}
	return roles
}
