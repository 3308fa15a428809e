// completion.go completes arguments in the shell (gardenctl completion
// bash|zsh|fish|powershell installs it): application names from the
// segment directory, and keys from the chosen segment.

package main

import (
	"bytes"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gardenstate/gardenstate/shm"
)

// maxCompletions bounds how many keys are offered.
const maxCompletions = 1000

// completeApps offers the applications with a segment in --dir.
func (a *app) completeApps(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	names, err := segmentFiles(a.dir)
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var apps []string
	for _, n := range names {
		app := strings.TrimPrefix(filepath.Base(n), segmentPrefix)
		if strings.HasPrefix(app, toComplete) {
			apps = append(apps, app)
		}
	}
	return apps, cobra.ShellCompDirectiveNoFileComp
}

// completeKeys offers the printable keys of the chosen segment that start
// with what was typed.
func (a *app) completeKeys(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	a.resolveShared(cmd.Flags())
	seg, err := a.openSegment()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer seg.Close()
	var keys []string
	prefix := []byte(toComplete)
	for i := range seg.Stripes() {
		seg.Range(i, func(e shm.Entry) bool {
			if !e.Deleted && bytes.HasPrefix(e.Key, prefix) && plainKey(e.Key) {
				keys = append(keys, string(e.Key))
			}
			return len(keys) < maxCompletions
		})
		if len(keys) >= maxCompletions {
			break
		}
	}
	sort.Strings(keys)
	return keys, cobra.ShellCompDirectiveNoFileComp
}
