// watch.go implements "gardenctl watch": live rates of a segment's
// counters, one line per interval, with the agent's replication lag when
// an agent is named.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/gardenstate/gardenstate/shm"
)

// watchHeaderEvery is how many lines pass between repeated headers.
const watchHeaderEvery = 20

// watchSample is one line of watch, and what --json prints per line.
type watchSample struct {
	Time        string   `json:"time"`
	Seconds     float64  `json:"interval_seconds"`
	Gets        float64  `json:"gets_per_second"`
	Hits        float64  `json:"hits_per_second"`
	HitRatio    *float64 `json:"hit_ratio"`
	Sets        float64  `json:"sets_per_second"`
	Evictions   float64  `json:"evictions_per_second"`
	Takeovers   float64  `json:"takeovers_per_second"`
	Entries     uint64   `json:"entries"`
	Fill        float64  `json:"fill"`
	LagRecords  *uint64  `json:"lag_records,omitempty"`
	AgentError  string   `json:"agent_error,omitempty"`
	withAgent   bool
	sampledTime time.Time
}

func (a *app) watchCommand() *cobra.Command {
	var (
		asJSON   bool
		interval time.Duration
		count    int
	)
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Show live rates: gets, hits, sets, evictions, takeovers (and lag)",
		Long: `Print one line per interval (default every second) with the rates of a
segment's gets, hits, sets, evictions and dead-owner takeovers over the
last interval, the hit ratio, the number of entries and the fill. With
--agent (or GARDEN_AGENT) each line also shows the agent's replication
lag for this segment, in change records not yet acknowledged by peers.

Runs until Ctrl-C, or for --count lines. --json prints one JSON object per
line (JSON Lines).`,
		Example: `  gardenctl watch --app shop
  gardenctl watch --app shop --agent 127.0.0.1:7947 --interval 5s
  gardenctl watch --app shop --count 10 --json > rates.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval <= 0 {
				return usageErrorf("--interval %s: must be positive", interval)
			}
			if count < 0 {
				return usageErrorf("--count %d: must be 0 (until interrupted) or more", count)
			}
			return a.withSegment(func(seg *shm.Segment) error {
				return a.watch(cmd.Context(), seg, interval, count, asJSON)
			})
		},
	}
	f := cmd.Flags()
	f.DurationVar(&interval, "interval", time.Second, "time between lines")
	f.IntVar(&count, "count", 0, "stop after this many lines, 0 to run until interrupted")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func (a *app) watch(ctx context.Context, seg *shm.Segment, interval time.Duration, count int, asJSON bool) error {
	var lag func() (*uint64, error)
	if a.agentSet {
		lag = a.lagOf(ctx, seg)
		if _, err := lag(); err != nil {
			return err
		}
	}
	prev, prevT := seg.Stats(), time.Now()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	enc := json.NewEncoder(a.stdout)
	agentDown := false
	for n := 0; count == 0 || n < count; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		cur, t := seg.Stats(), time.Now()
		s := rates(prev, cur, t.Sub(prevT))
		s.sampledTime = t
		s.Time = t.UTC().Format(time.RFC3339Nano)
		if lag != nil {
			s.withAgent = true
			l, err := lag()
			switch {
			case err != nil:
				s.AgentError = err.Error()
				if !agentDown {
					fmt.Fprintf(a.stderr, "gardenctl: %v\n", err)
				}
				agentDown = true
			default:
				s.LagRecords, agentDown = l, false
			}
		}
		if asJSON {
			if err := enc.Encode(s); err != nil {
				return err
			}
		} else {
			printWatchLine(a.stdout, s, n)
		}
		prev, prevT = cur, t
	}
	return nil
}

// rates computes per-second rates from two readings d apart.
func rates(prev, cur shm.Stats, d time.Duration) watchSample {
	secs := d.Seconds()
	per := func(a, b uint64) float64 {
		if b < a || secs <= 0 { // counters only grow; a new segment would reset them
			return 0
		}
		return float64(b-a) / secs
	}
	s := watchSample{
		Seconds: secs,
		Gets:    per(prev.Gets, cur.Gets), Hits: per(prev.Hits, cur.Hits), Sets: per(prev.Sets, cur.Sets),
		Evictions: per(prev.Evictions, cur.Evictions), Takeovers: per(prev.Takeovers, cur.Takeovers),
		Entries: cur.Entries, Fill: ratio(cur.BytesLive, cur.BytesTotal),
	}
	if s.Gets > 0 {
		r := s.Hits / s.Gets
		s.HitRatio = &r
	}
	return s
}

func printWatchLine(w io.Writer, s watchSample, n int) {
	if n%watchHeaderEvery == 0 {
		head := fmt.Sprintf("%-8s %10s %10s %6s %10s %9s %11s %9s %6s", "TIME", "GETS/S", "HITS/S", "HIT%", "SETS/S", "EVICT/S", "TAKEOVERS/S", "ENTRIES", "FILL")
		if s.withAgent {
			head += fmt.Sprintf(" %8s", "LAG")
		}
		fmt.Fprintln(w, head)
	}
	hit := "-"
	if s.HitRatio != nil {
		hit = fmt.Sprintf("%.1f", 100**s.HitRatio)
	}
	line := fmt.Sprintf("%-8s %10.1f %10.1f %6s %10.1f %9.1f %11.1f %9d %5.1f%%",
		s.sampledTime.Format("15:04:05"), s.Gets, s.Hits, hit, s.Sets, s.Evictions, s.Takeovers, s.Entries, 100*s.Fill)
	if s.withAgent {
		lag := "?"
		if s.LagRecords != nil {
			lag = fmt.Sprint(*s.LagRecords)
		}
		line += fmt.Sprintf(" %8s", lag)
	}
	fmt.Fprintln(w, line)
}

// lagOf returns a function that asks the agent for seg's replication lag:
// the application whose segment is seg's path, or failing that whose name
// is seg's application.
func (a *app) lagOf(ctx context.Context, seg *shm.Segment) func() (*uint64, error) {
	path, name := filepath.Clean(seg.Path()), seg.Info().App
	return func() (*uint64, error) {
		var st agentStatus
		if _, err := a.agentGet(ctx, "/v1/status", &st); err != nil {
			return nil, err
		}
		for _, ap := range st.Apps {
			if filepath.Clean(ap.Segment) == path {
				return &ap.LagRecords, nil
			}
		}
		for _, ap := range st.Apps {
			if name != "" && ap.App == name {
				return &ap.LagRecords, nil
			}
		}
		return nil, fmt.Errorf("the agent at %s does not replicate %s (application %q)", a.agent, path, name)
	}
}
