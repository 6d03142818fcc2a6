package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coalmine-dev/coalmine/internal/cli"
	"github.com/coalmine-dev/coalmine/internal/config"
	"github.com/coalmine-dev/coalmine/internal/router/haproxy"
	"github.com/coalmine-dev/coalmine/internal/router/nginx"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

func newRouterConfigCmd() *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "router-config -f PATH... [NAME]",
		Short: "Print the HAProxy or NGINX configuration a rollout's router needs",
		Long: `Router-config prints, for each rollout whose traffic HAProxy or NGINX carries
(spec.trafficRouting.router), the lines to put in that load balancer's
configuration so coalmine can drive it: for HAProxy, the global, frontend
and backend lines that read the map entries coalmine sets through the
runtime API (they name the rollout's user header and the headers its
header routes and setHeaderRoute steps match, so print them again after
adding a header); for NGINX, an nginx.conf that includes the file coalmine
writes and sends coalmine its access log. Nothing is contacted.

docs/routers.md explains each part; examples/haproxy/haproxy.cfg and
examples/nginx/nginx.conf are complete examples.`,
		Example: `  coalmine router-config -f shop.yaml
  coalmine router-config -f deploy/ checkout >> /etc/haproxy/haproxy.cfg.new`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(files) == 0 {
				return usageErr(fmt.Errorf("router-config needs at least one -f PATH (a YAML file or a directory of them)"))
			}
			b, err := config.Load(files...)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return cli.Exit(cli.ExitUsage, errors.New("configuration is invalid: fix it first (coalmine lint -f ...)"))
			}
			printed := 0
			for _, r := range b.Rollouts {
				if len(args) == 1 && r.Metadata.Name != args[0] {
					continue
				}
				text, err := routerConfig(r)
				if err != nil {
					return err
				}
				if text == "" {
					continue
				}
				if printed > 0 {
					fmt.Fprintln(cmd.OutOrStdout())
				}
				fmt.Fprint(cmd.OutOrStdout(), text)
				printed++
			}
			if printed == 0 {
				what := "no rollout in these files"
				if len(args) == 1 {
					what = fmt.Sprintf("rollout %q is not in these files or", args[0])
				}
				return usageErr(fmt.Errorf("%s has trafficRouting.router haproxy or nginx: there is nothing to print", what))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "file", "f", nil, "a YAML file or a directory of them (repeatable)")
	return cmd
}

// routerConfig is what rollout r's load balancer needs, or "" for a
// rollout coalmine's own proxy carries.
func routerConfig(r spec.Rollout) (string, error) {
	name := r.Metadata.Name
	rt := r.Spec.TrafficRouting.Router
	switch {
	case rt.HAProxy != nil:
		return haproxy.ConfigLines(name, *rt.HAProxy, r.Spec.TrafficRouting.Assignment.UserHeader, routeHeaders(r)), nil
	case rt.NGINX != nil:
		text, err := nginx.ConfigExample(nginx.ExampleOptions{Rollout: name, IncludeFile: rt.NGINX.IncludeFile})
		if err != nil {
			return "", fmt.Errorf("rollout %q: %w", name, err)
		}
		return text, nil
	}
	return "", nil
}

// routeHeaders lists the headers r's header routes match, static or set
// by steps, in the order first seen.
func routeHeaders(r spec.Rollout) []string {
	var out []string
	add := func(routes ...spec.HeaderRoute) {
		for _, hr := range routes {
			for _, m := range hr.Match {
				if !slices.ContainsFunc(out, func(h string) bool { return strings.EqualFold(h, m.HeaderName) }) {
					out = append(out, m.HeaderName)
				}
			}
		}
	}
	add(r.Spec.TrafficRouting.HeaderRoutes...)
	for _, st := range r.Spec.Strategy.Canary.Steps {
		if st.SetHeaderRoute != nil {
			add(*st.SetHeaderRoute)
		}
	}
	return out
}
