package curvature

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/state"
	"github.com/secondorder/secondorder/kron"
)

// KFACBlock is the K-FAC curvature block of one affine layer (Martens &
// Grosse 2015; thesis §3.5.1), owning its factor statistics:
//
//	C ≈ Ā ⊗ G,   Ā = E[h̃ h̃ᵀ] ((n_in+1)², h̃ = (h, 1)),   G = E[g gᵀ] (n_out²),
//
// in the order of θ = [vec(W); b]. Each Update estimates
//
//	Ā_k = (1/m_A) Σ_{i<m_A} h̃_i h̃_iᵀ   (InputFactor, on the first m_A = Layer.BackCover() rows of Input),
//	G_k = s Backᵀ Back                (OutputFactor, s = Layer.BackScaleOrDefault()),
//
// so that both factors see the same examples (Martens & Grosse's τ1
// sub-batch when Back has fewer rows than Input; the record's BackScale must
// then be 1/m, zero meaning 1/n), and folds them into moving averages
// (MovingAverage) with Martens & Grosse's warm-started weight
// ε_k = min(1 − 1/k, Decay) on the old value.
//
// Refresh(λ) factorizes, by Cholesky, the factored Tikhonov damping of
// Martens & Grosse §6.3 (kron.FactoredTikhonov, trace-norm π, one attempt):
//
//	(Ā⊗G + λI)⁻¹ ≈ (Ā + π√λ I)⁻¹ ⊗ (G + (√λ/π) I)⁻¹,   π = sqrt((tr Ā/(n_in+1)) / (tr G/n_out)),
//
// and Precondition applies it to the layer's gradient,
//
//	U = G_d⁻¹ [∇W ∇b] Ā_d⁻¹,   G_d = G + (√λ/π) I,   Ā_d = Ā + π√λ I,
//
// on the batch side, U = (1/n) (Grad G_d⁻¹)ᵀ ([H 1] Ā_d⁻¹)
// (kron.FactoredTikhonov.SolveOuter), when the record has Grad and Input
// with n rows and that is cheaper (UseOuter), else on the gradient side.
//
// Cost per layer, with n_A = n_in+1, n_G = n_out, m_A rows of Input and m
// rows of Back: Update m_A n_A² + m n_G² flops (two syrk) and O(n_A² + n_G²)
// for the averages; Refresh (n_A³ + n_G³)/3 flops; Precondition
// 2 n_G n_A (n_A + n_G) flops on the gradient side, 2n(n_A² + n_G² + n_A n_G)
// on the batch side; Mul 2 n_G n_A (n_A + n_G). Memory: the estimates, their
// averages and two factorizations (the one held and the one being
// attempted), 4 (n_A² + n_G²) floats, and buffers of n_G n_A and n (n_A + n_G).
// It implements Staged (Begin, Rollback, as the optimizers of package optim
// use it to undo a refused step) by keeping two copies of the averages,
// the second allocated at the first Update after a Begin, and the two
// factorizations: 5 (n_A² + n_G²) floats in all (a third factorization is
// allocated only if two Refreshes succeed between a Begin and a Rollback).
// After the first call of each method at a given batch size, no method
// allocates.
//
// The zero value is ready to use (Decay DefaultDecay); its shapes are fixed
// by the first Update. It is not safe for concurrent use.
//
// It implements encoding.BinaryMarshaler and encoding.BinaryUnmarshaler
// for checkpoints that resume exactly (kind "curvature.KFACBlock"):
// MarshalBinary saves its settings and state, the factorization held
// included, UnmarshalBinary restores them into a KFACBlock of the same
// settings.
type KFACBlock struct {
	// Decay is ε of the moving averages of Ā and G, in [0, 1). Zero means
	// DefaultDecay (0.95, Martens & Grosse 2015, §5).
	Decay float64

	blockBase  // shape, factorization held, damping
	aEst, gEst mat.SymDense
	estimated  bool         // an Estimate awaits its Fold
	parts      [2]Statistic // Estimate's views of aEst and gEst
	aAvg, gAvg MovingAverage
	ft         [3]kron.FactoredTikhonov // ft[cur] is held, ft[spare(cur)] is for the next attempt
	cur        int
	gl, hl     mat.Dense // Grad and [H 1], overwritten by the batch-side solve
	work       []float64 // G v in Mul
	path       solvePath
}

