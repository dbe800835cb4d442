package curvature

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/testutil"
)

// symPower returns (a + eps·I)^p for a symmetric positive semidefinite a,
// by gonum's EigenSym: the dense reference of Shampoo's roots.
func symPower(t *testing.T, a mat.Symmetric, eps, p float64) *mat.Dense {
	t.Helper()
	var es mat.EigenSym
	if !es.Factorize(a, true) {
		t.Fatal("EigenSym failed")
	}
	vals := es.Values(nil)
	var q mat.Dense
	es.VectorsTo(&q)
	n := len(vals)
	d := mat.NewDiagDense(n, nil)
	for i, v := range vals {
		d.SetDiag(i, math.Pow(math.Max(v, 0)+eps, p))
	}
	var r mat.Dense
	r.Mul(&q, d)
	r.Mul(&r, q.T())
	return &r
}

// meanTrace returns tr(a)/n.
func meanTrace(a mat.Symmetric) float64 { return mat.Trace(a) / float64(a.SymmetricDim()) }

// gradsOf returns the [∇W ∇b] of the records.
func gradsOf(ls []*secondorder.Layer) []*mat.Dense {
	gs := make([]*mat.Dense, len(ls))
	for i, l := range ls {
		gs[i] = paramGrad(l)
	}
	return gs
}

// TestShampooBlock checks Shampoo against its dense definition on records
// of three updates (Decay 0.5, so that the warm-started averages weigh
// them 1/4, 1/4, 1/2): the factors L and R against the averages of G Gᵀ and
// Gᵀ G (1e-13), and the direction against
// (L + ε_L I)^{−1/4} G (R + ε_R I)^{−1/4} from gonum's EigenSym, rescaled to
// the norm of G/(√v + GraftEpsilon) with v the average of G∘G (1e-10
// relative); Mul inverts the ungrafted preconditioner (1e-10).
func TestShampooBlock(t *testing.T) {
	const in, out, lambda = 4, 3, 0.05
	recs := []*secondorder.Layer{blockRecord(120, 7, in, out, 7, false), blockRecord(121, 7, in, out, 7, false), blockRecord(122, 7, in, out, 7, false)}
	gs := gradsOf(recs)
	b := &ShampooBlock{Decay: 0.5}
	for _, l := range recs {
		b.Update(l)
	}
	if err := b.Refresh(lambda); err != nil {
		t.Fatal(err)
	}
	w := []float64{0.25, 0.25, 0.5}
	wantL, wantR := mat.NewSymDense(out, nil), mat.NewSymDense(in+1, nil)
	v := mat.NewDense(out, in+1, nil)
	for k, g := range gs {
		var gg, ggT mat.Dense
		gg.Mul(g, g.T())
		ggT.Mul(g.T(), g)
		wantL.AddSym(wantL, scaledSym(&gg, w[k]))
		wantR.AddSym(wantR, scaledSym(&ggT, w[k]))
		var sq mat.Dense
		sq.MulElem(g, g)
		v.Add(v, scaled(&sq, w[k]))
	}
	l, r := b.Factors()
	testutil.EqualApprox(t, "L", l, wantL, 0, 1e-13)
	testutil.EqualApprox(t, "R", r, wantR, 0, 1e-13)

	last := recs[2]
	g := gs[2]
	var want mat.Dense
	want.Mul(symPower(t, wantL, lambda*meanTrace(wantL), -0.25), g)
	want.Mul(&want, symPower(t, wantR, lambda*meanTrace(wantR), -0.25))
	graft := 0.0
	for o := 0; o < out; o++ {
		for c := 0; c <= in; c++ {
			d := g.At(o, c) / (math.Sqrt(v.At(o, c)) + GraftEpsilon)
			graft += d * d
		}
	}
	ungrafted := mat.DenseCopyOf(&want)
	want.Scale(math.Sqrt(graft)/mat.Norm(&want, 2), &want)
	var got mat.Dense
	b.Precondition(&got, last)
	testutil.EqualApprox(t, "direction", &got, &want, 0, 1e-10)

	var back mat.Dense
	b.Mul(&back, ungrafted)
	testutil.EqualApprox(t, "Mul of the ungrafted direction", &back, g, 0, 1e-10)
}

// TestShampooBlockPolar: with a single update and a tiny damping Shampoo's
// direction is the polar factor U Vᵀ of G = U Σ Vᵀ (L^{−1/4} G R^{−1/4} with
// L = G Gᵀ, R = Gᵀ G), up to grafting (compared after normalisation,
// 1e-6); after several different gradients it is not the polar factor of
// the last (relative distance above 1e-2).
func TestShampooBlockPolar(t *testing.T) {
	const in, out = 2, 3 // G is 3×3: full rank
	for _, single := range []bool{true, false} {
		b := &ShampooBlock{Decay: 0.5}
		var l *secondorder.Layer
		for k := 0; k < map[bool]int{true: 1, false: 4}[single]; k++ {
			l = blockRecord(uint64(130+k), 6, in, out, 6, false)
			b.Update(l)
		}
		if err := b.Refresh(1e-14); err != nil {
			t.Fatal(err)
		}
		var svd mat.SVD
		if !svd.Factorize(paramGrad(l), mat.SVDFull) {
			t.Fatal("SVD failed")
		}
		var u, vt, polar mat.Dense
		svd.UTo(&u)
		svd.VTo(&vt)
		polar.Mul(&u, vt.T())
		var got mat.Dense
		b.Precondition(&got, l)
		got.Scale(1/mat.Norm(&got, 2), &got)
		polar.Scale(1/mat.Norm(&polar, 2), &polar)
		d := testutil.RelDiff(&got, &polar)
		if single && d > 1e-6 {
			t.Errorf("one update: %g from the polar factor", d)
		}
		if !single && d < 1e-2 {
			t.Errorf("four updates: within %g of the last gradient's polar factor; the test cannot fail", d)
		}
	}
}

