package curvature

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/state"
	"github.com/secondorder/secondorder/kron"
)

// ExactBlock is the dense Gauss–Newton or Fisher block of one affine layer,
// thesis eq. 3.3.2, for block-diagonal Newton (§3.1.3 damping, §3.1.6):
//
//	C = s Σ_r (h̃_{e(r)} h̃_{e(r)}ᵀ) ⊗ (g_r g_rᵀ),   h̃ = (h, 1),
//
// the P×P matrix (P = n_out(n_in+1), order θ = [vec(W); b], vec stacking
// columns) built by DenseBlock from the record's Input, Back, BackScale (s,
// Layer.BackScaleOrDefault) and BackExamples (e, Layer.BackExample). What it
// is — exact GN, true, Monte-Carlo or empirical Fisher — depends on what the
// record's Back holds. There is no averaging: each Update replaces the
// estimate.
//
// Refresh(λ) factorizes C + λI by Cholesky (LAPACK potrf, one attempt);
// Precondition solves (C + λI) vec(U) = vec([∇W ∇b]) and writes U.
//
// Cost, with m rows of Back: Update O(m P²) (DenseBlock), Refresh P³/3
// flops, Precondition and Mul 2P² flops. Memory: the estimate and two
// Cholesky factors (the one held and the one being attempted), 3P² floats,
// which limits it to small layers (P = 5000 takes 600 MB). It implements
// Staged (Begin, Rollback, as the optimizers of package optim use it to undo
// a refused step) by keeping a second estimate, allocated at the first
// Update after a Begin, and the two Cholesky factors: 4P² floats in all (a
// third factor is allocated only if two Refreshes succeed between a Begin
// and a Rollback). After the first call of each method, no method
// allocates.
//
// The zero value is ready to use; its shapes are fixed by the first Update.
// It is not safe for concurrent use.
//
// It implements encoding.BinaryMarshaler and encoding.BinaryUnmarshaler
// for checkpoints that resume exactly (kind "curvature.ExactBlock"):
// MarshalBinary saves its settings and state, the factorization held
// included, UnmarshalBinary restores them into a ExactBlock of the same
// settings.
type ExactBlock struct {
	blockBase // shape, factorization held, damping
	p         int
	est       mat.SymDense
	has       bool
	z         []float64    // DenseBlock's workspace
	fac       [3][]float64 // upper Cholesky factors U (C + λI = UᵀU); fac[cur] is held
	cur       int

	// Staging: the estimate of Begin, kept in alt from the first Update
	// after it, and p and has at Begin.
	alt     mat.SymDense
	moved   bool
	markP   int
	markHas bool
	x, y    []float64 // vec buffers

	estimated bool         // an Estimate awaits its Fold
	part      [1]Statistic // Estimate's view of est
}

// Update replaces the estimate by the block of the record (DenseBlock):
// Estimate, then Fold. It panics, with a message prefixed "curvature: ",
// when the record lacks Input or Back or the layer's shape differs from
// that of the first Update.
func (b *ExactBlock) Update(l *secondorder.Layer) {
	b.Estimate(l)
	b.Fold()
}

// Estimate computes the block of the record (P×P, upper triangle), the
// mean over the n rows of its Input, and returns it with n (Sharded). The
// block keeps no average, so the part is the estimate's own buffer: until
// Fold, Matrix, Scale, Mul and Refresh see the record's block as the
// caller has left it. It panics as Update does.
func (b *ExactBlock) Estimate(l *secondorder.Layer) (parts []Statistic, examples int) {
	const op = "ExactBlock.Update"
	checkLayer(l, op, true, false, true)
	out, in := b.dims.fix(l, op)
	b.p = out * (in + 1)
	if b.staged && !b.moved {
		b.est, b.alt = b.alt, b.est
		b.moved = true
	}
	outerBlock(&b.est, l.Input, l.Back, l.BackExample, l.BackScaleOrDefault(), op, &b.z)
	b.estimated = true
	b.part[0] = symStat(b.est.RawSymmetric())
	n, _ := l.Input.Dims()
	return b.part[:], n
}

