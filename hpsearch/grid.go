package hpsearch

import (
	"fmt"
	"math/rand/v2"
)

var _ Method = (*Grid)(nil)

// maxGridSize bounds the number of points of a grid.
const maxGridSize = 1 << 24

// Grid is grid search (thesis §2.3): every combination of values taken at
// equal steps of each parameter's normalised coordinate, that is at equal
// intervals on a Linear scale and at equal ratios on a Log scale, e.g.
// {10⁻³, 10⁻², 10⁻¹, 1} for a learning rate in [10⁻³, 1] with 4 values.
//
// A parameter with c ≥ 2 values takes the coordinates k/(c−1), k = 0, …, c−1,
// so both endpoints Min and Max are included (exactly; the values between are
// exact up to floating-point rounding of the log transform). A parameter with
// a single value takes the centre of its range, coordinate ½. Integer values
// are rounded and repeated values removed, so an Integer parameter may have
// fewer values than asked for.
//
// Points are enumerated in row-major order: the first parameter of the space
// varies slowest and the last fastest, as in nested loops over the
// parameters in the order of the space, each in increasing order.
//
// A Grid is a Method: the search runs the grid points in that order. When the
// budget is smaller than the grid, the first Budget points are run.
type Grid struct {
	// Counts is the number of values of each parameter, in the order of the
	// space. If nil, each of the d parameters gets the same count c, the
	// largest with c^d ≤ the budget (DefaultBudget if the budget is zero).
	Counts []int

	points []Point
}

// Points returns the grid points in enumeration order, for a search of space
// s with the given budget (which only matters when Counts is nil).
func (g *Grid) Points(s *Space, budget int) ([]Point, error) {
	d := s.Dim()
	counts := g.Counts
	if counts == nil {
		if budget <= 0 {
			budget = DefaultBudget
		}
		c := intRoot(budget, d)
		counts = make([]int, d)
		for j := range counts {
			counts[j] = c
		}
	}
	if len(counts) != d {
		return nil, fmt.Errorf("hpsearch: Grid.Counts has %d entries for a %d-dimensional space", len(counts), d)
	}
	axes := make([][]float64, d)
	size := 1
	for j, c := range counts {
		if c < 1 {
			return nil, fmt.Errorf("hpsearch: Grid.Counts[%d] = %d, need at least 1", j, c)
		}
		axes[j] = gridAxis(s, j, c)
		size *= len(axes[j])
		if size > maxGridSize {
			return nil, fmt.Errorf("hpsearch: grid has more than %d points", maxGridSize)
		}
	}
	points := make([]Point, 0, size)
	k := make([]int, d) // multi-index, last parameter fastest
	for range size {
		v := make([]float64, d)
		for j := range v {
			v[j] = axes[j][k[j]]
		}
		points = append(points, s.point(v))
		for j := d - 1; j >= 0; j-- {
			k[j]++
			if k[j] < len(axes[j]) {
				break
			}
			k[j] = 0
		}
	}
	return points, nil
}

// gridAxis returns the c values (fewer after deduplication of integers) of
// parameter j in increasing order.
func gridAxis(s *Space, j, c int) []float64 {
	if c == 1 {
		return []float64{s.value(j, 0.5)}
	}
	vals := make([]float64, 0, c)
	for k := range c {
		var v float64
		switch k {
		case 0:
			v = s.vlo[j]
		case c - 1:
			v = s.vhi[j]
		default:
			// Interpolate with integer weights so that decades fall on
			// exact exponents: (−3·2 + 0·1)/3 = −2.
			t := (s.lo[j]*float64(c-1-k) + s.hi[j]*float64(k)) / float64(c-1)
			v = s.snap(j, s.inv(j, t))
		}
		if len(vals) > 0 && v == vals[len(vals)-1] {
			continue
		}
		vals = append(vals, v)
	}
	return vals
}

// intRoot returns the largest c ≥ 1 with c^d ≤ b.
func intRoot(b, d int) int {
	pow := func(c int) int { // c^d, saturating above b
		r := 1
		for range d {
			r *= c
			if r > b {
				return b + 1
			}
		}
		return r
	}
	c := 1
	for pow(c+1) <= b {
		c++
	}
	return c
}

// Init computes the grid and returns its size, or the budget if that is
// smaller and not zero.
func (g *Grid) Init(s *Space, budget int) (int, error) {
	pts, err := g.Points(s, budget)
	if err != nil {
		return 0, err
	}
	g.points = pts
	if budget > 0 && budget < len(pts) {
		return budget, nil
	}
	return len(pts), nil
}

// Propose returns grid point index; it uses neither the history nor rng.
func (g *Grid) Propose(index int, _ []Trial, _ *rand.Rand) Point {
	return g.points[index]
}
