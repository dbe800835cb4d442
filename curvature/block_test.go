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

// blockRecord returns a hand-made record (handLayer: random Input, Grad and
// Back, BackExamples a random index) with GradW and GradB filled. Without
// examples the record uses the default layout of Back (BackExamples nil).
func blockRecord(seed uint64, n, in, out, m int, examples bool) *secondorder.Layer {
	l, _ := handLayer(seed, n, in, out, m)
	if !examples {
		l.BackExamples = nil
	}
	l.ComputeParamGrads()
	return l
}

// vecOf returns vec(d), the columns of d stacked.
func vecOf(d mat.Matrix) *mat.VecDense {
	var v mat.VecDense
	kron.Vec(&v, d)
	return &v
}

// unvecOf returns the out × c matrix whose vec is v.
func unvecOf(v mat.Vector, out, c int) *mat.Dense {
	var d mat.Dense
	kron.Unvec(&d, v, out, c)
	return &d
}

// denseSolve returns unvec(a⁻¹ vec(g)) for a dense symmetric a, by LU.
func denseSolve(t *testing.T, a mat.Matrix, g *mat.Dense) *mat.Dense {
	t.Helper()
	out, c := g.Dims()
	var x mat.VecDense
	if err := x.SolveVec(a, vecOf(g)); err != nil {
		t.Fatalf("dense solve: %v", err)
	}
	return unvecOf(&x, out, c)
}

// denseMul returns unvec(a vec(v)).
func denseMul(a mat.Matrix, v *mat.Dense) *mat.Dense {
	out, c := v.Dims()
	var x mat.VecDense
	x.MulVec(a, vecOf(v))
	return unvecOf(&x, out, c)
}

// paramGrad returns the record's [∇W ∇b].
func paramGrad(l *secondorder.Layer) *mat.Dense {
	var g mat.Dense
	l.ParamGrad(&g)
	return &g
}

// addDiag returns a + λI as a new dense matrix.
func addDiag(a mat.Matrix, lambda float64) *mat.Dense {
	d := mat.DenseCopyOf(a)
	n, _ := d.Dims()
	for i := 0; i < n; i++ {
		d.Set(i, i, d.At(i, i)+lambda)
	}
	return d
}

// meanDiag returns tr(a)/P.
func meanDiag(a mat.Matrix) float64 {
	n, _ := a.Dims()
	return mat.Trace(a) / float64(n)
}

// blockCase is a row of the tables on which the blocks are proved against
// dense references: updates records of n examples, n_in inputs, n_out
// outputs and m rows of Back (indexed by BackExamples when examples is set),
// with BackScale backScale, given to a block with Decay decay, refreshed
// with damping λ.
type blockCase struct {
	name          string
	n, in, out, m int
	examples      bool
	backScale     float64
	decay         float64
	updates       int
	lambda        float64
}

// averagedBlockCases are the records of the tests of the blocks that
// average their statistics over Updates (KFACBlock, DiagonalBlock): every
// layout of Back (one row per example, k per example, BackExamples, a τ1
// sub-batch), one and several updates, the default and other decays, and a
// layer wider than the batch.
var averagedBlockCases = []blockCase{
	{"one row per example", 12, 3, 2, 12, false, 0, 0, 1, 0.1},
	{"one update", 12, 4, 3, 12, false, 0, 0, 1, 0.1},
	{"k rows per example", 5, 2, 3, 15, false, 0, 0, 1, 0},
	{"k rows per example, damped", 6, 3, 2, 18, false, 0, 0, 1, 1},
	{"BackExamples", 9, 4, 3, 30, true, 0.05, 0, 1, 1},
	{"BackExamples, fewer rows", 9, 5, 4, 14, true, 0.3, 0, 1, 0.1},
	{"tau1 sub-batch", 12, 3, 4, 5, false, 0.2, 0, 1, 0.1},
	{"tau1 sub-batch, small damping", 12, 4, 3, 5, false, 0.2, 0, 1, 0.01},
	{"averaged", 8, 3, 2, 16, false, 0, 0.5, 3, 0.1},
	{"averaged, warm start", 10, 3, 4, 10, false, 0, 0.5, 3, 0.1},
	{"default decay", 8, 3, 2, 8, true, 0, 0, 4, 0.1},
	{"averaged, default decay", 10, 3, 4, 7, false, 0.1, 0, 4, 1e-3},
	{"wide layer", 8, 30, 20, 8, false, 0, 0, 1, 0.1},
}

