package cli

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/coalmine-dev/coalmine/internal/client"
)

// Environment variables the client commands read.
const (
	EnvServer = "COALMINE_SERVER"
	EnvToken  = "COALMINE_TOKEN"
)

// clientOptions are the flags shared by every command that talks to a
// server. A flag given on the command line wins over the environment,
// which wins over the default.
type clientOptions struct {
	env    Env
	server string
	token  string
}

// addClientFlags registers --server and --token as persistent flags of a
// command group, so every subcommand has them.
func addClientFlags(cmd *cobra.Command, o *clientOptions) {
	f := cmd.PersistentFlags()
	f.StringVar(&o.server, "server", client.DefaultServer, "admin API address of the coalmine server (env "+EnvServer+")")
	f.StringVar(&o.token, "token", "", "bearer token for the admin API (env "+EnvToken+"; prefer the variable: flags show up in the process list)")
}

// resolve applies the environment to flags that were not given.
func (o *clientOptions) resolve(cmd *cobra.Command) {
	if f := cmd.Flags().Lookup("server"); f != nil && !f.Changed {
		if v := o.env.Getenv(EnvServer); v != "" {
			o.server = v
		}
	}
	if f := cmd.Flags().Lookup("token"); f != nil && !f.Changed {
		if v := o.env.Getenv(EnvToken); v != "" {
			o.token = v
		}
	}
}

// client builds the API client; a malformed --server is a usage error.
func (o *clientOptions) client(cmd *cobra.Command) (*client.Client, error) {
	return o.watchClient(cmd, nil)
}

// watchClient is client for commands that watch: onRetry, when not nil,
// hears about every reconnect of a stream.
func (o *clientOptions) watchClient(cmd *cobra.Command, onRetry func(error, time.Duration)) (*client.Client, error) {
	o.resolve(cmd)
	wo := o.env.Watch
	if onRetry != nil {
		wo.OnRetry = onRetry
	}
	c, err := client.New(client.Options{
		Server:     o.server,
		Token:      o.token,
		HTTPClient: o.env.HTTPClient,
		UserAgent:  "coalmine/" + Version,
		Watch:      wo,
	})
	if err != nil {
		return nil, Exit(ExitUsage, err)
	}
	return c, nil
}

// completeRolloutNames completes a rollout name from the server; it
// completes nothing, quietly, when the server cannot be asked.
func (o *clientOptions) completeRolloutNames(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, err := o.client(cmd)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	views, err := c.ListRollouts(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names := make([]string, 0, len(views))
	for _, v := range views {
		names = append(names, v.Metadata.Name+"\t"+string(v.Status.Phase))
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
