// Package disttest checks data-parallel training: that workers which each
// hold a shard of every minibatch and step an optimizer of package optim
// through a dist.Comm end with the parameters that one process stepping the
// same optimizer on the whole minibatches ends with, to rounding, and that
// every worker holds the same parameters bit for bit.
//
// Its tests run the workers as goroutines (dist.NewGroup); the nested
// module github.com/secondorder/secondorder/mpi runs the same check in
// processes started by mpirun. A check of your own optimizer reads
//
//	diff, theta, err := disttest.Equivalence(comm, method, disttest.Classifier, 6)
//
// on every worker.
package disttest

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
	"github.com/secondorder/secondorder/curvature/network"
	"github.com/secondorder/secondorder/datasets"
	"github.com/secondorder/secondorder/dist"
	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim"
)

// Method is an optimizer under test. New returns a fresh optimizer that
// works through c (nil: one process) and uses p for its Problem when it
// has one.
type Method struct {
	Name string
	New  func(c dist.Comm, p optim.Problem) optim.Optimizer
	// Tol returns the largest relative difference from one process's
	// parameters that the method's sensitivity to rounding explains on a
	// task; nil means DefaultTolerance on every task.
	Tol func(Task) float64
}

// DefaultTolerance is the tolerance of Method: after six updates on the
// tasks of this package the methods end 1e-16 to 5e-11 away from one
// process's parameters, relative.
const DefaultTolerance = 1e-9

// Tolerances of the methods whose steps depend on the basis that rounding
// picks in a degenerate eigenspace. Their first eigenbases come from one or
// two batches: SOAP's from one or two gradients (the null spaces of L and
// R), EKFAC's from a batch of fewer examples than a layer has inputs (the
// null space of Ā: Wide's 64-unit layer sees 32 examples). Within such a
// space the basis is arbitrary, and the quantities carried in it are not
// invariant under rotations: Adam's sign-like step m/(√v + λ) in SOAP, and
// the diagonal scaling S that EKFAC projects onto the next basis. Workers
// whose statistics differ from one process's by rounding (1e-16) end about
// 1e-2 (SOAP, at any λ from 1e-8 to 1e-4) and 8e-4 (EKFAC on Wide) away from
// its parameters, relative; they still agree with each other bit for bit.
const (
	SOAPTolerance  = 5e-2
	EKFACTolerance = 5e-3 // on Wide; DefaultTolerance on the other tasks
)

// Methods returns every optimizer of package optim, with settings that
// exercise the parts that communicate: the defaults, and K-FAC with
// statistics every second update, inverses every third, Levenberg–Marquardt
// damping and the quadratic model's rate and momentum (Problem.Loss and
// Problem.GNVec), ACP with its heuristic α (a maximum), block Newton and the
// diagonal Gauss–Newton through Preconditioned, and Hessian-free.
func Methods() []Method {
	return []Method{
		{Name: "SGD", New: func(c dist.Comm, _ optim.Problem) optim.Optimizer {
			return &optim.SGD{Rate: 0.1, Momentum: 0.9, Comm: c}
		}},
		{Name: "RMSProp", New: func(c dist.Comm, _ optim.Problem) optim.Optimizer { return &optim.RMSProp{Comm: c} }},
		{Name: "Adam", New: func(c dist.Comm, _ optim.Problem) optim.Optimizer { return &optim.Adam{Comm: c} }},
		{Name: "Centered", New: func(c dist.Comm, _ optim.Problem) optim.Optimizer {
			return &optim.Centered{Rate: 0.1, Momentum: 0.5, Nesterov: true, Comm: c}
		}},
		{Name: "KFAC", New: func(c dist.Comm, _ optim.Problem) optim.Optimizer {
			return &optim.KFAC{Rules: optim.Rules{Comm: c}}
		}},
		{Name: "KFAC-auto", New: func(c dist.Comm, p optim.Problem) optim.Optimizer {
			return &optim.KFAC{Rules: optim.Rules{Comm: c, Problem: p, AdaptDamping: true, LMPeriod: 2, AutoRate: true, StatsPeriod: 2, InversePeriod: 3}}
		}},
		{Name: "EKFAC", New: func(c dist.Comm, _ optim.Problem) optim.Optimizer {
			return &optim.EKFAC{Rules: optim.Rules{Comm: c}}
		}, Tol: func(t Task) float64 {
			if t == Wide {
				return EKFACTolerance
			}
			return DefaultTolerance
		}},
		{Name: "Shampoo", New: func(c dist.Comm, _ optim.Problem) optim.Optimizer {
			return &optim.Shampoo{Rules: optim.Rules{Comm: c}}
		}},
		{Name: "SOAP", New: func(c dist.Comm, _ optim.Problem) optim.Optimizer {
			return &optim.SOAP{Rules: optim.Rules{Comm: c, InversePeriod: 2}}
		}, Tol: func(Task) float64 { return SOAPTolerance }},
		{Name: "ACP", New: func(c dist.Comm, _ optim.Problem) optim.Optimizer {
			return &optim.ACP{Rules: optim.Rules{Comm: c, Momentum: 0.5}}
		}},
		{Name: "Newton", New: func(c dist.Comm, p optim.Problem) optim.Optimizer {
			return &optim.Newton{Rules: optim.Rules{Comm: c, Problem: p, AdaptDamping: true, LMPeriod: 2}}
		}},
		{Name: "DiagonalGN", New: func(c dist.Comm, _ optim.Problem) optim.Optimizer {
			return &optim.Preconditioned{Rules: optim.Rules{Comm: c, Rate: 0.1}, ReadsBack: true, Name: "DiagonalGN",
				NewBlock: func(int) curvature.Block { return &curvature.DiagonalBlock{} }}
		}},
		{Name: "HessianFree", New: func(c dist.Comm, p optim.Problem) optim.Optimizer {
			return &optim.HessianFree{Comm: c, Problem: p, MaxIters: 20}
		}},
	}
}

