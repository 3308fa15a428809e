// table.go lays a suite's measurements out as tables (one row per case and
// subject, one column per metric) and renders tables as aligned text for
// the terminal or as Markdown for the report.

package main

import (
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Table is a grid of text with a header row.
type Table struct {
	Header []string
	Rows   [][]string
}

type rowKey struct{ cs, subject string }

// measurementTables pivots r's measurements: consecutive cases measured
// with the same metrics share a table. Skipped subjects become rows that
// say why.
func measurementTables(r *SuiteResult) []Table {
	var cases []string
	metrics := map[string][]string{}
	units := map[string]string{}
	subjects := map[string][]string{}
	vals := map[rowKey]map[string]Measurement{}
	for _, m := range r.Measurements {
		if !slices.Contains(cases, m.Case) {
			cases = append(cases, m.Case)
		}
		if !slices.Contains(metrics[m.Case], m.Metric) {
			metrics[m.Case] = append(metrics[m.Case], m.Metric)
		}
		units[m.Metric] = m.Unit
		if !slices.Contains(subjects[m.Case], m.Subject) {
			subjects[m.Case] = append(subjects[m.Case], m.Subject)
		}
		k := rowKey{m.Case, m.Subject}
		if vals[k] == nil {
			vals[k] = map[string]Measurement{}
		}
		vals[k][m.Metric] = m
	}
	skipped := map[string][]Skip{}
	for _, s := range r.Skipped {
		if !slices.Contains(cases, s.Case) {
			cases = append(cases, s.Case)
		}
		skipped[s.Case] = append(skipped[s.Case], s)
	}
	var out []Table
	var cur *Table
	var curMetrics []string
	for _, cs := range cases {
		ms := metrics[cs]
		if cur == nil || (len(ms) > 0 && !slices.Equal(ms, curMetrics)) {
			out = append(out, Table{Header: append([]string{"case", "subject"}, ms...)})
			cur, curMetrics = &out[len(out)-1], ms
		}
		for _, sub := range subjects[cs] {
			row := []string{cs, sub}
			for _, metric := range curMetrics {
				if m, ok := vals[rowKey{cs, sub}][metric]; ok {
					row = append(row, formatValue(m.Value, units[metric]))
				} else {
					row = append(row, "—")
				}
			}
			cur.Rows = append(cur.Rows, row)
		}
		for _, s := range skipped[cs] {
			row := []string{cs, s.Subject}
			for range curMetrics {
				row = append(row, "—")
			}
			cur.Rows = append(cur.Rows, append(row, s.Reason))
		}
	}
	// Tables with skipped rows get a last column saying why.
	for i := range out {
		t := &out[i]
		for _, row := range t.Rows {
			if len(row) > len(t.Header) {
				t.Header = append(t.Header, "note")
				break
			}
		}
		for j := range t.Rows {
			for len(t.Rows[j]) < len(t.Header) {
				t.Rows[j] = append(t.Rows[j], "")
			}
		}
	}
	return out
}

// ratioHows maps each metric of r's ratios to how they were computed,
// with the compared names replaced by "first" and "second", in order.
func ratioHows(r *SuiteResult) (metrics []string, hows map[string][]string) {
	hows = map[string][]string{}
	for _, x := range r.Ratios {
		how := strings.NewReplacer(x.Subject, "first", x.Baseline, "second").Replace(x.How)
		if !slices.Contains(metrics, x.Metric) {
			metrics = append(metrics, x.Metric)
		}
		if !slices.Contains(hows[x.Metric], how) {
			hows[x.Metric] = append(hows[x.Metric], how)
		}
	}
	return metrics, hows
}

// ratioUniform reports whether all ratios of each metric were computed the
// same way, so that a table can have one column per metric.
func ratioUniform(r *SuiteResult) bool {
	_, hows := ratioHows(r)
	for _, h := range hows {
		if len(h) > 1 {
			return false
		}
	}
	return len(hows) > 1 || len(r.Ratios) > 0 && len(hows) == 1
}

// ratioTable lists r's ratios: one row per case and pair compared and one
// column per metric when that is unambiguous, else one row per ratio
// saying how it was computed.
func ratioTable(r *SuiteResult) Table {
	if !ratioUniform(r) || allDistinctMetrics(r) {
		t := Table{Header: []string{"case", "compared", "metric", "ratio", "computed as"}}
		for _, x := range r.Ratios {
			t.Rows = append(t.Rows, []string{x.Case, x.Subject + " vs " + x.Baseline, x.Metric, formatRatio(x.Value), x.How})
		}
		return t
	}
	type pair struct{ cs, cmp string }
	var rows []pair
	metrics, _ := ratioHows(r)
	vals := map[pair]map[string]float64{}
	for _, x := range r.Ratios {
		k := pair{x.Case, x.Subject + " vs " + x.Baseline}
		if vals[k] == nil {
			vals[k] = map[string]float64{}
			rows = append(rows, k)
		}
		vals[k][x.Metric] = x.Value
	}
	t := Table{Header: append([]string{"case", "compared"}, metrics...)}
	for _, k := range rows {
		row := []string{k.cs, k.cmp}
		for _, m := range metrics {
			if v, ok := vals[k][m]; ok {
				row = append(row, formatRatio(v))
			} else {
				row = append(row, "—")
			}
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// allDistinctMetrics reports whether no two ratios share a metric (a
// table with a column per metric would be all gaps).
func allDistinctMetrics(r *SuiteResult) bool {
	metrics, _ := ratioHows(r)
	return len(metrics) == len(r.Ratios) && len(metrics) > 1
}

// ratioLegend introduces r's ratio table.
func ratioLegend(r *SuiteResult) string {
	if !ratioUniform(r) || allDistinctMetrics(r) {
		return "Ratios (above 1 favours the first named):"
	}
	metrics, hows := ratioHows(r)
	var parts []string
	var seen []string
	for _, m := range metrics {
		h := hows[m][0]
		if slices.Contains(seen, h) {
			continue
		}
		seen = append(seen, h)
		var same []string
		for _, m2 := range metrics {
			if hows[m2][0] == h {
				same = append(same, m2)
			}
		}
		parts = append(parts, strings.Join(same, ", ")+" = "+h)
	}
	return "Ratios (" + strings.Join(parts, "; ") + "; above 1 favours the first named):"
}

// Text renders t with columns aligned, two spaces apart, numbers on the
// right.
func (t Table) Text(indent string) string {
	w := make([]int, len(t.Header))
	for _, row := range append([][]string{t.Header}, t.Rows...) {
		for i, c := range row {
			if i < len(w) {
				w[i] = max(w[i], utf8.RuneCountInString(c))
			}
		}
	}
	var out strings.Builder
	line := func(row []string) {
		var b strings.Builder
		defer func() { out.WriteString(strings.TrimRight(b.String(), " ") + "\n") }()
		b.WriteString(indent)
		for i, c := range row {
			if i >= len(w) {
				break
			}
			pad := strings.Repeat(" ", w[i]-utf8.RuneCountInString(c))
			if i > 0 {
				b.WriteString("  ")
			}
			if i >= 2 && numeric(c) {
				b.WriteString(pad + c)
			} else if i < len(row)-1 {
				b.WriteString(c + pad)
			} else {
				b.WriteString(c)
			}
		}
	}
	if strings.Join(t.Header, "") != "" {
		line(t.Header)
		sep := make([]string, len(w))
		for i := range sep {
			sep[i] = strings.Repeat("-", w[i])
		}
		line(sep)
	}
	for _, r := range t.Rows {
		line(r)
	}
	return out.String()
}

// Markdown renders t as a GitHub table.
func (t Table) Markdown() string {
	var b strings.Builder
	esc := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	b.WriteString("|")
	for _, h := range t.Header {
		b.WriteString(" " + esc(h) + " |")
	}
	b.WriteString("\n|")
	for i := range t.Header {
		if t.numericColumn(i) {
			b.WriteString("---:|")
		} else {
			b.WriteString("---|")
		}
	}
	b.WriteString("\n")
	for _, r := range t.Rows {
		b.WriteString("|")
		for _, c := range r {
			b.WriteString(" " + esc(c) + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// numericColumn reports whether column i holds numbers (or nothing) in
// every row.
func (t Table) numericColumn(i int) bool {
	seen := false
	for _, r := range t.Rows {
		if i >= len(r) || r[i] == "" || r[i] == "—" {
			continue
		}
		if !numeric(r[i]) {
			return false
		}
		seen = true
	}
	return seen
}

// numericCell matches a number with an optional unit: "1.23M/s", "2.00×",
// "64.0 MiB", "—".
var numericCell = regexp.MustCompile(`^-?[0-9][0-9.,]*( ?[A-Za-zµ/%×]+)?$`)

// numeric reports whether a cell is a number (right-aligned).
func numeric(s string) bool { return numericCell.MatchString(s) }
