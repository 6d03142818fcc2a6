package cli

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/coalmine-dev/coalmine/internal/client"
	"github.com/coalmine-dev/coalmine/internal/model"
)

func (g *getCmd) replicasCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "replicas",
		Aliases: []string{"replica"},
		Short:   "List the coalmine processes sharing the store: leader, live or gone",
		Long: `List the coalmine serve processes (replicas) that share the server's store,
the leader first. Every replica saves a heartbeat record every second; the
server you ask reads them all, with the leader's lease.

  ID          the replica's id, unique among the processes sharing the store
  ROLE        leader: it holds the lease and runs the controller, which
              advances the rollouts; follower: it proxies and applies the
              routing the leader decides
  STATE       live, or gone once it has missed its heartbeats for 3 s: it
              stopped, crashed or cannot reach the store. A gone replica is
              never the leader; another takes over within seconds
  ADMIN       the replica's admin API: pass it to --server to ask that
              replica directly
  VERSION     the coalmine build it runs
  ROUTE-REV   which routing it serves: the sum of the versions of the
              rollout states it applied, so it grows with every routing
              change; a live replica below the others is still catching up
  HEARTBEAT   how long ago its last heartbeat was saved

A server on the embedded bbolt store (--data-dir) cannot share it, so it
lists only itself. Replicas share a PostgreSQL store: serve --store
postgres://...

-o json and -o yaml print the API's array unchanged: per replica id,
leader, admin, version, routeRevision, routes (per rollout its revision,
stateVersion and weight in basis points), startedAt, lastHeartbeat and
gone.`,
		Example: `  coalmine get replicas

  # the admin address of the leader
  coalmine get replicas -o json | jq -r '.[] | select(.leader) | .admin'

  # replicas that stopped heartbeating
  coalmine get replicas -o json | jq -r '.[] | select(.gone) | .id'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(g.output); err != nil {
				return err
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			if g.output != outputText {
				raw, err := c.ListReplicasRaw(cmd.Context())
				if err != nil {
					return g.explainReplicas(c, err)
				}
				return printRaw(cmd.OutOrStdout(), g.output, raw)
			}
			replicas, err := c.ListReplicas(cmd.Context())
			if err != nil {
				return g.explainReplicas(c, err)
			}
			return writeReplicaTable(cmd.OutOrStdout(), replicas, g.env.Now())
		},
	}
}

// explainReplicas turns the 404 of a server without a replica registry
// into what it means: that server predates the command.
func (g *getCmd) explainReplicas(c *client.Client, err error) error {
	if errors.Is(err, client.ErrNotFound) {
		return fmt.Errorf("the server at %s does not list replicas (GET /api/v1/replicas answered 404): it runs a coalmine older than this CLI; upgrade it", c.Server())
	}
	return g.explain(err)
}

func writeReplicaTable(w io.Writer, replicas []model.Replica, now time.Time) error {
	if len(replicas) == 0 {
		_, err := fmt.Fprintln(w, "No replicas registered yet: a server registers itself within a second of starting.")
		return err
	}
	replicas = slices.Clone(replicas)
	slices.SortStableFunc(replicas, func(a, b model.Replica) int {
		if a.Leader != b.Leader {
			if a.Leader {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tROLE\tSTATE\tADMIN\tVERSION\tROUTE-REV\tHEARTBEAT")
	for _, r := range replicas {
		role, state := "follower", "live"
		if r.Leader {
			role = "leader"
		}
		if r.Gone {
			state = "gone"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n",
			r.ID, role, state, orDash(r.Admin), orDash(r.Version), r.RouteRevision, heartbeatAgo(now, r.LastHeartbeat))
	}
	return tw.Flush()
}

// heartbeatAgo is ago with tenths of a second while they matter: with a
// beat a second, "0.4s ago" and "2.9s ago" say how close a replica is to
// being gone, where "0s" and "3s" would not.
func heartbeatAgo(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	if d < 10*time.Second {
		return strconv.FormatFloat(d.Round(100*time.Millisecond).Seconds(), 'f', 1, 64) + "s ago"
	}
	return ago(now, t)
}