// Task is a small network with its training set, trained on the
// minibatches of a fixed schedule.
type Task int

const (
	// Classifier is a 10-16-4 tanh network with a softmax cross-entropy
	// loss on four Gaussian blobs.
	Classifier Task = iota
	// Autoencoder is the 16-8-3-8-16 sigmoid autoencoder of package
	// optimtest with the quadratic loss, on images of rank 3.
	Autoencoder
	// Wide is a 32-64-4 tanh classifier: the layers are wide enough for
	// the shards (16 examples and fewer) to take the batch-side solve of
	// K-FAC, EKFAC and ACP where the whole batch takes the gradient side.
	Wide
)

// Tasks returns every task.
func Tasks() []Task { return []Task{Classifier, Autoencoder, Wide} }

// String returns the task's name.
func (t Task) String() string {
	switch t {
	case Classifier:
		return "Classifier"
	case Autoencoder:
		return "Autoencoder"
	case Wide:
		return "Wide"
	}
	return fmt.Sprintf("Task(%d)", int(t))
}

// Sizes of every task.
const (
	// Examples is the size of every task's training set.
	Examples = 96
	// BatchSize is the size of its minibatches, split into the workers'
	// shards.
	BatchSize = 32
)

// Tolerance returns m.Tol(t), or DefaultTolerance when Tol is nil.
func (m Method) Tolerance(t Task) float64 {
	if m.Tol == nil {
		return DefaultTolerance
	}
	return m.Tol(t)
}

// problem is a task's network, data and the evaluation copy of its Problem
// closures, for one worker's shard.
type problem struct {
	net, eval *nn.Network
	loss      nn.Loss
	x, y      *mat.Dense
	xs, ys    *mat.Dense // the current shard
	bp        network.Backprop
	gn        *network.Operator
	theta     []float64
}

