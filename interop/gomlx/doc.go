// Package gomlx trains networks whose forward and backward passes run in
// GoMLX (github.com/gomlx/gomlx, here on its pure-Go backend simplego) with
// the optimizers of secondorder, K-FAC included, through the per-layer
// records secondorder.Layer: GoMLX computes, for each affine layer a = W h + b
// of the graph,
//
//	Input  h, the layer's input (n × n_in)
//	Grad   ∇_a l per example (n × n_out): the gradient of the summed loss
//	       with respect to the pre-activation node, not divided by n
//	Back   the same gradient at targets sampled from the model (Monte-Carlo
//	       Fisher, one target per example)
//	GradW  ∇_W R and GradB ∇_b R, gradients of the mean loss R
//	Risk   R
//
// by reverse-mode differentiation with respect to the pre-activation nodes
// (graph.Gradient accepts any node, not only variables), and the
// optimizer updates the weights, which live in gonum matrices owned by the
// caller and are fed to the graph at every step. Nothing in secondorder
// imports GoMLX: this nested module is the only place the two meet.
//
// MLP is a multilayer perceptron with softmax cross-entropy built this
// way; its Records method is the whole recipe, and the place to start for
// another GoMLX model: expose h and a of each affine layer, take the
// gradients of the summed loss with respect to the a nodes, and copy the
// results into records.
package gomlx
