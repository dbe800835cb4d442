package network

import (
	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/nn"
	"gonum.org/v1/gonum/mat"
)

// Closures returns the two capabilities of optim.Problem for the minibatch
// X, Y of an nn.Network, so that wiring Levenberg–Marquardt damping and the
// quadratic-model rate and momentum (optim.Rules.AdaptDamping, AutoRate) is
// one line before each Step:
//
//	opt.Problem.Loss, opt.Problem.GNVec = network.Closures(net, loss, x, y)
//
// lossFn runs net.Forward(X) and returns the risk R = (1/n) Σ_i l(f(x_i), y_i)
// at the network's parameters of the moment (it overwrites the records, as
// optim allows). gnvec multiplies per-layer directions by the exact
// Gauss–Newton matrix of the batch, at the logits split (the matching-loss
// split of Schraudolph 2002), at the parameters of its first call: the
// operator (NewGaussNewtonOperator) is built then, at the cost of one
// forward and one backward pass, and each product costs one R-forward and
// one backward pass. Call Closures again for every minibatch. gnvec needs a
// plain network (no batch normalisation or whitened layers), as every
// operator of this package.
func Closures(net *nn.Network, loss nn.Loss, X, Y mat.Matrix) (lossFn func() (float64, error), gnvec func(dst, v []secondorder.Direction) error) {
	if net == nil || loss == nil {
		panic("network: Closures: nil network or loss")
	}
	y, ok := Y.(*mat.Dense)
	if !ok {
		y = mat.DenseCopyOf(Y)
	}
	lossFn = func() (float64, error) {
		net.Forward(X)
		return loss.Value(net.Output(), y), nil
	}
	var op *Operator
	gnvec = func(dst, v []secondorder.Direction) error {
		if op == nil {
			op = NewGaussNewtonOperator(net, loss, X, y, nn.GaussNewton, nn.SplitLogits)
		}
		return op.MulDirections(dst, v)
	}
	return lossFn, gnvec
}