// Fold makes the last Estimate the block's estimate (Sharded).
func (b *ExactBlock) Fold() {
	pendingFold(&b.estimated, "ExactBlock")
	b.has = true
}

// Matrix returns the current estimate C, owned by b and valid until the
// next Update; nil before the first Update.
func (b *ExactBlock) Matrix() *mat.SymDense {
	if !b.has {
		return nil
	}
	return &b.est
}

// Scale returns tr(C)/P, or 1 before the first Update or when it is not
// positive and finite.
func (b *ExactBlock) Scale() float64 {
	if !b.has {
		return 1
	}
	return positiveOr1(mat.Trace(&b.est) / float64(b.p))
}

// Refresh computes the Cholesky factorization of C + λI in one attempt. It
// returns ErrNoEstimate before the first Update, and an error wrapping
// ErrNotPositiveDefinite (a *kron.FactorError, factor "C") when C + λI is
// not positive definite; the factorization held before is then kept.
// Cost: P³/3 flops.
func (b *ExactBlock) Refresh(lambda float64) error {
	checkBlockDamping(lambda, "ExactBlock.Refresh")
	if !b.has {
		return ErrNoEstimate
	}
	p := b.p
	i := b.spare(b.cur)
	u := growFloats(&b.fac[i], p*p)
	c := b.est.RawSymmetric()
	for i := 0; i < p; i++ {
		copy(u[i*p+i:i*p+p], c.Data[i*c.Stride+i:i*c.Stride+p])
		u[i*p+i] += lambda
	}
	if _, ok := lapack64.Potrf(blas64.Symmetric{Uplo: blas.Upper, N: p, Stride: p, Data: u}); !ok {
		return fmt.Errorf("curvature: ExactBlock.Refresh: %w", &kron.FactorError{Factor: "C", Damping: lambda, Err: ErrNotPositiveDefinite})
	}
	b.cur = i
	b.hold(lambda)
	return nil
}

// Begin marks the current state as the one Rollback returns to (Staged):
// the estimate's and the factorization's.
func (b *ExactBlock) Begin() {
	b.begin(b.cur)
	b.moved, b.markP, b.markHas = false, b.p, b.has
}

// Rollback returns b to its state at the last Begin, bit for bit: the
// estimate, the factorization held and its damping, the shape. Without a
// Begin since the last Rollback or UnmarshalBinary it does nothing.
func (b *ExactBlock) Rollback() {
	cur, ok := b.rollback()
	if !ok {
		return
	}
	b.cur = cur
	if b.moved {
		b.est, b.alt = b.alt, b.est
		b.moved = false
	}
	b.p, b.has = b.markP, b.markHas
}

// Precondition writes into dst (n_out × (n_in+1); an empty dst is resized)
// U = unvec((C + λI)⁻¹ vec([∇W ∇b])) for the record's GradW and GradB and
// the factorization held: vec, two triangular solves, unvec. It panics
// before a successful Refresh or for a record of another shape.
func (b *ExactBlock) Precondition(dst *mat.Dense, l *secondorder.Layer) {
	b.startPrecondition(dst, l, "ExactBlock.Precondition")
	l.ParamGrad(dst)
	x := growFloats(&b.x, b.p)
	vecDir(x, dst.RawMatrix())
	u := blas64.Triangular{Uplo: blas.Upper, Diag: blas.NonUnit, N: b.p, Stride: b.p, Data: b.fac[b.cur]}
	xv := blas64.Vector{N: b.p, Inc: 1, Data: x}
	blas64.Trsv(blas.Trans, u, xv)
	blas64.Trsv(blas.NoTrans, u, xv)
	unvecDir(dst.RawMatrix(), x)
}

