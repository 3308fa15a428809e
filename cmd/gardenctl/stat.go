// stat.go implements "gardenctl stat": a segment's header, layout, fill,
// counters, stripe balance, change ring and attached processes.

package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/gardenstate/gardenstate/shm"
)

// statReport is everything stat prints.
type statReport struct {
	Path     string        `json:"path"`
	Header   headerJSON    `json:"header"`
	Fill     fillJSON      `json:"fill"`
	Counters countersJSON  `json:"counters"`
	Balance  balanceJSON   `json:"stripe_balance"`
	Ring     ringJSON      `json:"change_ring"`
	Procs    []procInfo    `json:"procs"`
	created  time.Time     // for the table
	ttl      time.Duration // for the table
}

type headerJSON struct {
	App                 string  `json:"app"`
	FormatVersion       int     `json:"format_version"`
	Size                int64   `json:"size"`
	Stripes             int     `json:"stripes"`
	IndexSlots          int     `json:"index_slots_per_stripe"`
	ArenaSize           int64   `json:"arena_bytes_per_stripe"`
	MaxValue            int     `json:"max_value"`
	MaxKey              int     `json:"max_key"`
	MaxProcs            int     `json:"max_procs"`
	RingSize            int     `json:"ring_size"`
	NodeID              uint32  `json:"node_id"`
	HashSeed            string  `json:"hash_seed"`
	Created             *string `json:"created"`
	TombstoneTTLSeconds float64 `json:"tombstone_ttl_seconds"`
}

type fillJSON struct {
	Entries    uint64  `json:"entries"`
	Tombstones uint64  `json:"tombstones"`
	BytesLive  uint64  `json:"bytes_live"`
	BytesUsed  uint64  `json:"bytes_used"`
	BytesFree  uint64  `json:"bytes_free"`
	BytesTotal uint64  `json:"bytes_total"`
	Fill       float64 `json:"fill"`
	IndexSlots uint64  `json:"index_slots"`
	IndexFill  float64 `json:"index_fill"`
}

// countersJSON are shm.Stats' counters, in the order they are printed.
type countersJSON struct {
	Gets            uint64 `json:"gets"`
	Hits            uint64 `json:"hits"`
	Misses          uint64 `json:"misses"`
	Sets            uint64 `json:"sets"`
	Deletes         uint64 `json:"deletes"`
	Touches         uint64 `json:"touches"`
	Expirations     uint64 `json:"expirations"`
	Evictions       uint64 `json:"evictions"`
	ForcedEvictions uint64 `json:"forced_evictions"`
	Relocations     uint64 `json:"relocations"`
	LockWaits       uint64 `json:"lock_waits"`
	LockTimeouts    uint64 `json:"lock_timeouts"`
	Takeovers       uint64 `json:"takeovers"`
	Repairs         uint64 `json:"repairs"`
	Dropped         uint64 `json:"dropped"`
	Corruptions     uint64 `json:"corruptions"`
	StaleUnlocks    uint64 `json:"stale_unlocks"`
}

// spread summarizes one quantity across stripes.
type spread struct {
	Min       uint64  `json:"min"`
	MinStripe int     `json:"min_stripe"`
	Avg       float64 `json:"avg"`
	Max       uint64  `json:"max"`
	MaxStripe int     `json:"max_stripe"`
}

type balanceJSON struct {
	Stripes int    `json:"stripes"`
	Entries spread `json:"entries"`
	Bytes   spread `json:"bytes_live"`
}

type ringJSON struct {
	LastSeq  uint64 `json:"last_seq"`
	AckedSeq uint64 `json:"acked_seq"`
	Unacked  uint64 `json:"unacked"`
}

