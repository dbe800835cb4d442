// Package kron implements the Kronecker-product algebra that factorized
// second-order methods rest on (T. George, "Factorized second order methods in
// neural networks", §3.3–3.5; Martens & Grosse 2015, "Optimizing neural networks
// with Kronecker-factored approximate curvature"): the dense product A⊗B, the
// column-major vec and unvec, products and solves with A⊗B computed from its
// factors without forming it, damped solves for Kronecker-factored curvature
// blocks, and the closed-form inverse of the bias-augmented second moment of a
// layer's input (thesis §3.3.3 and §3.4.2).
//
// # Conventions
//
// For A of size m×n and B of size p×q, A⊗B is the mp×nq block matrix whose
// block (i, j) is a_ij B. vec stacks the columns of a matrix (column-major, as
// in the thesis), so that
//
//	vec(A X B) = (Bᵀ ⊗ A) vec(X)            (thesis §3.3.1)
//
// and, read the other way, the product of A⊗B with a vector x = vec(X) is
//
//	(A ⊗ B) vec(X) = vec(B X Aᵀ),   X of size q×n, B X Aᵀ of size p×m.
//
// X is the matrix form of x. The left factor A of the Kronecker product acts
// on the matrix form from the right (through Aᵀ), the right factor B from the
// left. Functions named ...Mat or Solve take and return matrix forms, functions
// named ...Vec take and return vecs, and MulCols treats each column of its
// argument as a vec. Since gonum stores matrices row-major, vec(X) is the
// row-major storage of Xᵀ; the vec forms use this to work without transposes.
// The identities (A⊗B)ᵀ = Aᵀ⊗Bᵀ (pass a.T(), b.T()) and (A⊗B)(C⊗D) = AC⊗BD
// (MulKron) hold for factors of any compatible shapes, and
// (A⊗B)⁻¹ = A⁻¹⊗B⁻¹ for invertible square factors (CholeskyKron, LUKron).
//
// # Use for a layer's curvature block
//
// For an affine layer a = W h + b with θ = [vec(W); b] (W of size
// n_out×n_in), write the parameters and any update or gradient in matrix form
// Θ = [W b] of size n_out×(n_in+1), so that θ = vec(Θ). The K-FAC block of
// the layer (thesis §3.5.1, Martens & Grosse 2015 §3) is
//
//	F ≈ Ā ⊗ G,   Ā = E[h̃ h̃ᵀ] (input side, h̃ = (h, 1), (n_in+1)²),
//	             G = E[g gᵀ]  (output side, g = ∇_a, n_out²),
//
// and, both factors being symmetric,
//
//	F vec(ΔΘ) = vec(G ΔΘ Ā),    F⁻¹ vec(∇Θ) = vec(G⁻¹ ∇Θ Ā⁻¹).
//
// So with a = Ā and b = G, MulMat(dst, Ā, G, ΔΘ) computes the matrix form of
// F vec(ΔΘ), and CholeskyKron, EigenKron and FactoredTikhonov, factorized with
// (Ā, G), turn the n_out×(n_in+1) gradient into the n_out×(n_in+1) update.
// The covariance preconditioner of thesis §3.3.3 is the case G = αI; its
// inverse, with the bias row and column split off in closed form and with the
// Tikhonov term of §3.4.2, is AugmentedInverse.
//
// # Errors
//
// Shape mismatches are programmer errors and panic with a message prefixed by
// "kron: ". A destination that is empty (its zero value) is resized; a
// non-empty one must already have the right shape. Numerical failures (a
// factor that is not positive definite, or singular) are returned as errors
// of type *FactorError wrapping one of the sentinels ErrNotPositiveDefinite,
// ErrNotPositiveSemidefinite, ErrSingular or ErrNoConvergence, and naming the
// factor that failed. The damped factorizations can instead raise their damping
// and retry, following a Retry policy, and report the damping finally used.
//
// The types that hold factorizations keep their workspace between calls and
// are not safe for concurrent use.
package kron
