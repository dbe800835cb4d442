package curvature

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
)

// The state and the helpers shared by the blocks of this package.

// solvePath chooses between the gradient-side and batch-side forms of a
// block's Precondition; the tests force one or the other.
type solvePath int

const (
	pathAuto     solvePath = iota // the cheaper form
	pathGradient                  // always from [∇W ∇b]
	pathBatch                     // always from Grad and Input when present
)

// blockBase is the state that every block of this package keeps besides
// its statistics: the layer shape fixed by the first Update, and whether a
// factorization is held, with which damping. The blocks embed it, and its
// Ready and Damping are theirs.
type blockBase struct {
	dims   blockDims
	ready  bool
	lambda float64

	staged bool     // a stage is open (Staged.Begin)
	mark   baseMark // the state at Begin
}

// Ready reports whether a factorization is held, so that Precondition may be
// called.
func (b *blockBase) Ready() bool { return b.ready }

// Damping returns the λ of the factorization held (0 before the first
// successful Refresh).
func (b *blockBase) Damping() float64 { return b.lambda }

// hold records a successful Refresh with damping λ.
func (b *blockBase) hold(lambda float64) { b.ready, b.lambda = true, lambda }

// startPrecondition begins a block's Precondition: it panics before a
// successful Refresh or for a record of another shape than the block's,
// sizes dst as a direction and returns the layer's shape.
func (b *blockBase) startPrecondition(dst *mat.Dense, l *secondorder.Layer, op string) (out, in int) {
	if !b.ready {
		panic("curvature: " + op + ": no factorization (call Refresh first)")
	}
	out, in = b.dims.check(l, op)
	reuseDir(dst, out, in, op)
	return out, in
}

// startMul begins a block's Mul: it panics without an estimate (has false)
// or for a v of another shape than a direction of the block's layer, sizes
// dst and returns the layer's shape.
func (b *blockBase) startMul(dst, v *mat.Dense, has bool, op string) (out, in int) {
	if !has {
		panic("curvature: " + op + ": no estimate (call Update first)")
	}
	out, in = b.dims.out, b.dims.in
	checkDir(v, out, in, op, "v")
	reuseDir(dst, out, in, op)
	return out, in
}

// blockDims is the layer shape (n_out, n_in) a block was built for, fixed by
// its first Update.
type blockDims struct {
	out, in int
	set     bool
}

// fix records the layer's shape at the first call and panics when a later
// call brings another one.
func (d *blockDims) fix(l *secondorder.Layer, op string) (out, in int) {
	out, in = l.Dims()
	if !d.set {
		d.out, d.in, d.set = out, in, true
		return out, in
	}
	if out != d.out || in != d.in {
		panic(fmt.Sprintf("curvature: %s: layer is %d×%d, the block holds the statistics of a %d×%d layer", op, out, in, d.out, d.in))
	}
	return out, in
}

// check panics unless the layer has the shape the block was built for.
func (d *blockDims) check(l *secondorder.Layer, op string) (out, in int) {
	if l == nil || l.W == nil {
		panic(fmt.Sprintf("curvature: %s: layer or its W is nil", op))
	}
	out, in = l.Dims()
	if !d.set || out != d.out || in != d.in {
		panic(fmt.Sprintf("curvature: %s: layer is %d×%d, the block holds the statistics of a %d×%d layer", op, out, in, d.out, d.in))
	}
	return out, in
}

// checkDir panics unless m is n_out × (n_in+1).
func checkDir(m *mat.Dense, out, in int, op, name string) {
	if r, c := m.Dims(); r != out || c != in+1 {
		panic(fmt.Sprintf("curvature: %s: %s is %d×%d, want %d×%d", op, name, r, c, out, in+1))
	}
}

// reuseDir resizes an empty dst to n_out × (n_in+1) and checks a non-empty
// one.
func reuseDir(dst *mat.Dense, out, in int, op string) {
	if dst == nil {
		panic(fmt.Sprintf("curvature: %s: nil destination", op))
	}
	if dst.IsEmpty() {
		dst.ReuseAs(out, in+1)
		return
	}
	checkDir(dst, out, in, op, "destination")
}

// reuseWork makes the internal buffer w r×c, reusing its storage.
func reuseWork(w *mat.Dense, r, c int) {
	if wr, wc := w.Dims(); !w.IsEmpty() && wr == r && wc == c {
		return
	}
	w.Reset()
	w.ReuseAs(r, c)
}

// batchRows returns the batch size n and whether the layer's gradient can be
// taken on the batch side as (1/n) Gradᵀ [H 1]: Grad and Input present with
// n > 0 rows each.
func batchRows(l *secondorder.Layer) (int, bool) {
	if l.Grad == nil || l.Input == nil {
		return 0, false
	}
	n, _ := l.Input.Dims()
	m, _ := l.Grad.Dims()
	return n, n == m && n > 0
}

// augmentRows writes [H 1] into dst (n × (n_in+1)) for h of size n × n_in.
func augmentRows(dst, h blas64.General) {
	for i := 0; i < h.Rows; i++ {
		row := dst.Data[i*dst.Stride : i*dst.Stride+h.Cols+1]
		copy(row, h.Data[i*h.Stride:i*h.Stride+h.Cols])
		row[h.Cols] = 1
	}
}

// general returns a row-major blas64.General view of data.
func general(r, c int, data []float64) blas64.General {
	return blas64.General{Rows: r, Cols: c, Stride: c, Data: data}
}

// positiveOr1 returns v when it is positive and finite, else 1: the rule of
// Block.Scale.
func positiveOr1(v float64) float64 {
	if v > 0 && !math.IsInf(v, 1) {
		return v
	}
	return 1
}

// checkBlockDamping panics unless λ is finite and ≥ 0.
func checkBlockDamping(lambda float64, op string) {
	if !(lambda >= 0) || math.IsInf(lambda, 1) {
		panic(fmt.Sprintf("curvature: %s: damping %g, want finite and ≥ 0", op, lambda))
	}
}
