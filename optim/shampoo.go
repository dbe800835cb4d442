package optim

import (
	"fmt"
	"math"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
)

// Defaults of Shampoo.
const (
	// DefaultShampooRate is η; the steps are grafted to RMSProp's norm, so
	// RMSProp's rate.
	DefaultShampooRate = 0.001
	// DefaultShampooDamping is λ, relative to each factor's mean
	// eigenvalue: (L + λ·tr(L)/n_out I)^{−1/4}.
	DefaultShampooDamping = 1e-4
	// DefaultShampooInversePeriod is the period of the
	// eigendecompositions, in updates, after a doubling warm-up (updates
	// 1, 2, 4, … of the first period).
	DefaultShampooInversePeriod = 50
)

var shampooDefaults = methodDefaults{
	name:           "Shampoo",
	rate:           DefaultShampooRate,
	damping:        DefaultShampooDamping,
	absolute:       true, // the block's Scale is 1: λ is already relative to each factor
	normConstraint: math.Inf(1),
	statsPeriod:    1,
	inversePeriod:  DefaultShampooInversePeriod,
	doublingWarmUp: true,
	gradOnly:       true,
}

// Shampoo is the Shampoo optimizer (Gupta, Koren & Singer 2018) with the
// moving averages and RMSProp grafting of its large-scale form (Anil et al.
// 2020): every layer's gradient matrix G = [∇W ∇b] is preconditioned by
// curvature.ShampooBlock,
//
//	U = (L + ε_L I)^{−1/4} G (R + ε_R I)^{−1/4},   L = E[G Gᵀ],   R = E[Gᵀ G],
//
// rescaled to the norm of RMSProp's direction G/(√E[G∘G] + 1e-8), and the
// update is δ = −η U + μ δ_prev. It reads only GradW and GradB. The roots
// are recomputed (two eigendecompositions per layer) at updates 1, 2, 4, 8,
// … of the first InversePeriod updates, then every InversePeriod updates.
//
// Defaults (zero values): η = 0.001, no momentum, λ = 1e-4 relative to
// each factor's mean eigenvalue, no norm constraint, statistics every
// update with Decay 0.95, roots every 50 updates after the warm-up.
// Shampoo approximates full-matrix AdaGrad, not a curvature matrix: the
// norm constraint and the quadratic-model rules of Rules (AutoRate,
// AdaptDamping) see the inverse preconditioner as their curvature and are
// not its usual companions.
//
// It implements encoding.BinaryMarshaler and encoding.BinaryUnmarshaler
// for checkpoints that resume exactly (see KFAC). Layers are kept by
// position. It is not safe for concurrent use.
type Shampoo struct {
	Rules
	// Decay is ε of the moving averages of L, R and E[G∘G], in [0, 1).
	// Zero means curvature.DefaultDecay (0.95).
	Decay float64

	e engine
}

// SOAP is SOAP (Vyas et al. 2024), Adam in the eigenbasis of Shampoo's
// factors: every layer is preconditioned by curvature.SOAPBlock,
//
//	U = Q_L (m ./ (√v + λ)) Q_Rᵀ,   m = E[G'],   v = E[G'∘G'],   G' = Q_Lᵀ G Q_R,
//
// and the update is δ = −η U (+ μ δ_prev if Momentum is set; Adam's first
// moment m is the block's). It reads only GradW and GradB. The first update
// only builds the preconditioner (a zero step, as the paper's code does);
// the eigenbases are recomputed every InversePeriod updates.
//
// Defaults (zero values): η = 0.003 (the paper's), Decay 0.95 for L, R, m
// and v (the paper's β₁ = β₂ = 0.95), λ = 1e-8 (Adam's ε, absolute), no
// momentum, no norm constraint, eigenbases every 10 updates (the paper's
// precondition_frequency), statistics every update.
//
// It implements encoding.BinaryMarshaler and encoding.BinaryUnmarshaler
// for checkpoints that resume exactly (see KFAC). Layers are kept by
// position. It is not safe for concurrent use.
type SOAP struct {
	Rules
	// Decay is ε of the moving averages of L, R, m and v, in [0, 1). Zero
	// means curvature.DefaultDecay (0.95).
	Decay float64

	e engine
}

// Defaults of SOAP.
const (
	// DefaultSOAPRate is η, the paper's learning rate.
	DefaultSOAPRate = 0.003
	// DefaultSOAPDamping is λ, Adam's ε (absolute).
	DefaultSOAPDamping = 1e-8
	// DefaultSOAPInversePeriod is the paper's precondition_frequency.
	DefaultSOAPInversePeriod = 10
)

var soapDefaults = methodDefaults{
	name:           "SOAP",
	rate:           DefaultSOAPRate,
	damping:        DefaultSOAPDamping,
	absolute:       true,
	normConstraint: math.Inf(1),
	statsPeriod:    1,
	inversePeriod:  DefaultSOAPInversePeriod,
	gradOnly:       true,
}

