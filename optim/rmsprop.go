package optim

import (
	"fmt"
	"math"

	"github.com/secondorder/secondorder"
	"gonum.org/v1/gonum/blas/blas64"
)

var _ Optimizer = (*RMSProp)(nil)

// RMSProp divides the gradient by a running root mean square of its recent
// values (Tieleman & Hinton 2012, Coursera "Neural networks for machine
// learning", lecture 6.5), element by element:
//
//	r ← ρ r + (1 − ρ) g²
//	θ ← θ − η g / (√r + ε)
//
// With momentum μ > 0 the scaled gradient feeds a velocity, as in the
// lecture's "RMSProp with momentum" (and TensorFlow's RMSProp):
//
//	v ← μ v + η g / (√r + ε)
//	θ ← θ − v
//
// r and v start at zero. Every parameter of a layer gets this update: W from
// GradW, B from GradB and each Extra parameter (batch normalisation's γ and
// β) from its Grad. The zero value uses the defaults below. Cost: one fused
// pass over the parameters, no allocation after the first step.
type RMSProp struct {
	// Rate is the learning rate η; zero means 0.001 (Keras, PyTorch and
	// TensorFlow's default). Negative is refused.
	Rate float64
	// Rho is the decay ρ of the running mean square, in [0, 1); zero means
	// 0.9, the value of the lecture.
	Rho float64
	// Epsilon is ε, added to √r; zero means 1e-8. Negative is refused.
	Epsilon float64
	// Momentum is μ in [0, 1); zero means no momentum.
	Momentum float64

	st elemState
}

func (o *RMSProp) settings() (eta, rho, eps, mu float64) {
	eta, rho, eps, mu = o.Rate, o.Rho, o.Epsilon, o.Momentum
	checkRate("RMSProp", "learning rate", eta)
	checkRate("RMSProp", "epsilon", eps)
	checkUnit("RMSProp", "rho", rho)
	checkUnit("RMSProp", "momentum", mu)
	if eta == 0 {
		eta = 0.001
	}
	if rho == 0 {
		rho = 0.9
	}
	if eps == 0 {
		eps = 1e-8
	}
	return eta, rho, eps, mu
}

// Step applies one update to every layer from its GradW, GradB and the
// gradients of its Extra parameters.
func (o *RMSProp) Step(layers []*secondorder.Layer) error {
	checkLayers("RMSProp", layers)
	eta, rho, eps, mu := o.settings()
	o.st.ensure("RMSProp", layers, mu > 0)
	for k, l := range layers {
		if mu == 0 {
			o.st.visit(k, l, func(p, g, r, _ []float64) {
				g, r = g[:len(p)], r[:len(p)]
				for j := range p {
					gj := g[j]
					rj := rho*r[j] + (1-rho)*gj*gj
					r[j] = rj
					p[j] -= eta * gj / (math.Sqrt(rj) + eps)
				}
			})
			continue
		}
		o.st.visit(k, l, func(p, g, r, v []float64) {
			g, r, v = g[:len(p)], r[:len(p)], v[:len(p)]
			for j := range p {
				gj := g[j]
				rj := rho*r[j] + (1-rho)*gj*gj
				r[j] = rj
				vj := mu*v[j] + eta*gj/(math.Sqrt(rj)+eps)
				v[j] = vj
				p[j] -= vj
			}
		})
	}
	return nil
}

// checkRate panics unless x is finite and ≥ 0.
func checkRate(name, what string, x float64) {
	if !(x >= 0) || math.IsInf(x, 1) {
		panic(fmt.Sprintf("optim: %s: invalid %s %v, want finite and ≥ 0", name, what, x))
	}
}

// checkUnit panics unless x is in [0, 1).
func checkUnit(name, what string, x float64) {
	if !(x >= 0 && x < 1) {
		panic(fmt.Sprintf("optim: %s: %s %v outside [0, 1)", name, what, x))
	}
}

// elemState holds per-element optimizer state shaped like each layer's
// parameters: for layer k, s0[k] (and s1[k] when two arrays are asked for)
// has one entry per element of W (row by row), then of B, then of each Extra
// parameter in order. It is shared by the element-wise methods (RMSProp,
// Adam).
type elemState struct {
	s0, s1 [][]float64
	shape  []elemShape
	gp, gg []float64 // gather buffers for vectors with Inc ≠ 1
}

type elemShape struct {
	out, in int
	extra   []int
}

