// status.go implements "gardenctl status": what the agent on this host
// says about itself and the applications it replicates.

package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) statusCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the agent's node, cluster and replication lag per application",
		Long: `Ask the agent (gardend) at --agent for its status (GET /v1/status): its
node name, cluster, protocol version, uptime, how many members it sees,
and for each application it replicates the last change sequence in the
segment, the last one its peers acknowledged, and the lag between them.

--json prints the agent's answer as it came.`,
		Example: `  gardenctl status
  gardenctl status --agent 10.0.0.5:7947 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st agentStatus
			body, err := a.agentGet(cmd.Context(), "/v1/status", &st)
			if err != nil {
				return err
			}
			if asJSON {
				return writeAgentJSON(a.stdout, body)
			}
			return printStatus(a.stdout, a.agent, st)
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func printStatus(w io.Writer, addr string, st agentStatus) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "agent\t%s\n", addr)
	fmt.Fprintf(tw, "node\t%s\n", st.Node)
	fmt.Fprintf(tw, "cluster\t%s\n", st.Cluster)
	fmt.Fprintf(tw, "protocol\t%d\n", st.Protocol)
	fmt.Fprintf(tw, "uptime\t%s\n", time.Duration(st.UptimeSeconds*float64(time.Second)).Round(100*time.Millisecond))
	fmt.Fprintf(tw, "members\t%d\n", st.Members)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(st.Apps) == 0 {
		fmt.Fprintln(w, "no applications replicated")
		return nil
	}
	tw = newTable(w)
	fmt.Fprintln(tw, "APP\tSEGMENT\tLAST SEQ\tACKED SEQ\tLAG")
	for _, ap := range st.Apps {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", ap.App, ap.Segment, ap.LastSeq, ap.AckedSeq, ap.LagRecords)
	}
	return tw.Flush()
}