func (a *app) statCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "stat",
		Short: "Show a segment's header, fill, counters, stripe balance and processes",
		Long: `Show everything a segment says about itself: its header (application,
format, layout, node id), how full it is, every counter since it was
created (summed over stripes), how evenly entries spread over the stripes,
the change ring (last sequence handed out, last one the agent acknowledged)
and the processes attached to it (gardenctl itself not listed).

Counters are read without locks while workers run: each is exact, the set
is not one instant's snapshot.`,
		Example: `  gardenctl stat --app shop
  gardenctl stat --segment /dev/shm/gardenstate-shop --json | jq .counters`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withSegment(func(seg *shm.Segment) error {
				r, err := collectStat(seg)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(a.stdout, r)
				}
				return printStat(a.stdout, r)
			})
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func collectStat(seg *shm.Segment) (*statReport, error) {
	info, st := seg.Info(), seg.Stats()
	procs, err := attachedProcs(seg)
	if err != nil {
		return nil, fmt.Errorf("cannot list the processes attached to %s: %w", seg.Path(), err)
	}
	r := &statReport{
		Path: seg.Path(),
		Header: headerJSON{
			App: info.App, FormatVersion: info.FormatVersion, Size: info.Size, Stripes: info.Stripes,
			IndexSlots: info.IndexSlots, ArenaSize: info.ArenaSize, MaxValue: info.MaxValue, MaxKey: info.MaxKey,
			MaxProcs: info.MaxProcs, RingSize: info.RingSize, NodeID: info.NodeID,
			HashSeed: fmt.Sprintf("%#016x", info.HashSeed), Created: timeJSON(info.Created),
			TombstoneTTLSeconds: info.TombstoneTTL.Seconds(),
		},
		Counters: countersJSON{
			Gets: st.Gets, Hits: st.Hits, Misses: st.Misses, Sets: st.Sets, Deletes: st.Deletes,
			Touches: st.Touches, Expirations: st.Expirations, Evictions: st.Evictions,
			ForcedEvictions: st.ForcedEvictions, Relocations: st.Relocations, LockWaits: st.LockWaits,
			LockTimeouts: st.LockTimeouts, Takeovers: st.Takeovers, Repairs: st.Repairs,
			Dropped: st.Dropped, Corruptions: st.Corruptions, StaleUnlocks: st.StaleUnlocks,
		},
		Balance: stripeBalance(seg),
		Procs:   procs,
		created: info.Created,
		ttl:     info.TombstoneTTL,
	}
	slots := uint64(info.Stripes) * uint64(info.IndexSlots)
	r.Fill = fillJSON{
		Entries: st.Entries, Tombstones: st.Tombstones, BytesLive: st.BytesLive, BytesUsed: st.BytesUsed,
		BytesFree: st.BytesFree, BytesTotal: st.BytesTotal, Fill: ratio(st.BytesLive, st.BytesTotal),
		IndexSlots: slots, IndexFill: ratio(st.Entries, slots),
	}
	last, acked := seg.LastSeq(), seg.Acked()
	r.Ring = ringJSON{LastSeq: last, AckedSeq: acked}
	if last > acked {
		r.Ring.Unacked = last - acked
	}
	return r, nil
}

// stripeBalance reads every stripe's entry count and live bytes.
func stripeBalance(seg *shm.Segment) balanceJSON {
	n := seg.Stripes()
	b := balanceJSON{Stripes: n}
	var sumE, sumB uint64
	for i := range n {
		s := seg.StripeStats(i)
		if i == 0 || s.Entries < b.Entries.Min {
			b.Entries.Min, b.Entries.MinStripe = s.Entries, i
		}
		if i == 0 || s.Entries > b.Entries.Max {
			b.Entries.Max, b.Entries.MaxStripe = s.Entries, i
		}
		if i == 0 || s.BytesLive < b.Bytes.Min {
			b.Bytes.Min, b.Bytes.MinStripe = s.BytesLive, i
		}
		if i == 0 || s.BytesLive > b.Bytes.Max {
			b.Bytes.Max, b.Bytes.MaxStripe = s.BytesLive, i
		}
		sumE += s.Entries
		sumB += s.BytesLive
	}
	if n > 0 {
		b.Entries.Avg = float64(sumE) / float64(n)
		b.Bytes.Avg = float64(sumB) / float64(n)
	}
	return b
}

