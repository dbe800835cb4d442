package curvature

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/state"
	"github.com/secondorder/secondorder/kron"
)

// EKFACBlock is the eigenvalue-corrected K-FAC block of George, Laurent,
// Bouthillier, Ballas & Vincent (2018), "Fast approximate natural gradient
// descent in a Kronecker-factored eigenbasis": it keeps the eigenbasis of
// K-FAC's Ā ⊗ G and re-estimates the curvature along each of its
// directions. With Ā = Q_A Λ_A Q_Aᵀ, G = Q_G Λ_G Q_Gᵀ and U = Q_A ⊗ Q_G,
//
//	C ≈ U diag(vec S) Uᵀ,   S_(o,c) = E[((Q_Gᵀ g)_o (Q_Aᵀ h̃)_c)²],
//
// the second moments of the per-example gradients in that basis (n_out ×
// (n_in+1), row o, column c). Among the matrices with eigenbasis U, this S
// is the one closest to the layer's block B in Frobenius norm,
// S = diag(Uᵀ B U) (George et al., §3.1): K-FAC is the member of the family
// with S = λ_G λ_Aᵀ, so EKFAC is never farther from B than K-FAC, and it
// equals B when B is a Kronecker product with that eigenbasis.
//
// Update folds the record's factors into the moving averages of Ā and G
// (as KFACBlock) and, once a basis is held, the record's S (Project: the
// rows of Back and of [H 1] rotated by Q_G and Q_A, then DiagonalBlock's
// squared sum) into a moving average of S: the cheap, frequent part.
// Refresh(λ) eigendecomposes the current Ā and G (kron.EigenKron), the
// rare, expensive part, and carries S into the new basis: at the first
// Refresh S starts as K-FAC's λ_G λ_Aᵀ, later the average is projected,
// S' = (R_G∘R_G) S (R_A∘R_A)ᵀ with R = Q'ᵀ Q, the diagonal of the old
// approximation in the new basis, so that no statistic is lost. Precondition
// applies (U diag(vec S + λ) Uᵀ)⁻¹ to [∇W ∇b] with the current S and the
// λ of the last Refresh (kron.EigenKron.SolveScaled); damping is added to
// S, as Tikhonov damping of C.
//
// Cost per layer, with n_A = n_in+1, n_G = n_out, m_A rows of Input and m
// of Back: Update K-FAC's two syrk plus the rotations, 2(m_A n_A² + m n_G²)
// flops, and the squared sum, 2 m_A n_G n_A; Refresh two symmetric
// eigendecompositions (several times a Cholesky factorization) and the
// projection, 2(n_A³ + n_G³) + 2 n_G n_A (n_A + n_G); Precondition and Mul
// four products, 4 n_G n_A (n_A + n_G) flops. Memory: KFACBlock's averages,
// up to three eigenbases (the one held, the one attempted and, within a
// stage, the one held at Begin), 3(n_A² + n_G²) floats, and the averages of
// S, 3 n_G n_A with the staging copy. It implements Staged.
//
// The zero value is ready to use (Decay DefaultDecay, for the factors and
// for S); its shapes are fixed by the first Update. It is not safe for
// concurrent use.
//
// It implements encoding.BinaryMarshaler and encoding.BinaryUnmarshaler
// for checkpoints that resume exactly (kind "curvature.EKFACBlock").
type EKFACBlock struct {
	// Decay is ε of the moving averages of Ā, G and S, in [0, 1). Zero
	// means DefaultDecay (0.95, Martens & Grosse 2015, §5).
	Decay float64

	blockBase           // shape, basis held, damping
	kf        KFACBlock // the factors' averages (never refreshed)
	eig       [3]kron.EigenKron
	cur       int           // eig[cur] is held
	s         MovingAverage // S in the basis held, row-major n_out × n_A
	sEst      mat.VecDense
	parts     []Statistic // Estimate's views
	scaled    bool        // Estimate estimated S
	sm        mat.Dense   // S as a matrix (view of s's mean or of sEst)
	hl, hr    mat.Dense   // [H 1] and [H 1] Q_A, m_A × n_A
	br        mat.Dense   // Back Q_G, m × n_G
	ra, rg    mat.Dense   // Q'ᵀ Q of a Refresh
	work      mat.Dense
	hs, q     []float64
	path      solvePath
}

