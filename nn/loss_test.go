package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/floats/scalar"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/internal/testutil"
)

// lossCase is one loss on one output activation, with a generator of
// targets and the reference loss l(f, y) written in terms of f.
type lossCase struct {
	name     string
	loss     Loss
	act      Activation
	matching bool // the loss matches the activation (SplitLogits is the Hessian at a)
	targets  func(rng *rand.Rand, n, k int) *mat.Dense
	ref      func(f, y []float64) float64
	binary   bool // BCE: outcomes in {0,1}^k
	classes  bool // CE: one-hot outcomes
}

func gaussTargets(rng *rand.Rand, n, k int) *mat.Dense { return testutil.RandDense(rng, n, k, 1) }

func unitTargets(rng *rand.Rand, n, k int) *mat.Dense {
	y := mat.NewDense(n, k, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < k; j++ {
			switch (i + j) % 4 {
			case 0:
				y.Set(i, j, 0)
			case 1:
				y.Set(i, j, 1)
			default:
				y.Set(i, j, rng.Float64())
			}
		}
	}
	return y
}

func oneHotTargets(rng *rand.Rand, n, k int) *mat.Dense {
	y := mat.NewDense(n, k, nil)
	for i := 0; i < n; i++ {
		y.Set(i, rng.IntN(k), 1)
	}
	return y
}

func softTargets(scale float64) func(rng *rand.Rand, n, k int) *mat.Dense {
	return func(rng *rand.Rand, n, k int) *mat.Dense {
		y := mat.NewDense(n, k, nil)
		for i := 0; i < n; i++ {
			testutil.RandDistribution(rng, y.RawRowView(i), 0.05)
		}
		y.Scale(scale, y)
		return y
	}
}

func refQuadratic(f, y []float64) float64 {
	s := 0.0
	for j := range f {
		s += (f[j] - y[j]) * (f[j] - y[j])
	}
	return s
}

func refBCE(f, y []float64) float64 {
	s := 0.0
	for j := range f {
		s -= y[j]*math.Log(f[j]) + (1-y[j])*math.Log(1-f[j])
	}
	return s
}

func refCE(f, y []float64) float64 {
	s := 0.0
	for j := range f {
		s -= y[j] * math.Log(f[j])
	}
	return s
}

var lossCases = []lossCase{
	{name: "quadratic/identity", loss: Quadratic{}, act: Identity{}, matching: true, targets: gaussTargets, ref: refQuadratic},
	{name: "quadratic/sigmoid", loss: Quadratic{}, act: Sigmoid{}, targets: unitTargets, ref: refQuadratic},
	{name: "quadratic/tanh", loss: Quadratic{}, act: Tanh{}, targets: gaussTargets, ref: refQuadratic},
	{name: "quadratic/softmax", loss: Quadratic{}, act: Softmax{}, targets: softTargets(1), ref: refQuadratic},
	{name: "bce/sigmoid", loss: BinaryCrossEntropy{}, act: Sigmoid{}, matching: true, targets: unitTargets, ref: refBCE, binary: true},
	{name: "ce/softmax one-hot", loss: CrossEntropy{}, act: Softmax{}, matching: true, targets: oneHotTargets, ref: refCE, classes: true},
	{name: "ce/softmax soft", loss: CrossEntropy{}, act: Softmax{}, matching: true, targets: softTargets(1), ref: refCE, classes: true},
	{name: "ce/softmax unnormalized", loss: CrossEntropy{}, act: Softmax{}, matching: true, targets: softTargets(1.7), ref: refCE, classes: true},
}

const lossN, lossK = 3, 4

// setup returns an Output with random logits and targets for c.
func (c lossCase) setup(seed uint64) (Output, *mat.Dense) {
	rng := newRand(seed)
	a := testutil.RandDense(rng, lossN, lossK, 1)
	f := mat.NewDense(lossN, lossK, nil)
	c.act.Forward(f, a)
	return Output{Act: c.act, A: a, F: f}, c.targets(rng, lossN, lossK)
}

// valueAt returns the loss of example i with its logits replaced by a.
func (c lossCase) valueAt(o Output, y *mat.Dense, i int, a []float64) float64 {
	A := mat.DenseCopyOf(o.A)
	A.SetRow(i, a)
	F := mat.NewDense(lossN, lossK, nil)
	c.act.Forward(F, A)
	v := make([]float64, lossN)
	c.loss.Values(v, Output{Act: c.act, A: A, F: F}, y)
	return v[i]
}

