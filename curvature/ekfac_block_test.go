package curvature

import (
	"fmt"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/testutil"
)

// ekfacDense returns the P×P matrix of b's estimate, built column by column
// from Mul on the unit directions.
func ekfacDense(b *EKFACBlock, out, in int) *mat.Dense {
	p := out * (in + 1)
	d := mat.NewDense(p, p, nil)
	e := mat.NewVecDense(p, nil)
	var col mat.Dense
	for j := 0; j < p; j++ {
		e.Zero()
		e.SetVec(j, 1)
		b.Mul(&col, unvecOf(e, out, in+1))
		d.SetCol(j, vecOf(&col).RawVector().Data)
	}
	return d
}

// basisDense returns U = Q_A ⊗ Q_G of the basis b holds.
func basisDense(b *EKFACBlock) *mat.Dense {
	qa, qg := b.eig[b.cur].Bases()
	na, _ := qa.Dims()
	ng, _ := qg.Dims()
	u := mat.NewDense(na*ng, na*ng, nil)
	u.Kronecker(qa, qg)
	return u
}

// TestEKFACBlockIsKFACAtFirstRefresh: at its first Refresh the scaling is
// K-FAC's λ_G λ_Aᵀ, so the block is Ā⊗G (Mul against DenseKFAC) and its
// direction is the exact Tikhonov-damped K-FAC solve (Ā⊗G + λI)⁻¹ vec ∇
// (against a dense solve), tolerance 1e-10 relative, from [∇W ∇b] and on
// the batch side from Grad and Input, on every record layout of the
// averaged blocks' cases.
func TestEKFACBlockIsKFACAtFirstRefresh(t *testing.T) {
	for ci, tc := range averagedBlockCases {
		t.Run(tc.name, func(t *testing.T) {
			b := &EKFACBlock{Decay: tc.decay}
			l := tc.update(b, uint64(600+10*ci), nil)
			lambda := tc.lambda
			if lambda == 0 {
				lambda = 1e-3
			}
			if err := b.Refresh(lambda); err != nil {
				t.Fatal(err)
			}
			a, g := b.Factors()
			var kf mat.SymDense
			DenseKFAC(&kf, a, g)
			want := denseSolve(t, addDiag(&kf, lambda), paramGrad(l))
			for _, path := range []solvePath{pathGradient, pathBatch} {
				b.path = path
				var got mat.Dense
				b.Precondition(&got, l)
				testutil.EqualApprox(t, fmt.Sprintf("direction (path %d)", path), &got, want, 1e-12, 1e-10)
			}
			checkMulScale(t, b, &mat.Dense{}, testutil.RandDense(newRand(7), tc.out, tc.in+1, 1), &kf, 1e-10)
		})
	}
}

// TestEKFACBlockProjection proves George et al.'s (2018) central property:
// Project gives diag(Uᵀ B U) for the record's exact block B (DenseBlock) and
// the held basis U = Q_A ⊗ Q_G (tolerance 1e-12 relative to max|S|), the
// Frobenius-optimal eigenvalues for that basis, so that after an Update
// whose average keeps only the new record (Decay 1e-300) the block is
// U diag(vec S) Uᵀ with that S, and its Frobenius distance to B is below
// K-FAC's: strictly on records of several examples, where neither is exact
// (both relative distances above 1e-3), and both are exact (1e-12) on a
// record of one example, whose block is the Kronecker product of its
// factors and so has that eigenbasis.
func TestEKFACBlockProjection(t *testing.T) {
	for _, tc := range []struct {
		name     string
		n, m     int
		examples bool
		exact    bool
	}{
		{"one example", 1, 3, false, true},
		{"several examples", 10, 10, false, false},
		{"k rows per example", 6, 18, false, false},
		{"BackExamples", 8, 20, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const in, out = 3, 2
			l := blockRecord(70, tc.n, in, out, tc.m, tc.examples)
			b := &EKFACBlock{Decay: 1e-300}
			b.Update(l)
			if err := b.Refresh(0.1); err != nil {
				t.Fatal(err)
			}
			var bl mat.SymDense
			DenseBlock(&bl, l)
			u := basisDense(b)
			var rot mat.Dense
			rot.Mul(u.T(), &bl)
			rot.Mul(&rot, u)
			p := out * (in + 1)
			want := mat.NewVecDense(p, nil)
			for i := 0; i < p; i++ {
				want.SetVec(i, rot.At(i, i))
			}
			var s mat.Dense
			b.Project(&s, l)
			testutil.EqualApprox(t, "Project vs diag(UᵀBU)", vecOf(&s), want, 1e-12*mat.Norm(want, 1), 0)

			// Keep only the new record's S.
			kfac := ekfacDense(b, out, in)
			b.Update(l)
			var avg mat.Dense
			b.Scaling(&avg)
			testutil.EqualApprox(t, "Scaling after an Update", &avg, &s, 1e-12*mat.Norm(want, 1), 0)
			ek := ekfacDense(b, out, in)
			dk, de := testutil.RelDiff(kfac, &bl), testutil.RelDiff(ek, &bl)
			if tc.exact {
				if dk > 1e-12 || de > 1e-12 {
					t.Errorf("one example: K-FAC %g and EKFAC %g from the exact block, want 0", dk, de)
				}
				return
			}
			if !(de < dk) || de < 1e-3 {
				t.Errorf("EKFAC %g, K-FAC %g from the exact block; want EKFAC closer, and not exact", de, dk)
			}
		})
	}
}