func elemShapeOf(l *secondorder.Layer) elemShape {
	out, in := l.W.Dims()
	s := elemShape{out: out, in: in}
	for _, p := range l.Extra {
		s.extra = append(s.extra, p.Value.Len())
	}
	return s
}

func (s elemShape) size() int {
	n := s.out*s.in + s.out
	for _, e := range s.extra {
		n += e
	}
	return n
}

func (s elemShape) matches(l *secondorder.Layer) bool {
	out, in := l.W.Dims()
	if out != s.out || in != s.in || len(l.Extra) != len(s.extra) {
		return false
	}
	for j, p := range l.Extra {
		if p.Value.Len() != s.extra[j] {
			return false
		}
	}
	return true
}

// ensure allocates the state at the first step and panics, with a message
// prefixed by name, when the layers do not match those of earlier steps.
// The second array is allocated when two is true (possibly later than the
// first, starting from zero).
func (e *elemState) ensure(name string, layers []*secondorder.Layer, two bool) {
	if len(e.shape) == 0 && len(layers) > 0 {
		for _, l := range layers {
			s := elemShapeOf(l)
			e.shape = append(e.shape, s)
			e.s0 = append(e.s0, make([]float64, s.size()))
			e.s1 = append(e.s1, nil)
		}
	}
	if len(layers) != len(e.shape) {
		panic(fmt.Sprintf("optim: %s: got %d layers, earlier steps had %d", name, len(layers), len(e.shape)))
	}
	for k, l := range layers {
		if !e.shape[k].matches(l) {
			panic(fmt.Sprintf("optim: %s: layer %d changed shape (W, B or Extra) between steps", name, k))
		}
		if two && e.s1[k] == nil {
			e.s1[k] = make([]float64, e.shape[k].size())
		}
	}
}

// visit calls f on contiguous pieces of layer k's parameters p, their
// gradients g and the matching pieces of the state arrays (s1 nil when not
// allocated): W row by row (in one piece when W and GradW are contiguous),
// then B and each Extra parameter. f must not retain its arguments.
func (e *elemState) visit(k int, l *secondorder.Layer, f func(p, g, s0, s1 []float64)) {
	s0, s1 := e.s0[k], e.s1[k]
	sub := func(s []float64, off, n int) []float64 {
		if s == nil {
			return nil
		}
		return s[off : off+n]
	}
	w, gw := l.W.RawMatrix(), l.GradW.RawMatrix()
	off := 0
	if w.Stride == w.Cols && gw.Stride == gw.Cols {
		n := w.Rows * w.Cols
		f(w.Data[:n], gw.Data[:n], sub(s0, 0, n), sub(s1, 0, n))
		off = n
	} else {
		for i := 0; i < w.Rows; i++ {
			f(w.Data[i*w.Stride:i*w.Stride+w.Cols], gw.Data[i*gw.Stride:i*gw.Stride+w.Cols], sub(s0, off, w.Cols), sub(s1, off, w.Cols))
			off += w.Cols
		}
	}
	off = e.visitVec(l.B.RawVector(), l.GradB.RawVector(), s0, s1, off, f)
	for _, p := range l.Extra {
		off = e.visitVec(p.Value.RawVector(), p.Grad.RawVector(), s0, s1, off, f)
	}
}

// visitVec is visit for one vector parameter p with gradient g, starting at
// offset off of the state; it returns the offset after it. Strided vectors
// go through gather buffers.
func (e *elemState) visitVec(p, g blas64.Vector, s0, s1 []float64, off int, f func(p, g, s0, s1 []float64)) int {
	n := p.N
	var t0, t1 []float64
	if s0 != nil {
		t0 = s0[off : off+n]
	}
	if s1 != nil {
		t1 = s1[off : off+n]
	}
	if p.Inc == 1 && g.Inc == 1 {
		f(p.Data[:n], g.Data[:n], t0, t1)
		return off + n
	}
	e.gp, e.gg = growFloats(e.gp, n), growFloats(e.gg, n)
	for j := 0; j < n; j++ {
		e.gp[j] = p.Data[j*p.Inc]
		e.gg[j] = g.Data[j*g.Inc]
	}
	f(e.gp, e.gg, t0, t1)
	for j := 0; j < n; j++ {
		p.Data[j*p.Inc] = e.gp[j]
	}
	return off + n
}

// growFloats returns s resliced to length n, reallocated only when its
// capacity is too small.
func growFloats(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}