func TestLossValuesAndGradients(t *testing.T) {
	for ci, c := range lossCases {
		o, y := c.setup(uint64(10 + ci))
		v := make([]float64, lossN)
		c.loss.Values(v, o, y)
		mean := 0.0
		for i := range v {
			mean += v[i] / lossN
			if want := c.ref(row(o.F, i), row(y, i)); !scalar.EqualWithinAbsOrRel(v[i], want, 1e-13, 1e-12) {
				t.Errorf("%s: Values[%d] = %v, reference %v", c.name, i, v[i], want)
			}
		}
		if got := c.loss.Value(o, y); !scalar.EqualWithinAbsOrRel(got, mean, 1e-14, 1e-14) {
			t.Errorf("%s: Value = %v, mean of Values %v", c.name, got, mean)
		}

		ga := mat.NewDense(lossN, lossK, nil)
		c.loss.GradA(ga, o, y)
		gf := mat.NewDense(lossN, lossK, nil)
		c.loss.GradF(gf, o, y)
		for i := 0; i < lossN; i++ {
			wantA := fd.Gradient(nil, func(a []float64) float64 { return c.valueAt(o, y, i, a) }, rowVec(o.A, i), central1)
			equalApprox(t, c.name+" GradA", ga.RowView(i), mat.NewVecDense(lossK, wantA), 1e-8, 1e-7)
			yi := rowVec(y, i)
			wantF := fd.Gradient(nil, func(f []float64) float64 { return c.ref(f, yi) }, rowVec(o.F, i), central1)
			equalApprox(t, c.name+" GradF", gf.RowView(i), mat.NewVecDense(lossK, wantF), 1e-8, 1e-7)
		}
	}
}

// hessians returns, for example i, second derivatives of the loss by finite
// differences: with respect to f (of the reference l(f, y)) and to a (of
// Values, with F = φ(A)), each both as the central-difference Hessian of the
// value (loose tolerance: rounding ~ε·l/h²) and as the central-difference
// jacobian of the gradient (GradF, GradA, themselves checked against the
// values in TestLossValuesAndGradients; tight tolerance).
func (c lossCase) hessians(o Output, y *mat.Dense, i int) (hfv, hfg, hav, hag *mat.Dense) {
	yi := rowVec(y, i)
	var sf, sa mat.SymDense
	fd.Hessian(&sf, func(f []float64) float64 { return c.ref(f, yi) }, rowVec(o.F, i), central2f)
	fd.Hessian(&sa, func(a []float64) float64 { return c.valueAt(o, y, i, a) }, rowVec(o.A, i), central2)
	hfv, hav = mat.DenseCopyOf(&sf), mat.DenseCopyOf(&sa)
	js := &fd.JacobianSettings{Formula: fd.Central, Step: 1e-6}
	hfg = mat.NewDense(lossK, lossK, nil)
	fd.Jacobian(hfg, func(g, f []float64) {
		F := mat.DenseCopyOf(o.F)
		F.SetRow(i, f)
		G := mat.NewDense(lossN, lossK, nil)
		c.loss.GradF(G, Output{Act: o.Act, A: o.A, F: F}, y)
		copy(g, row(G, i))
	}, rowVec(o.F, i), js)
	hag = mat.NewDense(lossK, lossK, nil)
	fd.Jacobian(hag, func(g, a []float64) {
		A := mat.DenseCopyOf(o.A)
		A.SetRow(i, a)
		F := mat.NewDense(lossN, lossK, nil)
		c.act.Forward(F, A)
		G := mat.NewDense(lossN, lossK, nil)
		c.loss.GradA(G, Output{Act: o.Act, A: A, F: F}, y)
		copy(g, row(G, i))
	}, rowVec(o.A, i), js)
	return hfv, hfg, hav, hag
}

