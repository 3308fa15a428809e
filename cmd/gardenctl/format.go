// format.go holds the helpers every command prints with: tables, JSON,
// byte sizes, times and durations.

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"
)

// newTable returns a tabwriter for tab-separated rows; Flush prints them
// with aligned columns.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// sizeIEC formats n bytes with a binary unit: 512B, 1.5KiB, 64.0MiB.
func sizeIEC(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + "B"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB"}
	v := float64(n) / 1024
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f%s", v, units[i])
}

// percent formats part/whole as a percentage, "-" when whole is zero.
func percent(part, whole uint64) string {
	if whole == 0 {
		return "-"
	}
	p := 100 * float64(part) / float64(whole)
	if p > 0 && p < 0.1 {
		return "<0.1%"
	}
	return fmt.Sprintf("%.1f%%", p)
}

// plural is "1 stripe", "2 stripes".
func plural(n uint64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// ratio is part/whole, 0 when whole is zero.
func ratio(part, whole uint64) float64 {
	if whole == 0 {
		return 0
	}
	return float64(part) / float64(whole)
}

// timeText prints a time in UTC to the second, "never" for the zero time.
func timeText(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

// timeJSON is t for JSON: RFC 3339 in UTC, null for the zero time.
func timeJSON(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339Nano)
	return &s
}

// untilText prints how long from now until t: "19m58s", "expired 3s ago",
// "-" for the zero time (never).
func untilText(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := t.Sub(now)
	if d <= 0 { // before rounding: a deadline passed by 0.2s is passed
		return "expired " + (-d).Round(time.Second).String() + " ago"
	}
	return d.Round(time.Second).String()
}

// untilSeconds is the JSON form of untilText: seconds, null for never.
func untilSeconds(t, now time.Time) *float64 {
	if t.IsZero() {
		return nil
	}
	s := t.Sub(now).Seconds()
	return &s
}

// accessTime is an entry's last access as shm reports it (milliseconds
// since the epoch), or the zero time when none is recorded.
func accessTime(t time.Time) time.Time {
	if t.UnixMilli() <= 0 {
		return time.Time{}
	}
	return t
}

// agoText prints how long before now t was: "3m12s ago", or "just now"
// within a second (access times are recorded to about a second, and may be
// a little ahead of this process's clock).
func agoText(t, now time.Time) string {
	d := now.Sub(t).Round(time.Second)
	if d < time.Second {
		return "just now"
	}
	return d.String() + " ago"
}