// Update folds the record's factors and, once a basis is held, its scaling
// S in that basis into the moving averages. It panics, with a message
// prefixed "curvature: ", when the record lacks Input or Back or the
// layer's shape differs from that of the first Update.
func (b *EKFACBlock) Update(l *secondorder.Layer) {
	b.Estimate(l)
	b.Fold()
}

// Estimate computes the record's estimates of Ā and G and, once a basis is
// held, of the scaling S (n_out·(n_in+1), row-major), without folding them
// in (Sharded), and returns them with the number of examples they average,
// m_A = Layer.BackCover(). It panics as Update does.
func (b *EKFACBlock) Estimate(l *secondorder.Layer) (parts []Statistic, examples int) {
	const op = "EKFACBlock.Update"
	checkLayer(l, op, true, false, true)
	b.dims.fix(l, op)
	if l.BackCover() == 0 {
		panic("curvature: " + op + ": Back covers no example")
	}
	kp, m := b.kf.Estimate(l)
	b.parts = append(b.parts[:0], kp...)
	b.scaled = b.ready
	if b.scaled {
		b.project(&b.sEst, l, &b.eig[b.cur])
		b.parts = append(b.parts, vecStat(b.sEst.RawVector().Data))
	}
	return b.parts, m
}

// Fold folds the estimates of the last Estimate into the averages
// (Sharded).
func (b *EKFACBlock) Fold() {
	if !b.kf.estimated {
		panic("curvature: EKFACBlock.Fold: no Estimate to fold")
	}
	b.kf.Decay = b.Decay
	b.kf.Fold()
	if b.scaled {
		b.s.Decay = b.Decay
		b.s.AddVec(&b.sEst)
	}
}

// Project writes into dst (n_out × (n_in+1); an empty dst is resized) the
// scaling S of the record's own block B in the basis held,
// S = diag(Uᵀ B U) in matrix form: the Frobenius-optimal eigenvalues of B
// for that basis. It panics before a successful Refresh, or for a record
// without Input and Back or of another shape.
func (b *EKFACBlock) Project(dst *mat.Dense, l *secondorder.Layer) {
	const op = "EKFACBlock.Project"
	if !b.ready {
		panic("curvature: " + op + ": no basis (call Refresh first)")
	}
	checkLayer(l, op, true, false, true)
	out, in := b.dims.check(l, op)
	reuseDir(dst, out, in, op)
	var v mat.VecDense
	b.project(&v, l, &b.eig[b.cur])
	raw := dst.RawMatrix()
	for o := 0; o < out; o++ {
		copy(raw.Data[o*raw.Stride:o*raw.Stride+in+1], v.RawVector().Data[o*(in+1):(o+1)*(in+1)])
	}
}

// project writes the record's S in the basis of e into dst (row-major
// n_out × n_A).
func (b *EKFACBlock) project(dst *mat.VecDense, l *secondorder.Layer, e *kron.EigenKron) {
	out, in := b.dims.out, b.dims.in
	cover := l.BackCover()
	qa, qg := e.Bases()
	h := l.Input.RawMatrix()
	h.Rows = cover
	reuseWork(&b.hl, cover, in+1)
	augmentRows(b.hl.RawMatrix(), h)
	reuseWork(&b.hr, cover, in+1)
	b.hr.Mul(&b.hl, qa)
	m, _ := l.Back.Dims()
	reuseWork(&b.br, m, out)
	b.br.Mul(l.Back, qg)
	hs := growFloats(&b.hs, cover*(in+1))
	hr := b.hr.RawMatrix()
	for i := 0; i < cover; i++ {
		for c, v := range hr.Data[i*hr.Stride : i*hr.Stride+in+1] {
			hs[i*(in+1)+c] = v * v
		}
	}
	if dst.IsEmpty() {
		dst.ReuseAsVec(out * (in + 1))
	}
	squaredSum(dst.RawVector().Data, &b.q, b.br.RawMatrix(), hs, l, cover, in+1)
}

// Scale returns the mean eigenvalue tr(C)/P, the mean of S once a basis is
// held (K-FAC's before), or 1 when it is not positive and finite.
func (b *EKFACBlock) Scale() float64 {
	if b.s.Count() == 0 {
		return b.kf.Scale()
	}
	d := b.s.MeanVec().RawVector().Data
	sum := 0.0
	for _, v := range d {
		sum += v
	}
	return positiveOr1(sum / float64(len(d)))
}