// TestLossCurvature checks D of tables 3.I/3.II with respect to f and a
// against finite-difference second derivatives and jacobians.
func TestLossCurvature(t *testing.T) {
	const (
		looseAbs, looseRel = 1e-4, 1e-4 // Hessian of values
		tightAbs, tightRel = 1e-7, 1e-6 // jacobian of gradients
	)
	for ci, c := range lossCases {
		o, y := c.setup(uint64(20 + ci))
		for i := 0; i < lossN; i++ {
			hfv, hfg, hav, hag := c.hessians(o, y, i)
			jac := actJacobianFD(c.act, rowVec(o.A, i))
			pull := func(m mat.Matrix) *mat.Dense {
				var t1, t2 mat.Dense
				t1.Mul(m, jac)
				t2.Mul(jac.T(), &t1)
				return &t2
			}

			// GN with respect to f: the Hessian ∂²l/∂f² (table 3.I, 2I for
			// the quadratic loss).
			var d mat.Dense
			c.loss.DOutputs(&d, GaussNewton, o, y, i)
			equalApprox(t, c.name+" DOutputs GN vs value Hessian", &d, hfv, looseAbs, looseRel)
			equalApprox(t, c.name+" DOutputs GN vs gradient jacobian", &d, hfg, tightAbs, tightRel)

			// GN with respect to a, split at the outputs: Jᵀ (∂²l/∂f²) J.
			d.Reset()
			c.loss.DLogits(&d, GaussNewton, SplitOutputs, o, y, i)
			equalApprox(t, c.name+" DLogits GN SplitOutputs", &d, pull(hfg), tightAbs, tightRel)

			// GN with respect to a, matching-loss split: the Hessian at a
			// for matching pairs, the pull-back otherwise.
			d.Reset()
			c.loss.DLogits(&d, GaussNewton, SplitLogits, o, y, i)
			if c.matching {
				equalApprox(t, c.name+" DLogits GN SplitLogits vs value Hessian", &d, hav, looseAbs, looseRel)
				equalApprox(t, c.name+" DLogits GN SplitLogits vs gradient jacobian", &d, hag, tightAbs, tightRel)
			} else {
				equalApprox(t, c.name+" DLogits GN SplitLogits", &d, pull(hfg), tightAbs, tightRel)
			}

			// Fisher: both splits agree with the pull-back of table 3.II.
			var df mat.Dense
			c.loss.DOutputs(&df, Fisher, o, y, i)
			for _, s := range []Split{SplitLogits, SplitOutputs} {
				d.Reset()
				c.loss.DLogits(&d, Fisher, s, o, y, i)
				equalApprox(t, c.name+" DLogits Fisher "+s.String(), &d, pull(&df), tightAbs, tightRel)
			}
		}
	}
}

// TestLossSqrtD checks S_iᵀ S_i = D_a for every curvature and split.
func TestLossSqrtD(t *testing.T) {
	for ci, c := range lossCases {
		o, y := c.setup(uint64(30 + ci))
		for _, cv := range []Curvature{GaussNewton, Fisher} {
			for _, s := range []Split{SplitLogits, SplitOutputs} {
				var S mat.Dense
				c.loss.SqrtD(&S, cv, s, o, y)
				if r, cc := S.Dims(); r != lossN*lossK || cc != lossK {
					t.Fatalf("%s: SqrtD is %d×%d", c.name, r, cc)
				}
				for i := 0; i < lossN; i++ {
					Si := S.Slice(i*lossK, (i+1)*lossK, 0, lossK)
					var sts, d mat.Dense
					sts.Mul(Si.T(), Si)
					c.loss.DLogits(&d, cv, s, o, y, i)
					equalApprox(t, c.name+" SᵀS "+cv.String()+" "+s.String(), &sts, &d, 1e-14, 1e-12)
				}
			}
		}
	}
}

