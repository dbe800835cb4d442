package main

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// palette holds distinguishable colours.
var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff},
}

// plotSpectra draws the density of each training point against the
// eigenvalue relative to that point's largest, on a log scale of density.
func plotSpectra(path string, specs []spectrum, c config) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Gauss–Newton spectrum of a batch of %d (SLQ, %d probes × %d steps)", c.batch, c.probes, c.steps)
	p.X.Label.Text = "eigenvalue / λ_max"
	p.Y.Label.Text = "density (smoothed, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: 1}
	p.Add(plotter.NewGrid())
	for i, sp := range specs {
		// Densities per unit of eigenvalue / λ_max, down to 10⁻⁶ of their
		// peak (below, the Gaussian tails of the smoothing).
		peak := 0.0
		for _, d := range sp.density {
			peak = max(peak, d*sp.hi)
		}
		var xys plotter.XYs
		for k, x := range sp.grid {
			if d := sp.density[k] * sp.hi; d > 1e-6*peak {
				xys = append(xys, plotter.XY{X: x / sp.hi, Y: d})
			}
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return err
		}
		l.Color = palette[i%len(palette)]
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("update %d (λ_max %.3g)", sp.update, sp.hi), l)
	}
	p.Legend.Top = true
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}

// plotBlocks draws each approximation's distance to the exact block
// against the training point.
func plotBlocks(path string, rows []blockRow, c config, sizes []int) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Distance to the exact GN block of layer %d (%d→%d), batch of %d", c.layer, sizes[c.layer], sizes[c.layer+1], c.batch)
	p.X.Label.Text = "training point"
	p.Y.Label.Text = "relative Frobenius distance (best scale)"
	p.Add(plotter.NewGrid())
	var methods []string
	byMethod := map[string]plotter.XYs{}
	updates := map[int]int{}
	for _, r := range rows {
		if _, ok := byMethod[r.method]; !ok {
			methods = append(methods, r.method)
		}
		if _, ok := updates[r.update]; !ok {
			updates[r.update] = len(updates)
		}
		byMethod[r.method] = append(byMethod[r.method], plotter.XY{X: float64(updates[r.update]), Y: r.err})
	}
	names := make([]string, len(updates))
	for u, i := range updates {
		names[i] = fmt.Sprintf("update %d", u)
	}
	for i, m := range methods {
		l, pts, err := plotter.NewLinePoints(byMethod[m])
		if err != nil {
			return err
		}
		l.Color, pts.Color = palette[i%len(palette)], palette[i%len(palette)]
		p.Add(l, pts)
		p.Legend.Add(m, l, pts)
	}
	p.NominalX(names...)
	p.Y.Min = 0
	p.Legend.Top = true
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}
