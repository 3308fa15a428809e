// hbar.go is a gonum/plot plotter for horizontal bars on a logarithmic
// axis: plotter.BarChart starts every bar at zero, which a log scale
// cannot show, so these bars start at the axis minimum.

package main

import (
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// logBars draws one series: values[i] is the bar of row i (0 or NaN for
// none), rows counted from the top, shifted by offsets[i] within its row.
type logBars struct {
	values  []float64
	offsets []vg.Length
	width   vg.Length
	color   color.Color
}

func (b *logBars) rowY(i int) float64 { return float64(len(b.values) - 1 - i) }

// Plot implements plot.Plotter.
func (b *logBars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	x0 := trX(p.X.Min)
	for i, v := range b.values {
		if !(v > 0) {
			continue
		}
		y := trY(b.rowY(i)) + b.offsets[i]
		x1 := trX(math.Min(math.Max(v, p.X.Min), p.X.Max))
		pts := []vg.Point{{X: x0, Y: y - b.width/2}, {X: x0, Y: y + b.width/2}, {X: x1, Y: y + b.width/2}, {X: x1, Y: y - b.width/2}}
		c.FillPolygon(b.color, c.ClipPolygonXY(pts))
	}
}

// DataRange implements plot.DataRanger.
func (b *logBars) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, xmax = math.Inf(1), math.Inf(-1)
	for _, v := range b.values {
		if v > 0 {
			xmin, xmax = math.Min(xmin, v), math.Max(xmax, v)
		}
	}
	return xmin, xmax, 0, float64(len(b.values) - 1)
}

// Thumbnail implements plot.Thumbnailer, for the legend.
func (b *logBars) Thumbnail(c *draw.Canvas) {
	pts := []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Min.X, Y: c.Max.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Max.X, Y: c.Min.Y}}
	c.FillPolygon(b.color, c.ClipPolygonY(pts))
}

// unitTicks labels a log axis with formatted values of unit.
type unitTicks struct{ unit string }

// Ticks implements plot.Ticker.
func (t unitTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.LogTicks{Prec: -1}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = formatValue(ticks[i].Value, t.unit)
		}
	}
	return ticks
}
