package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"sort"
	"strconv"

	"github.com/secondorder/secondorder/hpsearch"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// clipQuantile is the quantile of the plotted results above which colours
// saturate at the worst (yellow) end of the scale, so that the colours
// resolve the good region rather than the few very bad experiments.
const clipQuantile = 0.5

// viridisStops are samples of matplotlib's viridis colour map at 0, 1/8, …,
// 1: dark blue (best) to yellow (worst), as in the thesis's figure 2.2.
var viridisStops = [...][3]uint8{
	{0x44, 0x01, 0x54}, {0x47, 0x2d, 0x7b}, {0x3b, 0x52, 0x8b}, {0x2c, 0x72, 0x8e},
	{0x21, 0x91, 0x8c}, {0x28, 0xae, 0x80}, {0x5e, 0xc9, 0x62}, {0xad, 0xdc, 0x30}, {0xfd, 0xe7, 0x25},
}

// colorScale maps log10 of a result to viridis, linearly from lo (blue) to
// hi (yellow), clamping outside. It implements palette.ColorMap for the
// colour bar.
type colorScale struct {
	lo, hi float64 // log10 of the best and of the clipped results
	alpha  float64
}

// newColorScale returns the scale for the finite positive values vals:
// from their minimum to their clipQuantile-quantile.
func newColorScale(vals []float64) *colorScale {
	var logs []float64
	for _, v := range vals {
		if v > 0 && !math.IsInf(v, 0) {
			logs = append(logs, math.Log10(v))
		}
	}
	sort.Float64s(logs)
	cs := &colorScale{lo: 0, hi: 1, alpha: 1}
	if len(logs) > 0 {
		cs.lo, cs.hi = logs[0], quantile(logs, clipQuantile)
	}
	if !(cs.hi > cs.lo) {
		cs.hi = cs.lo + 0.01
	}
	return cs
}

// rgb returns the colour at position u in [0, 1] (clamped).
func rgb(u float64) color.RGBA {
	u = math.Min(math.Max(u, 0), 1)
	x := u * float64(len(viridisStops)-1)
	i := min(int(x), len(viridisStops)-2)
	f := x - float64(i)
	var c [3]uint8
	for k := range c {
		a, b := float64(viridisStops[i][k]), float64(viridisStops[i+1][k])
		c[k] = uint8(math.Round(a + f*(b-a)))
	}
	return color.RGBA{R: c[0], G: c[1], B: c[2], A: 0xff}
}

// value returns the colour of result v (not its log); failed results (NaN,
// ±Inf) are at the worst end.
func (cs *colorScale) value(v float64) color.Color {
	if !(v > 0) || math.IsInf(v, 0) {
		return rgb(1)
	}
	return rgb((math.Log10(v) - cs.lo) / (cs.hi - cs.lo))
}

// At returns the colour of log10 value l.
func (cs *colorScale) At(l float64) (color.Color, error) {
	return rgb((l - cs.lo) / (cs.hi - cs.lo)), nil
}
func (cs *colorScale) Max() float64       { return cs.hi }
func (cs *colorScale) Min() float64       { return cs.lo }
func (cs *colorScale) SetMax(v float64)   { cs.hi = v }
func (cs *colorScale) SetMin(v float64)   { cs.lo = v }
func (cs *colorScale) Alpha() float64     { return cs.alpha }
func (cs *colorScale) SetAlpha(a float64) { cs.alpha = a }
func (cs *colorScale) Palette(n int) palette.Palette {
	cols := make([]color.Color, n)
	for i := range cols {
		cols[i] = rgb(float64(i) / float64(max(n-1, 1)))
	}
	return plainPalette(cols)
}

type plainPalette []color.Color

func (p plainPalette) Colors() []color.Color { return p }

// decadeTicks labels an axis in log10 coordinates at the integer powers of
// ten, with the value itself (0.001, 0.01, …, 10).
var decadeTicks = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for k := math.Ceil(lo - 1e-9); k <= hi+1e-9; k++ {
		ts = append(ts, plot.Tick{Value: k, Label: strconv.FormatFloat(math.Pow(10, k), 'g', -1, 64)})
		for m := 2.0; m < 10; m++ {
			if v := k + math.Log10(m); v <= hi {
				ts = append(ts, plot.Tick{Value: v})
			}
		}
	}
	return ts
})