func newProblem(t Task) *problem {
	rng := rand.New(rand.NewPCG(uint64(t)+1, 1))
	p := &problem{}
	var build func() *nn.Network
	switch t {
	case Classifier:
		x, labels, _ := datasets.Blobs(rng, Examples, 10, 4, 0.7, 1)
		p.x, p.y, p.loss = x, datasets.OneHot(labels, 4), nn.CrossEntropy{}
		build = func() *nn.Network { return nn.New([]int{10, 16, 4}, []nn.Activation{nn.Tanh{}, nn.Softmax{}}) }
	case Wide:
		x, labels, _ := datasets.Blobs(rng, Examples, 32, 4, 0.7, 1)
		p.x, p.y, p.loss = x, datasets.OneHot(labels, 4), nn.CrossEntropy{}
		build = func() *nn.Network { return nn.New([]int{32, 64, 4}, []nn.Activation{nn.Tanh{}, nn.Softmax{}}) }
	case Autoencoder:
		p.x = datasets.LowRankImages(rng, Examples, 16, 3)
		p.y, p.loss = p.x, nn.Quadratic{}
		build = func() *nn.Network { return nn.NewAutoencoder([]int{16, 8, 3, 8, 16}) }
	default:
		panic(fmt.Sprintf("disttest: unknown %v", t))
	}
	p.net, p.eval = build(), build()
	p.net.Init(nn.Glorot{}, rand.New(rand.NewPCG(uint64(t)+1, 2)))
	return p
}

// shard returns the rows of worker rank of size of minibatch k: the
// contiguous rows [rank·n/size, (rank+1)·n/size) of the batch's n rows.
func shard(k, rank, size int) (lo, hi int) {
	start := (k * BatchSize) % Examples
	return start + rank*BatchSize/size, start + (rank+1)*BatchSize/size
}

// next fills the records for worker rank's shard of minibatch k: Input,
// Grad, GradW, GradB, Risk, and Back with the exact Gauss–Newton vectors
// (network.GGNExact, deterministic, so that a shard's rows are those of
// the whole batch).
func (p *problem) next(k, rank, size int) {
	lo, hi := shard(k, rank, size)
	p.xs = p.x.Slice(lo, hi, 0, p.x.RawMatrix().Cols).(*mat.Dense)
	p.ys = p.y.Slice(lo, hi, 0, p.y.RawMatrix().Cols).(*mat.Dense)
	p.bp.Fill(p.net, p.loss, p.xs, p.ys)
	p.gn = nil
}

// sync copies the trained network's parameters into the evaluation copy.
func (p *problem) sync() {
	p.theta = p.net.Params(p.theta)
	p.eval.SetParams(p.theta)
}

// closures returns the Problem over the current shard at the current
// parameters (the Gauss–Newton matrix at those of its first product after
// next).
func (p *problem) closures() optim.Problem {
	return optim.Problem{
		Loss: func() (float64, error) {
			p.sync()
			return p.eval.Risk(p.loss, p.xs, p.ys), nil
		},
		GNVec: func(dst, v []secondorder.Direction) error {
			if p.gn == nil {
				p.sync()
				p.gn = network.NewGaussNewtonOperator(p.eval, p.loss, p.xs, p.ys, nn.GaussNewton, nn.SplitLogits)
			}
			return p.gn.MulDirections(dst, v)
		},
	}
}

// Train steps m for steps updates of task t and returns the parameters:
// with a nil (or single-worker) c on whole minibatches, otherwise on the
// shard of worker c.Rank().
func Train(c dist.Comm, m Method, t Task, steps int) ([]float64, error) {
	p := newProblem(t)
	opt := m.New(c, p.closures())
	rank, size := dist.Rank(c), dist.Size(c)
	for k := range steps {
		p.next(k, rank, size)
		if err := opt.Step(p.net.Records()); err != nil {
			return nil, fmt.Errorf("disttest: %s on %v, update %d: %w", m.Name, t, k, err)
		}
	}
	return p.net.Params(nil), nil
}

// Equivalence trains m on task t for steps updates twice on this worker:
// through c on its shards, and alone on the whole minibatches. It returns
// the largest difference between the two parameter vectors relative to the
// largest parameter, max_i |θ_i − θ'_i| / max_i |θ'_i|, and the parameters
// of the run through c. Every worker of c must call it with the same
// arguments.
func Equivalence(c dist.Comm, m Method, t Task, steps int) (diff float64, theta []float64, err error) {
	theta, err = Train(c, m, t, steps)
	if err != nil {
		return 0, nil, err
	}
	ref, err := Train(nil, m, t, steps)
	if err != nil {
		return 0, nil, err
	}
	var d, scale float64
	for i, v := range ref {
		d = math.Max(d, math.Abs(theta[i]-v))
		scale = math.Max(scale, math.Abs(v))
	}
	return d / scale, theta, nil
}
