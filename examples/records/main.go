// Command records trains a small two-layer network written by hand — no
// package nn — with any optimizer of package optim. It is the template for
// users of other Go ML code: an optimizer needs, per affine layer
// a = W h + b, only a secondorder.Layer record holding the layer's inputs h
// and the backpropagated gradients ∇_a l (and, for K-FAC, curvature
// vectors in Back, and the minibatch's risk in Risk).
//
// The model is f(x) = W₂ tanh(W₁ x + b₁) + b₂ on the quadratic loss
// ‖f(x) − y‖², fitted to a fixed random teacher network of the same shape:
//
//	go run ./examples/records -opt kfac
//	go run ./examples/records -opt adam
package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/optim"
	"gonum.org/v1/gonum/mat"
)

func main() {
	opt := flag.String("opt", "kfac", "optimizer: sgd, adam, centered, acp or kfac")
	steps := flag.Int("steps", 200, "updates")
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), `records trains a two-layer network written by hand (no package nn) with one
of the library's optimizers, filling the per-layer records itself: the
template for connecting another network library.

Usage: go run ./examples/records [flags]
`)
		flag.PrintDefaults()
	}
	flag.Parse()
	if _, _, err := run(*opt, *steps, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "records:", err)
		os.Exit(1)
	}
}

// model is the hand-written network and its buffers.
type model struct {
	l1, l2 *secondorder.Layer
	a1, h1 *mat.Dense // first layer's pre-activation and output
	f      *mat.Dense // network output
}

func newModel(rng *rand.Rand, in, hidden, out int) *model {
	w := func(r, c int) *mat.Dense {
		m := mat.NewDense(r, c, nil)
		s := 1 / math.Sqrt(float64(c))
		m.Apply(func(_, _ int, _ float64) float64 { return s * rng.NormFloat64() }, m)
		return m
	}
	return &model{
		l1: &secondorder.Layer{W: w(hidden, in), B: mat.NewVecDense(hidden, nil)},
		l2: &secondorder.Layer{W: w(out, hidden), B: mat.NewVecDense(out, nil)},
	}
}

// affine computes A = H Wᵀ + 1 bᵀ.
func affine(dst, h *mat.Dense, l *secondorder.Layer) {
	dst.Mul(h, l.W.T())
	r, c := dst.Dims()
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			dst.Set(i, j, dst.At(i, j)+l.B.AtVec(j))
		}
	}
}

// forward runs the network on x and returns the risk (1/n) Σ ‖f − y‖².
func (m *model) forward(x, y *mat.Dense) float64 {
	m.a1, m.h1, m.f = &mat.Dense{}, &mat.Dense{}, &mat.Dense{}
	affine(m.a1, x, m.l1)
	m.h1.Apply(func(_, _ int, v float64) float64 { return math.Tanh(v) }, m.a1)
	affine(m.f, m.h1, m.l2)
	var d mat.Dense
	d.Sub(m.f, y)
	n, _ := x.Dims()
	s := mat.Norm(&d, 2)
	return s * s / float64(n)
}

// backward fills the records: Input and Grad (∇_a l per example) of both
// layers, the parameter gradients, and in Back one Monte-Carlo Fisher
// vector per example (the gradient at a target sampled from the model's
// Gaussian N(f, ½I), backpropagated like Grad) for K-FAC.
func (m *model) backward(x, y *mat.Dense, rng *rand.Rand) {
	n, out := m.f.Dims()
	g2 := &mat.Dense{}
	g2.Sub(m.f, y)
	g2.Scale(2, g2) // ∇_f ‖f − y‖² = 2(f − y)
	b2 := mat.NewDense(n, out, nil)
	b2.Apply(func(_, _ int, _ float64) float64 { return math.Sqrt2 * rng.NormFloat64() }, b2) // 2(f − y_s), y_s ~ N(f, ½I)
	back := func(g *mat.Dense) *mat.Dense {                                                   // through W₂ and tanh'
		var d mat.Dense
		d.Mul(g, m.l2.W)
		d.Apply(func(i, j int, v float64) float64 { h := m.h1.At(i, j); return v * (1 - h*h) }, &d)
		return &d
	}
	m.l2.Input, m.l2.Grad, m.l2.Back = m.h1, g2, b2
	m.l1.Input, m.l1.Grad, m.l1.Back = x, back(g2), back(b2)
	m.l1.ComputeParamGrads()
	m.l2.ComputeParamGrads()
}

func newOptimizer(name string) (optim.Optimizer, error) {
	switch name {
	case "sgd":
		return &optim.SGD{Rate: 0.02, Momentum: 0.9}, nil
	case "adam":
		return &optim.Adam{Rate: 0.01}, nil
	case "centered":
		return &optim.Centered{Rate: 0.02, Momentum: 0.9}, nil
	case "acp":
		return &optim.ACP{Rules: optim.Rules{Rate: 0.1, Damping: 1}}, nil
	case "kfac":
		return &optim.KFAC{}, nil
	}
	return nil, fmt.Errorf("unknown -opt %q (want sgd, adam, centered, acp or kfac)", name)
}

// run fits the model with the named optimizer and returns the first and
// last risks.
func run(name string, steps int, w io.Writer) (first, last float64, err error) {
	opt, err := newOptimizer(name)
	if err != nil {
		return 0, 0, err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const n, in, hidden, out = 256, 10, 32, 4
	teacher := newModel(rng, in, hidden, out)
	x := mat.NewDense(n, in, nil)
	x.Apply(func(_, _ int, _ float64) float64 { return rng.NormFloat64() }, x)
	teacher.forward(x, mat.NewDense(n, out, nil))
	y := mat.DenseCopyOf(teacher.f)

	m := newModel(rng, in, hidden, out)
	layers := []*secondorder.Layer{m.l1, m.l2}
	for step := 0; step <= steps; step++ {
		risk := m.forward(x, y)
		if step == 0 {
			first = risk
		}
		last = risk
		if step%(max(steps/5, 1)) == 0 || step == steps {
			fmt.Fprintf(w, "step %4d  risk %.6f\n", step, risk)
		}
		if step == steps {
			break
		}
		m.backward(x, y, rng)
		for _, l := range layers {
			l.Risk = risk // the curvature methods' norm constraint is relative to it
		}
		if err := opt.Step(layers); err != nil {
			return first, last, err
		}
	}
	return first, last, nil
}