// TestLossDLogitsDiag checks DiagonalLoss against DLogits: for every case,
// curvature and split, a loss that reports a diagonal D_a has exactly that
// diagonal and a DLogits that is zero off it (Quadratic and BCE on
// elementwise activations), and Quadratic on softmax, whose D_a is full,
// reports false and leaves dst alone.
func TestLossDLogitsDiag(t *testing.T) {
	for ci, c := range lossCases {
		dl, ok := c.loss.(DiagonalLoss)
		if !ok {
			continue
		}
		_, elementwise := c.act.(Elementwise)
		o, y := c.setup(uint64(60 + ci))
		for _, cv := range []Curvature{GaussNewton, Fisher} {
			for _, s := range []Split{SplitLogits, SplitOutputs} {
				for i := 0; i < lossN; i++ {
					d := []float64{-7, -7, -7, -7}
					got := dl.DLogitsDiag(d, cv, s, o, y, i)
					if got != elementwise {
						t.Fatalf("%s %v %v: DLogitsDiag reports %v, want %v", c.name, cv, s, got, elementwise)
					}
					var m mat.Dense
					c.loss.DLogits(&m, cv, s, o, y, i)
					for p := 0; p < lossK; p++ {
						for q := 0; q < lossK; q++ {
							switch {
							case !got:
								if d[p] != -7 {
									t.Fatalf("%s: DLogitsDiag wrote %v reporting false", c.name, d)
								}
							case p == q && d[p] != m.At(p, p):
								t.Errorf("%s %v %v example %d: diagonal %d = %g, DLogits %g", c.name, cv, s, i, p, d[p], m.At(p, p))
							case p != q && m.At(p, q) != 0:
								t.Errorf("%s %v %v example %d: DLogits (%d,%d) = %g off the diagonal", c.name, cv, s, i, p, q, m.At(p, q))
							}
						}
					}
				}
			}
		}
	}
}

// gradAt returns row i of GradA and GradF with row i of the targets set to yi.
func gradAt(c lossCase, o Output, y *mat.Dense, i int, yi []float64) (ga, gf []float64) {
	Y := mat.DenseCopyOf(y)
	Y.SetRow(i, yi)
	GA := mat.NewDense(lossN, lossK, nil)
	GF := mat.NewDense(lossN, lossK, nil)
	c.loss.GradA(GA, o, Y)
	c.loss.GradF(GF, o, Y)
	return rowVec(GA, i), rowVec(GF, i)
}

func addOuter(dst *mat.Dense, w float64, g []float64) {
	v := mat.NewVecDense(len(g), g)
	var o mat.Dense
	o.Outer(w, v, v)
	dst.Add(dst, &o)
}

// TestFisherEnumeration checks that the Fisher D (w.r.t. f and a) is
// E_{y∼p(y|f)}[∇l ∇lᵀ] exactly, by enumerating the outcomes of the Bernoulli
// and categorical predictive distributions.
func TestFisherEnumeration(t *testing.T) {
	for ci, c := range lossCases {
		if !c.binary && !c.classes {
			continue
		}
		o, y := c.setup(uint64(40 + ci))
		for i := 0; i < lossN; i++ {
			f := row(o.F, i)
			ea := mat.NewDense(lossK, lossK, nil)
			ef := mat.NewDense(lossK, lossK, nil)
			total := 0.0
			visit := func(yi []float64, p float64) {
				total += p
				ga, gf := gradAt(c, o, y, i, yi)
				addOuter(ea, p, ga)
				addOuter(ef, p, gf)
			}
			if c.binary {
				for mask := 0; mask < 1<<lossK; mask++ {
					yi := make([]float64, lossK)
					p := 1.0
					for j := range yi {
						if mask&(1<<j) != 0 {
							yi[j] = 1
							p *= f[j]
						} else {
							p *= 1 - f[j]
						}
					}
					visit(yi, p)
				}
			} else {
				for t := 0; t < lossK; t++ {
					yi := make([]float64, lossK)
					yi[t] = 1
					visit(yi, f[t])
				}
			}
			if !scalar.EqualWithinAbs(total, 1, 1e-14) {
				t.Fatalf("%s: outcome probabilities sum to %v", c.name, total)
			}
			var da, df mat.Dense
			c.loss.DLogits(&da, Fisher, SplitLogits, o, y, i)
			c.loss.DOutputs(&df, Fisher, o, y, i)
			equalApprox(t, c.name+" Fisher DLogits = E[∇_a l ∇_a lᵀ]", &da, ea, 1e-14, 1e-12)
			equalApprox(t, c.name+" Fisher DOutputs = E[∇_f l ∇_f lᵀ]", &df, ef, 1e-12, 1e-12)
		}
	}
}

