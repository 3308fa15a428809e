// get.go implements "gardenctl get": one entry, its session value decoded
// from msgpack to JSON.

package main

import (
	"encoding/base64"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gardenstate/gardenstate/shm"
)

// getReport is what get --json prints.
type getReport struct {
	Key        string   `json:"key"`
	KeyBase64  string   `json:"key_base64"`
	Size       int      `json:"size"`
	Version    string   `json:"version"`
	Node       uint32   `json:"node"`
	Expires    *string  `json:"expires"`
	ExpiresIn  *float64 `json:"expires_in_seconds"`
	Accessed   *string  `json:"accessed"`
	Value      any      `json:"value"`
	ValueError string   `json:"value_error,omitempty"`
}

func (a *app) getCommand() *cobra.Command {
	var asJSON, raw bool
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Show one session, decoded from msgpack to JSON",
		Long: `Show the entry stored under ID (a session id, or any key as ls prints it,
quoted keys included; an id that starts with - goes after --) with its
version, deadline and last access, and its value decoded from msgpack to
JSON. A session is a msgpack map; values that are
msgpack bin holding msgpack themselves are decoded too, other bytes are
shown as {"base64": "..."}, timestamps as RFC 3339 strings. A value that is
not msgpack at all is shown as base64, with the reason on stderr.

--raw writes the value's bytes unchanged, for other tools.

get only looks: it is not counted in the segment's counters and does not
mark the entry recently used, so it changes neither stat's figures nor
which entries are evicted first. The last access it shows is the workers'
last read or write, recorded to about a second. An entry past its
deadline is not shown (ls --expired lists those not dropped yet).`,
		Example: `  gardenctl get --app shop Xy3kq9fT2mVw8Rr1
  gardenctl get --app shop Xy3kq9fT2mVw8Rr1 --json | jq .value.cart
  gardenctl get --app shop -- -2JCFcFQVpF7n6No9za3qw
  gardenctl get --app shop '"\x00\x01"' --raw | xxd`,
		Args:              exactArgs(1, "the id (key) of the entry to show"),
		ValidArgsFunction: a.completeKeys,
		RunE: func(cmd *cobra.Command, args []string) error {
			if asJSON && raw {
				return usageErrorf("give --json or --raw, not both")
			}
			key, err := parseKey(args[0])
			if err != nil {
				return err
			}
			return a.withSegment(func(seg *shm.Segment) error {
				e, ok := seg.Peek(nil, key)
				if !ok {
					return fmt.Errorf("no entry %s in %s", displayKey(key), seg.Path())
				}
				if e.Deleted {
					return fmt.Errorf("%s was deleted (version %s; the tombstone is kept until %s)",
						displayKey(key), e.Version, timeText(e.Expires))
				}
				if raw {
					_, err := a.stdout.Write(e.Value)
					return err
				}
				return a.printEntry(e, asJSON)
			})
		},
	}
	cmd.Flags().BoolVar(&raw, "raw", false, "write the value's bytes as they are")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func (a *app) printEntry(e shm.Entry, asJSON bool) error {
	now := a.now()
	r := getReport{
		Key: displayKey(e.Key), KeyBase64: base64.StdEncoding.EncodeToString(e.Key), Size: len(e.Value),
		Version: e.Version.String(), Node: e.Version.Node,
		Expires: timeJSON(e.Expires), ExpiresIn: untilSeconds(e.Expires, now),
		Accessed: timeJSON(accessTime(e.Accessed)),
	}
	v, err := decodeSession(e.Value)
	if err != nil {
		r.Value = bytesJSON{base64.StdEncoding.EncodeToString(e.Value)}
		r.ValueError = "not msgpack: " + err.Error()
		fmt.Fprintf(a.stderr, "gardenctl: the value of %s is not msgpack (%v); shown as base64\n", r.Key, err)
	} else {
		r.Value = v
	}
	if asJSON {
		return writeJSON(a.stdout, r)
	}
	tw := newTable(a.stdout)
	fmt.Fprintf(tw, "key\t%s\n", r.Key)
	fmt.Fprintf(tw, "size\t%d bytes\n", r.Size)
	fmt.Fprintf(tw, "version\t%s\t(written %s)\n", r.Version, timeText(e.Version.Wall()))
	fmt.Fprintf(tw, "node\t%d\n", r.Node)
	if e.Expires.IsZero() {
		fmt.Fprintf(tw, "expires\tnever\n")
	} else {
		fmt.Fprintf(tw, "expires\t%s\t(in %s)\n", timeText(e.Expires), untilText(e.Expires, now))
	}
	if acc := accessTime(e.Accessed); acc.IsZero() {
		fmt.Fprintf(tw, "accessed\tunknown\n")
	} else {
		fmt.Fprintf(tw, "accessed\t%s\t(%s)\n", timeText(acc), agoText(acc, now))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout)
	return writeJSON(a.stdout, r.Value)
}