// update gives b the case's records, drawn by blockRecord with the seeds
// seed+1, …, seed+updates, and returns the last one. Before each Update it
// calls each (if not nil) with the update's number k and the record, which
// each may alter, and from which it computes its references.
func (tc blockCase) update(b Block, seed uint64, each func(k int, l *secondorder.Layer)) *secondorder.Layer {
	var l *secondorder.Layer
	for k := 1; k <= tc.updates; k++ {
		l = blockRecord(seed+uint64(k), tc.n, tc.in, tc.out, tc.m, tc.examples)
		l.BackScale = tc.backScale
		if each != nil {
			each(k, l)
		}
		b.Update(l)
	}
	return l
}

// blockDecay is the decay the block applies: tc.decay, DefaultDecay for 0.
func (tc blockCase) blockDecay() float64 {
	if tc.decay == 0 {
		return DefaultDecay
	}
	return tc.decay
}

// blend returns the moving average of the symmetric statistics after the
// k-th update x: x itself for k = 1, and ε avg + (1 − ε) x with the warm
// start weight ε = min(1 − 1/k, decay) otherwise (avg and x are
// overwritten).
func blend(avg, x *mat.SymDense, k int, decay float64) *mat.SymDense {
	if k == 1 {
		return x
	}
	eps := min(1-1/float64(k), decay)
	avg.ScaleSym(eps, avg)
	x.ScaleSym(1-eps, x)
	avg.AddSym(avg, x)
	return avg
}

// checkMulScale checks the block's Mul against its dense matrix: into dst,
// unvec(dense vec(v)) within rel relative to the largest entry; in place (v
// overwritten), the same result; and Scale, tr(dense)/P within 1e-13
// relative.
func checkMulScale(t *testing.T, b Block, dst, v *mat.Dense, dense mat.Matrix, rel float64) {
	t.Helper()
	b.Mul(dst, v)
	testutil.EqualApprox(t, "Mul", dst, denseMul(dense, v), 0, rel)
	b.Mul(v, v)
	testutil.EqualApprox(t, "Mul in place", v, dst, 0, 0)
	if w := meanDiag(dense); math.Abs(b.Scale()-w) > 1e-13*w {
		t.Errorf("Scale = %g, want tr/P = %g", b.Scale(), w)
	}
}

