// ls.go implements "gardenctl ls": the entries of a segment with their
// size, version, origin node and deadline, read one stripe at a time.

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
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

Expired entries cannot be listed: the segment skips entries past their
deadline when it is read (they are dropped lazily, and counted in stat's
expirations), so --expired reports that instead of listing anything.`,
		Example: `  gardenctl ls --app shop
  gardenctl ls --app shop --prefix user- --limit 20
  gardenctl ls --app shop --tombstones --json | jq '.[] | select(.deleted)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if expired {
				return errors.New("--expired: expired entries cannot be listed: the segment's Range skips entries past their deadline, and they are dropped lazily (stat counts them under expirations)")
			}
			if limit < 0 {
				return usageErrorf("--limit %d: must be 0 (no limit) or more", limit)
			}
			pfx, err := parseKey(prefix)
			if err != nil {
				return err
			}
			return a.withSegment(func(seg *shm.Segment) error {
				rows, total, err := listEntries(cmd.Context(), seg, pfx, tombstones, limit, a.now())
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(a.stdout, rows)
				}
				printEntries(a.stdout, rows, tombstones, a.now())
				if total > len(rows) {
					fmt.Fprintf(a.stderr, "%d of %d entries shown (--limit %d)\n", len(rows), total, limit)
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&prefix, "prefix", "", "only keys starting with this (quoted form accepted)")
	f.IntVar(&limit, "limit", 0, "show at most this many entries, 0 for all")
	f.BoolVar(&tombstones, "tombstones", false, "include deleted keys (tombstones kept so replication cannot resurrect them)")
	f.BoolVar(&expired, "expired", false, "list expired entries: not available, the segment skips them when read (see above)")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

// listEntries collects the entries whose key starts with prefix, sorted by
// key, at most limit (0: all) of them, and how many matched in all.
func listEntries(ctx context.Context, seg *shm.Segment, prefix []byte, tombstones bool, limit int, now time.Time) ([]entryRow, int, error) {
	rows := []entryRow{}
	for i := range seg.Stripes() {
		if ctx.Err() != nil {
			return nil, 0, errInterrupted
		}
		err := seg.Range(i, func(e shm.Entry) bool {
			if (e.Deleted && !tombstones) || !bytes.HasPrefix(e.Key, prefix) {
				return true
			}
			rows = append(rows, entryRow{
				Key: displayKey(e.Key), KeyBase64: base64.StdEncoding.EncodeToString(e.Key),
				Size: len(e.Value), Version: e.Version.String(), VersionTime: e.Version.Time, Node: e.Version.Node,
				Expires: timeJSON(e.Expires), ExpiresIn: untilSeconds(e.Expires, now),
				Accessed: timeJSON(e.Accessed), Deleted: e.Deleted,
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
	if limit > 0 && len(rows) > limit {
		rows = rows[:limit]
	}
	return rows, total, nil
}

func printEntries(w io.Writer, rows []entryRow, tombstones bool, now time.Time) {
	if len(rows) == 0 {
		fmt.Fprintln(w, "no entries")
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