// gradMethod is the code Shampoo and SOAP share: settings, step, checkpoint.
type gradMethod struct {
	d     methodDefaults
	kind  string
	block func(decay float64) curvature.Block
}

var (
	shampooMethod = gradMethod{shampooDefaults, "optim.Shampoo", func(d float64) curvature.Block { return &curvature.ShampooBlock{Decay: d} }}
	soapMethod    = gradMethod{soapDefaults, "optim.SOAP", func(d float64) curvature.Block { return &curvature.SOAPBlock{Decay: d} }}
)

func (g gradMethod) validate(r Rules, decay float64) error {
	if !(decay >= 0 && decay < 1) {
		return fmt.Errorf("optim: %s: Decay=%g, want in [0, 1) (0 for %g)", g.d.name, decay, curvature.DefaultDecay)
	}
	_, err := r.resolve(g.d)
	return err
}

func (g gradMethod) settings(r Rules, decay float64) []param {
	s := r.fill(g.d)
	return s.settings(floatParam("Decay", orFloat(decay, curvature.DefaultDecay)))
}

func (g gradMethod) step(e *engine, layers []*secondorder.Layer, r Rules, decay float64) error {
	if err := g.validate(r, decay); err != nil {
		return err
	}
	return e.step(layers, r, g.d, func(int) curvature.Block { return g.block(decay) })
}

func (g gradMethod) marshal(e *engine, r Rules, decay float64) ([]byte, error) {
	if err := g.validate(r, decay); err != nil {
		return nil, err
	}
	return e.marshal(g.kind, g.d.name, g.settings(r, decay))
}

func (g gradMethod) unmarshal(e *engine, data []byte, r Rules, decay float64) error {
	if err := g.validate(r, decay); err != nil {
		return err
	}
	ne, err := e.unmarshal(g.kind, g.d.name, data, g.settings(r, decay), func(int) curvature.Block { return g.block(decay) })
	if err != nil {
		return err
	}
	*e = ne
	return nil
}

// Validate returns an error, prefixed "optim: Shampoo:", describing the
// first invalid setting, or nil. Step returns the same error.
func (s *Shampoo) Validate() error { return shampooMethod.validate(s.Rules, s.Decay) }

// Step applies one Shampoo update to every layer; its errors, and the
// guarantee that a refused step changes nothing, are those of KFAC.Step.
func (s *Shampoo) Step(layers []*secondorder.Layer) error {
	return shampooMethod.step(&s.e, layers, s.Rules, s.Decay)
}

// MarshalBinary returns a checkpoint of s (see KFAC.MarshalBinary), with
// the state of every curvature.ShampooBlock.
func (s *Shampoo) MarshalBinary() ([]byte, error) {
	return shampooMethod.marshal(&s.e, s.Rules, s.Decay)
}

// UnmarshalBinary restores a checkpoint written by MarshalBinary (see
// KFAC.UnmarshalBinary).
func (s *Shampoo) UnmarshalBinary(data []byte) error {
	return shampooMethod.unmarshal(&s.e, data, s.Rules, s.Decay)
}

// Needs reports what Step needs: Problem.Loss with AdaptDamping,
// Problem.GNVec with AutoRate; no Back.
func (s *Shampoo) Needs() Needs { return Needs{Loss: s.AdaptDamping, GNVec: s.AutoRate} }

// Report returns the state after the last Step.
func (s *Shampoo) Report() Report { return s.e.reportNow(s.Rules, shampooDefaults) }

// Validate returns an error, prefixed "optim: SOAP:", describing the first
// invalid setting, or nil. Step returns the same error.
func (s *SOAP) Validate() error { return soapMethod.validate(s.Rules, s.Decay) }

// Step applies one SOAP update to every layer; its errors, and the
// guarantee that a refused step changes nothing, are those of KFAC.Step.
func (s *SOAP) Step(layers []*secondorder.Layer) error {
	return soapMethod.step(&s.e, layers, s.Rules, s.Decay)
}

// MarshalBinary returns a checkpoint of s (see KFAC.MarshalBinary), with
// the state of every curvature.SOAPBlock.
func (s *SOAP) MarshalBinary() ([]byte, error) { return soapMethod.marshal(&s.e, s.Rules, s.Decay) }

// UnmarshalBinary restores a checkpoint written by MarshalBinary (see
// KFAC.UnmarshalBinary).
func (s *SOAP) UnmarshalBinary(data []byte) error {
	return soapMethod.unmarshal(&s.e, data, s.Rules, s.Decay)
}

// Needs reports what Step needs: Problem.Loss with AdaptDamping,
// Problem.GNVec with AutoRate; no Back.
func (s *SOAP) Needs() Needs { return Needs{Loss: s.AdaptDamping, GNVec: s.AutoRate} }

// Report returns the state after the last Step.
func (s *SOAP) Report() Report { return s.e.reportNow(s.Rules, soapDefaults) }
