package optim

import (
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
	"github.com/secondorder/secondorder/dist"
)

// Centered is centered gradient descent (thesis §3.4.1, algorithm 2): the
// weight update uses the inputs centered on their minibatch mean,
//
//	ΔW = (1/n) Σ_i ∇_{a_i} l (h_i − h̄)ᵀ = ∇W − ∇b h̄ᵀ,   Δb = ∇b,
//
// descending (algorithm 2 writes W ← W + λ…, the thesis's slip 3; its λ is
// the learning rate η here), with the momentum rule of SGD, so that the two
// compare fairly. ΔW is the weight part of eq. 3.3.3 without C⁻¹ and 1/α.
// It is computed as the rank-one correction ∇W − ∇b h̄ᵀ of the record's GradW
// in one fused pass (O(n n_in) for h̄, O(n_out n_in) for the update), not as
// a second product of Grad with a centered copy of Input; the two agree to
// rounding. It reads Input, GradW and GradB. Extra parameters get the update
// of b. Defaults (zero value): η = 0.01, no momentum. No allocation after
// the first step.
//
// It implements encoding.BinaryMarshaler and encoding.BinaryUnmarshaler
// for checkpoints that resume exactly: MarshalBinary saves its settings and
// state, UnmarshalBinary restores them into a Centered of the same settings.
//
// A Centered is not safe for concurrent use.
type Centered struct {
	// Rate is the learning rate η; zero means DefaultSGDRate.
	Rate float64
	// Momentum is μ in [0, 1); zero means none.
	Momentum float64
	// Nesterov selects Nesterov momentum instead of classical momentum.
	Nesterov bool

	// Comm, if set with more than one worker, makes Step data-parallel
	// (package dist): the records' gradients and mean inputs h̄ are replaced by their means
	// over all workers' examples before the update. Nil is one process.
	Comm dist.Comm

	t    int
	st   elemState
	mean []*mat.VecDense // h̄, the column means of each layer's Input
	g    gather
}

// Validate returns an error, prefixed "optim: Centered:", describing the
// first invalid setting, or nil. Step returns the same error.
func (c *Centered) Validate() error {
	return validate("Centered", rate("Rate", c.Rate), unit("Momentum", c.Momentum))
}

// Step applies one update to every layer from its Input, GradW and GradB.
// It returns an error, leaving the parameters unchanged, for an invalid
// setting.
func (c *Centered) Step(layers []*secondorder.Layer) error {
	err := startStep("Centered", layers, c, true, false)
	if err != nil && !dist.Parallel(c.Comm) {
		return err
	}
	for k, l := range layers {
		if l.Input == nil {
			panic(fmt.Sprintf("optim: Centered: layer %d has no Input", k))
		}
	}
	c.st.ensure("Centered", layers, false)
	if c.mean == nil {
		for _, l := range layers {
			_, in := l.Dims()
			c.mean = append(c.mean, mat.NewVecDense(in, nil))
		}
	}
	for k, l := range layers {
		curvature.Mean(c.mean[k], l.Input)
	}
	if err := allReduceRecords(c.Comm, &c.g, "Centered", layers, err, true, func(g *gather) {
		for _, m := range c.mean {
			g.vector(m.RawVector())
		}
	}); err != nil {
		return err
	}
	eta, mu := orFloat(c.Rate, DefaultSGDRate), c.Momentum
	for k, l := range layers {
		hbar := c.mean[k].RawVector().Data
		w, gw := l.W.RawMatrix(), l.GradW.RawMatrix()
		gb := l.GradB.RawVector()
		v := c.st.s0[k]
		for i := 0; i < w.Rows; i++ {
			wr := w.Data[i*w.Stride : i*w.Stride+w.Cols]
			centeredRow(wr, v[i*w.Cols:(i+1)*w.Cols], gw.Data[i*gw.Stride:i*gw.Stride+w.Cols], hbar, gb.Data[i*gb.Inc], eta, mu, c.Nesterov)
		}
		// B and the Extra parameters: the plain momentum rule.
		c.st.visitVectors(k, l, func(p, g, v, _ []float64) {
			momentumRow(p, v, g, eta, mu, c.Nesterov)
		})
	}
	c.t++
	return nil
}

// Report returns the number of updates and the rate and momentum.
func (c *Centered) Report() Report {
	return Report{Updates: c.t, Rate: orFloat(c.Rate, DefaultSGDRate), Momentum: c.Momentum}
}

// centeredRow applies the momentum rule to one row w of W with velocity v
// and direction d = g − b h̄ (the centered gradient's row).
func centeredRow(w, v, g, hbar []float64, b, eta, mu float64, nesterov bool) {
	v, g, hbar = v[:len(w)], g[:len(w)], hbar[:len(w)]
	for j := range w {
		var dw float64
		v[j], dw = momentum(v[j], g[j]-b*hbar[j], eta, mu, nesterov)
		w[j] += dw
	}
}

// settings appends to dst the settings that shape the update of Centered, in
// the order of its checkpoints, defaults filled in: Rate, Momentum, Nesterov.
func (c *Centered) settings(dst []param) []param {
	return append(dst,
		floatParam("Rate", orFloat(c.Rate, DefaultSGDRate)),
		floatParam("Momentum", c.Momentum),
		flagParam("Nesterov", c.Nesterov))
}

// MarshalBinary returns a checkpoint of c (encoding.BinaryMarshaler) for
// UnmarshalBinary: its settings, defaults filled in, the number of updates,
// and for every layer its shape (W, B and the lengths of the Extra
// parameters) and the velocity of every parameter. (The column means h̄ are
// recomputed at every Step and not saved.) An optimizer that never stepped
// has a checkpoint too. It allocates the returned slice only, and returns
// the error of Validate for invalid settings.
func (c *Centered) MarshalBinary() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var buf [maxSettings]param
	return marshalElem("optim.Centered", c.settings(buf[:0]), c.t, &c.st, 1), nil
}

// UnmarshalBinary restores into c (encoding.BinaryUnmarshaler) the state of
// a checkpoint written by MarshalBinary, so that the next Step, with layers
// of the recorded shapes, continues exactly (bit for bit) as the
// checkpointed optimizer would have; layers of other shapes panic as a shape
// change between steps does. The settings of c must be set first, to those
// of the checkpointed optimizer: an error, prefixed "optim: Centered:", names
// the first setting that differs after defaults ("checkpoint has Rate=0.001,
// this optimizer Rate=0.002"). Data that is not a valid checkpoint of Centered
// (truncated, altered, of another optimizer, with shapes that are not
// positive or state arrays that do not match their shapes) gives an error
// wrapping ErrCorruptCheckpoint (internal/state's ErrCorrupt), and invalid
// settings the error of Validate. On any error c is left unchanged.
func (c *Centered) UnmarshalBinary(data []byte) error {
	if err := c.Validate(); err != nil {
		return err
	}
	var buf [maxSettings]param
	t, st, err := unmarshalElem("Centered", data, c.settings(buf[:0]), 1, &c.st)
	if err != nil {
		return err
	}
	c.t, c.st = t, st
	c.mean = nil // reallocated by the next Step for the restored layers
	return nil
}
