package optim

import (
	"fmt"
	"math"

	"github.com/secondorder/secondorder"
	"gonum.org/v1/gonum/mat"
)

var _ Optimizer = (*SGD)(nil)

// SGD is stochastic gradient descent (thesis §2.2) with optional classical
// momentum or Nesterov momentum (Sutskever et al. 2013, eqs. 1-4):
//
//	v ← μ v − η ∇R
//	θ ← θ + v                      (classical)
//	θ ← θ + μ v − η ∇R             (Nesterov, in the form of Bengio et al. 2013)
//
// The zero value is plain SGD with learning rate 0.01.
type SGD struct {
	// Rate is the learning rate η; zero means 0.01. Negative is refused.
	Rate float64
	// Momentum is μ in [0, 1); zero means no momentum.
	Momentum float64
	// Nesterov selects Nesterov momentum instead of classical momentum.
	Nesterov bool

	vw []*mat.Dense
	vb []*mat.VecDense
}

func (s *SGD) rate() float64 {
	if s.Rate == 0 {
		return 0.01
	}
	return s.Rate
}

// Step applies one update to every layer from its GradW and GradB.
func (s *SGD) Step(layers []*secondorder.Layer) error {
	checkLayers("SGD", layers)
	if s.Rate < 0 || math.IsNaN(s.Rate) {
		panic(fmt.Sprintf("optim: SGD: invalid learning rate %v", s.Rate))
	}
	if s.Momentum < 0 || s.Momentum >= 1 || math.IsNaN(s.Momentum) {
		panic(fmt.Sprintf("optim: SGD: momentum %v outside [0, 1)", s.Momentum))
	}
	eta := s.rate()
	if s.Momentum == 0 {
		for _, l := range layers {
			axpy(l.W, -eta, l.GradW)
			axpyVec(l.B, -eta, l.GradB)
		}
		return nil
	}
	s.ensureState(layers)
	mu := s.Momentum
	for k, l := range layers {
		vw, vb := s.vw[k], s.vb[k]
		vw.Scale(mu, vw)
		axpy(vw, -eta, l.GradW)
		vb.ScaleVec(mu, vb)
		axpyVec(vb, -eta, l.GradB)
		if s.Nesterov {
			axpy(l.W, mu, vw)
			axpy(l.W, -eta, l.GradW)
			axpyVec(l.B, mu, vb)
			axpyVec(l.B, -eta, l.GradB)
		} else {
			axpy(l.W, 1, vw)
			axpyVec(l.B, 1, vb)
		}
	}
	return nil
}

func (s *SGD) ensureState(layers []*secondorder.Layer) {
	if len(s.vw) == len(layers) {
		for k, l := range layers {
			r, c := l.W.Dims()
			if rv, cv := s.vw[k].Dims(); rv != r || cv != c {
				panic(fmt.Sprintf("optim: SGD: layer %d changed shape from %d×%d to %d×%d between steps", k, rv, cv, r, c))
			}
		}
		return
	}
	if len(s.vw) != 0 {
		panic(fmt.Sprintf("optim: SGD: got %d layers, earlier steps had %d", len(layers), len(s.vw)))
	}
	for _, l := range layers {
		r, c := l.W.Dims()
		s.vw = append(s.vw, mat.NewDense(r, c, nil))
		s.vb = append(s.vb, mat.NewVecDense(r, nil))
	}
}
