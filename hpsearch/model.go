package hpsearch

import "math"

// Observation is a finished experiment as seen by a CostModel.
type Observation struct {
	// X holds the normalised coordinates of the experiment (Point.Unit);
	// it must not be modified.
	X []float64
	// Y is the result; a failed experiment carries the worst result of the
	// history.
	Y float64
}

// CostModel estimates the cost landscape of a search: M(H, a) in algorithm 1
// of the thesis (§2.3). Estimate returns the estimated cost at normalised
// coordinates x from the observations obs, which biased random search never
// passes empty. Estimate is called from one goroutine at a time.
type CostModel interface {
	Estimate(obs []Observation, x []float64) float64
}

var (
	_ CostModel = NearestNeighbor{}
	_ CostModel = KNN{}
)

// sqDist returns the squared Euclidean distance between a and b.
func sqDist(a, b []float64) float64 {
	var s float64
	for i, ai := range a {
		d := ai - b[i]
		s += d * d
	}
	return s
}

// NearestNeighbor is the 1-nearest-neighbour regressor the thesis uses as the
// cost model of biased random search (§2.3): the estimate at x is the result
// of the observation closest to x in Euclidean distance in the normalised
// space, the first in order among equally close ones. It costs O(n·d) for n
// observations in d dimensions, and returns NaN for no observation.
type NearestNeighbor struct{}

// Estimate returns the result of the observation nearest to x.
func (NearestNeighbor) Estimate(obs []Observation, x []float64) float64 {
	est, best := math.NaN(), math.Inf(1)
	for _, o := range obs {
		if d := sqDist(o.X, x); d < best {
			est, best = o.Y, d
		}
	}
	return est
}

// KNN is the k-nearest-neighbour regressor with inverse-distance weights
// (Shepard 1968): with the K observations nearest to x (all of them if there
// are fewer) at distances d_i,
//
//	estimate = Σ w_i y_i / Σ w_i,  w_i = d_i^(−Power).
//
// If some of these neighbours lie exactly at x, the estimate is the mean of
// their results. Ties in distance keep the first observations in order. It
// costs O(n·(d + K)) for n observations in d dimensions, and returns NaN for
// no observation.
type KNN struct {
	// K is the number of neighbours; default 5.
	K int
	// Power is the exponent of the inverse-distance weights; default 2.
	Power float64
}

// Estimate returns the inverse-distance weighted mean of the results of the
// K observations nearest to x.
func (m KNN) Estimate(obs []Observation, x []float64) float64 {
	k := m.K
	if k <= 0 {
		k = 5
	}
	power := m.Power
	if power == 0 {
		power = 2
	}
	k = min(k, len(obs))
	if k == 0 {
		return math.NaN()
	}
	// Insertion into the k nearest so far, ordered by distance.
	type nb struct{ d, y float64 }
	nbs := make([]nb, 0, k)
	for _, o := range obs {
		d := sqDist(o.X, x)
		if len(nbs) == k && d >= nbs[k-1].d {
			continue
		}
		if len(nbs) < k {
			nbs = append(nbs, nb{})
		}
		i := len(nbs) - 1
		for i > 0 && nbs[i-1].d > d {
			nbs[i] = nbs[i-1]
			i--
		}
		nbs[i] = nb{d, o.Y}
	}
	if nbs[0].d == 0 {
		var sum float64
		var n int
		for _, b := range nbs {
			if b.d == 0 {
				sum += b.y
				n++
			}
		}
		return sum / float64(n)
	}
	var num, den float64
	for _, b := range nbs {
		// (d_0/d_i)^Power, scaled by the nearest distance d_0 against
		// overflow; b.d is squared.
		w := math.Pow(nbs[0].d/b.d, power/2)
		num += w * b.y
		den += w
	}
	return num / den
}
