package curvature

import (
	"encoding"
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/internal/state"
)

// Checkpoints of the blocks (KFACBlock, ACPBlock, ExactBlock,
// DiagonalBlock) and of MovingAverage, their MarshalBinary and
// UnmarshalBinary (encoding.BinaryMarshaler and
// encoding.BinaryUnmarshaler). The state, framed by package internal/state
// under the kind "curvature.<Name>", version checkpointVersion, holds
//
//	settings   each setting that shapes the block's results, defaults
//	           filled in (Float)
//	base       whether the shape is fixed (Bool), n_out and n_in (Int),
//	           whether a factorization is held (Bool) and its λ (Float)
//	statistics the block's estimate and moving averages with their counts
//	           (symmetric matrices as n and their upper triangle row by row)
//	factors    the factorization held, as computed by the last successful
//	           Refresh, bit for bit: the statistics have moved since, so it
//	           cannot be recomputed from them (kron's factorizations nested
//	           as their own checkpoints, with state.Writer.Bytes)
//
// so that a block restored into a fresh block of the same settings gives
// the same Scale, Ready, Precondition and Mul as the saved one, and the same
// results after more Updates and Refreshes, bit for bit. Workspaces and
// cached products that are recomputed from the saved state (ACPBlock's
// M⁻¹) are not saved.

// ErrCorruptCheckpoint is wrapped by the errors of UnmarshalBinary for data
// that is not a valid checkpoint of the type: truncated or altered data,
// another type's state, shapes that are not positive, statistics or factors
// whose sizes do not match the shape, weights or dampings that are not
// finite. It is package internal/state's ErrCorrupt, the same value as
// optim.ErrCorruptCheckpoint and kron.ErrCorruptCheckpoint.
var ErrCorruptCheckpoint = state.ErrCorrupt

// The checkpointed types of this package, checked at compile time.
var (
	_ = []encoding.BinaryMarshaler{(*KFACBlock)(nil), (*ACPBlock)(nil), (*ExactBlock)(nil), (*DiagonalBlock)(nil), (*MovingAverage)(nil)}
	_ = []encoding.BinaryUnmarshaler{(*KFACBlock)(nil), (*ACPBlock)(nil), (*ExactBlock)(nil), (*DiagonalBlock)(nil), (*MovingAverage)(nil)}
)

// checkpointVersion is the version of the layouts of this package.
const checkpointVersion = 1

// maxDim bounds the sizes read from a checkpoint, so that products of two
// of them cannot overflow.
const maxDim = 1 << 30

// checkDecay returns an error, prefixed "curvature: <name>: ", unless
// decay is in [0, 1).
func checkDecay(decay float64, name string) error {
	if !(decay >= 0 && decay < 1) {
		return fmt.Errorf("curvature: %s: Decay=%g, want in [0, 1)", name, decay)
	}
	return nil
}

// orDefaultDecay returns decay, DefaultDecay for zero.
func orDefaultDecay(decay float64) float64 {
	if decay == 0 {
		return DefaultDecay
	}
	return decay
}

// readSetting reads a setting written by Writer.Float and returns an error
// naming it when it differs from want, bit for bit ("checkpoint has
// Decay=0.9, this block Decay=0.95", this being "block"). A failed read is
// left to the Reader's error.
func readSetting(r *state.Reader, this, name string, want float64) error {
	if v := r.Float(); r.Err() == nil && math.Float64bits(v) != math.Float64bits(want) {
		return fmt.Errorf("checkpoint has %s=%g, this %s %s=%g", name, v, this, name, want)
	}
	return nil
}

// decodeBlock decodes data of the kind "curvature.<name>" with read and
// prefixes its errors "curvature: <name>: ".
func decodeBlock(data []byte, name string, read func(r *state.Reader) error) error {
	err := state.Decode(data, "curvature."+name, checkpointVersion, func(r *state.Reader, _ uint32) error {
		return read(r)
	})
	if err != nil {
		return fmt.Errorf("curvature: %s: %w", name, err)
	}
	return nil
}

// encodeBlock returns the checkpoint of kind "curvature.<name>" whose
// payload, n bytes long, write appends.
func encodeBlock(name string, n int, write func(w *state.Writer)) []byte {
	kind := "curvature." + name
	return state.AppendEncode(make([]byte, 0, state.EncodedLen(kind, n)), kind, checkpointVersion, write)
}

// baseLen is the number of bytes blockBase.writeState appends.
const baseLen = 1 + 8 + 8 + 1 + 8

// writeState appends the shape (whether fixed, n_out, n_in), whether a
// factorization is held and its damping.
func (b *blockBase) writeState(w *state.Writer) {
	w.Bool(b.dims.set)
	w.Int(b.dims.out)
	w.Int(b.dims.in)
	w.Bool(b.ready)
	w.Float(b.lambda)
}