// Refresh eigendecomposes the current averages of Ā and G and carries the
// scaling S into the new basis (K-FAC's λ_G λ_Aᵀ at the first Refresh, the
// projection of the average after). It returns ErrNoEstimate before the
// first Update, an error wrapping kron's eigendecomposition errors, and one
// wrapping ErrNotPositiveDefinite when S + λ is singular to working
// precision (its smallest entry at most P·ε times its largest, as with λ = 0
// and a zero in S); the basis and S held before are then kept.
func (b *EKFACBlock) Refresh(lambda float64) error {
	const op = "EKFACBlock.Refresh"
	checkBlockDamping(lambda, op)
	a, g := b.kf.Factors()
	if a == nil {
		return ErrNoEstimate
	}
	i := b.spare(b.cur)
	next := &b.eig[i]
	if err := next.Factorize(a, g); err != nil {
		return fmt.Errorf("curvature: %s: %w", op, err)
	}
	out, in := b.dims.out, b.dims.in
	if b.sEst.IsEmpty() {
		b.sEst.ReuseAsVec(out * (in + 1))
	}
	sn := b.sEst.RawVector().Data
	if b.s.Count() == 0 {
		la, lg := next.Values()
		for o, vg := range lg {
			for c, va := range la {
				sn[o*(in+1)+c] = vg * va
			}
		}
	} else {
		projectScaling(sn, b.s.MeanVec().RawVector().Data, next, &b.eig[b.cur], &b.ra, &b.rg, &b.work)
	}
	// As for a factorization, S + λ must be positive beyond rounding: the
	// projection turns the zeros of a singular S into values of order
	// ε² max S, whose inverses would make the direction explode.
	if ok, low, high := positiveBeyondRounding(sn, lambda); !ok {
		return fmt.Errorf("curvature: %s: scaling from %g to %g with damping %g: %w", op, low, high, lambda, ErrNotPositiveDefinite)
	}
	b.commit(i, lambda)
	return nil
}

// commit makes the scaling in sEst, carried into basis i, the block's S
// (the first estimate, or in place of the average) and basis i the one
// held, with damping λ: the end of a successful Refresh or InstallRefresh.
func (b *EKFACBlock) commit(i int, lambda float64) {
	b.s.Decay = b.Decay
	if b.s.Count() == 0 {
		b.s.AddVec(&b.sEst)
	} else {
		b.s.ReplaceVec(&b.sEst)
	}
	b.cur = i
	b.hold(lambda)
}

// square replaces every entry of m by its square.
func square(m *mat.Dense) {
	raw := m.RawMatrix()
	for i := 0; i < raw.Rows; i++ {
		row := raw.Data[i*raw.Stride : i*raw.Stride+raw.Cols]
		for j, v := range row {
			row[j] = v * v
		}
	}
}

// Begin marks the current state as the one Rollback returns to (Staged).
func (b *EKFACBlock) Begin() {
	b.begin(b.cur)
	b.kf.Begin()
	b.s.Begin()
}

// Rollback returns b to its state at the last Begin: the factors'
// averages, the basis held, S and its count, the damping.
func (b *EKFACBlock) Rollback() {
	cur, ok := b.rollback()
	if !ok {
		return
	}
	b.cur = cur
	b.kf.Rollback()
	b.s.Rollback()
}

// Factors returns the current moving averages Ā and G, owned by b and
// valid until the next Update; nil before the first Update.
func (b *EKFACBlock) Factors() (a, g *mat.SymDense) { return b.kf.Factors() }

// Scaling writes the current average of S (n_out × (n_in+1)) into dst (an
// empty dst is resized). It panics before the first successful Refresh.
func (b *EKFACBlock) Scaling(dst *mat.Dense) {
	const op = "EKFACBlock.Scaling"
	if b.s.Count() == 0 {
		panic("curvature: " + op + ": no scaling (call Refresh first)")
	}
	out, in := b.dims.out, b.dims.in
	reuseDir(dst, out, in, op)
	dst.Copy(mat.NewDense(out, in+1, b.s.MeanVec().RawVector().Data))
}