// TestBlockContract checks, for every block, the contract of Block that
// does not depend on the approximation: Refresh before Update returns
// ErrNoEstimate; Precondition before a successful Refresh panics; Refresh
// on a singular estimate with λ = 0 returns an error wrapping
// ErrNotPositiveDefinite, keeps the factorization held before (the
// direction is unchanged) and RefreshDamped raises the damping until it
// succeeds, returning the raised value (> 0, a power of 10 times
// RestartDamping·Scale); a shape change between Updates, or a record of another
// shape for Precondition, panics with a "curvature: " message; and in
// steady state Update, SetAlpha (ACP), Refresh, Precondition and Mul
// allocate nothing (testing.AllocsPerRun after a warm-up), on both sides of
// the blocks that have two forms of Precondition — but for one allocation
// inside kron on K-FAC's batch side (see the table).
func TestBlockContract(t *testing.T) {
	// n = 3 examples for n_in = 5 inputs: Ā, C_h, the exact block and (an
	// input column set to zero) the diagonal are singular.
	singular := func() *secondorder.Layer {
		l := blockRecord(40, 3, 5, 2, 3, false)
		for i := 0; i < 3; i++ {
			l.Input.Set(i, 2, 0)
		}
		l.ComputeParamGrads()
		return l
	}
	for _, tc := range []struct {
		name string
		new  func() Block
		path solvePath
		// n, in, out, m of the steady-state record.
		n, in, out, m int
		// allocs is the allowed number of allocations per step.
		allocs float64
	}{
		{"KFAC/gradient", func() Block { return &KFACBlock{} }, pathGradient, 20, 4, 3, 20, 0},
		{"KFAC/batch", func() Block { return &KFACBlock{} }, pathBatch, 20, 4, 3, 20, 0},
		{"ACP/gradient", func() Block { return &ACPBlock{Decay: 0.9} }, pathGradient, 20, 4, 3, 20, 0},
		{"ACP/batch", func() Block { return &ACPBlock{Decay: 0.9} }, pathBatch, 20, 4, 3, 20, 0},
		{"Exact", func() Block { return &ExactBlock{} }, pathAuto, 20, 4, 3, 40, 0},
		{"Diagonal", func() Block { return &DiagonalBlock{} }, pathAuto, 20, 4, 3, 40, 0},
		{"EKFAC/gradient", func() Block { return &EKFACBlock{} }, pathGradient, 20, 4, 3, 20, 0},
		{"EKFAC/batch", func() Block { return &EKFACBlock{} }, pathBatch, 20, 4, 3, 20, 0},
		{"Shampoo", func() Block { return &ShampooBlock{} }, pathAuto, 20, 4, 3, 20, 0},
		{"SOAP", func() Block { return &SOAPBlock{} }, pathAuto, 20, 4, 3, 20, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setPath := func(b Block) Block {
				switch b := b.(type) {
				case *KFACBlock:
					b.path = tc.path
				case *ACPBlock:
					b.path = tc.path
				case *EKFACBlock:
					b.path = tc.path
				}
				return b
			}

			b := setPath(tc.new())
			if err := b.Refresh(1); err != ErrNoEstimate {
				t.Errorf("Refresh before Update: %v, want ErrNoEstimate", err)
			}
			if b.Ready() {
				t.Error("Ready before Update")
			}
			good := blockRecord(41, tc.n, tc.in, tc.out, tc.m, false)
			b.Update(good)
			expectPanic(t, "Precondition before Refresh", func() { b.Precondition(&mat.Dense{}, good) }, "Refresh")

			// Singular estimate: the refresh fails, the held factorization
			// stays; RefreshDamped raises λ.
			s := setPath(tc.new())
			bad := singular()
			s.Update(bad)
			if err := s.Refresh(1); err != nil {
				t.Fatalf("Refresh(1) on the singular estimate: %v", err)
			}
			// A second Update: SOAP's moments start after the first Refresh.
			s.Update(bad)
			var before, after mat.Dense
			s.Precondition(&before, bad)
			err := s.Refresh(0)
			if !errors.Is(err, ErrNotPositiveDefinite) {
				t.Fatalf("Refresh(0) on a singular estimate: %v, want ErrNotPositiveDefinite", err)
			}
			if !s.Ready() {
				t.Fatal("a failed Refresh dropped the factorization held")
			}
			s.Precondition(&after, bad)
			testutil.EqualApprox(t, "direction after a failed Refresh", &after, &before, 0, 0)
			used, err := RefreshDamped(s, 0, kron.Retry{Tries: 30})
			if err != nil || !(used > 0) {
				t.Fatalf("RefreshDamped: used %g, err %v; want a raised damping and no error", used, err)
			}
			steps := math.Log10(used / (RestartDamping * s.Scale()))
			if math.Abs(steps-math.Round(steps)) > 1e-9 {
				t.Errorf("RefreshDamped used %g, not RestartDamping·Scale·10^k (Scale %g)", used, s.Scale())
			}
			// EKFAC's Scale moves by rounding at each Refresh (S is projected).
			if err := s.Refresh(used / 10); used > RestartDamping*s.Scale()*(1+1e-9) && !errors.Is(err, ErrNotPositiveDefinite) {
				t.Errorf("Refresh at a tenth of the raised damping: %v, want ErrNotPositiveDefinite (the raise was needed)", err)
			}

			// Shape changes panic.
			other := blockRecord(42, tc.n, tc.in+1, tc.out, tc.m, false)
			expectPanic(t, "Update of another shape", func() { b.Update(other) }, "block holds the statistics")
			if err := b.Refresh(0.1); err != nil {
				t.Fatal(err)
			}
			expectPanic(t, "Precondition of another shape", func() { b.Precondition(&mat.Dense{}, other) }, "block holds the statistics")
			expectPanic(t, "Mul of another shape", func() { b.Mul(&mat.Dense{}, mat.NewDense(tc.out, tc.in+2, nil)) }, "v is")

			// Steady state: no allocation.
			recs := []*secondorder.Layer{good, blockRecord(43, tc.n, tc.in, tc.out, tc.m, false)}
			dst := mat.NewDense(tc.out, tc.in+1, nil)
			v := testutil.RandDense(newRand(44), tc.out, tc.in+1, 1)
			mv := mat.NewDense(tc.out, tc.in+1, nil)
			k := 0
			step := func() {
				l := recs[k%2]
				k++
				b.Update(l)
				if a, ok := b.(*ACPBlock); ok {
					a.SetAlpha(l)
				}
				if err := b.Refresh(0.1); err != nil {
					panic(err)
				}
				b.Precondition(dst, l)
				b.Mul(mv, v)
			}
			step()
			step()
			// Under the race detector sync.Pool drops items: counts mean nothing.
			if allocs := testing.AllocsPerRun(20, step); allocs > tc.allocs && !testutil.Race {
				t.Errorf("steady state: %v allocations per Update+Refresh+Precondition+Mul, want %v", allocs, tc.allocs)
			}
		})
	}
}