// TestEKFACBlockRefreshProjects: a Refresh carries the average of S into
// the new basis U' as diag(U'ᵀ M U'), M the block's matrix before it (from
// Mul), tolerance 1e-12 relative, and the block keeps its scale there
// (tr M = Σ S' since U' is orthogonal).
func TestEKFACBlockRefreshProjects(t *testing.T) {
	const in, out = 4, 3
	b := &EKFACBlock{Decay: 0.5}
	b.Update(blockRecord(80, 9, in, out, 9, false))
	if err := b.Refresh(0.1); err != nil {
		t.Fatal(err)
	}
	for k := 0; k < 3; k++ {
		b.Update(blockRecord(uint64(81+k), 9, in, out, 9, false))
	}
	m := ekfacDense(b, out, in)
	if err := b.Refresh(0.1); err != nil {
		t.Fatal(err)
	}
	u := basisDense(b)
	var rot mat.Dense
	rot.Mul(u.T(), m)
	rot.Mul(&rot, u)
	p := out * (in + 1)
	want := mat.NewVecDense(p, nil)
	for i := 0; i < p; i++ {
		want.SetVec(i, rot.At(i, i))
	}
	var s mat.Dense
	b.Scaling(&s)
	testutil.EqualApprox(t, "S after Refresh vs diag(U'ᵀMU')", vecOf(&s), want, 1e-12*mat.Norm(want, 1), 0)
	if got, tr := b.Scale()*float64(p), mat.Trace(m); !(abs(got-tr) <= 1e-12*tr) {
		t.Errorf("P·Scale = %g after the Refresh, trace before %g", got, tr)
	}
}

// TestEKFACBlockPanics: Project and Scaling before a Refresh, and records
// of another shape, panic with "curvature: ".
func TestEKFACBlockPanics(t *testing.T) {
	var b EKFACBlock
	l := blockRecord(90, 5, 3, 2, 5, false)
	expectPanic(t, "Mul before Update", func() { b.Mul(&mat.Dense{}, mat.NewDense(2, 4, nil)) }, "Update")
	b.Update(l)
	expectPanic(t, "Project before Refresh", func() { b.Project(&mat.Dense{}, l) }, "Refresh")
	expectPanic(t, "Scaling before Refresh", func() { b.Scaling(&mat.Dense{}) }, "Refresh")
	if err := b.Refresh(0.1); err != nil {
		t.Fatal(err)
	}
	other := blockRecord(91, 5, 4, 2, 5, false)
	expectPanic(t, "Project of another shape", func() { b.Project(&mat.Dense{}, other) }, fmt.Sprintf("%d×%d", 2, 4))
	noBack := &secondorder.Layer{W: l.W, B: l.B, Input: l.Input}
	expectPanic(t, "Update without Back", func() { b.Update(noBack) }, "Back")
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
