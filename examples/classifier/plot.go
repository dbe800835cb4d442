package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// point is one evaluation of a run, after update updates and seconds of
// training.
type point struct {
	update    int
	seconds   float64
	epoch     int
	trainLoss float64 // on the fixed training subset
	testLoss  float64
	testAcc   float64 // percent
}

var (
	blue = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	red  = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
)

// plotCurve writes a PNG of two panels against training seconds: the test
// accuracy above, the training-subset and test losses below on a log
// scale. It does not overwrite an existing file.
func plotCurve(path, title string, pts []point) error {
	acc := plot.New()
	acc.Title.Text = title
	acc.Y.Label.Text = "test accuracy (%)"
	acc.Add(plotter.NewGrid())
	loss := plot.New()
	loss.X.Label.Text = "training seconds"
	loss.Y.Label.Text = "cross-entropy (log scale)"
	loss.Y.Scale = plot.LogScale{}
	loss.Y.Tick.Marker = logTicks{}
	loss.Legend.Top = true
	loss.Add(plotter.NewGrid())

	var accXY, trainXY, testXY plotter.XYs
	for _, p := range pts {
		accXY = append(accXY, plotter.XY{X: p.seconds, Y: p.testAcc})
		// A log scale shows neither 0 nor the NaN or Inf of a diverged
		// evaluation.
		if p.trainLoss > 0 && !bad(p.trainLoss) {
			trainXY = append(trainXY, plotter.XY{X: p.seconds, Y: p.trainLoss})
		}
		if p.testLoss > 0 && !bad(p.testLoss) {
			testXY = append(testXY, plotter.XY{X: p.seconds, Y: p.testLoss})
		}
	}
	if err := addLine(acc, "", accXY, blue); err != nil {
		return err
	}
	if err := addLine(loss, "train (5000 images)", trainXY, blue); err != nil {
		return err
	}
	if err := addLine(loss, "test", testXY, red); err != nil {
		return err
	}
	// The x axes of the two panels must agree.
	acc.X.Min, acc.X.Max = min(acc.X.Min, loss.X.Min), max(acc.X.Max, loss.X.Max)
	loss.X.Min, loss.X.Max = acc.X.Min, acc.X.Max

	img := vgimg.New(7*vg.Inch, 7*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadX: vg.Millimeter, PadY: 2 * vg.Millimeter,
		PadTop: vg.Millimeter, PadBottom: vg.Millimeter, PadLeft: vg.Millimeter, PadRight: 2 * vg.Millimeter}
	canvases := plot.Align([][]*plot.Plot{{acc}, {loss}}, tiles, dc)
	acc.Draw(canvases[0][0])
	loss.Draw(canvases[1][0])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644) // never over an earlier run's plot
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("plot: %w", err)
	}
	return f.Close()
}

// addLine adds the line through xys, in legend as name unless empty; it
// adds nothing when xys is empty (a loss that was never positive).
func addLine(p *plot.Plot, name string, xys plotter.XYs, c color.Color) error {
	if len(xys) == 0 {
		return nil
	}
	l, s, err := plotter.NewLinePoints(xys)
	if err != nil {
		return fmt.Errorf("plot %s: %w", name, err)
	}
	l.Color, s.Color = c, c
	l.Width = vg.Points(1.5)
	s.Radius = vg.Points(2)
	p.Add(l, s)
	if name != "" {
		p.Legend.Add(name, l)
	}
	return nil
}

// logTicks marks a log axis for losses: over at most two decades at 1, 2
// and 5 times the powers of ten (so that a loss that spans less than a
// decade still gets labels), over more at the powers of ten, every k-th
// labelled so that at most six are; the other multiples get unlabelled
// minor ticks.
type logTicks struct{}

// Ticks returns the ticks in [lo, hi].
func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	if !(lo > 0) || !(hi >= lo) {
		return ticks
	}
	first := math.Floor(math.Log10(lo))
	decades := math.Log10(hi) - math.Log10(lo)
	every := max(1, int(math.Ceil(decades/6)))
	for e := first; math.Pow(10, e) <= hi; e++ {
		for m := 1; m <= 9; m++ {
			v := float64(m) * math.Pow(10, e)
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			t := plot.Tick{Value: v}
			switch {
			case decades <= 2 && (m == 1 || m == 2 || m == 5):
				t.Label = strconv.FormatFloat(v, 'f', -1, 64)
			case decades > 2 && m == 1 && int(e-first)%every == 0:
				t.Label = strconv.FormatFloat(v, 'g', -1, 64)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}
