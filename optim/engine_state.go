package optim

import (
	"encoding"
	"errors"
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/curvature"
	"github.com/secondorder/secondorder/internal/state"
)

// Checkpoints of the curvature-based optimizers (KFAC, ACP, Newton,
// Preconditioned), the engine's part of their MarshalBinary and
// UnmarshalBinary: the state, framed by package internal/state under the
// kind "optim.<Optimizer>", version checkpointVersion, holds
//
//	settings   the settings of Rules after defaults (rules.settings), then
//	           the optimizer's own (KFAC's Decay, ACP's Alpha and Decay,
//	           Newton's MaxParams, Preconditioned's ReadsBack and Name)
//	t          the number of updates (Int), the current λ (Float), whether
//	           the per-layer state exists (Bool)
//	report     the fields of the last Report in their order of declaration
//	layers     the number of layers (Int), then per layer out, in (Int), the
//	           lengths of the Extra parameters (Ints), the damping λ_l of the
//	           factorization in place (Float), whether δ_prev holds an update
//	           (Bool), δ_prev (Floats, n_out(n_in+1) values, row-major), the
//	           velocity of each Extra parameter (Floats), and the curvature
//	           block's own checkpoint, its MarshalBinary (Bytes)
//
// The other per-layer buffers (U, the gradient, C U and C δ) are written by
// every Step before they are read and are not saved.

// settings returns the settings of s that shape an update, defaults filled
// in, in the order of the checkpoints, followed by own, the optimizer's.
// The func-valued settings (Schedule, OnDampingRaised, Problem) cannot be
// compared and are not saved.
func (s *rules) settings(own ...param) []param {
	return append([]param{
		floatParam("Rate", s.eta),
		floatParam("Momentum", s.Momentum),
		flagParam("Nesterov", s.Nesterov),
		floatParam("NormConstraint", s.c),
		flagParam("AbsoluteNormConstraint", s.AbsoluteNormConstraint),
		flagParam("Undamped", s.Undamped),
		floatParam("Damping", s.lambda),
		flagParam("AbsoluteDamping", s.absolute),
		intParam("InversePeriod", s.t3),
		intParam("StatsPeriod", s.t1), // after InversePeriod, its default for most methods
		flagParam("AdaptDamping", s.AdaptDamping),
		intParam("LMPeriod", s.t2),
		flagParam("AutoRate", s.AutoRate),
		floatParam("MaxMomentum", s.maxMu),
		floatParam("MinDamping", s.minLambda),
		floatParam("MaxDamping", s.maxLambda),
		floatParam("ExtraRate", s.extra),
		intParam("Retry.Tries", orInt(s.Retry.Tries, 10)),       // curvature.RefreshDamped's default
		floatParam("Retry.Growth", orFloat(s.Retry.Growth, 10)), // kron.Retry's default
	}, own...)
}

// marshal returns the checkpoint of e under the given kind, with the
// settings ps, for the optimizer named name in errors. It returns an error
// when a layer's block does not implement encoding.BinaryMarshaler or its
// MarshalBinary fails.
func (e *engine) marshal(kind, name string, ps []param) ([]byte, error) {
	blocks := make([][]byte, len(e.layers))
	n := 8 + 8 + 1 + reportLen(&e.report) + 8
	for _, p := range ps {
		n += p.size()
	}
	for j := range e.layers {
		el := &e.layers[j]
		m, ok := el.block.(encoding.BinaryMarshaler)
		if !ok {
			return nil, fmt.Errorf("optim: %s: layer %d: the curvature block %T does not implement encoding.BinaryMarshaler; its state cannot be saved", name, j, el.block)
		}
		b, err := m.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("optim: %s: layer %d: curvature block %T: %w", name, j, el.block, err)
		}
		blocks[j] = b
		n += 8 + 8 + 8 + 8*len(el.nextra) + 8 + 1 + 8 + 8*len(raw(&el.prev)) + 8 + len(b)
		for _, v := range el.ve {
			n += 8 + 8*v.Len()
		}
	}
	buf := make([]byte, 0, state.EncodedLen(kind, n))
	return state.AppendEncode(buf, kind, checkpointVersion, func(w *state.Writer) {
		for _, p := range ps {
			p.write(w)
		}
		w.Int(e.t)
		w.Float(e.lambda)
		w.Bool(e.started)
		writeReport(w, &e.report)
		w.Int(len(e.layers))
		for j := range e.layers {
			el := &e.layers[j]
			w.Int(el.out)
			w.Int(el.in)
			w.Ints(el.nextra)
			w.Float(el.lambda)
			w.Bool(el.hasPrev)
			w.Floats(raw(&el.prev))
			for _, v := range el.ve {
				w.Floats(v.RawVector().Data)
			}
			w.Bytes(blocks[j])
		}
	}), nil
}

