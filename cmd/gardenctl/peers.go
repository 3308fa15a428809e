// peers.go implements "gardenctl peers": the cluster members the agent
// replicates to, and the peers it refused at join with the reason.

package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"
)

func (a *app) peersCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "peers",
		Short: "List the agent's peers, their lag, and peers refused at join",
		Long: `Ask the agent (gardend) at --agent for its peers (GET /v1/peers): each
member's address, state, replication lag, queue depth and records sent
and acknowledged; then every peer it refused at join (a different
cluster name, protocol, application layout or key) with the reason.

--json prints the agent's answer as it came.`,
		Example: `  gardenctl peers
  gardenctl peers --json | jq '.refused'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ps agentPeers
			body, err := a.agentGet(cmd.Context(), "/v1/peers", &ps)
			if err != nil {
				return err
			}
			if asJSON {
				return writeAgentJSON(a.stdout, body)
			}
			return printPeers(a.stdout, ps)
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func printPeers(w io.Writer, ps agentPeers) error {
	if len(ps.Members) == 0 {
		fmt.Fprintln(w, "no peers")
	} else {
		tw := newTable(w)
		fmt.Fprintln(tw, "NAME\tADDR\tSTATE\tLAG\tQUEUE\tSENT\tACKED")
		for _, m := range ps.Members {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\n", m.Name, m.Addr, m.State,
				formatLag(m.LagMs), m.QueueDepth, m.Sent, m.Acked)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(ps.Refused) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := newTable(w)
	fmt.Fprintln(tw, "REFUSED\tADDR\tAT\tREASON")
	for _, r := range ps.Refused {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, r.Addr, r.At, r.Reason)
	}
	return tw.Flush()
}

// formatLag prints a lag in milliseconds with sensible precision.
func formatLag(ms float64) string {
	switch {
	case ms < 0.01:
		return "0ms"
	case ms < 10:
		return strconv.FormatFloat(ms, 'f', 2, 64) + "ms"
	default:
		return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
	}
}
