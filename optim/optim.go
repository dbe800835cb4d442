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
//
// # Structure
//
// The first-order methods (SGD, Centered, RMSProp, Adam) are element-wise
// updates sharing one momentum rule (momentum.go). The curvature-based
// methods (KFAC, ACP, Newton, and Preconditioned with any block) are one
// engine (engine.go) composing a curvature block per layer (package
// curvature's Block: the statistics, the damped factorization, the
// preconditioned gradient) with the step rules of Rules, each written once:
// momentum, learning rate and Schedule, the norm constraint (quadmodel.go),
// relative or absolute damping raised on failure (curvature.RefreshDamped),
// Levenberg–Marquardt adaptation (levenberg.go) and the exact quadratic
// model for rate and momentum (quadmodel.go).
//
// Every optimizer follows one convention: a zero setting means the
// documented Default* value, a legitimate zero that is not the default has a
// flag (Rules.Undamped, Adam.NoMomentum), Validate reports an invalid
// setting and Step returns the same error with the parameters unchanged,
// and Report returns what the last update did. Shape mismatches between the
// records, or between steps, are programmer errors and panic.
package optim

import (
	"errors"
	"fmt"

	"github.com/secondorder/secondorder"
)

// Optimizer updates the parameters W and B of every layer in place from the
// layers' records. Step returns an error for a numerical failure it could not
// recover from; a shape mismatch is a programmer error and panics.
// Step is not safe for concurrent use: implementations keep per-layer state
// and update the layers in place.
type Optimizer interface {
	Step(layers []*secondorder.Layer) error
}

// Needs declares what a method needs beyond Input, Grad, GradW and GradB, in
// the style of gonum's optimize.Method.Needs: the caller provides what is
// declared and nothing is assumed. Values of Needs are safe for concurrent
// use.
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
// Implementations need not be safe for concurrent use.
type Needer interface {
	Needs() Needs
}

// Problem holds the optional capabilities that some methods need (see
// Needs). They refer to the current minibatch: the caller sets them before
// each Step, typically as closures over its network and batch. A Problem is
// safe for concurrent use only if its functions are, which closures over an
// nn.Network are not.
type Problem struct {
	// Loss returns the risk (the mean loss) on the current minibatch at the
	// layers' current W and B. Used for Levenberg–Marquardt damping
	// adaptation (Martens & Grosse 2015 §6.5).
	Loss func() (float64, error)
	// GNVec writes into dst[k] the product of the Gauss–Newton (or Fisher)
	// matrix of the current minibatch with the directions v (one per
	// layer, all layers at once, so that cross-layer terms count), with dst
	// shaped like v. Used for the exact quadratic model of the learning
	// rate and momentum (Martens & Grosse 2015 §7, Rules.AutoRate). With
	// package curvature/network it is one line:
	// network.NewGaussNewtonOperator(net, loss, x, y, nn.GaussNewton,
	// nn.SplitLogits).MulDirections.
	GNVec func(dst, v []secondorder.Direction) error
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
			panic(fmt.Sprintf("optim: %s: layer %d has no GradW/GradB/B; fill them before Step (package nn: Network.Backward after each Forward; other producers: Layer.ComputeParamGrads)", name, k))
		}
	}
}

// startStep begins the Step of a first-order method: it panics when the
// layers are not usable (checkLayers) and returns, before any parameter
// changes, the error of the method's Validate, or an error naming the first
// record field that holds NaN or Inf: the gradients, Input when the method
// reads it, and with squares the gradients whose square overflows (they
// would leave a second-moment average at +Inf for good).
func startStep(name string, layers []*secondorder.Layer, opt interface{ Validate() error }, input, squares bool) error {
	checkLayers(name, layers)
	if err := opt.Validate(); err != nil {
		return err
	}
	for k, l := range layers {
		if err := checkFinite(name, k, l, input, false, false); err != nil {
			return err
		}
		if squares {
			if err := checkSquares(name, k, l); err != nil {
				return err
			}
		}
	}
	return nil
}

// hasShape reports whether l is out×in with Extra parameters of the given
// lengths: the shape of the state an optimizer keeps for it.
func hasShape(l *secondorder.Layer, out, in int, extra []int) bool {
	lo, li := l.Dims()
	if lo != out || li != in || len(l.Extra) != len(extra) {
		return false
	}
	for j, p := range l.Extra {
		if p.Value.Len() != extra[j] {
			return false
		}
	}
	return true
}

// capabilityError is ErrMissingCapability with the optimizer and the
// missing piece named.
type capabilityError struct{ msg string }

func (e *capabilityError) Error() string { return e.msg }
func (e *capabilityError) Unwrap() error { return ErrMissingCapability }

// missingCapability returns an error wrapping ErrMissingCapability that reads
// "optim: <name>: missing capability: <what>".
func missingCapability(name, what string) error {
	return &capabilityError{msg: "optim: " + name + ": missing capability: " + what}
}
