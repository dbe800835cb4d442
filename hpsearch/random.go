package hpsearch

import (
	"errors"
	"math/rand/v2"
)

var _ Method = (*Random)(nil)

// Random is random search (thesis §2.3; Bergstra & Bengio, "Random search for
// hyper-parameter optimization", JMLR 13, 2012): every experiment is drawn
// independently and uniformly in the normalised space (Space.Sample). Unlike a
// grid, it tries a new value of every parameter at each experiment, which
// pays off when some parameters have little effect on the result.
//
// Its proposals ignore the history, so its history depends only on the seed,
// not on Settings.Workers.
type Random struct {
	space *Space
}

// Init returns the budget, DefaultBudget if it is zero.
func (r *Random) Init(s *Space, budget int) (int, error) {
	if s == nil {
		return 0, errors.New("hpsearch: Random: nil space")
	}
	r.space = s
	return orDefaultBudget(budget), nil
}

// Propose returns a uniform sample of the space.
func (r *Random) Propose(_ int, _ []Trial, rng *rand.Rand) Point {
	return r.space.Sample(rng)
}