func printStat(w io.Writer, r *statReport) error {
	h, f, c := r.Header, r.Fill, r.Counters
	tw := newTable(w)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	app := h.App
	if app == "" {
		app = "(none)"
	}
	p("segment\t%s", r.Path)
	p("app\t%s", app)
	p("format version\t%d", h.FormatVersion)
	p("size\t%s (%d bytes)", sizeIEC(h.Size), h.Size)
	p("created\t%s", timeText(r.created))
	p("node id\t%d", h.NodeID)
	p("hash seed\t%s", h.HashSeed)
	p("stripes\t%d × %s arena, %d index slots each", h.Stripes, sizeIEC(h.ArenaSize), h.IndexSlots)
	p("max value\t%s (keys up to %d bytes)", sizeIEC(int64(h.MaxValue)), h.MaxKey)
	p("process slots\t%d", h.MaxProcs)
	p("tombstones kept\t%s", r.ttl)
	p("")
	p("FILL")
	p("entries\t%d\t(of which %s)", f.Entries, plural(f.Tombstones, "tombstone", "tombstones"))
	p("live bytes\t%s\t(%s of the arenas)", sizeIEC(int64(f.BytesLive)), percent(f.BytesLive, f.BytesTotal))
	p("used bytes\t%s\t(garbage not yet reclaimed included)", sizeIEC(int64(f.BytesUsed)))
	p("free bytes\t%s", sizeIEC(int64(f.BytesFree)))
	p("index slots\t%d of %d used\t(%s)", f.Entries, f.IndexSlots, percent(f.Entries, f.IndexSlots))
	p("")
	p("COUNTERS")
	p("gets\t%d", c.Gets)
	if c.Gets > 0 {
		p("hits\t%d\t(%s of gets)", c.Hits, percent(c.Hits, c.Gets))
	} else {
		p("hits\t%d", c.Hits)
	}
	p("misses\t%d", c.Misses)
	p("sets\t%d\t(local and applied from peers)", c.Sets)
	p("deletes\t%d", c.Deletes)
	p("touches\t%d", c.Touches)
	p("expirations\t%d", c.Expirations)
	p("evictions\t%d", c.Evictions)
	p("forced evictions\t%d\t(live entries evicted: the segment is too small)", c.ForcedEvictions)
	p("relocations\t%d", c.Relocations)
	p("lock waits\t%d", c.LockWaits)
	p("lock timeouts\t%d\t(a live process held a lock too long)", c.LockTimeouts)
	p("takeovers\t%d\t(locks taken from dead processes)", c.Takeovers)
	p("repairs\t%d", c.Repairs)
	p("dropped\t%d\t(records a repair could not prove whole)", c.Dropped)
	p("corruptions\t%d", c.Corruptions)
	p("stale unlocks\t%d", c.StaleUnlocks)
	p("")
	b := r.Balance
	p("STRIPE BALANCE\tMIN\tAVG\tMAX")
	p("entries\t%d (stripe %d)\t%.1f\t%d (stripe %d)", b.Entries.Min, b.Entries.MinStripe, b.Entries.Avg, b.Entries.Max, b.Entries.MaxStripe)
	p("live bytes\t%s (stripe %d)\t%s\t%s (stripe %d)", sizeIEC(int64(b.Bytes.Min)), b.Bytes.MinStripe,
		sizeIEC(int64(b.Bytes.Avg)), sizeIEC(int64(b.Bytes.Max)), b.Bytes.MaxStripe)
	p("")
	p("CHANGE RING")
	p("records\t%d", h.RingSize)
	p("last sequence\t%d", r.Ring.LastSeq)
	p("acknowledged\t%d\t(%d not yet acknowledged by the agent)", r.Ring.AckedSeq, r.Ring.Unacked)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(r.Procs) == 0 {
		fmt.Fprintln(w, "PROCESSES: none attached (besides this gardenctl)")
		return nil
	}
	fmt.Fprintln(w, "PROCESSES")
	tw = newTable(w)
	fmt.Fprintln(tw, "SLOT\tPID\tCOMMAND\tATTACHED")
	for _, pr := range r.Procs {
		cmd := pr.Command
		if cmd == "" {
			cmd = "?"
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\n", pr.Slot, pr.PID, cmd, timeText(pr.attached))
	}
	return tw.Flush()
}