// readBlockBase reads what blockBase.writeState wrote, recording on r the
// failures of its checks: a fixed shape positive (a shape not fixed zero),
// no factorization without a shape, a damping finite and ≥ 0 (zero without
// a factorization).
func readBlockBase(r *state.Reader) blockBase {
	var b blockBase
	b.dims.set, b.dims.out, b.dims.in = r.Bool(), r.Int(), r.Int()
	b.ready, b.lambda = r.Bool(), r.Float()
	if r.Err() != nil {
		return blockBase{}
	}
	d := b.dims
	switch {
	case d.set && (d.out < 1 || d.in < 1 || d.out > maxDim || d.in >= maxDim):
		r.Fail("layer shape %d×%d, want positive", d.out, d.in)
	case !d.set && (d.out != 0 || d.in != 0 || b.ready):
		r.Fail("layer shape %d×%d (ready %t) with no shape fixed", d.out, d.in, b.ready)
	case !(b.lambda >= 0) || math.IsInf(b.lambda, 1) || (!b.ready && b.lambda != 0):
		r.Fail("damping %g (ready %t), want finite and ≥ 0, 0 when not ready", b.lambda, b.ready)
	}
	return b
}

// symLen returns the number of bytes writeSym appends for an n×n matrix.
func symLen(n int) int { return 16 + 8*n*(n+1)/2 }

// writeSym appends n and the upper triangle of the n×n row-major s, row by
// row, in the layout of state.Writer.Floats (its length, then the values).
func writeSym(w *state.Writer, s blas64.Symmetric) {
	n := s.N
	w.Int(n)
	w.Int(n * (n + 1) / 2)
	for i := 0; i < n; i++ {
		for _, v := range s.Data[i*s.Stride+i : i*s.Stride+n] {
			w.Float(v)
		}
	}
}

// readSym reads what writeSym wrote into new row-major storage of size n×n
// (stride n, the lower triangle zero), recording on r a size other than
// want (want < 0: any size n ≥ 1) or a number of values other than
// n(n+1)/2.
func readSym(r *state.Reader, want int, what string) blas64.Symmetric {
	n := r.Int()
	tri := r.Floats()
	if r.Err() != nil {
		return blas64.Symmetric{}
	}
	if n < 1 || n > maxDim || (want >= 0 && n != want) || len(tri) != n*(n+1)/2 {
		r.Fail("%s of size %d with %d values, want size %d", what, n, len(tri), want)
		return blas64.Symmetric{}
	}
	data := make([]float64, n*n)
	k := 0
	for i := 0; i < n; i++ {
		copy(data[i*n+i:i*n+n], tri[k:k+n-i])
		k += n - i
	}
	return blas64.Symmetric{Uplo: blas.Upper, N: n, Stride: n, Data: data}
}

// checkFactor records on r a Cholesky factor (upper triangle) whose
// diagonal is not positive or that holds a NaN.
func checkFactor(r *state.Reader, u blas64.Symmetric, what string) {
	for i := 0; i < u.N && r.Err() == nil; i++ {
		row := u.Data[i*u.Stride+i : i*u.Stride+u.N]
		if !(row[0] > 0) {
			r.Fail("%s: diagonal entry %d is %g, want > 0", what, i, row[0])
		}
		for j, v := range row {
			if math.IsNaN(v) {
				r.Fail("%s: entry (%d, %d) is NaN", what, i, i+j)
				break
			}
		}
	}
}

// readVec reads a slice written by Writer.Floats, recording on r a length
// other than want.
func readVec(r *state.Reader, want int, what string) []float64 {
	v := r.Floats()
	if r.Err() == nil && len(v) != want {
		r.Fail("%s of length %d, want %d", what, len(v), want)
	}
	if r.Err() != nil {
		return nil
	}
	return v
}

// writeVec appends the n values of v, in the layout of Writer.Floats.
func writeVec(w *state.Writer, v *mat.VecDense) {
	raw := v.RawVector()
	w.Int(raw.N)
	for i := 0; i < raw.N; i++ {
		w.Float(raw.Data[i*raw.Inc])
	}
}

// stateLen returns the number of bytes writeState appends.
func (a *MovingAverage) stateLen() int {
	switch {
	case a.k == 0:
		return 8
	case a.vec:
		return 8 + 1 + 8 + 8*a.v.Len()
	default:
		return 8 + 1 + symLen(a.m.SymmetricDim())
	}
}

