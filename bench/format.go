// format.go turns measured values into short human-readable text: durations
// with their unit, rates and sizes with SI or binary prefixes, ratios.

package main

import (
	"fmt"
	"math"
	"time"
)

// formatValue renders v in unit for tables.
func formatValue(v float64, unit string) string {
	switch unit {
	case unitNs:
		return formatDuration(time.Duration(v))
	case unitOps:
		return formatRate(v)
	case unitBytes:
		return formatBytes(v)
	default:
		if v == math.Trunc(v) && math.Abs(v) < 1e15 {
			return fmt.Sprintf("%.0f", v)
		}
		return fmt.Sprintf("%.3g", v)
	}
}

func formatDuration(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return trimFloat(float64(d)/1e3) + "µs"
	case d < time.Second:
		return trimFloat(float64(d)/1e6) + "ms"
	default:
		return trimFloat(float64(d)/1e9) + "s"
	}
}

// trimFloat prints three significant digits.
func trimFloat(f float64) string {
	switch {
	case f >= 100:
		return fmt.Sprintf("%.0f", f)
	case f >= 10:
		return fmt.Sprintf("%.1f", f)
	default:
		return fmt.Sprintf("%.2f", f)
	}
}

func formatRate(v float64) string {
	switch {
	case v >= 1e6:
		return trimFloat(v/1e6) + "M/s"
	case v >= 1e3:
		return trimFloat(v/1e3) + "k/s"
	default:
		return trimFloat(v) + "/s"
	}
}

func formatBytes(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1<<30:
		return trimFloat(v/(1<<30)) + " GiB"
	case a >= 1<<20:
		return trimFloat(v/(1<<20)) + " MiB"
	case a >= 1<<10:
		return trimFloat(v/(1<<10)) + " KiB"
	default:
		return fmt.Sprintf("%.0f B", v)
	}
}

func formatRatio(v float64) string { return trimFloat(v) + "×" }

// sizeName is a value size as the cases name it: "100 B", "1 KiB".
func sizeName(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}
