package main

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// point is one evaluation of a run: reconstruction errors on the fixed
// evaluation subsets after update updates and seconds of training.
type point struct {
	update   int
	seconds  float64
	loss     float64
	trainErr float64
	testErr  float64
}

// curve is the evaluation history of one method.
type curve struct {
	name   string
	points []point
}

// palette holds distinguishable colours for up to eight curves.
var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
	color.RGBA{R: 0xe3, G: 0x77, B: 0xc2, A: 0xff},
	color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff},
}

// plotCurves writes a PNG of the train reconstruction error of each curve
// against updates (bySeconds false) or training seconds, on a log scale.
func plotCurves(path, title string, curves []curve, bySeconds bool) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "updates"
	if bySeconds {
		p.X.Label.Text = "training seconds"
	}
	p.Y.Label.Text = "train reconstruction error (squared, per image)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	for i, c := range curves {
		var xys plotter.XYs
		for _, pt := range c.points {
			x := float64(pt.update)
			if bySeconds {
				x = pt.seconds
			}
			if pt.trainErr > 0 {
				xys = append(xys, plotter.XY{X: x, Y: pt.trainErr})
			}
		}
		if len(xys) == 0 {
			continue
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("plot %s: %w", c.name, err)
		}
		l.Color = palette[i%len(palette)]
		l.Width = vg.Points(1.5)
		if i >= len(palette) {
			// Beyond the palette (the race has 13 curves): dashed.
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		p.Add(l)
		p.Legend.Add(c.name, l)
	}
	return p.Save(7*vg.Inch, 4.5*vg.Inch, path)
}