// writeState appends the number k of estimates and, when k > 0, whether
// they are vectors and the average: the vector (Floats), or the matrix as
// its size and upper triangle. The decay is its owner's setting.
func (a *MovingAverage) writeState(w *state.Writer) {
	w.Int(a.k)
	if a.k == 0 {
		return
	}
	w.Bool(a.vec)
	if a.vec {
		writeVec(w, &a.v)
	} else {
		writeSym(w, a.m.RawSymmetric())
	}
}

// estimateKind is what readMovingAverage accepts: matrices, vectors or
// either.
type estimateKind int

const (
	anyEstimate estimateKind = iota
	matrixEstimates
	vectorEstimates
)

// readMovingAverage reads what MovingAverage.writeState wrote into a new
// average of the given Decay, recording on r the failures of its checks:
// k ≥ 0, estimates of the kind wanted, of size (matrices) or length
// (vectors) n, any n ≥ 1 when n < 0.
func readMovingAverage(r *state.Reader, decay float64, kind estimateKind, n int, what string) MovingAverage {
	a := MovingAverage{Decay: decay}
	a.k = r.Int()
	if r.Err() == nil && a.k < 0 {
		r.Fail("%s: %d estimates", what, a.k)
	}
	if r.Err() != nil || a.k == 0 {
		return MovingAverage{Decay: decay}
	}
	a.vec = r.Bool()
	if r.Err() == nil && ((kind == matrixEstimates && a.vec) || (kind == vectorEstimates && !a.vec)) {
		r.Fail("%s: holds vectors %t, want %t", what, a.vec, kind == vectorEstimates)
	}
	if r.Err() != nil {
		return MovingAverage{Decay: decay}
	}
	if a.vec {
		v := r.Floats()
		if r.Err() == nil && (len(v) == 0 || (n >= 0 && len(v) != n)) {
			r.Fail("%s: vector of length %d, want %d", what, len(v), n)
		}
		if r.Err() == nil {
			a.v = *mat.NewVecDense(len(v), v)
		}
	} else if s := readSym(r, n, what); r.Err() == nil {
		a.m.SetRawSymmetric(s)
	}
	if r.Err() != nil {
		return MovingAverage{Decay: decay}
	}
	return a
}

// MarshalBinary returns a checkpoint of a (encoding.BinaryMarshaler), of
// kind "curvature.MovingAverage": its Decay (DefaultDecay for zero), the
// number of estimates added since the last Reset and, when there are any,
// whether they are vectors and the average (a vector, or a symmetric
// matrix as its size and upper triangle), bit for bit. It returns an
// error, prefixed "curvature: MovingAverage: ", for a Decay outside
// [0, 1).
func (a *MovingAverage) MarshalBinary() ([]byte, error) {
	if err := checkDecay(a.Decay, "MovingAverage"); err != nil {
		return nil, err
	}
	return encodeBlock("MovingAverage", 8+a.stateLen(), func(w *state.Writer) {
		w.Float(orDefaultDecay(a.Decay))
		a.writeState(w)
	}), nil
}

// UnmarshalBinary restores into a (encoding.BinaryUnmarshaler) a
// checkpoint written by MarshalBinary, so that Mean, MeanVec, Count and
// the results of later Adds are those of the saved average bit for bit.
// The Decay of a must be set first as that of the saved one: an error,
// prefixed "curvature: MovingAverage: ", names it when it differs after
// defaults ("checkpoint has Decay=0.9, this average Decay=0.95"). Data that
// is not a valid checkpoint of MovingAverage (truncated, altered, of
// another type, with a negative count or an average of inconsistent size)
// gives an error with that prefix wrapping ErrCorruptCheckpoint, and a
// Decay outside [0, 1) the error of MarshalBinary. On any error a is left
// unchanged.
func (a *MovingAverage) UnmarshalBinary(data []byte) error {
	if err := checkDecay(a.Decay, "MovingAverage"); err != nil {
		return err
	}
	var v MovingAverage
	err := decodeBlock(data, "MovingAverage", func(r *state.Reader) error {
		if err := readSetting(r, "average", "Decay", orDefaultDecay(a.Decay)); err != nil {
			return err
		}
		v = readMovingAverage(r, a.Decay, anyEstimate, -1, "average")
		return nil
	})
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// readNested reads a checkpoint nested with Writer.Bytes into u (one of
// kron's factorizations, its settings set as the block sets them),
// recording on r its failure, a settings mismatch included: in a block's
// checkpoint, nested settings other than the block's are corrupt data.
func readNested(r *state.Reader, u encoding.BinaryUnmarshaler, what string) {
	b := r.Bytes()
	if r.Err() != nil {
		return
	}
	if err := u.UnmarshalBinary(b); err != nil {
		r.Fail("%s: %v", what, err)
	}
}