// Update folds the factor estimates Ā and G of the record (Input and Back,
// BackScale, BackExamples) into the moving averages: Estimate, then Fold.
// It panics, with a message prefixed "curvature: ", when the record lacks
// Input or Back or the layer's shape differs from that of the first Update.
func (b *KFACBlock) Update(l *secondorder.Layer) {
	b.Estimate(l)
	b.Fold()
}

// Estimate computes the factor estimates Ā_k and G_k of the record without
// folding them in (Sharded), and returns them, the upper triangles of
// (n_in+1)² and n_out² symmetric matrices, with the number of examples
// they average, m_A = Layer.BackCover(). It panics as Update does.
func (b *KFACBlock) Estimate(l *secondorder.Layer) (parts []Statistic, examples int) {
	const op = "KFACBlock.Update"
	checkLayer(l, op, true, false, true)
	out, in := b.dims.fix(l, op)
	cover := l.BackCover()
	if cover == 0 {
		panic("curvature: KFACBlock.Update: Back covers no example")
	}
	if b.aEst.IsEmpty() {
		b.aEst.ReuseAsSym(in + 1)
		b.gEst.ReuseAsSym(out)
	}
	h := l.Input.RawMatrix()
	h.Rows = cover
	inputFactor(&b.aEst, h)
	OutputFactor(&b.gEst, l)
	b.estimated = true
	b.parts[0], b.parts[1] = symStat(b.aEst.RawSymmetric()), symStat(b.gEst.RawSymmetric())
	return b.parts[:], cover
}

// Fold folds the estimates of the last Estimate into the moving averages
// (Sharded).
func (b *KFACBlock) Fold() {
	pendingFold(&b.estimated, "KFACBlock")
	b.aAvg.Decay, b.gAvg.Decay = b.Decay, b.Decay
	b.aAvg.Add(&b.aEst)
	b.gAvg.Add(&b.gEst)
}

// Scale returns the mean eigenvalue of Ā⊗G,
//
//	tr(Ā⊗G)/P = (tr Ā/(n_in+1)) · (tr G/n_out),
//
// or 1 before the first Update or when it is not positive and finite.
func (b *KFACBlock) Scale() float64 {
	if b.aAvg.Count() == 0 {
		return 1
	}
	out, in := b.dims.out, b.dims.in
	return positiveOr1(mat.Trace(b.aAvg.Mean()) / float64(in+1) * mat.Trace(b.gAvg.Mean()) / float64(out))
}

// Refresh factorizes the damped factors Ā + π√λ I and G + (√λ/π) I of the
// current averages (kron.FactoredTikhonov, trace-norm π, a single attempt).
// It returns ErrNoEstimate before the first Update, and an error wrapping
// ErrNotPositiveDefinite (a *kron.FactorError naming the factor) when a
// damped factor is not positive definite; the factorization held before is
// then kept. Cost: (n_A³ + n_G³)/3 flops.
func (b *KFACBlock) Refresh(lambda float64) error {
	checkBlockDamping(lambda, "KFACBlock.Refresh")
	if b.aAvg.Count() == 0 {
		return ErrNoEstimate
	}
	i := b.spare(b.cur)
	next := &b.ft[i]
	next.Retry = kron.Retry{Tries: 1}
	if err := next.Factorize(b.aAvg.Mean(), b.gAvg.Mean(), lambda); err != nil {
		return fmt.Errorf("curvature: KFACBlock.Refresh: %w", err)
	}
	b.cur = i
	b.hold(lambda)
	return nil
}

