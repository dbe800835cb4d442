// Package optim holds optimizers that update affine layers in place from
// their per-layer records (secondorder.Layer): the inputs h of each layer, the
// backpropagated gradients ∇_a l, and, for the curvature-based methods, the
// backpropagated curvature vectors. It never imports package nn: any Go code
// that fills secondorder.Layer records can drive these optimizers.
//
// A training step with any producer of records reads
//
//	// forward + backward of your network fill rec[k].Input, rec[k].Grad,
//	// rec[k].GradW and rec[k].GradB for every affine layer k
//	if err := opt.Step(rec); err != nil { ... }
//
// Optimizers keep their per-layer state by position in the slice: pass the
// layers in the same order at every step.
package optim

import (
	"errors"
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
)

// Optimizer updates the parameters W and B of every layer in place from the
// layers' records. Step returns an error for a numerical failure it could not
// recover from; a shape mismatch is a programmer error and panics.
type Optimizer interface {
	Step(layers []*secondorder.Layer) error
}

// Needs declares what a method needs beyond Input, Grad, GradW and GradB, in
// the style of gonum's optimize.Method.Needs: the caller provides what is
// declared and nothing is assumed.
type Needs struct {
	// Back: each layer's Back (and BackScale) must hold backpropagated
	// curvature vectors (exact GN/Fisher rows or Monte-Carlo Fisher samples,
	// see package curvature's Estimator) when Step is called.
	Back bool
	// Loss: Problem.Loss must be set, to re-evaluate the risk on the
	// current minibatch at the layers' current parameters.
	Loss bool
	// GNVec: Problem.GNVec must be set, to multiply directions by the
	// Gauss–Newton (or Fisher) matrix of the current minibatch.
	GNVec bool
}

// Needer is implemented by optimizers that need more than gradients.
type Needer interface {
	Needs() Needs
}

// Direction is a change of one layer's parameters, in the layer's shapes.
type Direction struct {
	W *mat.Dense
	B *mat.VecDense
}

// Problem holds the optional capabilities that some methods need (see
// Needs). They refer to the current minibatch: the caller sets them before
// each Step, typically as closures over its network and batch.
type Problem struct {
	// Loss returns the risk (the mean loss) on the current minibatch at the
	// layers' current W and B. Used for Levenberg–Marquardt damping
	// adaptation (Martens & Grosse 2015 §6.5).
	Loss func() (float64, error)
	// GNVec writes into dst[k] the product of the Gauss–Newton (or Fisher)
	// matrix of the current minibatch with the directions v (one per
	// layer, all layers at once, so that cross-layer terms count), with dst
	// shaped like v. Used for the exact quadratic model of K-FAC's learning
	// rate and momentum (Martens & Grosse 2015 §7).
	GNVec func(dst, v []Direction) error
}

// ErrMissingCapability is returned by Step when a need declared by Needs
// is not provided.
var ErrMissingCapability = errors.New("optim: missing capability")

// checkLayers panics with a message prefixed by name when the layers are
// not usable: nil fields, shape mismatches, or missing parameter gradients.
func checkLayers(name string, layers []*secondorder.Layer) {
	for k, l := range layers {
		if l == nil {
			panic(fmt.Sprintf("optim: %s: layer %d is nil", name, k))
		}
		l.Check()
		if l.GradW == nil || l.GradB == nil || l.B == nil {
			panic(fmt.Sprintf("optim: %s: layer %d has no GradW/GradB/B; fill them (Layer.ComputeParamGrads) before Step", name, k))
		}
	}
}