// TestFisherMonteCarlo checks Sample: the mean of ∇l ∇lᵀ over N sampled
// targets must be within 5 standard errors (estimated from the samples) of
// the Fisher D, entrywise, w.r.t. both f and a. For the quadratic loss this
// is the check that Sample draws from N(f, ½ I) and that D = 2I.
func TestFisherMonteCarlo(t *testing.T) {
	const N = 20000
	for ci, c := range lossCases {
		o, y := c.setup(uint64(50 + ci))
		rng := newRand(uint64(500 + ci))
		ys := mat.NewDense(lossN, lossK, nil)
		ga := mat.NewDense(lossN, lossK, nil)
		gf := mat.NewDense(lossN, lossK, nil)
		type acc struct{ sum, sq [lossN][lossK][lossK]float64 }
		var sa, sf acc
		add := func(s *acc, g *mat.Dense) {
			for i := 0; i < lossN; i++ {
				r := row(g, i)
				for p := 0; p < lossK; p++ {
					for q := 0; q < lossK; q++ {
						v := r[p] * r[q]
						s.sum[i][p][q] += v
						s.sq[i][p][q] += v * v
					}
				}
			}
		}
		for range N {
			c.loss.Sample(ys, o, rng)
			c.loss.GradA(ga, o, ys)
			c.loss.GradF(gf, o, ys)
			add(&sa, ga)
			add(&sf, gf)
		}
		check := func(what string, s *acc, want func(dst *mat.Dense, i int)) {
			for i := 0; i < lossN; i++ {
				var d mat.Dense
				want(&d, i)
				for p := 0; p < lossK; p++ {
					for q := 0; q < lossK; q++ {
						mean := s.sum[i][p][q] / N
						se := math.Sqrt(math.Max(s.sq[i][p][q]/N-mean*mean, 0) / N)
						if math.Abs(mean-d.At(p, q)) > 5*se+1e-12 {
							t.Errorf("%s: %s example %d (%d,%d): Monte-Carlo %v ± %v, D = %v", c.name, what, i, p, q, mean, se, d.At(p, q))
						}
					}
				}
			}
		}
		check("a", &sa, func(d *mat.Dense, i int) { c.loss.DLogits(d, Fisher, SplitLogits, o, y, i) })
		check("f", &sf, func(d *mat.Dense, i int) { c.loss.DOutputs(d, Fisher, o, y, i) })
	}
}

func TestQuadraticSampleMoments(t *testing.T) {
	o, y := lossCases[1].setup(60)
	_ = y
	rng := newRand(61)
	const N = 40000
	ys := mat.NewDense(lossN, lossK, nil)
	var sum, sq float64
	for range N {
		Quadratic{}.Sample(ys, o, rng)
		d := ys.At(1, 2) - o.F.At(1, 2)
		sum += d
		sq += d * d
	}
	mean, v := sum/N, sq/N
	// Standard errors: √(½/N) ≈ 0.0035 for the mean, √(2·¼/N) ≈ 0.0035 for the variance.
	if math.Abs(mean) > 0.02 || math.Abs(v-0.5) > 0.02 {
		t.Errorf("quadratic samples: mean offset %v, variance %v, want 0 and ½", mean, v)
	}
}

func TestLossPanics(t *testing.T) {
	o, y := lossCases[0].setup(70)
	sig := Output{Act: Sigmoid{}, A: o.A, F: o.F}
	tanh := Output{Act: Tanh{}, A: o.A, F: o.F}
	g := mat.NewDense(lossN, lossK, nil)
	expectPanic(t, "BCE on tanh", func() { BinaryCrossEntropy{}.GradA(g, tanh, y) }, "sigmoid")
	expectPanic(t, "CE on sigmoid", func() { CrossEntropy{}.Value(sig, y) }, "softmax")
	expectPanic(t, "bad targets", func() { Quadratic{}.GradA(g, o, mat.NewDense(2, lossK, nil)) }, "targets")
	expectPanic(t, "bad dst", func() { Quadratic{}.GradA(mat.NewDense(2, 2, nil), o, y) }, "dst")
	expectPanic(t, "bad example", func() { Quadratic{}.DOutputs(&mat.Dense{}, Fisher, o, y, lossN) }, "out of range")
	expectPanic(t, "bad Values len", func() { Quadratic{}.Values(make([]float64, 1), o, y) }, "len")
	expectPanic(t, "bad SqrtD dst", func() { Quadratic{}.SqrtD(mat.NewDense(2, 2, nil), Fisher, SplitLogits, o, y) }, "destination")
	if (BinaryCrossEntropy{}).Check(Sigmoid{}) != nil || (CrossEntropy{}).Check(Softmax{}) != nil || (Quadratic{}).Check(Softmax{}) != nil {
		t.Error("Check rejects a valid pair")
	}
}
