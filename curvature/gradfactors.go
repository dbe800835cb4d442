package curvature

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/state"
	"github.com/secondorder/secondorder/kron"
)

// gradFactors are the left and right statistics of a layer's gradient
// matrices G = [∇W ∇b] (n_out × n_A, n_A = n_in+1) that Shampoo (Gupta,
// Koren & Singer 2018) and SOAP (Vyas et al. 2024) precondition with,
//
//	L = E[G Gᵀ] (n_out × n_out),   R = E[Gᵀ G] (n_A × n_A),
//
// moving averages (MovingAverage, warm-started) over the updates, and the
// eigendecompositions of refreshes in kron.EigenKron's layout (A = R,
// B = L, so that its solves act on G), three of them as KFACBlock keeps
// its factorizations.
type gradFactors struct {
	lAvg, rAvg MovingAverage
	lEst, rEst mat.SymDense
	g          mat.Dense
	eig        [3]kron.EigenKron
}

// update folds G Gᵀ and Gᵀ G of the record's gradient into the averages and
// leaves G in f.g.
func (f *gradFactors) update(l *secondorder.Layer, decay float64, out, in int) {
	if f.g.IsEmpty() {
		f.g.ReuseAs(out, in+1)
		f.lEst.ReuseAsSym(out)
		f.rEst.ReuseAsSym(in + 1)
	}
	l.ParamGrad(&f.g)
	g := f.g.RawMatrix()
	blas64.Syrk(blas.NoTrans, 1, g, 0, f.lEst.RawSymmetric())
	blas64.Syrk(blas.Trans, 1, g, 0, f.rEst.RawSymmetric())
	f.lAvg.Decay, f.rAvg.Decay = decay, decay
	f.lAvg.Add(&f.lEst)
	f.rAvg.Add(&f.rEst)
}

// count returns the number of updates averaged.
func (f *gradFactors) count() int { return f.lAvg.Count() }

// factorize eigendecomposes the current averages into f.eig[i].
func (f *gradFactors) factorize(i int) error {
	return f.eig[i].Factorize(f.rAvg.Mean(), f.lAvg.Mean())
}

func (f *gradFactors) begin() {
	f.lAvg.Begin()
	f.rAvg.Begin()
}

func (f *gradFactors) rollback() {
	f.lAvg.Rollback()
	f.rAvg.Rollback()
}

// stateLen and writeState save the averages; readGradFactors restores
// them, recording on r the failures of its checks (sizes n_out and n_A
// when the shape is fixed, equal counts).
func (f *gradFactors) stateLen() int { return f.lAvg.stateLen() + f.rAvg.stateLen() }

func (f *gradFactors) writeState(w *state.Writer) {
	f.lAvg.writeState(w)
	f.rAvg.writeState(w)
}

func readGradFactors(r *state.Reader, decay float64, d blockDims) gradFactors {
	nl, nr := -1, -1
	if d.set {
		nl, nr = d.out, d.in+1
	}
	var f gradFactors
	f.lAvg = readMovingAverage(r, decay, matrixEstimates, nl, "average of L")
	f.rAvg = readMovingAverage(r, decay, matrixEstimates, nr, "average of R")
	if r.Err() == nil && (f.lAvg.k != f.rAvg.k || (f.lAvg.k > 0 && !d.set)) {
		r.Fail("averages of L and R of %d and %d updates for a shape fixed %t", f.lAvg.k, f.rAvg.k, d.set)
	}
	return f
}

// readBasis reads a nested kron.EigenKron and checks its sizes against the
// shape.
func readBasis(r *state.Reader, e *kron.EigenKron, d blockDims) {
	readNested(r, e, "basis")
	if r.Err() != nil {
		return
	}
	if na, nb := e.Dims(); na != d.in+1 || nb != d.out {
		r.Fail("basis of %d and %d for a %d×%d layer", na, nb, d.out, d.in)
	}
}

// marshalGradBlock returns the checkpoint of kind "curvature.<name>"
// that ShampooBlock and SOAPBlock share: the Decay (DefaultDecay for zero),
// the block's base, the averages of L and R, the block's vector averages
// avgs, and the basis held (a nested kron.EigenKron) when ready.
func marshalGradBlock(name string, decay float64, base *blockBase, gf *gradFactors, cur int, avgs ...*MovingAverage) ([]byte, error) {
	if err := checkDecay(decay, name); err != nil {
		return nil, err
	}
	var eig []byte
	if base.ready {
		eig, _ = gf.eig[cur].MarshalBinary() // its error is always nil
	}
	n := 8 + baseLen + gf.stateLen()
	for _, a := range avgs {
		n += a.stateLen()
	}
	if base.ready {
		n += 8 + len(eig)
	}
	return encodeBlock(name, n, func(w *state.Writer) {
		w.Float(orDefaultDecay(decay))
		base.writeState(w)
		gf.writeState(w)
		for _, a := range avgs {
			a.writeState(w)
		}
		if base.ready {
			w.Bytes(eig)
		}
	}), nil
}

// unmarshalGradBlock reads what marshalGradBlock wrote, with len(what)
// vector averages of n_out(n_in+1) entries (named by what), into new
// values: the base, the factors with the basis in eig[0], the averages. check
// tells whether the counts are consistent (the block's rule), recording on
// r why not. Errors are prefixed "curvature: <name>: " and wrap
// ErrCorruptCheckpoint for data that is not a valid checkpoint.
func unmarshalGradBlock(data []byte, name string, decay float64, what []string, check func(r *state.Reader, base blockBase, gf *gradFactors, avgs []MovingAverage) bool) (blockBase, gradFactors, []MovingAverage, error) {
	if err := checkDecay(decay, name); err != nil {
		return blockBase{}, gradFactors{}, nil, err
	}
	var (
		base blockBase
		gf   gradFactors
		avgs = make([]MovingAverage, len(what))
	)
	err := decodeBlock(data, name, func(r *state.Reader) error {
		if err := readSetting(r, "block", "Decay", orDefaultDecay(decay)); err != nil {
			return err
		}
		base = readBlockBase(r)
		gf = readGradFactors(r, decay, base.dims)
		n := -1
		if base.dims.set {
			n = base.dims.out * (base.dims.in + 1)
		}
		for i, w := range what {
			avgs[i] = readMovingAverage(r, decay, vectorEstimates, n, w)
		}
		if r.Err() != nil || !check(r, base, &gf, avgs) {
			return nil
		}
		if base.ready {
			readBasis(r, &gf.eig[0], base.dims)
		}
		return nil
	})
	return base, gf, avgs, err
}
