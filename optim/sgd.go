package optim

import (
	"fmt"
	"math"

	"github.com/secondorder/secondorder"
	"gonum.org/v1/gonum/blas/blas64"
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
// Extra parameters of the layers (batch normalisation's γ and β) get the
// same update as B. The zero value is plain SGD with learning rate 0.01.
type SGD struct {
	// Rate is the learning rate η; zero means 0.01. Negative is refused.
	Rate float64
	// Momentum is μ in [0, 1); zero means no momentum.
	Momentum float64
	// Nesterov selects Nesterov momentum instead of classical momentum.
	Nesterov bool

	vw []*mat.Dense
	vb []*mat.VecDense
	ve [][]*mat.VecDense // velocities of the layers' Extra parameters
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
			for _, p := range l.Extra {
				axpyVec(p.Value, -eta, p.Grad)
			}
		}
		return nil
	}
	s.ensureState(layers)
	mu := s.Momentum
	for k, l := range layers {
		momentumStep(l.W.RawMatrix(), s.vw[k].RawMatrix(), l.GradW.RawMatrix(), eta, mu, s.Nesterov)
		momentumStepVec(l.B.RawVector(), s.vb[k].RawVector(), l.GradB.RawVector(), eta, mu, s.Nesterov)
		for j, p := range l.Extra {
			momentumStepVec(p.Value.RawVector(), s.ve[k][j].RawVector(), p.Grad.RawVector(), eta, mu, s.Nesterov)
		}
	}
	return nil
}

// momentumStep updates one weight matrix and its velocity in a single pass:
// v ← μv − ηg, then w ← w + v (classical) or w ← w + μv − ηg (Nesterov).
func momentumStep(w, v, g blas64.General, eta, mu float64, nesterov bool) {
	for i := 0; i < w.Rows; i++ {
		wr := w.Data[i*w.Stride : i*w.Stride+w.Cols]
		vr := v.Data[i*v.Stride : i*v.Stride+w.Cols]
		gr := g.Data[i*g.Stride : i*g.Stride+w.Cols]
		momentumRow(wr, vr, gr, eta, mu, nesterov)
	}
}

func momentumRow(w, v, g []float64, eta, mu float64, nesterov bool) {
	v, g = v[:len(w)], g[:len(w)]
	if nesterov {
		for j := range w {
			vj := mu*v[j] - eta*g[j]
			v[j] = vj
			w[j] += mu*vj - eta*g[j]
		}
		return
	}
	for j := range w {
		vj := mu*v[j] - eta*g[j]
		v[j] = vj
		w[j] += vj
	}
}

// momentumStepVec is momentumStep for a bias vector.
func momentumStepVec(w, v, g blas64.Vector, eta, mu float64, nesterov bool) {
	if w.Inc == 1 && v.Inc == 1 && g.Inc == 1 {
		momentumRow(w.Data[:w.N], v.Data[:w.N], g.Data[:w.N], eta, mu, nesterov)
		return
	}
	for j := 0; j < w.N; j++ {
		vj := mu*v.Data[j*v.Inc] - eta*g.Data[j*g.Inc]
		v.Data[j*v.Inc] = vj
		if nesterov {
			w.Data[j*w.Inc] += mu*vj - eta*g.Data[j*g.Inc]
		} else {
			w.Data[j*w.Inc] += vj
		}
	}
}

func (s *SGD) ensureState(layers []*secondorder.Layer) {
	if len(s.vw) == len(layers) {
		for k, l := range layers {
			r, c := l.W.Dims()
			if rv, cv := s.vw[k].Dims(); rv != r || cv != c {
				panic(fmt.Sprintf("optim: SGD: layer %d changed shape from %d×%d to %d×%d between steps", k, rv, cv, r, c))
			}
			if len(s.ve[k]) != len(l.Extra) {
				panic(fmt.Sprintf("optim: SGD: layer %d has %d extra parameters, earlier steps had %d", k, len(l.Extra), len(s.ve[k])))
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
		var ve []*mat.VecDense
		for _, p := range l.Extra {
			ve = append(ve, mat.NewVecDense(p.Value.Len(), nil))
		}
		s.ve = append(s.ve, ve)
	}
}
