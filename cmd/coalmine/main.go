// Command coalmine is a progressive-delivery system in one binary: a
// traffic-splitting proxy, a rollout controller, statistics, a store, an
// API, a CLI and a dashboard. This file only wires concrete types together.
package main

import (
	"context"
	"os"

	"github.com/coalmine-dev/coalmine/internal/cli"
)

func main() {
	root := cli.NewRoot(cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	root.AddCommand(newServeCmd(), newLintCmd(), newDemoCmd(), newRouterConfigCmd())
	os.Exit(cli.Execute(context.Background(), root))
}

// usageErr marks err as a usage or validation error (exit status 2).
func usageErr(err error) error { return cli.Exit(cli.ExitUsage, err) }