// unmarshal reads a checkpoint written by marshal under the given kind into
// a new engine, which it returns, e left unchanged. newBlock makes the
// block of each layer, into which its saved state is restored by its
// UnmarshalBinary. It returns an error prefixed "optim: <name>: " when a
// setting of the checkpoint differs from ps (naming the first) or a block
// does not implement encoding.BinaryUnmarshaler, and one that also wraps
// state.ErrCorrupt when the data is not a valid checkpoint of the kind: bad
// frame or checksum, values out of their range (negative counts, a λ that
// is negative or not finite, shapes that are not positive), arrays whose
// lengths are not those of their layer, or a block refusing its state.
func (e *engine) unmarshal(kind, name string, data []byte, ps []param, newBlock func(int) curvature.Block) (engine, error) {
	var ne engine
	err := state.Decode(data, kind, checkpointVersion, func(r *state.Reader, _ uint32) error {
		for _, p := range ps {
			if err := p.readEqual(r); err != nil {
				return err
			}
		}
		ne.t = r.Int()
		ne.lambda = r.Float()
		ne.started = r.Bool()
		ne.report = readReport(r)
		n := r.Int()
		switch {
		case r.Err() != nil:
			return nil
		case ne.t < 0:
			r.Fail("%d updates", ne.t)
		case !finiteNonNeg(ne.lambda):
			r.Fail("damping %g, want finite and ≥ 0", ne.lambda)
		case ne.report.DampingRaised < 0 || ne.report.Fallbacks < 0:
			r.Fail("report with DampingRaised=%d Fallbacks=%d, want ≥ 0", ne.report.DampingRaised, ne.report.Fallbacks)
		case n < 0:
			r.Fail("%d layers", n)
		case !ne.started && (n != 0 || ne.t != 0):
			r.Fail("%d layers and %d updates before the first step", n, ne.t)
		}
		// Grown by append, not made with n, so that a corrupt n fails at
		// the first missing layer instead of allocating.
		for j := 0; j < n && r.Err() == nil; j++ {
			el, blockData := readEngineLayer(r, j)
			if r.Err() != nil {
				break
			}
			if newBlock == nil {
				return errors.New("NewBlock is nil; set it before UnmarshalBinary")
			}
			b := newBlock(j)
			u, ok := b.(encoding.BinaryUnmarshaler)
			if !ok {
				return fmt.Errorf("layer %d: the curvature block %T does not implement encoding.BinaryUnmarshaler; its state cannot be restored", j, b)
			}
			if err := u.UnmarshalBinary(blockData); err != nil {
				if errors.Is(err, state.ErrCorrupt) {
					return fmt.Errorf("layer %d: curvature block %T: %w", j, b, err)
				}
				return fmt.Errorf("%w: layer %d: curvature block %T: %w", state.ErrCorrupt, j, b, err)
			}
			el.block = b
			ne.layers = append(ne.layers, el)
		}
		return nil
	})
	if err != nil {
		return engine{}, fmt.Errorf("optim: %s: %w", name, err)
	}
	return ne, nil
}

// readEngineLayer reads layer j of a checkpoint, but its block, of which it
// returns the saved state, recording on r the failures of its checks.
func readEngineLayer(r *state.Reader, j int) (engineLayer, []byte) {
	el := engineLayer{out: r.Int(), in: r.Int(), nextra: r.Ints()}
	if len(el.nextra) == 0 {
		el.nextra = nil // as ensure leaves it
	}
	el.lambda = r.Float()
	el.hasPrev = r.Bool()
	prev := r.Floats()
	if r.Err() != nil {
		return engineLayer{}, nil
	}
	s := elemShape{out: el.out, in: el.in, extra: el.nextra}
	if _, ok := s.checkedSize(); !ok {
		r.Fail("layer %d: shape %d×%d with Extra lengths %v, want positive sizes", j, el.out, el.in, el.nextra)
		return engineLayer{}, nil
	}
	if len(prev) != el.out*(el.in+1) {
		r.Fail("layer %d: δ_prev of %d values for a %d×%d layer, want %d", j, len(prev), el.out, el.in, el.out*(el.in+1))
		return engineLayer{}, nil
	}
	if !finiteNonNeg(el.lambda) {
		r.Fail("layer %d: damping %g, want finite and ≥ 0", j, el.lambda)
		return engineLayer{}, nil
	}
	for i, m := range el.nextra {
		v := r.Floats()
		if r.Err() != nil {
			return engineLayer{}, nil
		}
		if len(v) != m {
			r.Fail("layer %d: velocity of Extra parameter %d has %d values, want %d", j, i, len(v), m)
			return engineLayer{}, nil
		}
		el.ve = append(el.ve, mat.NewVecDense(m, v))
	}
	blockData := r.Bytes()
	if r.Err() != nil {
		return engineLayer{}, nil
	}
	// The sizes are those of prev, read from the data: no allocation beyond
	// a few times the data's length.
	el.prev = *mat.NewDense(el.out, el.in+1, prev)
	el.u.ReuseAs(el.out, el.in+1)
	el.grad.ReuseAs(el.out, el.in+1)
	return el, blockData
}

// reportLen returns the number of bytes writeReport appends for r.
func reportLen(r *Report) int { return 8 + 8 + 8 + 8 + 4 + 8 + 8 + 8 + 8 + 8 + len(r.LastFallback) }

// writeReport appends the fields of r in their order of declaration.
func writeReport(w *state.Writer, r *Report) {
	w.Int(r.Updates)
	w.Float(r.Rate)
	w.Float(r.Momentum)
	w.Float(r.Damping)
	w.Bool(r.Stats)
	w.Bool(r.Refreshed)
	w.Bool(r.Constrained)
	w.Bool(r.MomentumClipped)
	w.Float(r.Rho)
	w.Float(r.ModelDecrease)
	w.Int(r.DampingRaised)
	w.Int(r.Fallbacks)
	w.String(r.LastFallback)
}

// readReport reads what writeReport wrote.
func readReport(r *state.Reader) Report {
	var p Report
	p.Updates = r.Int()
	p.Rate = r.Float()
	p.Momentum = r.Float()
	p.Damping = r.Float()
	p.Stats = r.Bool()
	p.Refreshed = r.Bool()
	p.Constrained = r.Bool()
	p.MomentumClipped = r.Bool()
	p.Rho = r.Float()
	p.ModelDecrease = r.Float()
	p.DampingRaised = r.Int()
	p.Fallbacks = r.Int()
	p.LastFallback = r.String()
	return p
}
