package curvature

import (
	"errors"
	"math"
	"slices"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/kron"
	"github.com/secondorder/secondorder/nn"
)

// handLayer returns a record made by hand, without package nn: n inputs of
// size in, n_out = out, Grad n × out and Back with m rows tied to examples
// by a random index.
func handLayer(seed uint64, n, in, out, m int) (*secondorder.Layer, []int) {
	rng := newRand(seed)
	l := &secondorder.Layer{
		W:     randDense(rng, out, in, 1),
		B:     mat.NewVecDense(out, nil),
		Input: randDense(rng, n, in, 1),
		Grad:  randDense(rng, n, out, 1),
		Back:  randDense(rng, m, out, 1),
	}
	idx := make([]int, m)
	for r := range idx {
		idx[r] = rng.IntN(n)
	}
	return l, idx
}

// denseBlock is the definition of eq. 3.3.2 with explicit Kronecker
// products: scale Σ_r (h̃ h̃ᵀ) ⊗ (g_r g_rᵀ), h̃ of example idx[r].
func denseBlock(input, back *mat.Dense, idx []int, scale float64) *mat.Dense {
	m, out := back.Dims()
	_, in := input.Dims()
	p := out * (in + 1)
	sum := mat.NewDense(p, p, nil)
	for r := 0; r < m; r++ {
		i := r
		if idx != nil {
			i = idx[r]
		}
		ht := mat.NewVecDense(in+1, augmented(input.RawRowView(i)))
		g := mat.NewVecDense(out, back.RawRowView(r))
		var hh, gg, term mat.Dense
		hh.Outer(1, ht, ht)
		gg.Outer(1, g, g)
		kron.Product(&term, &hh, &gg)
		sum.Add(sum, &term)
	}
	sum.Scale(scale, sum)
	return sum
}

// TestBlockDefinition proves that Block equals its definition
// BackScale·Σ_r (h̃_{idx[r]} h̃_{idx[r]}ᵀ) ⊗ (g_r g_rᵀ) with explicit
// Kronecker products, on hand-made records (no package nn), with more
// rows than one chunk of the blocked update, with BackScale set and with
// BackScale zero (1/n), and with a nil index. Tolerance 1e-12 relative.
func TestBlockDefinition(t *testing.T) {
	l, idx := handLayer(1, 7, 3, 2, 600)
	l.BackScale = 0.01
	var got mat.SymDense
	Block(&got, l, idx)
	equalApprox(t, "BackScale", &got, denseBlock(l.Input, l.Back, idx, 0.01), 0, 1e-12)

	l.BackScale = 0
	Block(&got, l, idx)
	equalApprox(t, "BackScale=0", &got, denseBlock(l.Input, l.Back, idx, 1.0/7), 0, 1e-12)

	l.Back = randDense(newRand(2), 7, 2, 1)
	Block(&got, l, nil)
	equalApprox(t, "nil index", &got, denseBlock(l.Input, l.Back, nil, 1.0/7), 0, 1e-12)
}

// TestEmpiricalBlockDefinition proves that EmpiricalBlock equals its
// definition (1/n) Σ_i z_i z_iᵀ with z_i = h̃_i ⊗ g_i computed as
// vec(g_i h̃_iᵀ) by kron.Vec (the per-example gradient of θ = [vec(W); b]),
// and that EmpiricalOutputFactor is (1/n) Gradᵀ Grad. Tolerance 1e-12
// relative.
func TestEmpiricalBlockDefinition(t *testing.T) {
	l, _ := handLayer(3, 300, 4, 3, 1)
	n, in := l.Input.Dims()
	_, out := l.Grad.Dims()
	p := out * (in + 1)
	want := mat.NewSymDense(p, nil)
	for i := 0; i < n; i++ {
		var gh mat.Dense
		gh.Outer(1, mat.NewVecDense(out, l.Grad.RawRowView(i)), mat.NewVecDense(in+1, augmented(l.Input.RawRowView(i))))
		var z mat.VecDense
		kron.Vec(&z, &gh)
		want.SymRankOne(want, 1/float64(n), &z)
	}
	var got mat.SymDense
	EmpiricalBlock(&got, l)
	equalApprox(t, "EmpiricalBlock", &got, want, 0, 1e-12)

	var g mat.SymDense
	EmpiricalOutputFactor(&g, l)
	var gg mat.Dense
	gg.Mul(l.Grad.T(), l.Grad)
	gg.Scale(1/float64(n), &gg)
	equalApprox(t, "EmpiricalOutputFactor", &g, &gg, 0, 1e-12)
}