// valueTicks labels an axis in log10 coordinates with values of the
// underlying quantity: m·10^k, labelled for m = 1, 2, 5 (every m when the
// axis spans less than a decade), unlabelled minor ticks otherwise.
var valueTicks = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	all := hi-lo < 1
	for k := math.Floor(lo); k <= math.Ceil(hi); k++ {
		for m := 1.0; m < 10; m++ {
			v := m * math.Pow(10, k)
			l := math.Log10(v)
			if l < lo-1e-9 || l > hi+1e-9 {
				continue
			}
			t := plot.Tick{Value: l}
			if all || m == 1 || m == 2 || m == 5 {
				t.Label = strconv.FormatFloat(roundSig(v, 1), 'f', -1, 64)
			}
			ts = append(ts, t)
		}
	}
	return ts
})

// logRange returns log10 of the bounds of parameter j of the space.
func logRange(s *hpsearch.Space, name string) (lo, hi float64) {
	j, _ := s.Index(name)
	p := s.Params()[j]
	return math.Log10(p.Min), math.Log10(p.Max)
}

// planePlot returns a plot of the (log10 lr, log10 α) plane of the space.
func planePlot(s *hpsearch.Space, title string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "learning rate"
	p.Y.Label.Text = "α (initial weight variance scale)"
	p.X.Tick.Marker = decadeTicks
	p.Y.Tick.Marker = decadeTicks
	xlo, xhi := logRange(s, "lr")
	ylo, yhi := logRange(s, "alpha")
	padX, padY := 0.03*(xhi-xlo), 0.03*(yhi-ylo)
	p.X.Min, p.X.Max = xlo-padX, xhi+padX
	p.Y.Min, p.Y.Max = ylo-padY, yhi+padY
	return p
}

// colorBar returns a plot holding a vertical colour bar of cs.
func colorBar(cs *colorScale, label string) *plot.Plot {
	p := plot.New()
	p.Add(&plotter.ColorBar{ColorMap: cs, Vertical: true})
	p.HideX()
	p.Y.Label.Text = label
	p.Y.Tick.Marker = valueTicks
	p.Y.Padding = 0
	return p
}

// trialsXYZ returns the trials' log10 coordinates and results, worst first
// (failed ones before all), so that the best are drawn on top.
func trialsXYZ(h []hpsearch.Trial) plotter.XYZs {
	ts := append([]hpsearch.Trial(nil), h...)
	key := func(t hpsearch.Trial) float64 {
		if t.Failed() {
			return math.Inf(1)
		}
		return t.Value
	}
	sort.SliceStable(ts, func(a, b int) bool { return key(ts[a]) > key(ts[b]) })
	xyz := make(plotter.XYZs, len(ts))
	for i, t := range ts {
		xyz[i] = plotter.XYZ{X: math.Log10(t.Point.Get("lr")), Y: math.Log10(t.Point.Get("alpha")), Z: key(t)}
	}
	return xyz
}

// plotExplored draws thesis figure 2.2: for each method, the experiments of
// its representative search in the (lr, α) plane coloured by final loss on
// a common scale, the best one circled in red, and a colour bar.
func (c *comparison) plotExplored(path string) error {
	type panel struct {
		m string
		r *searchResult
	}
	var panels []panel
	var vals []float64
	for _, m := range c.methods {
		if r := c.representative(m); r != nil {
			panels = append(panels, panel{m, r})
			for _, t := range r.history {
				vals = append(vals, t.Value)
			}
		}
	}
	if len(panels) == 0 {
		return nil
	}
	cs := newColorScale(vals)
	var plots []*plot.Plot
	for _, pn := range panels {
		p := planePlot(c.space, fmt.Sprintf("%s (search %d): best %.3f", methodNames[pn.m], pn.r.search+1, pn.r.best))
		xyz := trialsXYZ(pn.r.history)
		sc, err := plotter.NewScatter(xyz)
		if err != nil {
			return err
		}
		sc.GlyphStyleFunc = func(i int) draw.GlyphStyle {
			g := draw.GlyphStyle{Color: cs.value(xyz[i].Z), Radius: vg.Points(4), Shape: draw.CircleGlyph{}}
			if math.IsInf(xyz[i].Z, 1) {
				g.Shape, g.Color = draw.CrossGlyph{}, color.Black
			}
			return g
		}
		p.Add(sc)
		best := plotter.XYs{{X: math.Log10(pn.r.point.Get("lr")), Y: math.Log10(pn.r.point.Get("alpha"))}}
		ring, err := plotter.NewScatter(best)
		if err != nil {
			return err
		}
		ring.GlyphStyle = draw.GlyphStyle{Color: color.RGBA{R: 0xe0, A: 0xff}, Radius: vg.Points(7), Shape: draw.RingGlyph{}}
		p.Add(ring)
		plots = append(plots, p)
	}
	bar := colorBar(cs, fmt.Sprintf("final loss (≥ %.3g, the %.0f%% quantile, clipped)", math.Pow(10, cs.hi), 100*clipQuantile))
	const panelW, barW, h = 4.6 * vg.Inch, 1.3 * vg.Inch, 4.6 * vg.Inch
	return saveRow(path, h, append(plots, bar), append(repeat(panelW, len(plots)), barW))
}

