package curvature

import (
	"errors"
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/testutil"
	"github.com/secondorder/secondorder/kron"
)

// handLayer returns a record made by hand, without package nn: n inputs of
// size in, n_out = out, Grad n × out and Back with m rows tied to examples
// by a random index, which it returns and puts in BackExamples.
func handLayer(seed uint64, n, in, out, m int) (*secondorder.Layer, []int) {
	rng := newRand(seed)
	l := &secondorder.Layer{
		W:     testutil.RandDense(rng, out, in, 1),
		B:     mat.NewVecDense(out, nil),
		Input: testutil.RandDense(rng, n, in, 1),
		Grad:  testutil.RandDense(rng, n, out, 1),
		Back:  testutil.RandDense(rng, m, out, 1),
	}
	idx := make([]int, m)
	for r := range idx {
		idx[r] = rng.IntN(n)
	}
	l.BackExamples = idx
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
		ht := mat.NewVecDense(in+1, testutil.Augmented(input.RawRowView(i)))
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

// TestBlockDefinition proves that DenseBlock equals its definition
// BackScale·Σ_r (h̃_{idx[r]} h̃_{idx[r]}ᵀ) ⊗ (g_r g_rᵀ) with explicit
// Kronecker products, idx the record's BackExamples, on hand-made records
// (no package nn), with more rows than one chunk of the blocked update, with
// BackScale set and with BackScale zero (1/n), and with nil BackExamples
// (row r is example r). Tolerance 1e-12 relative.
func TestBlockDefinition(t *testing.T) {
	l, idx := handLayer(1, 7, 3, 2, 600)
	l.BackScale = 0.01
	var got mat.SymDense
	DenseBlock(&got, l)
	testutil.EqualApprox(t, "BackScale", &got, denseBlock(l.Input, l.Back, idx, 0.01), 0, 1e-12)

	l.BackScale = 0
	DenseBlock(&got, l)
	testutil.EqualApprox(t, "BackScale=0", &got, denseBlock(l.Input, l.Back, idx, 1.0/7), 0, 1e-12)

	l.Back = testutil.RandDense(newRand(2), 7, 2, 1)
	l.BackExamples = nil
	DenseBlock(&got, l)
	testutil.EqualApprox(t, "nil index", &got, denseBlock(l.Input, l.Back, nil, 1.0/7), 0, 1e-12)
}

// TestEmpiricalBlockDefinition proves that DenseEmpiricalBlock equals its
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
		gh.Outer(1, mat.NewVecDense(out, l.Grad.RawRowView(i)), mat.NewVecDense(in+1, testutil.Augmented(l.Input.RawRowView(i))))
		var z mat.VecDense
		kron.Vec(&z, &gh)
		want.SymRankOne(want, 1/float64(n), &z)
	}
	var got mat.SymDense
	DenseEmpiricalBlock(&got, l)
	testutil.EqualApprox(t, "DenseEmpiricalBlock", &got, want, 0, 1e-12)

	var g mat.SymDense
	EmpiricalOutputFactor(&g, l)
	var gg mat.Dense
	gg.Mul(l.Grad.T(), l.Grad)
	gg.Scale(1/float64(n), &gg)
	testutil.EqualApprox(t, "EmpiricalOutputFactor", &g, &gg, 0, 1e-12)
}

// TestKFACFactors proves that InputFactor is [[E hhᵀ, E h], [E hᵀ, 1]]
// with E hhᵀ = SecondMoment and E h = Mean, that OutputFactor is
// BackScale·Backᵀ Back (1/n when BackScale is zero), and that DenseKFAC is
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
	testutil.EqualApprox(t, "InputFactor", &a, want, 0, 1e-13)

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
		testutil.EqualApprox(t, "OutputFactor", &g, &bb, 0, 1e-13)

		var k mat.SymDense
		DenseKFAC(&k, &a, &g)
		var kp mat.Dense
		kron.Product(&kp, &a, &g)
		testutil.EqualApprox(t, "DenseKFAC", &k, &kp, 0, 1e-15)
	}
}

// TestACPScale proves the scale α of thesis §3.4.2: the heuristic is
// max_{i,j} (∇_{a_i} l)_j², a fixed α is returned as is, and a gradient
// that is all zero or holds a NaN gives ErrScale. DenseACP is Ā ⊗ αI + λI
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
	InputFactor(&a, testutil.RandDense(newRand(5), 6, 2, 1))
	var got mat.SymDense
	DenseACP(&got, &a, 3, 0.7, 0.1)
	eye := mat.NewDiagDense(3, []float64{0.7, 0.7, 0.7})
	var want mat.Dense
	kron.Product(&want, &a, eye)
	for i := 0; i < 9; i++ {
		want.Set(i, i, want.At(i, i)+0.1)
	}
	testutil.EqualApprox(t, "DenseACP", &got, &want, 0, 1e-15)
}

// TestPanics checks that shape errors and missing fields panic with
// messages prefixed "curvature: ", and that a record with a bad
// BackExamples, or with neither BackScale nor Input to give n, is refused
// by package secondorder (prefix "secondorder: ") before a block is built.
func TestPanics(t *testing.T) {
	l, idx := handLayer(7, 5, 3, 2, 8)
	wrong := mat.NewSymDense(4, nil)
	expectPanic(t, "DenseBlock dst", func() { DenseBlock(wrong, l) }, "destination is 4×4")
	with := func(be []int) *secondorder.Layer {
		c := *l
		c.BackExamples = be
		return &c
	}
	testutil.ExpectPanicFrom(t, "DenseBlock index length", func() { DenseBlock(&mat.SymDense{}, with(idx[:3])) },
		"secondorder: ", "Layer.BackExamples has length 3")
	testutil.ExpectPanicFrom(t, "DenseBlock index range", func() {
		bad := append([]int(nil), idx...)
		bad[2] = 5
		DenseBlock(&mat.SymDense{}, with(bad))
	}, "secondorder: ", "Layer.BackExamples[2] = 5 outside [0, 5)")
	testutil.ExpectPanicFrom(t, "DenseBlock nil index", func() { DenseBlock(&mat.SymDense{}, with(nil)) },
		"secondorder: ", "8 rows for 5 examples and no BackExamples")
	expectPanic(t, "DenseBlock no Back", func() {
		DenseBlock(&mat.SymDense{}, &secondorder.Layer{W: l.W, Input: l.Input})
	}, "no Back")
	testutil.ExpectPanicFrom(t, "OutputFactor no n", func() {
		OutputFactor(&mat.SymDense{}, &secondorder.Layer{W: l.W, Back: l.Back})
	}, "secondorder: ", "BackScale is zero")
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
}
