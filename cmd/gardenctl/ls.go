// ls.go implements "gardenctl ls": the entries of a segment with their
// size, version, origin node and deadline, read one stripe at a time; with
// --expired, the entries past their deadline that are not dropped yet.

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/gardenstate/gardenstate/shm"
)

// entryRow is one entry of the listing, without its value.
type entryRow struct {
	Key         string   `json:"key"`
	KeyBase64   string   `json:"key_base64"`
	Size        int      `json:"size"`
	Version     string   `json:"version"`
	VersionTime uint64   `json:"version_time"`
	Node        uint32   `json:"node"`
	Expires     *string  `json:"expires"`
	ExpiresIn   *float64 `json:"expires_in_seconds"`
	Accessed    *string  `json:"accessed"`
	Deleted     bool     `json:"deleted"`

	key     []byte
	expires time.Time
}

func (a *app) lsCommand() *cobra.Command {
	var (
		asJSON, tombstones, expired bool
		prefix                      string
		limit                       int
	)
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List a segment's entries",
		Long: `List the entries of a segment, sorted by key: key, value size, version
(wall-clock milliseconds.logical counter@node), the node that wrote it,
the idle deadline and how long until it.

Keys are bytes: a printable key is shown as it is, any other key as a
quoted string with escapes ("\x00\x01"); get and rm accept either form.
Each stripe is copied at one moment while workers keep writing, so the
listing is not a snapshot of one instant.

Entries past their deadline are invisible to workers' reads and are
dropped lazily, by later writes to their stripe and by the workers'
periodic sweep (stat counts them under expirations). --expired lists
those still in the segment instead of the live ones, with how long ago
they expired; --prefix, --limit and --tombstones apply to them too.`,
		Example: `  gardenctl ls --app shop
  gardenctl ls --app shop --prefix user- --limit 20
  gardenctl ls --app shop --tombstones --json | jq '.[] | select(.deleted)'
  gardenctl ls --app shop --expired`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return usageErrorf("--limit %d: must be 0 (no limit) or more", limit)
			}
			pfx, err := parseKey(prefix)
			if err != nil {
				return err
			}
			return a.withSegment(func(seg *shm.Segment) error {
				now := a.now()
				rows, total, err := listEntries(cmd.Context(), seg, listOptions{
					prefix: pfx, tombstones: tombstones, expired: expired, limit: limit,
				}, now)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(a.stdout, rows)
				}
				what := "entries"
				if expired {
					what = "expired entries"
				}
				printEntries(a.stdout, rows, tombstones, what, now)
				if total > len(rows) {
					fmt.Fprintf(a.stderr, "%d of %d %s shown (--limit %d)\n", len(rows), total, what, limit)
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&prefix, "prefix", "", "only keys starting with this (quoted form accepted)")
	f.IntVar(&limit, "limit", 0, "show at most this many entries, 0 for all")
	f.BoolVar(&tombstones, "tombstones", false, "include deleted keys (tombstones kept so replication cannot resurrect them)")
	f.BoolVar(&expired, "expired", false, "list the entries past their deadline that are not dropped yet, instead of the live ones")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

// listOptions select the entries listEntries collects.
type listOptions struct {
	prefix     []byte // keys starting with this
	tombstones bool   // deleted keys too
	expired    bool   // only entries past their deadline, not dropped yet
	limit      int    // at most this many, 0 for all
}

// listEntries collects the entries o selects, sorted by key, at most
// o.limit of them, and how many matched in all. Whether an entry has
// expired is judged against now.
func listEntries(ctx context.Context, seg *shm.Segment, o listOptions, now time.Time) ([]entryRow, int, error) {
	rows := []entryRow{}
	for i := range seg.Stripes() {
		if ctx.Err() != nil {
			return nil, 0, errInterrupted
		}
		err := seg.RangeWith(i, shm.RangeOptions{IncludeExpired: o.expired}, func(e shm.Entry) bool {
			if (e.Deleted && !o.tombstones) || !bytes.HasPrefix(e.Key, o.prefix) {
				return true
			}
			if o.expired && (e.Expires.IsZero() || e.Expires.After(now)) {
				return true
			}
			rows = append(rows, entryRow{
				Key: displayKey(e.Key), KeyBase64: base64.StdEncoding.EncodeToString(e.Key),
				Size: len(e.Value), Version: e.Version.String(), VersionTime: e.Version.Time, Node: e.Version.Node,
				Expires: timeJSON(e.Expires), ExpiresIn: untilSeconds(e.Expires, now),
				Accessed: timeJSON(accessTime(e.Accessed)), Deleted: e.Deleted,
				key: e.Key, expires: e.Expires,
			})
			return true
		})
		if err != nil {
			return nil, 0, fmt.Errorf("reading stripe %d of %s: %w", i, seg.Path(), err)
		}
	}
	sort.Slice(rows, func(i, j int) bool { return bytes.Compare(rows[i].key, rows[j].key) < 0 })
	total := len(rows)
	if o.limit > 0 && len(rows) > o.limit {
		rows = rows[:o.limit]
	}
	return rows, total, nil
}

// printEntries prints rows as a table; what names them when there are none
// ("entries", "expired entries").
func printEntries(w io.Writer, rows []entryRow, tombstones bool, what string, now time.Time) {
	if len(rows) == 0 {
		fmt.Fprintln(w, "no "+what)
		return
	}
	tw := newTable(w)
	head := "KEY\tSIZE\tVERSION\tNODE\tEXPIRES\tIN"
	if tombstones {
		head += "\tSTATE"
	}
	fmt.Fprintln(tw, head)
	for _, r := range rows {
		line := fmt.Sprintf("%s\t%d\t%s\t%d\t%s\t%s", r.Key, r.Size, r.Version, r.Node, timeText(r.expires), untilText(r.expires, now))
		if tombstones {
			state := "live"
			if r.Deleted {
				state = "deleted"
			}
			line += "\t" + state
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}