// Mul writes dst = unvec(C vec(v)) for a direction v (n_out × (n_in+1)),
// with the current estimate and no damping. An empty dst is resized; dst
// may be v. Cost: 2P² flops.
func (b *ExactBlock) Mul(dst, v *mat.Dense) {
	b.startMul(dst, v, b.has, "ExactBlock.Mul")
	x := growFloats(&b.x, b.p)
	y := growFloats(&b.y, b.p)
	vecDir(x, v.RawMatrix())
	blas64.Symv(1, b.est.RawSymmetric(), blas64.Vector{N: b.p, Inc: 1, Data: x}, 0, blas64.Vector{N: b.p, Inc: 1, Data: y})
	unvecDir(dst.RawMatrix(), y)
}

// vecDir writes vec(d) into x, the columns of d stacked (the order of
// θ = [vec(W); b]: x[c·n_out + o] = d[o, c]).
func vecDir(x []float64, d blas64.General) {
	for o := 0; o < d.Rows; o++ {
		for c, v := range d.Data[o*d.Stride : o*d.Stride+d.Cols] {
			x[c*d.Rows+o] = v
		}
	}
}

// unvecDir writes into d the matrix whose vec is x.
func unvecDir(d blas64.General, x []float64) {
	for o := 0; o < d.Rows; o++ {
		row := d.Data[o*d.Stride : o*d.Stride+d.Cols]
		for c := range row {
			row[c] = x[c*d.Rows+o]
		}
	}
}

// MarshalBinary returns a checkpoint of b (encoding.BinaryMarshaler), of
// kind "curvature.ExactBlock": its shape, whether a factorization is held
// and its λ, whether it has an estimate, the estimate C (P×P, its upper
// triangle) and the factorization held (the upper Cholesky factor U of
// C + λI of the last successful Refresh, bit for bit). A block that never
// saw a record has a checkpoint too. The error is always nil.
func (b *ExactBlock) MarshalBinary() ([]byte, error) {
	n := baseLen + 1
	if b.has {
		n += symLen(b.p)
	}
	if b.ready {
		n += symLen(b.p)
	}
	return encodeBlock("ExactBlock", n, func(w *state.Writer) {
		b.blockBase.writeState(w)
		w.Bool(b.has)
		if b.has {
			writeSym(w, b.est.RawSymmetric())
		}
		if b.ready {
			writeSym(w, blas64.Symmetric{Uplo: blas.Upper, N: b.p, Stride: b.p, Data: b.fac[b.cur]})
		}
	}), nil
}

// UnmarshalBinary restores into b (encoding.BinaryUnmarshaler) a
// checkpoint written by MarshalBinary, so that Scale, Ready, Damping,
// Matrix, Precondition and Mul, and the results of later Updates and
// Refreshes, are those of the saved block bit for bit. Data that is not a
// valid checkpoint of ExactBlock (truncated, altered, of another type,
// with a shape that is not positive, an estimate or factor whose size is
// not P, a factor whose diagonal is not positive, a damping that is not
// finite and ≥ 0) gives an error prefixed "curvature: ExactBlock: "
// wrapping ErrCorruptCheckpoint; b is then left unchanged.
func (b *ExactBlock) UnmarshalBinary(data []byte) error {
	var (
		base    blockBase
		p       int
		has     bool
		est, fa blas64.Symmetric
	)
	err := decodeBlock(data, "ExactBlock", func(r *state.Reader) error {
		base = readBlockBase(r)
		if base.dims.set {
			p = base.dims.out * (base.dims.in + 1)
			if r.Err() == nil && p > maxDim {
				r.Fail("layer shape %d×%d: P = %d too large", base.dims.out, base.dims.in, p)
			}
		}
		if has = r.Bool(); r.Err() == nil && ((has && !base.dims.set) || (base.ready && !has)) {
			r.Fail("estimate %t for a shape fixed %t, ready %t", has, base.dims.set, base.ready)
		}
		if has {
			est = readSym(r, p, "estimate")
		}
		if base.ready {
			fa = readSym(r, p, "Cholesky factor")
			checkFactor(r, fa, "Cholesky factor")
		}
		return nil
	})
	if err != nil {
		return err
	}
	*b = ExactBlock{blockBase: base, has: has}
	if has {
		b.p = p
		b.est.SetRawSymmetric(est)
	}
	if base.ready {
		b.fac[0] = fa.Data
	}
	return nil
}
