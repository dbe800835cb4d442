package optim

import (
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
	"github.com/secondorder/secondorder/internal/state"
)

// settings returns the settings of h that a checkpoint holds, defaults
// filled in.
func (h *HessianFree) settings() []param {
	return []param{
		floatParam("Damping", orFloat(h.Damping, DefaultHFDamping)),
		intParam("MaxIters", orInt(h.MaxIters, DefaultHFMaxIters)),
		intParam("MinIters", orInt(h.MinIters, DefaultHFMinIters)),
		floatParam("WarmStart", orFloat(h.WarmStart, DefaultHFWarmStart)),
		flagParam("NoWarmStart", h.NoWarmStart),
		flagParam("NoPreconditioner", h.NoPreconditioner),
		flagParam("NoLineSearch", h.NoLineSearch),
		floatParam("MinDamping", orFloat(h.MinDamping, DefaultHFMinDamping)),
		floatParam("NormConstraint", orFloat(h.NormConstraint, DefaultHFNormConstraint)),
	}
}

// MarshalBinary returns a checkpoint of h (encoding.BinaryMarshaler), of
// kind "optim.HessianFree": its settings, defaults filled in, the number of
// updates, the current λ, the last Report, and per layer its shape, the
// last CG iterate (the next warm start) and the preconditioner's averages
// (a nested curvature.DiagonalBlock). It returns the error of Validate for
// invalid settings.
func (h *HessianFree) MarshalBinary() ([]byte, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	var diags [][]byte
	for _, d := range h.diags {
		b, err := d.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("optim: HessianFree: %w", err)
		}
		diags = append(diags, b)
	}
	return state.Encode("optim.HessianFree", checkpointVersion, func(w *state.Writer) {
		for _, p := range h.settings() {
			p.write(w)
		}
		w.Bool(h.started)
		w.Int(h.t)
		w.Float(h.lambda)
		w.Bool(h.hasPrev)
		r := h.report
		w.Float(r.Rate)
		w.Float(r.Rho)
		w.Float(r.ModelDecrease)
		w.Int(r.Fallbacks)
		w.String(r.LastFallback)
		w.Int(r.Iterations)
		w.Bool(r.Stats)
		w.Bool(r.Constrained)
		w.Int(len(h.shapes))
		for j, s := range h.shapes {
			w.Int(s[0])
			w.Int(s[1])
			w.Floats(raw(h.prev[j]))
			w.Bytes(diags[j])
		}
	}), nil
}

// UnmarshalBinary restores into h (encoding.BinaryUnmarshaler) a
// checkpoint written by MarshalBinary, so that the next Step continues
// exactly as the checkpointed optimizer would have. The settings of h must
// be those of the checkpoint (an error names the first that differs);
// data that is not a valid checkpoint gives an error wrapping
// ErrCorruptCheckpoint. On any error h is left unchanged. The closures of
// Problem are not saved: set them as before.
func (h *HessianFree) UnmarshalBinary(data []byte) error {
	if err := h.Validate(); err != nil {
		return err
	}
	var n HessianFree
	err := state.Decode(data, "optim.HessianFree", checkpointVersion, func(r *state.Reader, _ uint32) error {
		for _, p := range h.settings() {
			if err := p.readEqual(r); err != nil {
				return err
			}
		}
		n.started, n.t, n.lambda, n.hasPrev = r.Bool(), r.Int(), r.Float(), r.Bool()
		rep := &n.report
		rep.Rate, rep.Rho, rep.ModelDecrease = r.Float(), r.Float(), r.Float()
		rep.Fallbacks, rep.LastFallback, rep.Iterations = r.Int(), r.String(), r.Int()
		rep.Stats, rep.Constrained = r.Bool(), r.Bool()
		layers := r.Int()
		if r.Err() != nil {
			return nil
		}
		if n.t < 0 || layers < 0 || layers > 1<<20 || (n.started != (layers > 0)) || !(n.lambda > 0 || !n.started) {
			r.Fail("%d updates, %d layers (started %t), λ %g", n.t, layers, n.started, n.lambda)
			return nil
		}
		for j := 0; j < layers; j++ {
			out, in := r.Int(), r.Int()
			prev := r.Floats()
			diag := r.Bytes()
			if r.Err() != nil {
				return nil
			}
			if out < 1 || in < 1 || len(prev) != out*(in+1) {
				r.Fail("layer %d: shape %d×%d with %d values", j, out, in, len(prev))
				return nil
			}
			d := &curvature.DiagonalBlock{}
			if err := d.UnmarshalBinary(diag); err != nil {
				r.Fail("layer %d: %v", j, err)
				return nil
			}
			n.shapes = append(n.shapes, [2]int{out, in})
			n.prev = append(n.prev, mat.NewDense(out, in+1, prev))
			n.diags = append(n.diags, d)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("optim: HessianFree: %w", err)
	}
	if n.started {
		g := make(layered, len(n.shapes))
		for j, s := range n.shapes {
			g[j] = mat.NewDense(s[0], s[1]+1, nil)
		}
		n.g = g
		n.th0, n.x0, n.tmp, n.minv = newLayered(g), newLayered(g), newLayered(g), newLayered(g)
		n.diagV = make([]mat.VecDense, len(g))
		n.shadow = make([]secondorder.Layer, len(g))
		n.views = map[*mat.Dense]secondorder.Direction{}
	}
	n.report.Updates, n.report.Damping = n.t, n.lambda
	n.Damping, n.MaxIters, n.MinIters, n.WarmStart = h.Damping, h.MaxIters, h.MinIters, h.WarmStart
	n.NoWarmStart, n.NoPreconditioner, n.NoLineSearch = h.NoWarmStart, h.NoPreconditioner, h.NoLineSearch
	n.MinDamping, n.NormConstraint, n.Problem = h.MinDamping, h.NormConstraint, h.Problem
	*h = n
	return nil
}
