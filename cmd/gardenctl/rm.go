// rm.go implements the destructive commands, "gardenctl rm" and
// "gardenctl flush": both refuse to run without --yes.

package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gardenstate/gardenstate/shm"
)

// replicationNote warns that deletes travel to every peer.
const replicationNote = `A delete leaves a tombstone that the agent replicates: the entry is
deleted on every host of the farm, not only this one.`

func (a *app) rmCommand() *cobra.Command {
	var yes, asJSON bool
	cmd := &cobra.Command{
		Use:   "rm ID",
		Short: "Delete one entry (needs --yes)",
		Long: `Delete the entry stored under ID (a session id, or any key as ls prints
it; an id that starts with - goes after --). The user of that session is
logged out on their next request.

` + replicationNote,
		Example: `  gardenctl rm --app shop Xy3kq9fT2mVw8Rr1 --yes
  gardenctl rm --app shop --yes -- -2JCFcFQVpF7n6No9za3qw`,
		Args:              exactArgs(1, "the id (key) of the entry to delete"),
		ValidArgsFunction: a.completeKeys,
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := parseKey(args[0])
			if err != nil {
				return err
			}
			if !yes {
				return usageErrorf("rm deletes %s for every worker and, through the agent, on every host; run again with --yes to do it", displayKey(key))
			}
			return a.withSegment(func(seg *shm.Segment) error {
				deleted := seg.Delete(key)
				if asJSON {
					if err := writeJSON(a.stdout, map[string]any{"segment": seg.Path(), "key": displayKey(key), "deleted": deleted}); err != nil {
						return err
					}
				}
				if !deleted {
					return fmt.Errorf("no entry %s in %s", displayKey(key), seg.Path())
				}
				if !asJSON {
					fmt.Fprintf(a.stdout, "deleted %s from %s\n", displayKey(key), seg.Path())
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "really delete")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func (a *app) flushCommand() *cobra.Command {
	var yes, asJSON bool
	cmd := &cobra.Command{
		Use:   "flush",
		Short: "Delete every entry of a segment (needs --yes)",
		Long: `Delete every entry of a segment: every user is logged out. The segment
stays, and workers keep running; entries written while flush runs may
survive it.

` + replicationNote + ` Use it to clear a farm, not to reset one host.`,
		Example: `  gardenctl flush --app shop-staging --yes`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !yes {
				return usageErrorf("flush deletes every session of the segment for every worker and, through the agent, on every host; run again with --yes to do it")
			}
			return a.withSegment(func(seg *shm.Segment) error {
				deleted, err := a.flush(cmd.Context(), seg)
				if asJSON {
					if jerr := writeJSON(a.stdout, map[string]any{"segment": seg.Path(), "deleted": deleted}); jerr != nil {
						return jerr
					}
				} else {
					fmt.Fprintf(a.stdout, "deleted %d entries from %s\n", deleted, seg.Path())
				}
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "really delete everything")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

// flush deletes every live entry, one stripe at a time.
func (a *app) flush(ctx context.Context, seg *shm.Segment) (int, error) {
	deleted := 0
	prog := a.newProgress("flush", int64(seg.Stripes()))
	defer prog.finish()
	for i := range seg.Stripes() {
		if ctx.Err() != nil {
			return deleted, errInterrupted
		}
		var keys [][]byte
		err := seg.Range(i, func(e shm.Entry) bool {
			if !e.Deleted {
				keys = append(keys, e.Key)
			}
			return true
		})
		if err != nil {
			return deleted, fmt.Errorf("reading stripe %d of %s: %w", i, seg.Path(), err)
		}
		for _, k := range keys {
			if ctx.Err() != nil {
				return deleted, errInterrupted
			}
			if seg.Delete(k) {
				deleted++
			}
		}
		prog.set(int64(i+1), fmt.Sprintf("%d deleted", deleted))
	}
	return deleted, nil
}
