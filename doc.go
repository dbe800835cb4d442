// Package secondorder is the root of a module of factorized second-order
// optimizers for neural networks, after T. George, "Factorized second order
// methods in neural networks" (Université de Montréal), chapters 2 and 3.
//
// The root package holds only what every other package shares: the per-layer
// record (Layer) that a network hands to the curvature code and to the
// optimizers, a layer's parameter change (Direction) and the layout of all
// layers' parameters in one vector (Layout), and the choice of BLAS backend. The optimizers in package optim
// never see a network: any Go code that can produce, for each affine layer
// a = W h + b, the inputs h and the backpropagated gradients ∇_a l can use them.
//
// Packages:
//
//	kron       Kronecker and vec algebra: vec(AXB) = (Bᵀ⊗A) vec(X), factored products and solves
//	nn         affine layers, activations, losses; forward/backward passes that fill Layer records
//	curvature  record-level curvature: blocks owning their statistics (K-FAC, ACP, exact, diagonal),
//	           dense per-layer blocks, K-FAC factors, input statistics (never imports nn)
//	curvature/network
//	           network-level references of nn networks: full GN/Fisher/Hessian, operators, and
//	           the estimators that fill the records' Back
//	optim      optimizers over Layer records (SGD and peers, centered GD; ACP, K-FAC, block
//	           Newton composed of curvature blocks and one set of step rules)
//	hpsearch   grid, random and biased random hyperparameter search
//	datasets   MNIST (IDX files), minibatch iteration, synthetic problems
//	checkpoint atomic, checksummed checkpoint directories of a training run
//
// # Backend
//
// By default all linear algebra runs on gonum's pure-Go BLAS and LAPACK. Built
// with the tag openblas (go build -tags openblas, needs cgo and Debian's
// libopenblas-dev), gonum's blas64 is switched to OpenBLAS when this package is
// initialised; Backend reports which one is in use.
package secondorder