// Begin marks the current state as the one Rollback returns to (Staged):
// the moving averages' and the factorization's.
func (b *KFACBlock) Begin() {
	b.begin(b.cur)
	b.aAvg.Begin()
	b.gAvg.Begin()
}

// Rollback returns b to its state at the last Begin, bit for bit: the
// moving averages, their counts, the factorization held and its damping,
// the shape. Without a Begin since the last Rollback or UnmarshalBinary it
// does nothing.
func (b *KFACBlock) Rollback() {
	cur, ok := b.rollback()
	if !ok {
		return
	}
	b.cur = cur
	b.aAvg.Rollback()
	b.gAvg.Rollback()
}

// Pi returns the π of the factorization held, sqrt((tr Ā/(n_in+1)) /
// (tr G/n_out)) of the averages at that Refresh (1 when a trace was not
// positive), or 0 before the first successful Refresh.
func (b *KFACBlock) Pi() float64 {
	if !b.ready {
		return 0
	}
	return b.ft[b.cur].Pi()
}

// Factors returns the current moving averages Ā ((n_in+1)²) and G
// (n_out²), owned by b and valid until the next Update; nil before the
// first Update.
func (b *KFACBlock) Factors() (a, g *mat.SymDense) {
	return b.aAvg.Mean(), b.gAvg.Mean()
}

// Precondition writes into dst (n_out × (n_in+1); an empty dst is resized)
// the K-FAC direction G_d⁻¹ [∇W ∇b] Ā_d⁻¹ of the factorization held, for the
// record's gradient: as (1/n) (Grad G_d⁻¹)ᵀ ([H 1] Ā_d⁻¹) when Grad and
// Input have the same n rows and kron.FactoredTikhonov.UseOuter(n) says it
// is cheaper, otherwise from GradW and GradB. It panics before a successful
// Refresh or for a record of another shape.
func (b *KFACBlock) Precondition(dst *mat.Dense, l *secondorder.Layer) {
	out, in := b.startPrecondition(dst, l, "KFACBlock.Precondition")
	ft := &b.ft[b.cur]
	if n, ok := batchRows(l); ok && b.path != pathGradient && (b.path == pathBatch || ft.UseOuter(n)) {
		// L = Grad/n (the scale folded into the copy, so that SolveOuter
		// does not rescale dst in place), R = [H 1].
		reuseWork(&b.gl, n, out)
		b.gl.Scale(1/float64(n), l.Grad)
		reuseWork(&b.hl, n, in+1)
		augmentRows(b.hl.RawMatrix(), l.Input.RawMatrix())
		ft.SolveOuter(dst, 1, &b.gl, &b.hl)
		return
	}
	l.ParamGrad(dst)
	ft.Solve(dst, dst)
}

// Mul writes dst = unvec((Ā⊗G) vec(v)) = G v Ā for a direction v
// (n_out × (n_in+1)), with the current averages and no damping. An empty
// dst is resized; dst may be v. Cost: 2 n_G n_A (n_A + n_G) flops.
func (b *KFACBlock) Mul(dst, v *mat.Dense) {
	out, in := b.startMul(dst, v, b.aAvg.Count() > 0, "KFACBlock.Mul")
	w := general(out, in+1, growFloats(&b.work, out*(in+1)))
	blas64.Symm(blas.Left, 1, b.gAvg.Mean().RawSymmetric(), v.RawMatrix(), 0, w)
	blas64.Symm(blas.Right, 1, b.aAvg.Mean().RawSymmetric(), w, 0, dst.RawMatrix())
}