// TestSOAPBlock checks SOAP against its definition. The first Refresh
// leaves the moments empty and the direction zero (the first step only
// builds the preconditioner). With Decay 1e-300 the moments are those of
// the last update, m = G', v = G'∘G' for G' = Q_Lᵀ G Q_R, so the direction
// is Q_L (G' ./ (|G'| + λ)) Q_Rᵀ, compared with the eigenvectors of gonum's
// EigenSym of L and R at the Refresh (the odd elementwise function makes it
// independent of their signs; 1e-10). A Refresh onto a new basis keeps m in the original
// coordinates (Q m Qᵀ before and after, 1e-12) and carries v as
// diag(U'ᵀ U diag v Uᵀ U') (1e-12).
func TestSOAPBlock(t *testing.T) {
	const in, out, lambda = 3, 4, 0.01
	b := &SOAPBlock{Decay: 1e-300}
	r1 := blockRecord(140, 8, in, out, 8, false)
	b.Update(r1)
	if err := b.Refresh(lambda); err != nil {
		t.Fatal(err)
	}
	var zero mat.Dense
	b.Precondition(&zero, r1)
	if m := testutil.MaxAbs(&zero); m != 0 {
		t.Errorf("direction before any moment: max |entry| %g, want 0", m)
	}
	// The basis held is that of the factors at the Refresh.
	l, r := b.Factors()
	ql, qr := eigenvectors(t, l), eigenvectors(t, r)
	r2 := blockRecord(141, 8, in, out, 8, false)
	b.Update(r2)
	g := paramGrad(r2)
	var gr mat.Dense
	gr.Mul(ql.T(), g)
	gr.Mul(&gr, qr)
	gr.Apply(func(_, _ int, x float64) float64 { return x / (math.Abs(x) + lambda) }, &gr)
	var want mat.Dense
	want.Mul(ql, &gr)
	want.Mul(&want, qr.T())
	var got mat.Dense
	b.Precondition(&got, r2)
	testutil.EqualApprox(t, "direction", &got, &want, 0, 1e-10)

	// A new basis: m in the original coordinates is unchanged, v is
	// projected.
	b.Decay = 0.5
	b.Update(blockRecord(142, 8, in, out, 8, false))
	b.Update(blockRecord(143, 8, in, out, 8, false))
	mOld, vOld := b.momentMatrices()
	var mOrig mat.Dense
	b.gf.eig[b.cur].RotateBack(&mOrig, mOld)
	uOld := b.basisDense()
	if err := b.Refresh(lambda); err != nil {
		t.Fatal(err)
	}
	mNew, vNew := b.momentMatrices()
	var mOrig2 mat.Dense
	b.gf.eig[b.cur].RotateBack(&mOrig2, mNew)
	testutil.EqualApprox(t, "m in the original coordinates across a Refresh", &mOrig2, &mOrig, 1e-12*testutil.MaxAbs(&mOrig), 0)
	uNew := b.basisDense()
	var full, rot mat.Dense
	full.Mul(uOld, mat.NewDiagDense(out*(in+1), vecOf(vOld).RawVector().Data))
	full.Mul(&full, uOld.T())
	rot.Mul(uNew.T(), &full)
	rot.Mul(&rot, uNew)
	wantV := mat.NewVecDense(out*(in+1), nil)
	for i := 0; i < out*(in+1); i++ {
		wantV.SetVec(i, rot.At(i, i))
	}
	testutil.EqualApprox(t, "v across a Refresh", vecOf(vNew), wantV, 1e-12*mat.Norm(wantV, math.Inf(1)), 0)
}

// eigenvectors returns the eigenvectors of a symmetric matrix by EigenSym.
func eigenvectors(t *testing.T, a mat.Symmetric) *mat.Dense {
	t.Helper()
	var es mat.EigenSym
	if !es.Factorize(a, true) {
		t.Fatal("EigenSym failed")
	}
	var q mat.Dense
	es.VectorsTo(&q)
	return &q
}

// momentMatrices returns copies of SOAP's moments as n_out × n_A matrices.
func (b *SOAPBlock) momentMatrices() (m, v *mat.Dense) {
	out, in := b.dims.out, b.dims.in
	m = mat.NewDense(out, in+1, append([]float64(nil), b.m.MeanVec().RawVector().Data...))
	v = mat.NewDense(out, in+1, append([]float64(nil), b.v.MeanVec().RawVector().Data...))
	return m, v
}

// basisDense returns U = Q_R ⊗ Q_L of the basis held, in the order of vec.
func (b *SOAPBlock) basisDense() *mat.Dense {
	qa, qb := b.gf.eig[b.cur].Bases()
	na, _ := qa.Dims()
	nb, _ := qb.Dims()
	u := mat.NewDense(na*nb, na*nb, nil)
	u.Kronecker(qa, qb)
	return u
}

func scaledSym(a *mat.Dense, f float64) *mat.SymDense {
	n, _ := a.Dims()
	s := mat.NewSymDense(n, nil)
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			s.SetSym(i, j, f*(a.At(i, j)+a.At(j, i))/2)
		}
	}
	return s
}

func scaled(a *mat.Dense, f float64) *mat.Dense {
	var d mat.Dense
	d.Scale(f, a)
	return &d
}