// fakeBlock is a Block whose Refresh succeeds from the damping ok on; it
// records the dampings tried.
type fakeBlock struct {
	ok, scale float64
	empty     bool
	tried     []float64
}

func (f *fakeBlock) Update(*secondorder.Layer)                   {}
func (f *fakeBlock) Scale() float64                              { return f.scale }
func (f *fakeBlock) Ready() bool                                 { return false }
func (f *fakeBlock) Precondition(*mat.Dense, *secondorder.Layer) {}
func (f *fakeBlock) Mul(_, _ *mat.Dense)                         {}
func (f *fakeBlock) Refresh(lambda float64) error {
	if f.empty {
		return ErrNoEstimate
	}
	f.tried = append(f.tried, lambda)
	if lambda >= f.ok {
		return nil
	}
	return &kron.FactorError{Factor: "A", Damping: lambda, Err: ErrNotPositiveDefinite}
}

// TestRefreshDampedRetries checks the retry schedule of RefreshDamped: the
// first attempt at the requested λ; from λ = 0 a restart at RestartDamping·Scale;
// then growth by Retry.Growth (10 by default); at most Retry.Tries attempts
// (10 by default), the last error returned with the last λ tried; no retry
// after success or ErrNoEstimate; a bad policy or damping panics.
func TestRefreshDampedRetries(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ok, scale float64
		lambda    float64
		retry     kron.Retry
		want      []float64 // dampings tried
		fail      bool
	}{
		{"first try", 1, 1, 1, kron.Retry{}, []float64{1}, false},
		{"growth 10", 1000, 1, 1, kron.Retry{}, []float64{1, 10, 100, 1000}, false},
		{"growth 2", 5, 1, 1, kron.Retry{Growth: 2}, []float64{1, 2, 4, 8}, false},
		{"from zero", 2e-2, 2, 0, kron.Retry{}, []float64{0, 2e-4, 2e-3, 2e-2}, false},
		{"tries 3", 1e6, 1, 1, kron.Retry{Tries: 3}, []float64{1, 10, 100}, true},
		{"default 10 tries", math.Inf(1), 1, 1, kron.Retry{}, []float64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}, true},
		{"one try", 2, 1, 1, kron.Retry{Tries: 1}, []float64{1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeBlock{ok: tc.ok, scale: tc.scale}
			used, err := RefreshDamped(f, tc.lambda, tc.retry)
			if len(f.tried) != len(tc.want) {
				t.Fatalf("tried %v, want %v", f.tried, tc.want)
			}
			for i, w := range tc.want {
				if math.Abs(f.tried[i]-w) > 1e-12*w {
					t.Fatalf("tried %v, want %v", f.tried, tc.want)
				}
			}
			if last := tc.want[len(tc.want)-1]; used != f.tried[len(f.tried)-1] || math.Abs(used-last) > 1e-12*last {
				t.Errorf("used %g, want %g", used, last)
			}
			if tc.fail != (err != nil) || (tc.fail && !errors.Is(err, ErrNotPositiveDefinite)) {
				t.Errorf("err %v, want failure %v wrapping ErrNotPositiveDefinite", err, tc.fail)
			}
		})
	}
	f := &fakeBlock{empty: true}
	if used, err := RefreshDamped(f, 0.5, kron.Retry{}); err != ErrNoEstimate || used != 0.5 {
		t.Errorf("empty block: %g, %v; want 0.5, ErrNoEstimate", used, err)
	}
	expectPanic(t, "negative damping", func() { _, _ = RefreshDamped(&fakeBlock{}, -1, kron.Retry{}) }, "damping -1")
	expectPanic(t, "growth 1", func() { _, _ = RefreshDamped(&fakeBlock{}, 1, kron.Retry{Growth: 1}) }, "Growth > 1")
}