// Precondition writes into dst (n_out × (n_in+1); an empty dst is resized)
// the direction U ((Uᵀ[∇W ∇b]) ./ (S + λ)) in matrix form,
// Q_G ((Q_Gᵀ [∇W ∇b] Q_A) ./ (S + λ)) Q_Aᵀ, with the basis held, the
// current S and the λ of the last Refresh. It panics before a successful
// Refresh or for a record of another shape. S stays positive after a
// Refresh that accepted it (later averages keep a share of it); should an
// entry of S + λ be zero, dst is set to NaN, which the optimizers of
// package optim refuse.
func (b *EKFACBlock) Precondition(dst *mat.Dense, l *secondorder.Layer) {
	out, in := b.startPrecondition(dst, l, "EKFACBlock.Precondition")
	b.sm.SetRawMatrix(general(out, in+1, b.s.MeanVec().RawVector().Data))
	e := &b.eig[b.cur]
	if n, ok := batchRows(l); ok && b.path != pathGradient && (b.path == pathBatch || n*(out+in+1) < out*(in+1)) {
		// Q_Gᵀ ∇ Q_A = (1/n) (Grad Q_G)ᵀ ([H 1] Q_A): 2n(n_G² + n_A² + n_G n_A)
		// flops instead of 2 n_G n_A (n_G + n_A).
		qa, qg := e.Bases()
		reuseWork(&b.hl, n, in+1)
		augmentRows(b.hl.RawMatrix(), l.Input.RawMatrix())
		reuseWork(&b.hr, n, in+1)
		blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, b.hl.RawMatrix(), qa.RawMatrix(), 0, b.hr.RawMatrix())
		reuseWork(&b.br, n, out)
		blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, l.Grad.RawMatrix(), qg.RawMatrix(), 0, b.br.RawMatrix())
		blas64.Gemm(blas.Trans, blas.NoTrans, 1/float64(n), b.br.RawMatrix(), b.hr.RawMatrix(), 0, dst.RawMatrix())
		if err := e.ScaleRotated(dst, dst, &b.sm, b.lambda); err != nil {
			nanFill(dst)
		}
		return
	}
	l.ParamGrad(dst)
	if err := e.SolveScaled(dst, dst, &b.sm, b.lambda); err != nil {
		nanFill(dst)
	}
}

// nanFill sets every entry of m to NaN.
func nanFill(m *mat.Dense) {
	raw := m.RawMatrix()
	for o := 0; o < raw.Rows; o++ {
		row := raw.Data[o*raw.Stride : o*raw.Stride+raw.Cols]
		for c := range row {
			row[c] = math.NaN()
		}
	}
}

// Mul writes dst = U diag(vec S) Uᵀ v in matrix form for a direction v
// (n_out × (n_in+1)), with the current S and no damping; before the first
// Refresh, K-FAC's G v Ā. An empty dst is resized; dst may be v.
func (b *EKFACBlock) Mul(dst, v *mat.Dense) {
	if !b.ready || b.s.Count() == 0 {
		if b.kf.aAvg.Count() == 0 {
			b.startMul(dst, v, false, "EKFACBlock.Mul")
		}
		b.kf.Mul(dst, v)
		return
	}
	out, in := b.startMul(dst, v, true, "EKFACBlock.Mul")
	b.sm.SetRawMatrix(general(out, in+1, b.s.MeanVec().RawVector().Data))
	b.eig[b.cur].MulScaled(dst, v, &b.sm)
}

// MarshalBinary returns a checkpoint of b (encoding.BinaryMarshaler), of
// kind "curvature.EKFACBlock": its Decay (DefaultDecay for zero), its
// shape, whether a basis is held and its λ, the factors' averages (a nested
// KFACBlock), the average of S with its count, and the basis held (a
// nested kron.EigenKron), bit for bit. It returns an error, prefixed
// "curvature: EKFACBlock: ", for a Decay outside [0, 1).
func (b *EKFACBlock) MarshalBinary() ([]byte, error) {
	if err := checkDecay(b.Decay, "EKFACBlock"); err != nil {
		return nil, err
	}
	b.kf.Decay = b.Decay
	kf, err := b.kf.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("curvature: EKFACBlock: %w", err)
	}
	var eig []byte
	if b.ready {
		if eig, err = b.eig[b.cur].MarshalBinary(); err != nil {
			return nil, fmt.Errorf("curvature: EKFACBlock: %w", err)
		}
	}
	n := 8 + baseLen + 8 + len(kf) + b.s.stateLen()
	if b.ready {
		n += 8 + len(eig)
	}
	return encodeBlock("EKFACBlock", n, func(w *state.Writer) {
		w.Float(orDefaultDecay(b.Decay))
		b.blockBase.writeState(w)
		w.Bytes(kf)
		b.s.writeState(w)
		if b.ready {
			w.Bytes(eig)
		}
	}), nil
}