// TestKFACFactors proves that InputFactor is [[E hhᵀ, E h], [E hᵀ, 1]]
// with E hhᵀ = SecondMoment and E h = Mean, that OutputFactor is
// BackScale·Backᵀ Back (1/n when BackScale is zero), and that KFACBlock is
// kron.Product of the factors. Tolerance 1e-13 relative.
func TestKFACFactors(t *testing.T) {
	l, _ := handLayer(4, 9, 3, 2, 20)
	var a, s mat.SymDense
	var mu mat.VecDense
	InputFactor(&a, l.Input)
	SecondMoment(&s, l.Input)
	Mean(&mu, l.Input)
	want := mat.NewDense(4, 4, nil)
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			want.Set(i, j, s.At(i, j))
		}
		want.Set(i, 3, mu.AtVec(i))
		want.Set(3, i, mu.AtVec(i))
	}
	want.Set(3, 3, 1)
	equalApprox(t, "InputFactor", &a, want, 0, 1e-13)

	for _, bs := range []float64{0, 0.3} {
		l.BackScale = bs
		var g mat.SymDense
		OutputFactor(&g, l)
		var bb mat.Dense
		bb.Mul(l.Back.T(), l.Back)
		scale := bs
		if bs == 0 {
			scale = 1.0 / 9
		}
		bb.Scale(scale, &bb)
		equalApprox(t, "OutputFactor", &g, &bb, 0, 1e-13)

		var k mat.SymDense
		KFACBlock(&k, &a, &g)
		var kp mat.Dense
		kron.Product(&kp, &a, &g)
		equalApprox(t, "KFACBlock", &k, &kp, 0, 1e-15)
	}
}

// TestACPScale proves the scale α of thesis §3.4.2: the heuristic is
// max_{i,j} (∇_{a_i} l)_j², a fixed α is returned as is, and a gradient
// that is all zero or holds a NaN gives ErrScale. ACPBlock is Ā ⊗ αI + λI
// by explicit Kronecker product (tolerance 1e-15 relative).
func TestACPScale(t *testing.T) {
	grad := mat.NewDense(2, 3, []float64{0.5, -3, 1, 2, 0, -1})
	l := &secondorder.Layer{W: mat.NewDense(3, 2, nil), Grad: grad}
	if got := MaxSquaredGrad(grad); got != 9 {
		t.Errorf("MaxSquaredGrad = %g, want 9", got)
	}
	if a, err := (ACPScale{}).Alpha(l); a != 9 || err != nil {
		t.Errorf("heuristic α = %g, %v; want 9, nil", a, err)
	}
	if a, err := (ACPScale{Fixed: 0.25}).Alpha(l); a != 0.25 || err != nil {
		t.Errorf("fixed α = %g, %v; want 0.25, nil", a, err)
	}
	l.Grad = mat.NewDense(2, 3, nil)
	if _, err := (ACPScale{}).Alpha(l); !errors.Is(err, ErrScale) {
		t.Errorf("zero gradient: error %v, want ErrScale", err)
	}
	l.Grad.Set(1, 1, math.NaN())
	if _, err := (ACPScale{}).Alpha(l); !errors.Is(err, ErrScale) {
		t.Errorf("NaN gradient: error %v, want ErrScale", err)
	}

	var a mat.SymDense
	InputFactor(&a, randDense(newRand(5), 6, 2, 1))
	var got mat.SymDense
	ACPBlock(&got, &a, 3, 0.7, 0.1)
	eye := mat.NewDiagDense(3, []float64{0.7, 0.7, 0.7})
	var want mat.Dense
	kron.Product(&want, &a, eye)
	for i := 0; i < 9; i++ {
		want.Set(i, i, want.At(i, i)+0.1)
	}
	equalApprox(t, "ACPBlock", &got, &want, 0, 1e-15)
}

// TestLayout proves that Offsets follows nn's parameter layout (the last
// offset is NumParams and the blocks are n_out(n_in+1)), that LayerBlock
// extracts the diagonal block of a layer and that BlockDiagonal keeps the
// diagonal blocks and zeros the rest (thesis §3.1.6).
func TestLayout(t *testing.T) {
	net, X, Y := setup(cases[0], 4, 6)
	off := Offsets(net.Records())
	if want := []int{0, 16, 31, 39}; !slices.Equal(off, want) || off[3] != net.NumParams() {
		t.Fatalf("Offsets = %v, want %v (NumParams %d)", off, want, net.NumParams())
	}
	var h, bd mat.SymDense
	Hessian(&h, net, cases[0].loss, X, Y)
	BlockDiagonal(&bd, &h, off)
	for i := 0; i < off[3]; i++ {
		for j := 0; j < off[3]; j++ {
			same := false
			for l := 0; l < 3; l++ {
				same = same || (i >= off[l] && i < off[l+1] && j >= off[l] && j < off[l+1])
			}
			want := 0.0
			if same {
				want = h.At(i, j)
			}
			if bd.At(i, j) != want {
				t.Fatalf("BlockDiagonal(%d,%d) = %g, want %g", i, j, bd.At(i, j), want)
			}
		}
	}
	var b1 mat.SymDense
	LayerBlock(&b1, &h, off, 1)
	for i := 0; i < 15; i++ {
		for j := 0; j < 15; j++ {
			if b1.At(i, j) != h.At(16+i, 16+j) {
				t.Fatalf("LayerBlock(%d,%d) = %g, want %g", i, j, b1.At(i, j), h.At(16+i, 16+j))
			}
		}
	}
}

