// Command docgen regenerates the reference pages of docs/ from the code:
// docs/configuration-reference.md from the Go types of internal/spec, and
// docs/cli.md from the --help of every command of the coalmine binary.
// It is a development tool, not part of the shipped binary.
//
//	go run ./cmd/docgen            # rewrite both pages (run from the repository root)
//	go run ./cmd/docgen -check     # exit 1 when a page is out of date
//
// The tests in internal/spec/docgen and cmd/docgen fail when a committed
// page differs from what the code produces.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/coalmine-dev/coalmine/internal/spec/docgen"
)

func main() {
	root := flag.String("root", ".", "repository root")
	check := flag.Bool("check", false, "only report pages that are out of date (exit 1)")
	flag.Parse()
	if err := run(*root, *check); err != nil {
		fmt.Fprintln(os.Stderr, "docgen:", err)
		os.Exit(1)
	}
}

// pages returns the generated pages, keyed by their path under root.
func pages(root string) (map[string][]byte, error) {
	cfg, err := docgen.ConfigReference(filepath.Join(root, "internal", "spec"))
	if err != nil {
		return nil, err
	}
	bin, cleanup, err := buildCoalmine(root)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	cliDoc, err := cliReference(bin)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		filepath.Join("docs", "configuration-reference.md"): cfg,
		filepath.Join("docs", "cli.md"):                     cliDoc,
	}, nil
}

func run(root string, check bool) error {
	ps, err := pages(root)
	if err != nil {
		return err
	}
	stale := false
	for _, name := range []string{filepath.Join("docs", "configuration-reference.md"), filepath.Join("docs", "cli.md")} {
		path := filepath.Join(root, name)
		if check {
			old, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(old, ps[name]) {
				fmt.Fprintf(os.Stderr, "%s is out of date; run: go run ./cmd/docgen\n", name)
				stale = true
			}
			continue
		}
		if err := os.WriteFile(path, ps[name], 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", name)
	}
	if stale {
		return fmt.Errorf("generated pages are out of date")
	}
	return nil
}

// buildCoalmine builds ./cmd/coalmine into a temporary directory.
func buildCoalmine(root string) (bin string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "docgen-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	bin = filepath.Join(dir, "coalmine")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/coalmine")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("go build ./cmd/coalmine: %v\n%s", err, out)
	}
	return bin, cleanup, nil
}