// MarshalBinary returns a checkpoint of b (encoding.BinaryMarshaler), of
// kind "curvature.KFACBlock": its Decay (DefaultDecay for zero), its shape,
// whether a factorization is held and its λ, the moving averages of Ā and
// G with their counts, and the factorization held (a nested
// kron.FactoredTikhonov: π, λ and the Cholesky factors of the damped Ā and
// G of the last successful Refresh, bit for bit). A block that never saw a
// record has a checkpoint too. It returns an error, prefixed
// "curvature: KFACBlock: ", for a Decay outside [0, 1).
func (b *KFACBlock) MarshalBinary() ([]byte, error) {
	if err := checkDecay(b.Decay, "KFACBlock"); err != nil {
		return nil, err
	}
	var ft []byte
	if b.ready {
		var err error
		if ft, err = b.ft[b.cur].MarshalBinary(); err != nil {
			return nil, fmt.Errorf("curvature: KFACBlock: %w", err)
		}
	}
	n := 8 + baseLen + b.aAvg.stateLen() + b.gAvg.stateLen()
	if b.ready {
		n += 8 + len(ft)
	}
	return encodeBlock("KFACBlock", n, func(w *state.Writer) {
		w.Float(orDefaultDecay(b.Decay))
		b.blockBase.writeState(w)
		b.aAvg.writeState(w)
		b.gAvg.writeState(w)
		if b.ready {
			w.Bytes(ft)
		}
	}), nil
}

// UnmarshalBinary restores into b (encoding.BinaryUnmarshaler) a
// checkpoint written by MarshalBinary, so that Scale, Ready, Pi, Damping,
// Factors, Precondition and Mul, and the results of later Updates and
// Refreshes, are those of the saved block bit for bit. The Decay of b must
// be set first as that of the saved block: an error, prefixed
// "curvature: KFACBlock: ", names it when it differs after defaults
// ("checkpoint has Decay=0.9, this block Decay=0.95"). Data that is not a
// valid checkpoint of KFACBlock (truncated, altered, of another type, with
// a shape that is not positive, averages or factors whose sizes are not
// those of the shape, a damping that is not finite and ≥ 0) gives an error
// with that prefix wrapping ErrCorruptCheckpoint, and a Decay outside
// [0, 1) the error of MarshalBinary. On any error b is left unchanged.
func (b *KFACBlock) UnmarshalBinary(data []byte) error {
	if err := checkDecay(b.Decay, "KFACBlock"); err != nil {
		return err
	}
	var (
		base       blockBase
		aAvg, gAvg MovingAverage
		ft         = kron.FactoredTikhonov{Retry: kron.Retry{Tries: 1}}
	)
	err := decodeBlock(data, "KFACBlock", func(r *state.Reader) error {
		if err := readSetting(r, "block", "Decay", orDefaultDecay(b.Decay)); err != nil {
			return err
		}
		base = readBlockBase(r)
		na, ng := -1, -1
		if base.dims.set {
			na, ng = base.dims.in+1, base.dims.out
		}
		aAvg = readMovingAverage(r, b.Decay, matrixEstimates, na, "average of Ā")
		gAvg = readMovingAverage(r, b.Decay, matrixEstimates, ng, "average of G")
		if r.Err() != nil {
			return nil
		}
		if aAvg.k != gAvg.k || (aAvg.k > 0 && !base.dims.set) || (base.ready && aAvg.k == 0) {
			r.Fail("averages of %d and %d estimates for a shape fixed %t, ready %t", aAvg.k, gAvg.k, base.dims.set, base.ready)
			return nil
		}
		if base.ready {
			readNested(r, &ft, "factorization")
			if r.Err() != nil {
				return nil
			}
			if fa, fg := ft.Dims(); fa != na || fg != ng || ft.Damping() != base.lambda {
				r.Fail("factorization of %d×%d factors and damping %g for a %d×%d layer and damping %g", fa, fg, ft.Damping(), base.dims.out, base.dims.in, base.lambda)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	*b = KFACBlock{Decay: b.Decay, blockBase: base, aAvg: aAvg, gAvg: gAvg, path: b.path}
	b.ft[0] = ft
	return nil
}
