package hpsearch

import (
	"errors"
	"math"
	"math/rand/v2"
)

var _ Method = (*Biased)(nil)

// DefaultMaxRejections is the default of Biased.MaxRejections.
const DefaultMaxRejections = 1000

// Biased is biased random search, algorithm 1 of the thesis (§2.3): random
// search in which each uniformly drawn candidate a is kept with probability
//
//	p = (c_max − c_est) / (c_max − c_min),
//
// where c_est = M(H, a) is the cost model's estimate at a from the history H,
// and c_min, c_max are the best and worst results in H; a rejected candidate
// is replaced by a new draw. Candidates near the best experiments are almost
// surely kept and those near the worst almost surely rejected, so the search
// concentrates where the modelled cost is low while still covering the space.
//
// Edge cases: while the history holds no successful result, or all results
// are equal (c_max = c_min), the first candidate is accepted without an
// acceptance draw. Failed experiments enter the model with the value c_max,
// the worst result seen. See AcceptProbability for estimates outside
// [c_min, c_max]. After MaxRejections rejected candidates in a row the search
// stops drawing and proposes the rejected candidate with the lowest estimate
// (the first among equals).
//
// Each candidate uses Space.Sample (one rng.Float64 per parameter) followed by
// one rng.Float64 x, kept when x < p, as in algorithm 1.
//
// A proposal sees the experiments finished when it is made: with W workers,
// up to W−1 running experiments are not in the model (they are not imputed),
// so a parallel search is less biased per experiment than a sequential one,
// and its proposals depend on timing (see Search).
type Biased struct {
	// Model estimates the cost at a candidate from the history; default
	// NearestNeighbor, the 1-nearest-neighbour regressor of the thesis.
	Model CostModel
	// MaxRejections bounds the rejection loop; default
	// DefaultMaxRejections.
	MaxRejections int

	space *Space
}

// Init returns the budget, DefaultBudget if it is zero.
func (b *Biased) Init(s *Space, budget int) (int, error) {
	if s == nil {
		return 0, errors.New("hpsearch: Biased: nil space")
	}
	if b.MaxRejections < 0 {
		return 0, errors.New("hpsearch: Biased: negative MaxRejections")
	}
	b.space = s
	return orDefaultBudget(budget), nil
}

// Propose runs the rejection loop of algorithm 1 on the finished
// experiments done.
func (b *Biased) Propose(_ int, done []Trial, rng *rand.Rand) Point {
	obs, cmin, cmax, ok := Observations(done)
	if !ok || !(cmax > cmin) {
		return b.space.Sample(rng)
	}
	model := b.Model
	if model == nil {
		model = NearestNeighbor{}
	}
	maxRej := b.MaxRejections
	if maxRej == 0 {
		maxRej = DefaultMaxRejections
	}
	var best Point
	bestEst := math.Inf(1)
	for r := range maxRej {
		a := b.space.Sample(rng)
		est := model.Estimate(obs, a.unit)
		if rng.Float64() < AcceptProbability(est, cmin, cmax) {
			return a
		}
		if r == 0 || est < bestEst {
			best, bestEst = a, est
		}
	}
	return best
}

// AcceptProbability returns the probability with which biased random search
// keeps a candidate whose estimated cost is est, given the best and worst
// results cmin and cmax of the history (thesis §2.3, algorithm 1):
//
//	p = (cmax − est) / (cmax − cmin),
//
// clamped to [0, 1] for estimates outside [cmin, cmax]. It returns 1 when
// cmax ≤ cmin (no spread to compare with) or est is NaN (no estimate).
func AcceptProbability(est, cmin, cmax float64) float64 {
	if !(cmax > cmin) || math.IsNaN(est) {
		return 1
	}
	p := (cmax - est) / (cmax - cmin)
	return math.Min(math.Max(p, 0), 1)
}

// Observations returns the finished trials as observations for a CostModel,
// in the order given, with the best and worst successful values cmin and
// cmax; failed trials take the value cmax. It reports false, with no
// observations, when no trial succeeded. The observations share the trials'
// coordinates, which must not be modified.
func Observations(done []Trial) (obs []Observation, cmin, cmax float64, ok bool) {
	cmin, cmax = math.Inf(1), math.Inf(-1)
	for _, t := range done {
		if t.Failed() {
			continue
		}
		ok = true
		cmin = math.Min(cmin, t.Value)
		cmax = math.Max(cmax, t.Value)
	}
	if !ok {
		return nil, math.NaN(), math.NaN(), false
	}
	obs = make([]Observation, len(done))
	for i, t := range done {
		y := t.Value
		if t.Failed() {
			y = cmax
		}
		obs[i] = Observation{X: t.Point.unit, Y: y}
	}
	return obs, cmin, cmax, true
}
