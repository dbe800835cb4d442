// Package nn is a small feed-forward network package that produces the
// per-layer records (secondorder.Layer) consumed by the curvature and
// optimizer packages.
//
// A Network is a stack of affine layers a = W h + b (W is n_out × n_in), each
// followed by an activation h' = φ(a) (thesis §2.1.2). Batches hold one
// example per row: for n examples the layer computes A = H Wᵀ + 1 bᵀ with one
// gemm. The parameter vector of a layer is θ = [vec(W); b] with vec stacking
// columns, and the risk is the mean of the per-example loss over the batch,
// R = (1/n) Σ_i l(f(x_i), y_i).
//
// Forward fills each record's Input; Backward fills Grad (∇_{a} l per
// example, not divided by n), GradW and GradB; the vector backward passes
// (BackwardVectors, BackwardGN, BackwardFisher, BackwardMC) fill Back and
// BackScale with backpropagated curvature vectors (thesis §3.1.4, §3.2.2).
//
// Layers can be reparametrised (thesis §3.5.2, §3.6.2). SetNorm adds batch
// normalisation or mean-only batch normalisation of the affine output
// before the activation, with the gain γ and shift β in the record's Extra
// parameters and the record's Grad still ∇_a l through the normalisation's
// backward pass (see Norm); SetTraining switches between the batch's
// statistics and running averages. SetWhitened makes a layer whitened as in
// natural neural networks, a = V U (h − μ) + d, with the record's W = V,
// B = d and Input = U(h − μ); Whiten re-estimates U and μ from a sample and
// changes V and d so that the network's function is unchanged.
// NewNormalized, NewAutoencoderNorm and NewAutoencoderWhitened build such
// networks, and Plain reports whether a network has none of this. Params,
// SetParams and ParamGrads cover W and b only.
//
// Losses (Quadratic, BinaryCrossEntropy, CrossEntropy) give values,
// gradients with respect to the outputs f and to the output pre-activations
// a (the logits), the curvature matrices D of tables 3.I and 3.II, square-root
// factors of D and samples from the model's predictive distribution. Where
// the output nonlinearity is split from the loss matters for the Gauss–Newton
// matrix; see Split.
//
// Buffers are owned by the network and reused: at a fixed batch size,
// Forward, Backward and the vector backward passes do not allocate (gonum's
// pure-Go dgemm itself allocates a little goroutine bookkeeping when a
// product is large enough to run in parallel). Matrices returned by the
// network are valid until the next call that rewrites them.
//
// Shape errors are programmer errors and panic with messages prefixed "nn: ";
// bad files make Load and Read return errors, and so does bad data in
// Whiten.
package nn
