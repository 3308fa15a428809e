// plot.go draws a suite's figures as SVG with gonum/plot: latency
// percentiles (p50 and p99 of every case and subject) and throughput,
// each as horizontal bars on a log scale.

package main

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
)

var seriesColors = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
}

// writePlots draws r's plots into dir and records their file names.
func writePlots(r *SuiteResult, dir string) error {
	lat := []string{"p50", "p99"}
	if err := barPlot(r, dir, r.Name+"-latency.svg", "latency", unitNs, func(m Measurement) bool {
		return m.Unit == unitNs && slices.Contains(lat, m.Metric)
	}); err != nil {
		return err
	}
	return barPlot(r, dir, r.Name+"-throughput.svg", "operations per second", unitOps, func(m Measurement) bool {
		return m.Unit == unitOps && m.Metric != "ops/s per process"
	})
}

// barPlot draws the measurements keep selects: one row per case and
// subject, one bar colour per metric. Nothing is written when nothing is
// selected.
func barPlot(r *SuiteResult, dir, file, what, unit string, keep func(Measurement) bool) error {
	var rows []rowKey
	var metrics []string
	vals := map[rowKey]map[string]float64{}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, m := range r.Measurements {
		if !keep(m) || !(m.Value > 0) {
			continue
		}
		k := rowKey{m.Case, m.Subject}
		if vals[k] == nil {
			vals[k] = map[string]float64{}
			rows = append(rows, k)
		}
		vals[k][m.Metric] = m.Value
		if !slices.Contains(metrics, m.Metric) {
			metrics = append(metrics, m.Metric)
		}
		lo, hi = math.Min(lo, m.Value), math.Max(hi, m.Value)
	}
	if len(rows) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: %s (log scale)", r.Name, what)
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = unitTicks{unit}
	p.X.Label.Text = what
	p.Legend.Top = true
	rowH := vg.Points(float64(6 + 8*len(metrics)))
	barW := rowH / vg.Length(len(metrics)+1)
	labels := make([]string, len(rows))
	for i, k := range rows {
		labels[len(rows)-1-i] = k.cs + " · " + k.subject
	}
	for j, metric := range metrics {
		b := &logBars{values: make([]float64, len(rows)), offsets: make([]vg.Length, len(rows)), width: barW, color: seriesColors[j%len(seriesColors)]}
		for i, k := range rows {
			b.values[i] = vals[k][metric]
			// Centre the bars a row has, in the order of the metrics.
			var have, pos int
			for _, m := range metrics {
				if _, ok := vals[k][m]; ok {
					if m == metric {
						pos = have
					}
					have++
				}
			}
			b.offsets[i] = barW * (vg.Length(have-1)/2 - vg.Length(pos))
		}
		p.Add(b)
		p.Legend.Add(metric, b)
	}
	p.NominalY(labels...)
	p.X.Min, p.X.Max = lo/2, hi*2
	// Room above the top row for the legend.
	legendRows := 0.3 + 0.45*float64(len(metrics))*float64(p.Legend.TextStyle.Font.Size.Points()+2)/float64(rowH.Points())*2
	p.Y.Min, p.Y.Max = -0.6, float64(len(rows))-0.4+legendRows
	height := rowH*vg.Length(float64(len(rows))+legendRows) + 1.4*vg.Inch
	if err := p.Save(9*vg.Inch, height, filepath.Join(dir, file)); err != nil {
		return fmt.Errorf("plot %s: %w", file, err)
	}
	r.Plots = append(r.Plots, file)
	return nil
}