func repeat(w vg.Length, n int) []vg.Length {
	ws := make([]vg.Length, n)
	for i := range ws {
		ws[i] = w
	}
	return ws
}

// saveRow draws the plots side by side with the given widths into a PNG.
func saveRow(path string, h vg.Length, plots []*plot.Plot, widths []vg.Length) error {
	var total vg.Length
	for _, w := range widths {
		total += w
	}
	img := vgimg.New(total, h)
	dc := draw.New(img)
	var x vg.Length
	for i, p := range plots {
		p.Draw(draw.Crop(dc, x, x+widths[i]-total, 0, 0))
		x += widths[i]
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Bins of figure 2.3.
const (
	bands    = 5 // α bands of the curves
	minInBin = 3 // fewest experiments for a bin to be drawn
)

// numBins returns the number of bins per axis of the heat map and of the
// learning-rate axis of the curves for n experiments: about 6 experiments
// per bin of the heat map on average, from 6 to 20 bins.
func numBins(n int) int {
	return min(max(int(math.Sqrt(float64(n)/6)), 6), 20)
}

// binGrid is a heat map of the median result per bin (plotter.GridXYZ).
type binGrid struct {
	x0, dx, y0, dy float64
	med            [][]float64 // [col][row], NaN when empty
}

func (g *binGrid) Dims() (c, r int)      { return len(g.med), len(g.med[0]) }
func (g *binGrid) Z(c, r int) float64    { return g.med[c][r] }
func (g *binGrid) X(c int) float64       { return g.x0 + (float64(c)+0.5)*g.dx }
func (g *binGrid) Y(r int) float64       { return g.y0 + (float64(r)+0.5)*g.dy }
func (g *binGrid) logZ(c, r int) float64 { return math.Log10(g.med[c][r]) }

// binMedians returns the median result of the points in each of nx × ny
// bins of [x0, x1] × [y0, y1], NaN for bins with fewer than minInBin points.
func binMedians(pts plotter.XYZs, x0, x1 float64, nx int, y0, y1 float64, ny int) [][]float64 {
	cells := make([][][]float64, nx)
	for i := range cells {
		cells[i] = make([][]float64, ny)
	}
	for _, p := range pts {
		i := min(int((p.X-x0)/(x1-x0)*float64(nx)), nx-1)
		j := min(int((p.Y-y0)/(y1-y0)*float64(ny)), ny-1)
		if i < 0 || j < 0 {
			continue
		}
		cells[i][j] = append(cells[i][j], p.Z)
	}
	med := make([][]float64, nx)
	for i := range med {
		med[i] = make([]float64, ny)
		for j, v := range cells[i] {
			if len(v) < minInBin {
				med[i][j] = math.NaN()
				continue
			}
			sort.Float64s(v)
			med[i][j] = quantile(v, 0.5)
		}
	}
	return med
}

// plotInteraction draws thesis figure 2.3 from all experiments of all
// methods: left, the median final loss in bins of the (lr, α) plane; right,
// the median final loss against the learning rate for bands of α, with the
// best bin of each band marked, which shows that the best learning rate
// depends on α.
func (c *comparison) plotInteraction(path string) error {
	var pts plotter.XYZs
	for _, r := range c.finished() {
		for _, t := range r.history {
			v := t.Value
			if t.Failed() {
				v = math.Inf(1) // a failure is the worst result in a median
			}
			pts = append(pts, plotter.XYZ{X: math.Log10(t.Point.Get("lr")), Y: math.Log10(t.Point.Get("alpha")), Z: v})
		}
	}
	if len(pts) == 0 {
		return nil
	}
	xlo, xhi := logRange(c.space, "lr")
	ylo, yhi := logRange(c.space, "alpha")

	// Heat map.
	nb := numBins(len(pts))
	g := &binGrid{x0: xlo, dx: (xhi - xlo) / float64(nb), y0: ylo, dy: (yhi - ylo) / float64(nb),
		med: binMedians(pts, xlo, xhi, nb, ylo, yhi, nb)}
	var meds []float64
	for _, col := range g.med {
		meds = append(meds, col...)
	}
	cs := newColorScale(meds)
	logGrid := &logBinGrid{g}
	pal := cs.Palette(256)
	hm := plotter.NewHeatMap(logGrid, pal)
	hm.Min, hm.Max = cs.lo, cs.hi
	hm.Underflow, hm.Overflow = rgb(0), rgb(1)
	hm.NaN = color.White
	left := planePlot(c.space, fmt.Sprintf("median final loss per bin (%d experiments)", len(pts)))
	left.Add(hm)
	bar := colorBar(cs, fmt.Sprintf("median final loss (≥ %.3g, the median bin, clipped)", math.Pow(10, cs.hi)))

	// Curves: median loss against lr for bands of α.
	right := plot.New()
	right.Title.Text = "final loss against learning rate, by band of α"
	right.X.Label.Text = "learning rate"
	right.Y.Label.Text = "median final loss"
	right.X.Tick.Marker = decadeTicks
	right.Y.Tick.Marker = valueTicks
	right.X.Min, right.X.Max = xlo, xhi
	right.Add(plotter.NewGrid())
	right.Legend.Top = true
	bandMed := binMedians(pts, xlo, xhi, nb, ylo, yhi, bands)
	topY, botY := math.Inf(-1), math.Inf(1)
	for b := range bands {
		u := float64(b) / float64(max(bands-1, 1))
		col := rgb(0.85 * u) // distinct colours along viridis, not the loss scale
		var line plotter.XYs
		bestI := -1
		for i := range nb {
			v := bandMed[i][b]
			if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
				continue
			}
			line = append(line, plotter.XY{X: g.X(i), Y: math.Log10(v)})
			topY, botY = math.Max(topY, math.Log10(v)), math.Min(botY, math.Log10(v))
			if bestI < 0 || math.Log10(v) < line[bestI].Y {
				bestI = len(line) - 1
			}
		}
		if len(line) == 0 {
			continue
		}
		l, sc, err := plotter.NewLinePoints(line)
		if err != nil {
			return err
		}
		l.Color, l.Width = col, vg.Points(1.8)
		sc.Color, sc.Radius, sc.Shape = col, vg.Points(2), draw.CircleGlyph{}
		right.Add(l, sc)
		bLo, bHi := ylo+float64(b)*(yhi-ylo)/bands, ylo+float64(b+1)*(yhi-ylo)/bands
		right.Legend.Add(fmt.Sprintf("α in [%s, %s]", fmtNum(math.Pow(10, bLo)), fmtNum(math.Pow(10, bHi))), l)
		star, err := plotter.NewScatter(plotter.XYs{line[bestI]})
		if err != nil {
			return err
		}
		star.Color, star.Radius, star.Shape = col, vg.Points(6), draw.RingGlyph{}
		right.Add(star)
	}
	// Room above the curves for the legend.
	if topY > botY {
		right.Y.Max = topY + 0.3*(topY-botY)
	}
	const w, barW, h = 5 * vg.Inch, 1.3 * vg.Inch, 4.6 * vg.Inch
	return saveRow(path, h, []*plot.Plot{left, bar, right}, []vg.Length{w, barW, 6 * vg.Inch})
}

// fmtNum formats a positive number with 3 significant digits and no
// exponent between 10⁻⁴ and 10⁶.
func fmtNum(v float64) string {
	return strconv.FormatFloat(roundSig(v, 3), 'f', -1, 64)
}

// roundSig rounds v to n significant digits.
func roundSig(v float64, n int) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	p := math.Pow(10, float64(n)-math.Ceil(math.Log10(math.Abs(v))))
	return math.Round(v*p) / p
}

// logBinGrid is a binGrid with log10 results, for the log colour scale.
type logBinGrid struct{ *binGrid }

func (g *logBinGrid) Z(c, r int) float64 { return g.logZ(c, r) }