// UnmarshalBinary restores into b (encoding.BinaryUnmarshaler) a
// checkpoint written by MarshalBinary, so that b continues as the saved
// block bit for bit. The Decay of b must be set first as that of the saved
// block: an error, prefixed "curvature: EKFACBlock: ", names it when it
// differs after defaults. Data that is not a valid checkpoint of EKFACBlock
// (truncated, altered, of another type, with sizes that disagree with the
// shape, a scaling without a basis or a basis without a scaling) gives an
// error with that prefix wrapping ErrCorruptCheckpoint. On any error b is
// left unchanged.
func (b *EKFACBlock) UnmarshalBinary(data []byte) error {
	if err := checkDecay(b.Decay, "EKFACBlock"); err != nil {
		return err
	}
	var (
		base blockBase
		kf   = KFACBlock{Decay: b.Decay}
		s    MovingAverage
		eig  kron.EigenKron
	)
	err := decodeBlock(data, "EKFACBlock", func(r *state.Reader) error {
		if err := readSetting(r, "block", "Decay", orDefaultDecay(b.Decay)); err != nil {
			return err
		}
		base = readBlockBase(r)
		readNested(r, &kf, "factors")
		n := -1
		if base.dims.set {
			n = base.dims.out * (base.dims.in + 1)
		}
		s = readMovingAverage(r, b.Decay, vectorEstimates, n, "average of S")
		if r.Err() != nil {
			return nil
		}
		if kf.dims != base.dims || (s.k > 0) != base.ready {
			r.Fail("factors of a %d×%d layer (fixed %t) for a %d×%d layer (fixed %t), %d scalings with a basis held %t",
				kf.dims.out, kf.dims.in, kf.dims.set, base.dims.out, base.dims.in, base.dims.set, s.k, base.ready)
			return nil
		}
		if base.ready {
			readNested(r, &eig, "basis")
			if r.Err() != nil {
				return nil
			}
			if na, ng := eig.Dims(); na != base.dims.in+1 || ng != base.dims.out {
				r.Fail("basis of %d and %d for a %d×%d layer", na, ng, base.dims.out, base.dims.in)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	*b = EKFACBlock{Decay: b.Decay, blockBase: base, kf: kf, s: s}
	b.eig[0] = eig
	return nil
}

// projectScaling writes into dst the diagonal, in the eigenbasis of next,
// of the matrix whose eigenvalues in the basis of prev are src (both
// row-major n_B × n_A, eigen in kron.EigenKron's layout):
//
//	S' = (R_B∘R_B) S (R_A∘R_A)ᵀ,   R = Q'ᵀ Q,
//
// diag(U'ᵀ U diag(vec S) Uᵀ U'), so that a scaling survives a change of
// basis (EKFACBlock, SOAPBlock). ra, rb and work are buffers. The products
// run on the raw matrices: boxing q.T() in a mat.Matrix would allocate.
func projectScaling(dst, src []float64, next, prev *kron.EigenKron, ra, rb, work *mat.Dense) {
	na, nb := next.Dims()
	qa, qb := next.Bases()
	oa, ob := prev.Bases()
	reuseWork(ra, na, na)
	blas64.Gemm(blas.Trans, blas.NoTrans, 1, qa.RawMatrix(), oa.RawMatrix(), 0, ra.RawMatrix())
	reuseWork(rb, nb, nb)
	blas64.Gemm(blas.Trans, blas.NoTrans, 1, qb.RawMatrix(), ob.RawMatrix(), 0, rb.RawMatrix())
	square(ra)
	square(rb)
	reuseWork(work, nb, na)
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, rb.RawMatrix(), general(nb, na, src), 0, work.RawMatrix())
	blas64.Gemm(blas.NoTrans, blas.Trans, 1, work.RawMatrix(), ra.RawMatrix(), 0, general(nb, na, dst))
}

// positiveBeyondRounding reports whether every entry of s + λ is positive
// beyond rounding: the smallest above len(s)·ε times the largest, the rule
// of a factorization (kron's singular), so that no inverse explodes.
func positiveBeyondRounding(s []float64, lambda float64) (ok bool, low, high float64) {
	low, high = math.Inf(1), 0.0
	for _, v := range s {
		low, high = math.Min(low, v), math.Max(high, v)
	}
	return low+lambda > float64(len(s))*0x1p-52*(high+lambda), low, high
}