// TestJacobiansFD proves that the explicit per-example jacobians of the
// logits and of the outputs (both splits) equal the finite-difference
// jacobians of the network's Forward with respect to the parameters.
// Tolerance: central differences with step 1e-6, 1e-8 + 1e-7·max|J|.
func TestJacobiansFD(t *testing.T) {
	for ci, c := range cases {
		net, X, _ := setup(c, 3, uint64(180+ci))
		theta := net.Params(nil)
		n, _ := X.Dims()
		k := c.sizes[len(c.sizes)-1]
		for _, s := range splits {
			J := Jacobians(net, X, s)
			for i := 0; i < n; i++ {
				x := mat.NewDense(1, c.sizes[0], X.RawRowView(i))
				want := mat.NewDense(k, len(theta), nil)
				fd.Jacobian(want, func(y, th []float64) {
					net.SetParams(th)
					net.Forward(x)
					o := net.Output()
					if s == nn.SplitLogits {
						copy(y, o.A.RawRowView(0))
					} else {
						copy(y, o.F.RawRowView(0))
					}
				}, theta, &fd.JacobianSettings{Formula: fd.Central, Step: 1e-6})
				net.SetParams(theta)
				equalApprox(t, c.name+"/"+s.String(), J[i], want, 1e-8, 1e-7)
			}
		}
	}
}

// TestEstimatorString checks the kfac-jax names.
func TestEstimatorString(t *testing.T) {
	for e, want := range map[Estimator]string{GGNExact: "ggn_exact", FisherExact: "fisher_exact", FisherGradients: "fisher_gradients", FisherEmpirical: "fisher_empirical", Estimator(9): "Estimator(9)"} {
		if got := e.String(); got != want {
			t.Errorf("%d: %q, want %q", int(e), got, want)
		}
	}
}

// TestPanics checks that shape errors and missing fields panic with
// messages prefixed "curvature: ".
func TestPanics(t *testing.T) {
	l, idx := handLayer(7, 5, 3, 2, 8)
	wrong := mat.NewSymDense(4, nil)
	expectPanic(t, "Block dst", func() { Block(wrong, l, idx) }, "destination is 4×4")
	expectPanic(t, "Block index length", func() { Block(&mat.SymDense{}, l, idx[:3]) }, "index has length 3")
	expectPanic(t, "Block index range", func() {
		bad := append([]int(nil), idx...)
		bad[2] = 5
		Block(&mat.SymDense{}, l, bad)
	}, "idx[2] = 5")
	expectPanic(t, "Block nil index", func() { Block(&mat.SymDense{}, l, nil) }, "8 rows and no index")
	expectPanic(t, "Block no Back", func() {
		Block(&mat.SymDense{}, &secondorder.Layer{W: l.W, Input: l.Input}, nil)
	}, "no Back")
	expectPanic(t, "OutputFactor no n", func() {
		OutputFactor(&mat.SymDense{}, &secondorder.Layer{W: l.W, Back: l.Back})
	}, "BackScale is zero")
	expectPanic(t, "Covariance mean", func() { Covariance(&mat.SymDense{}, l.Input, mat.NewVecDense(2, nil)) }, "mean has length 2")
	expectPanic(t, "LayerBlock offsets", func() { LayerBlock(&mat.SymDense{}, wrong, []int{0, 3}, 0) }, "offsets cover 3")
	expectPanic(t, "LayerBlock layer", func() { LayerBlock(&mat.SymDense{}, wrong, []int{0, 4}, 1) }, "layer 1 out of range")
	expectPanic(t, "MovingAverage size", func() {
		var a MovingAverage
		a.Add(mat.NewSymDense(2, nil))
		a.Add(mat.NewSymDense(3, nil))
	}, "estimate is 3×3")
	expectPanic(t, "MovingAverage decay", func() {
		a := MovingAverage{Decay: 1}
		a.Add(mat.NewSymDense(2, nil))
	}, "Decay 1")
	expectPanic(t, "ACPScale", func() { _, _ = ACPScale{Fixed: -1}.Alpha(l) }, "Fixed is -1")
	net, X, Y := setup(cases[0], 3, 8)
	expectPanic(t, "MulVec length", func() {
		NewHessian(net, cases[0].loss, X, Y).MulVec(&mat.VecDense{}, mat.NewVecDense(3, nil))
	}, "vector has length 3")
	expectPanic(t, "Fisher gradients without Rand", func() {
		(&Backprop{Estimator: FisherGradients}).Fill(net, cases[0].loss, X, Y)
	}, "needs Rand")
	expectPanic(t, "GGN without targets", func() {
		(&Backprop{}).Fill(net, cases[0].loss, X, nil)
	}, "ggn_exact needs targets")
}
